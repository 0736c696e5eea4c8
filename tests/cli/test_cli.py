import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sprig.cli import app


@pytest.mark.slow
def test_quick_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "RigL" in result.output and "speedup" in result.output and "neurons" in result.output
    report = (out / "report.html").read_text()
    # every picture and page the report links exists
    targets = re.findall(r"(?:src|href)='([^']+)'", report)
    assert len(targets) >= 5
    for target in targets:
        assert (out / target).exists(), target
    assert (out / "bonsai" / "graph.html").stat().st_size > 1000
    # a second demo never writes into a finished one
    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code != 0


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
    for cmd in ([c, "--help"] for c in ("demo", "summary", "bench", "run", "bonsai", "view")):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0 and "Example" in result.output


def test_bench_times_every_alternative_and_rejects_bad_density():
    result = CliRunner().invoke(app, ["bench", "--size", "300", "--rounds", "2"])
    assert result.exit_code == 0, result.output
    for name in ("dense F.linear", "W.to_sparse_csr()", "scipy csr", "sprig compressed"):
        assert name in result.output
    diff = float(result.output.rsplit("=", 1)[1])
    assert diff < 1e-4  # the compressed layer computes what the dense one does
    bad = CliRunner().invoke(app, ["bench", "--density", "2"])
    assert bad.exit_code != 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lottery", "--steps", "0"], "--steps must be at least 1, got 0"),
        (["lottery", "--hidden=-3"], "--hidden values must be >= 1"),
        (
            ["bonsai", "delay-1", "--steps", "10", "--validation-sequences", "0"],
            "--validation-sequences must be at least 1",
        ),
        (["bonsai", "delay-1", "--steps", "10", "--out", "full"], "full exists and is not empty"),
        (["sparse-vs-dense", "--out", "afile"], "--out afile is a file"),
        (["demo", "--quick", "--seed", "-1", "--out", "d"], "--seed must be >= 0, got -1"),
        (["bonsai", "delay-1", "--cells", "0x0", "--out", "b"], "cells must be"),
    ],
)
def test_bad_options_fail_before_work_and_leave_no_folder(tmp_path, args, message):
    # these trained first, overwrote a full --out, printed raw errno or torch messages, or
    # left an empty run folder behind
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "graph.json").write_text("{}")
    (tmp_path / "afile").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run(
        [sys.executable, "-c", "from sprig.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr  # bad usage (README)
    assert proc.stderr.startswith("usage error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new, nothing gone
    assert (tmp_path / "full" / "graph.json").read_text() == "{}"


def test_summary_of_a_users_own_masked_model(tmp_path):
    import torch

    import sprig

    net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    sprig.sparsify(net, density=0.1, distribution="uniform", pattern="row", seed=0)
    sprig.save(net, tmp_path / "net.safetensors")
    result = CliRunner().invoke(app, ["summary", str(tmp_path / "net.safetensors")])
    assert result.exit_code == 0, result.output
    assert re.search(r"0\.weight\s+64x20\s+120\s+0\.0938\s+row", result.output), result.output
    assert re.search(r"total\s+184", result.output), result.output


def test_help_is_not_cut_when_printed_to_a_pipe():
    for cmd in ("demo", "summary", "bench", "run", "bonsai", "view", "lottery", "sparse-vs-dense"):
        result = CliRunner().invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "…" not in result.output, result.output


@pytest.mark.parametrize("columns, args", [(60, ["bonsai"]), (89, ["bonsai"]), (60, [])])
def test_help_is_not_cut_in_a_narrow_terminal(columns, args):
    """A terminal narrower than the rich table's 100 columns gets click's wrapped help, and
    the command list's short helps are whole sentences."""
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run(
        [sys.executable, "-c", "from sprig.cli import app; app()", *args, "--help"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    cut = [ln for ln in lines if ln.rstrip().endswith("...") and not ln.startswith("Usage")]
    assert "…" not in out.stdout and not cut, out.stdout
    assert max(len(line) for line in lines) <= columns, out.stdout
    assert ("--validation-sequences" if args else "sparse-vs-dense") in out.stdout


def test_bench_says_when_a_busy_machine_runs_kernels_on_one_thread(monkeypatch):
    from sprig.kernels import _threads

    monkeypatch.setattr(_threads, "machine_busy", lambda: True)
    result = CliRunner().invoke(app, ["bench", "--size", "300", "--rounds", "2"])
    assert result.exit_code == 0, result.output
    assert "the machine is busy" in result.output and "one thread" in result.output


@pytest.mark.parametrize("args", [["--density", "0"], ["--size", "-5"]])
def test_bench_bad_values_are_bad_usage(args):
    """README: exit 2 for bad usage, also for a value found wrong after parsing."""
    proc = subprocess.run(
        [sys.executable, "-c", "from sprig.cli import main; main()", "bench", *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("usage error: ") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuchtask"], "valid names are"),
        (["delay-1", "--cells", "0x0"], "cells must be"),
        (["delay-1", "--cells", "4"], "not OUTxSTATE"),
        (["delay-1", "--input", ""], "no time steps"),
        (["delay-1", "--input", "1 0 a"], "input step 3 is 'a'"),
    ],
)
def test_bonsai_bad_values_are_bad_usage(args, message, tmp_path, monkeypatch):
    """Every sprig bonsai option is checked before anything runs: a UsageError, no folder."""
    from sprig.cli._folders import UsageError

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bonsai", *args])
    assert isinstance(result.exception, UsageError) and message in str(result.exception)
    assert not (tmp_path / "runs").exists()


def test_a_usage_error_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from sprig.cli import main; main()", "bonsai", "nosuchtask"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("usage error: ") and proc.stderr.count("\n") == 1
