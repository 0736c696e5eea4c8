"""Kill `sprig run` with SIGKILL mid-training, resume it, and get the unbroken run's result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from sprig.cli import app
from sprig.runs import RunFolder, run_experiment

from . import _methods  # noqa: F401  (registers the "swap_one" method)

ROOT = Path(__file__).parents[2]
# the subprocess registers the test method exactly as the test process does
PROGRAM = "import tests.runs._methods; from sprig.cli import main; main()"

CONFIG = """
steps = 100
seed = 3
plots = false          # pictures are tested elsewhere; this test is about exactness
batch_size = 16        # a random batch each step: the batch generator must resume exactly
eval_every = 10
checkpoint_every = 20

[data]
name = "moons"
n_samples = 100
n_test = 50

[model]
hidden = [16, 16]
densities = [1.0, 0.3, 0.5]

[method]
name = "swap_one"      # changes masks with its own generator and has state
every = 7
delay = 0.005          # 0.5 s of training: time to kill it half-way

[optimizer]
name = "sgd"
lr = 0.2
momentum = 0.9         # optimizer state that must survive

[schedule]
name = "cosine"        # scheduler state that must survive
"""


def _sprig(*args: str) -> subprocess.Popen[str]:
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.Popen(
        [sys.executable, "-c", PROGRAM, *args, "--threads", "1", "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses run: same kernels, same rounding
    yield
    torch.set_num_threads(before)


# compressed storage: the structure (index buffers), values and Adam state resume exactly
COMPRESSED = (
    CONFIG.replace(
        "densities = [1.0, 0.3, 0.5]", 'densities = [1.0, 0.3, 0.5]\nstorage = "compressed"'
    )
    .replace(
        'name = "swap_one"      # changes masks with its own generator and has state',
        'name = "slow_rigl"',
    )
    .replace(
        'name = "sgd"\nlr = 0.2\nmomentum = 0.9         # optimizer state that must survive',
        'name = "adam"\nlr = 0.02',
    )
)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["masked", "compressed"])
def test_sigkill_then_resume_matches_unbroken_run(tmp_path, one_thread, storage):
    config = tmp_path / "experiment.toml"
    config.write_text(CONFIG if storage == "masked" else COMPRESSED)
    reference = run_experiment(config, tmp_path / "reference")

    killed = RunFolder(tmp_path / "killed")
    proc = _sprig("run", str(config), "--out", str(killed.path))
    deadline = time.monotonic() + 60
    while not [s for s in killed.checkpoint_steps() if s >= 40]:
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint after 60 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = killed.checkpoint_steps()[-1]
    assert 40 <= stopped_at < 100, stopped_at
    assert not killed.model.exists()  # it really died mid-training
    assert json.loads(killed.status_file.read_text())["status"] == "running"

    # resume through the same command line, in this process (one interpreter start less)
    result = CliRunner().invoke(app, ["run", "--resume", str(killed.path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(killed.path)

    # the same metrics, record for record (losses and accuracies as exact floats)
    assert killed.metrics.read_text() == (reference.path / "metrics.jsonl").read_text()
    # the same final weights and masks, bit for bit
    got = load_file(str(killed.model))
    want = load_file(str(reference.path / "model.safetensors"))
    structure = "_mask" if storage == "masked" else ".col"
    assert got.keys() == want.keys() and any(k.endswith(structure) for k in got)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    status = json.loads(killed.status_file.read_text())
    assert status["resumed_from"] == stopped_at
    assert status["final"] == json.loads((reference.path / "run.json").read_text())["final"]
    assert not list(killed.path.rglob(".*.tmp"))
