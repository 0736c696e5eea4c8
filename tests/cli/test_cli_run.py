"""`sprig run` and the rules every subcommand follows (help with an example, exit codes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from sprig.cli import app, main

CONFIG = """
steps = 30
eval_every = 10
checkpoint_every = 10
plots = false
[data]
name = "moons"
n_samples = 60
[model]
hidden = [8]
densities = [1.0, 0.5]
"""


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # --threads sets it for the process


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG)
    return path


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point (sprig's error handling included) in this process."""
    monkeypatch.setattr(sys, "argv", ["sprig", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def test_every_subcommand_has_help_with_an_example():
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"run", "summary", "demo"} <= set(commands)
    for name in commands:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example: sprig " + name in " ".join(result.output.split()), name


def test_root_help_documents_exit_codes():
    result = CliRunner().invoke(app, ["--help"])
    text = " ".join(result.output.split())
    assert "0 ok" in text and "1 the job failed" in text and "2 bad usage" in text


def test_run_and_quiet_run(tmp_path, config):
    result = CliRunner().invoke(
        app, ["run", str(config), "--out", str(tmp_path / "a"), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "run finished: step 30" in result.output and str(tmp_path / "a") in result.output
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 0 and result.output == f"{tmp_path / 'b'}\n"
    result = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "b")])
    assert result.exit_code == 0 and "already finished" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "x.toml", "--resume", "r", "--out", "o"],
        ["run", "x.toml", "--threads", "0"],
        ["run", "--resume", "r", "--seed", "1"],
        ["run", "x.toml", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(monkeypatch, capsys, args):
    code, out, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    if args[-1] != "--no-such-option":  # typer's own usage errors keep typer's format
        assert err.startswith("usage error: ") and err.count("\n") == 1


def test_job_errors_are_one_line_with_exit_1(monkeypatch, capsys, tmp_path, config):
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace("hidden = [8]", "hiden = [8]"))
    code, out, err = _main(monkeypatch, capsys, "run", str(bad), "--out", str(tmp_path / "r"))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "unknown key 'model.hiden'" in err and not (tmp_path / "r").exists()

    code, _, err = _main(monkeypatch, capsys, "run", "--resume", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "not a sprig run folder" in err

    code, _, err = _main(monkeypatch, capsys, "run", str(config), "--out", str(bad / "x"))
    assert code == 1 and err.count("\n") == 1 and "cannot create run folder" in err


def test_debug_shows_the_real_exception(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["sprig", "--debug", "run", "--resume", str(tmp_path)])
    from sprig.runs import RunError

    with pytest.raises(RunError, match="not a sprig run folder"):
        main()


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys, tmp_path, config):
    from sprig.runs import _experiment

    real_step = _experiment.train_step

    def interrupted(parts, step):
        if step == 15:
            raise KeyboardInterrupt
        return real_step(parts, step)

    monkeypatch.setattr(_experiment, "train_step", interrupted)
    run_dir = tmp_path / "r"
    code, _, err = _main(monkeypatch, capsys, "run", str(config), "--out", str(run_dir), "-q")
    want = (
        f"error: interrupted; continue from the last checkpoint with: sprig run --resume {run_dir}"
    )
    assert code == 1 and err == want + "\n"
    monkeypatch.setattr(_experiment, "train_step", real_step)
    code, out, _ = _main(monkeypatch, capsys, "run", "--resume", str(run_dir))
    assert code == 0 and "resumed at step 10, finished: step 30" in out


def test_seed_option_replaces_the_configs_seed(tmp_path, config):
    from sprig.runs import load_config

    for seed, name in ((None, "s0"), (3, "s3"), (3, "s3b")):
        args = ["run", str(config), "--out", str(tmp_path / name), "-q"]
        result = CliRunner().invoke(app, args + ([] if seed is None else ["--seed", str(seed)]))
        assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "s3" / "config.toml").seed == 3
    weights = {
        name: (tmp_path / name / "model.safetensors").read_bytes() for name in ("s0", "s3", "s3b")
    }
    assert weights["s3"] == weights["s3b"] != weights["s0"]
