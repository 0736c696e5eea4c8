import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sprig.bonsai import extract_graph, save_graph
from sprig.cli import app
from sprig.nn import BonsaiRNN


def test_bonsai_without_a_perfect_graph_writes_failed_files_and_exits_1(tmp_path):
    out = tmp_path / "run"
    args = ["bonsai", "delay-1", "--out", str(out), "--steps", "20", "--cells", "1x1", "--quantize"]
    args += ["--validation-sequences", "200", "--check-sequences", "100", "--input", "1 0 0 1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # 20 steps learn nothing
    assert "no perfect graph" in str(result.exception)
    for name in ("graph.json", "graph.dot", "graph.py", "graph.html", "FAILED"):
        assert (out / name).is_file()
    # counted nouns: "1 state", "3 states"
    assert re.search(
        r"graph: (1 neuron|\d+ neurons), (1 state|\d+ states), (1 edge|\d+ edges)", result.output
    )
    assert "validation (200 fresh sequences of 40)" in result.output
    assert "wall time" in result.output and "state machine:" in result.output
    data = json.loads((out / "graph.json").read_text())
    assert data["format"] == "sprig.bonsai.graph" and data["meta"]["task"] == "delay-1"
    assert data["meta"]["status"] == "failed"
    assert '"inputs": [[1.0], [-1.0], [-1.0], [1.0]]' in (out / "graph.html").read_text()

    page = tmp_path / "page.html"
    result = CliRunner().invoke(
        app, ["view", str(out / "graph.json"), "--input", "1 1 0", "--out", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert '"inputs": [[1.0], [1.0], [-1.0]]' in page.read_text()


def test_empty_input_is_refused(tmp_path):
    save_graph(extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0)), tmp_path / "g.json")
    for args in (
        ["bonsai", "delay-1", "--input", "", "--out", str(tmp_path / "b")],
        ["view", str(tmp_path / "g.json"), "--input", ""],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and "no time steps" in str(result.exception), result


def test_view_bad_input_and_bad_file(tmp_path):
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps({"format": "sprig.bonsai.graph", "format_version": 99}))
    # (main() turns these exceptions into one line and exit code 1: tests/cli/test_cli.py)
    runner = CliRunner()
    for args, message in [
        (["bonsai", "nope"], "valid names are"),
        (["bonsai", "delay-1", "--input", "1 0 a", "--out", str(tmp_path)], "input step 3 is 'a'"),
        (["bonsai", "delay-1", "--cells", "4-4", "--out", str(tmp_path)], "OUTxSTATE"),
        (["bonsai", "delay-1", "--budget", "0", "--out", str(tmp_path)], "--budget must be > 0"),
        (["view", str(graph), "--input", "1 2"], "upgrade sprig"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and message in str(result.exception), (args, result)


def test_help_has_examples():
    for cmd in (["bonsai", "--help"], ["view", "--help"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0 and "Example" in result.output


NOT_TASK = (
    "import torch\n"
    "from sprig.bonsai import StepTask\n"
    "# named like a built-in on purpose: it must not get loop's preset\n"
    "NOT = StepTask('loop', 1, 1, lambda s, x: (s, -x))\n"
)


@pytest.mark.slow  # a search and a process start: about 30 s on a busy 2-core machine
def test_bonsai_searches_a_users_task_from_the_current_folder(tmp_path):
    # the console script, run from the task's folder: sys.path starts with .venv/bin there
    (tmp_path / "mytasks.py").write_text(NOT_TASK)
    sprig = Path(sys.executable).parent / "sprig"
    args = [str(sprig), "bonsai", "mytasks:NOT", "--out", "run", "--budget", "60"]
    args += ["--validation-sequences", "500", "--check-sequences", "200"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "searching sizes from [(1, 1)] up" in done.stdout  # no preset of the built-in loop
    assert "cells 1x1 seed 0:" in done.stdout
    assert "state machine: 1 state " in done.stdout  # y = NOT x needs no memory
    for name in ("graph.json", "graph.py", "graph.html", "fsm.dot"):
        assert (tmp_path / "run" / name).is_file()
    assert not (tmp_path / "run" / "FAILED").exists()
    data = json.loads((tmp_path / "run" / "graph.json").read_text())
    assert data["meta"]["status"] == "perfect" and data["state_machine"]["num_states"] == 1
    # graph.py runs as a script and prints the output bits
    py = subprocess.run(
        [sys.executable, "graph.py", "1", "0", "0"],
        cwd=tmp_path / "run",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert py.returncode == 0, py.stderr
    assert [line.split()[3] for line in py.stdout.splitlines()] == ["0", "1", "1"]
    bad = subprocess.run(
        [sys.executable, "graph.py", "2"], cwd=tmp_path / "run", capture_output=True, text=True
    )
    assert bad.returncode == 1 and "give 1 character(s) of 0/1" in bad.stderr


def test_a_budget_too_small_for_one_size(tmp_path, monkeypatch):
    (tmp_path / "mytasks.py").write_text(NOT_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["bonsai", "mytasks:NOT", "--out", str(tmp_path / "run"), "--budget", "0.001"]
    args += ["--validation-sequences", "50", "--check-sequences", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "budget_s=0.001 s is too small to try one size" in str(result.exception)
    bad = CliRunner().invoke(app, ["bonsai", "mytasks:MISSING"])
    assert "cannot load task" in str(bad.exception)


def test_bonsai_seeds_keeps_the_best_run(tmp_path):
    out = tmp_path / "run"
    args = ["bonsai", "delay-1", "--out", str(out), "--steps", "30", "--cells", "1x1"]
    args += ["--validation-sequences", "100", "--check-sequences", "50", "--seeds", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # 30 steps: no perfect graph
    assert "seed 0:" in result.output and "seed 1:" in result.output
    assert "keeping seed" in result.output and "for all seeds" in result.output
    bad = CliRunner().invoke(app, ["bonsai", "delay-1", "--seeds", "0"])
    assert bad.exit_code == 2 and "--seeds" in bad.output  # a usage error names the option


def test_view_several_graphs_gives_a_picker(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_graph(extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0), task="first"), a)
    save_graph(extract_graph(BonsaiRNN(1, 1, cells=[(2, 2)], seed=1), task="second"), b)
    out = tmp_path / "both.html"
    result = CliRunner().invoke(app, ["view", str(a), str(b), "--out", str(out), "--input", "1 0"])
    assert result.exit_code == 0, result.output
    data = out.read_text().split('type="application/json">')[1].split("</script>")[0]
    views = json.loads(data)["views"]
    assert [v["graph"]["meta"]["task"] for v in views] == ["first", "second"]
    assert all(v["inputs"] == [[1.0], [-1.0]] for v in views)


def test_compile_says_what_it_kept(tmp_path, monkeypatch):
    import sprig.bonsai._pipeline as pipeline

    from ..bonsai.test_compile import chain_delay1

    monkeypatch.setattr(pipeline, "grow", lambda *a, **k: (chain_delay1(), [0.0]))
    args = ["bonsai", "delay-1", "--steps", "1", "--compile", "--out", str(tmp_path / "run")]
    args += ["--validation-sequences", "300", "--check-sequences", "200"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "compiled from the grown graph's 2-state machine (grown graph 4/1/4" in result.output
    assert "on every input sequence (exact check)" in result.output
    meta = json.loads((tmp_path / "run" / "graph.json").read_text())["meta"]
    assert meta["grown"]["edges"] == 4 and meta["exact_check"] == "passed"
    plain = CliRunner().invoke(app, [*args[:4], "--no-compile", "--out", str(tmp_path / "b")])
    assert plain.exit_code == 0 and "compiled from" not in plain.output
