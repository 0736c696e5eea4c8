"""Experiments with storage = "compressed": they train, checkpoint and resume exactly."""

from __future__ import annotations

import pytest
import torch

import sprig
from sprig.runs import RunFolder, _experiment, resume_run, run_experiment

CONFIG = """
steps = 60
seed = 1
batch_size = 16
eval_every = 10
checkpoint_every = 15
plots = false
[data]
name = "moons"
n_samples = 80
n_test = 40
[model]
hidden = [32, 32]
densities = [0.5, 0.2, 0.5]
storage = "compressed"
[optimizer]
name = "adam"
lr = 0.02
"""

METHODS = {
    "rigl": '[method]\nname = "rigl"\nevery = 5\n',
    "gradual": (
        '[method]\nname = "gradual"\nfinal_density = 0.1\nevery = 3\nstart = 0.1\nend = 0.75\n'
    ),
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_compressed_run_resumes_to_the_same_end(tmp_path, monkeypatch, method):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG + METHODS[method])
    reference = run_experiment(config, tmp_path / "reference")
    real_step = _experiment.train_step

    def crash_at_37(parts, step):
        if step == 37:
            raise KeyboardInterrupt
        return real_step(parts, step)

    monkeypatch.setattr(_experiment, "train_step", crash_at_37)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "crashed")
    monkeypatch.setattr(_experiment, "train_step", real_step)
    folder = RunFolder(tmp_path / "crashed")
    assert folder.checkpoint_steps()[-1] == 30
    assert resume_run(folder.path, config=config).resumed_from == 30
    assert folder.metrics.read_text() == (reference.path / "metrics.jsonl").read_text()
    got, want = sprig.load(folder.model), sprig.load(reference.path / "model.safetensors")
    assert type(got.layers[1]).__name__ == "CompressedLinear"
    for (key, a), b in zip(got.state_dict().items(), want.state_dict().values()):
        assert torch.equal(a, b), key
    start = sprig.SparseMLP([2, 32, 32, 2], [0.5, 0.2, 0.5], seed=1, storage="compressed")
    assert not torch.equal(got.layers[1].col, start.layers[1].col)  # it did rewire/prune
