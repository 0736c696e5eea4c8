import json
import re

from typer.testing import CliRunner

from sprig.cli import app


def test_bonsai_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    args = ["bonsai", "delay-1", "--out", str(out), "--steps", "20", "--cells", "1x1", "--quantize"]
    args += ["--validation-sequences", "200", "--check-sequences", "100", "--input", "1 0 0 1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("graph.json", "graph.dot", "graph.py", "graph.html"):
        assert (out / name).is_file()
    # counted nouns: "1 state", "3 states"
    assert re.search(
        r"graph: (1 neuron|\d+ neurons), (1 state|\d+ states), (1 edge|\d+ edges)", result.output
    )
    assert "validation (200 fresh sequences of 40)" in result.output
    assert "wall time" in result.output
    data = json.loads((out / "graph.json").read_text())
    assert data["format"] == "sprig.bonsai.graph" and data["meta"]["task"] == "delay-1"
    assert '"inputs": [[1.0], [-1.0], [-1.0], [1.0]]' in (out / "graph.html").read_text()

    page = tmp_path / "page.html"
    result = CliRunner().invoke(
        app, ["view", str(out / "graph.json"), "--input", "1 1 0", "--out", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert '"inputs": [[1.0], [1.0], [-1.0]]' in page.read_text()


def test_view_bad_input_and_bad_file(tmp_path):
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps({"format": "sprig.bonsai.graph", "format_version": 99}))
    # (main() turns these exceptions into one line and exit code 1: tests/cli/test_cli.py)
    runner = CliRunner()
    for args, message in [
        (["bonsai", "nope"], "valid names are"),
        (["bonsai", "delay-1", "--input", "1 0 a", "--out", str(tmp_path)], "input step 3 is 'a'"),
        (["bonsai", "delay-1", "--cells", "4-4", "--out", str(tmp_path)], "OUTxSTATE"),
        (["view", str(graph), "--input", "1 2"], "upgrade sprig"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and message in str(result.exception), (args, result)


def test_help_has_examples():
    for cmd in (["bonsai", "--help"], ["view", "--help"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0 and "Example" in result.output


def test_bonsai_runs_a_users_task(tmp_path, monkeypatch):
    (tmp_path / "mytasks.py").write_text(
        "import torch\n"
        "from sprig.bonsai import StepTask\n"
        "NOT = StepTask('not', 1, 1, lambda s, x: (s, -x))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    args = ["bonsai", "mytasks:NOT", "--out", str(out), "--steps", "5", "--cells", "1x0"]
    args += ["--validation-sequences", "50", "--check-sequences", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "growing a bonsai on not" in result.output
    assert (out / "graph.html").is_file()
    bad = CliRunner().invoke(app, ["bonsai", "mytasks:MISSING"])
    assert "cannot load task" in str(bad.exception)


def test_bonsai_seeds_keeps_the_best_run(tmp_path):
    out = tmp_path / "run"
    args = ["bonsai", "delay-1", "--out", str(out), "--steps", "30", "--cells", "1x1"]
    args += ["--validation-sequences", "100", "--check-sequences", "50", "--seeds", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "seed 0:" in result.output and "seed 1:" in result.output
    assert "keeping seed" in result.output and "for all seeds" in result.output
    bad = CliRunner().invoke(app, ["bonsai", "delay-1", "--seeds", "0"])
    assert bad.exit_code == 2 and "--seeds" in bad.output  # a usage error names the option
