"""A run stopped at a checkpoint and resumed gives the same masks as an uninterrupted one."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import sprig
from sprig.dst import make_updater

STEPS, STOP = 24, 11


def _setup(method: str):
    torch.manual_seed(0)  # nn.Linear draws its init from the global generator
    mlp = sprig.SparseMLP([6, 20, 12, 3], densities=[0.5, 0.2, 0.4], seed=1)
    opt = torch.optim.SGD(mlp.parameters(), lr=0.05, momentum=0.9)
    kwargs = {"temperature": 1e-3} if method == "deepr" else {"every": 3}
    upd = make_updater(method, mlp, t_end=20, seed=7, **kwargs)
    return mlp, opt, upd


def _run(mlp, opt, upd, start, stop, trace):
    for step in range(start, stop):
        gen = torch.Generator().manual_seed(1000 + step)  # the batch depends on the step only
        x = torch.randn(10, 6, generator=gen)
        opt.zero_grad()
        with upd.backward_context(step):
            mlp(x).square().mean().backward()
        upd.after_backward(step, mlp, opt)
        opt.step()
        upd.after_step(step, mlp, opt)
        trace.append([layer.weight_mask.clone() for layer in mlp.layers])


def _checkpoint(tmp_path, mlp, opt, upd):
    sprig.save(mlp, tmp_path / "model.safetensors")
    state = upd.state_dict()
    tensors = state.pop("tensors")
    (tmp_path / "updater.json").write_text(json.dumps(state))  # JSON-able: no pickle needed
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp_path / "updater.safetensors")
    torch.save(opt.state_dict(), tmp_path / "opt.pt")  # the optimizer's own format


def _restore(tmp_path, method):
    mlp, opt, upd = _setup(method)
    sprig.load_state(mlp, tmp_path / "model.safetensors")
    opt.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    state = json.loads((tmp_path / "updater.json").read_text())
    state["tensors"] = load_file(tmp_path / "updater.safetensors")
    upd.load_state_dict(state)
    return mlp, opt, upd


@pytest.mark.parametrize("method", ["rigl", "set", "snfs", "deepr"])
def test_resume_gives_the_same_masks(tmp_path, method):
    whole: list = []
    mlp, opt, upd = _setup(method)
    _run(mlp, opt, upd, 0, STEPS, whole)
    assert upd.updates > 0

    parts: list = []
    mlp, opt, upd = _setup(method)
    _run(mlp, opt, upd, 0, STOP, parts)
    _checkpoint(tmp_path, mlp, opt, upd)
    del mlp, opt, upd
    mlp, opt, upd = _restore(tmp_path, method)
    _run(mlp, opt, upd, STOP, STEPS, parts)

    for a, b in zip(whole, parts, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(whole[0], whole[-1]))  # masks did move


def test_load_state_for_another_method_fails():
    _, _, rigl = _setup("rigl")
    _, _, set_ = _setup("set")
    with pytest.raises(ValueError, match="state is for method 'rigl'"):
        set_.load_state_dict(rigl.state_dict())
