import subprocess
import sys

from typer.testing import CliRunner

from sprig.cli import app


def test_demo_prints_table():
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "density" in result.output and "test accuracy" in result.output


def test_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sprig.cli import main; main()",
            "summary",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no sprig file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_has_examples():
    for cmd in (["demo", "--help"], ["summary", "--help"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0 and "Example" in result.output
