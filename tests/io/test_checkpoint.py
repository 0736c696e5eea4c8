from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import sprig
from sprig.io import SprigFileError, checkpoint_info, load_checkpoint, save_checkpoint


def _setup(seed: int = 0, optimizer: str = "adam"):
    torch.manual_seed(seed)
    model = sprig.SparseMLP([4, 16, 3], densities=[0.5, 0.3], seed=seed)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def _train(model, opt, sched, gen, steps):
    losses = []
    for _ in range(steps):
        x = torch.randn(8, 4, generator=gen)
        opt.zero_grad()
        loss = model(x).pow(2).mean() + 0.01 * torch.rand(())  # uses the global RNG too
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resumed_training_is_bit_exact(tmp_path, optimizer):
    model, opt, sched = _setup(optimizer=optimizer)
    gen = torch.Generator().manual_seed(1)
    _train(model, opt, sched, gen, 5)
    path = save_checkpoint(
        tmp_path / "c.safetensors",
        model,
        step=5,
        optimizer=opt,
        states={"sched": sched},
        generators={"batches": gen},
        extra={"run": "x"},
    )
    want = _train(model, opt, sched, gen, 5)

    model2, opt2, sched2 = _setup(seed=7, optimizer=optimizer)  # other init, other masks
    gen2 = torch.Generator()
    info = load_checkpoint(
        path, model2, optimizer=opt2, states={"sched": sched2}, generators={"batches": gen2}
    )
    assert (info.step, info.extra) == (5, {"run": "x"})
    assert _train(model2, opt2, sched2, gen2, 5) == want
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), k
    assert sched2.last_epoch == sched.last_epoch


def test_masks_are_restored_into_an_unmasked_model(tmp_path):
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=0)
    plain = nn.Sequential()
    plain.layers = nn.ModuleList([nn.Linear(4, 16), nn.Linear(16, 3)])  # same names, no masks
    load_checkpoint(path, plain)
    assert torch.equal(plain.layers[0].weight_mask, model.layers[0].weight_mask)
    assert sprig.summary(plain).rows[1].pattern == "unstructured"


def test_numpy_and_python_random_states(tmp_path):
    model, _, _ = _setup()
    rng = np.random.default_rng(3)
    np.random.seed(4)
    random.seed(5)
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=1, generators={"np": rng})
    want = (rng.random(), np.random.rand(), random.random(), torch.rand(()))
    np.random.seed(0)
    random.seed(0)
    torch.manual_seed(0)
    rng2 = np.random.default_rng(0)
    load_checkpoint(path, model, generators={"np": rng2})
    assert (rng2.random(), np.random.rand(), random.random(), torch.rand(())) == want


def test_info_reads_the_header_only(tmp_path):
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=12, extra={"k": [1, 2]})
    info = checkpoint_info(path)
    assert (info.step, info.extra) == (12, {"k": [1, 2]})


def test_states_that_are_not_data_are_refused(tmp_path):
    class Odd:
        def state_dict(self):
            return {"fn": print}

        def load_state_dict(self, state):
            pass

    model, _, _ = _setup()
    with pytest.raises(TypeError, match=r"states/odd\.fn"):
        save_checkpoint(tmp_path / "c.safetensors", model, step=0, states={"odd": Odd()})
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_tricky_state_values_round_trip(tmp_path):
    class Box:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, state):
            self.state = state

    state = {
        3: (1, 2.5, None),
        "__odd": [True, "s", {"t": torch.arange(3)}],
        "inf": float("inf"),
        "empty": torch.zeros(0, 2),
        "scalar": torch.tensor(1.5),
    }
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=0, states={"b": Box(state)})
    box = Box(None)
    load_checkpoint(path, model, states={"b": box})
    got = box.state
    assert got[3] == (1, 2.5, None) and got["inf"] == float("inf")
    assert got["__odd"][:2] == [True, "s"] and torch.equal(got["__odd"][2]["t"], torch.arange(3))
    assert got["empty"].shape == (0, 2) and float(got["scalar"]) == 1.5


def test_a_mismatched_model_is_left_unchanged(tmp_path):
    model, opt, _ = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=0, optimizer=opt)
    other = sprig.SparseMLP([4, 8, 3], densities=0.5)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(SprigFileError, match="shape"):
        load_checkpoint(path, other, global_rng=False)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    # an optimizer over other parameters is refused before the model changes
    bigger = sprig.SparseMLP([4, 16, 3], densities=[0.5, 0.3], seed=0)
    extra = torch.optim.Adam([*bigger.parameters(), nn.Parameter(torch.zeros(1))])
    before = {k: v.clone() for k, v in bigger.state_dict().items()}
    with pytest.raises(SprigFileError, match="parameter groups"):
        load_checkpoint(path, bigger, optimizer=extra)
    assert all(torch.equal(before[k], v) for k, v in bigger.state_dict().items())


def test_missing_parts_are_named(tmp_path):
    model, opt, sched = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=0, global_rng=False)
    with pytest.raises(SprigFileError, match="no optimizer state"):
        load_checkpoint(path, model, optimizer=opt, global_rng=False)
    with pytest.raises(SprigFileError, match=r"no state \['sched'\]"):
        load_checkpoint(path, model, states={"sched": sched}, global_rng=False)
    with pytest.raises(SprigFileError, match="global random state"):
        load_checkpoint(path, model)


def test_not_a_checkpoint(tmp_path):
    model, _, _ = _setup()
    sprig.save(model, tmp_path / "model.safetensors")
    with pytest.raises(SprigFileError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "model.safetensors", model)
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(SprigFileError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors", model)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.safetensors", model)
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path / "c.safetensors", model, step=-1)


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=1)
    good = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("sprig.io._checkpoint.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, step=2)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    assert checkpoint_info(path).step == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_and_optimizer_round_trip(tmp_path):
    model, opt, sched = _setup()
    model.cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(8, 4, device="cuda")).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.safetensors", model, step=1, optimizer=opt)
    model2, _, _ = _setup(seed=3)
    model2.cuda()
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.01)
    load_checkpoint(path, model2, optimizer=opt2)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert a.device == b.device and torch.equal(a, b)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(
        torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"].to(s1[k]["exp_avg"].device)) for k in s1
    )
