"""Compressed convolutions rewire: RigL, SET, DeepR and pruning change them in place, with the
same masks, values and optimizer state as on the masked-dense twin."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import sprig
from sprig.compress import CompressedConv, CompressedConv1x1
from sprig.dst import SET, SNFS, DeepR, RigL
from sprig.masks import LeftAloneWarning, dense_gradients, get_dense_grad
from sprig.prune import GradualPruning, Polynomial

# (convolution, input shape without the batch): odd channels, stride, padding, dilation, 1-D
CONVS = [
    (lambda: nn.Conv2d(5, 7, 3, stride=2, padding=1), (5, 9, 8)),
    (lambda: nn.Conv2d(3, 6, (3, 2), dilation=2, padding=(2, 1), bias=False), (3, 7, 9)),
    (lambda: nn.Conv2d(5, 3, 5, stride=(2, 3), padding="valid"), (5, 11, 13)),
    (lambda: nn.Conv1d(5, 7, 3, stride=2, padding=1), (5, 13)),
    (lambda: nn.Conv1d(3, 5, 3, padding="same", dilation=2), (3, 10)),
    (lambda: nn.Conv2d(4, 6, 1, stride=2), (4, 7, 7)),  # 1x1 convolutions compress to it too
]


def _net(make_conv, in_shape):
    torch.manual_seed(0)
    conv = make_conv()
    with torch.no_grad():
        n_out = conv(torch.zeros(1, *in_shape)).numel()
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(n_out, 3))


def _pair(make_conv, in_shape, density=0.3):
    """A compressed network and its masked-dense twin (same weights and masks)."""
    net = sprig.sparsify(_net(make_conv, in_shape), density=density, distribution="uniform")
    comp = sprig.compress(net)
    assert isinstance(comp[0], CompressedConv)
    return comp, sprig.decompress(comp)


def _batches(steps, in_shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randn(4, *in_shape, generator=g), torch.randn(4, 3, generator=g)


def _train(model, in_shape, make_updater=None, callback=None, steps=40):
    """Adam steps; returns (optimizer, updater, the conv's active flat positions at the start
    and after each update)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    up = make_updater(model) if make_updater else None
    cb = callback() if callback else None
    seen = [_flat(model[0]).clone()]
    for step, (x, y) in enumerate(_batches(steps, in_shape)):
        ctx = up.backward_context(step) if up else torch.enable_grad()
        with ctx:
            opt.zero_grad()
            (model(x) - y).square().mean().backward()
        opt.step()
        if up:
            up.after_step(step, model, opt)
            if up.is_update_step(step):
                seen.append(_flat(model[0]).clone())
        if cb:
            cb.after_step(step, model, opt)
    return opt, up, seen


def _flat(conv):
    if isinstance(conv, CompressedConv):
        return conv.active_flat()
    return conv.weight_mask.flatten().nonzero().squeeze(1)


def _assert_same(comp, twin, opt_c=None, opt_t=None):
    back = sprig.decompress(comp)
    for a, b in ((back[0], twin[0]), (back[3], twin[3])):
        assert torch.equal(a.weight_mask, b.weight_mask)
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-5)
    if opt_c is not None:
        # per-entry optimizer state: the compressed one is the masked one at the nonzeros
        flat = comp[0].active_flat()
        for name in ("exp_avg", "exp_avg_sq"):
            dense = opt_t.state[twin[0].weight][name].flatten()[flat]
            torch.testing.assert_close(opt_c.state[comp[0].values][name], dense)


@pytest.mark.parametrize(("make_conv", "in_shape"), CONVS)
def test_rigl_on_a_compressed_conv_matches_the_masked_twin(make_conv, in_shape):
    comp, twin = _pair(make_conv, in_shape)

    def rigl(m):
        return RigL(m, t_end=35, every=10, fraction=0.3, seed=0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", LeftAloneWarning)  # nothing is left alone now
        opt_c, up_c, seen_c = _train(comp, in_shape, rigl)
    opt_t, up_t, seen_t = _train(twin, in_shape, rigl)
    assert up_c.updates == up_t.updates == 3 and len(seen_c) == 4
    assert up_c.last_stats == up_t.last_stats
    for a, b in zip(seen_c, seen_t):  # the same new mask at every update
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(seen_c, seen_c[1:]))  # it did rewire
    assert comp[0].nnz == int(twin[0].weight_mask.sum())  # counts exact
    _assert_same(comp, twin, opt_c, opt_t)


def test_dense_gradient_is_the_masked_twins_summed_over_passes():
    comp, twin = _pair(*CONVS[0])
    xs = [torch.randn(2, 5, 9, 8) for _ in range(2)]
    for model in (comp, twin):
        with dense_gradients(model):
            for x in xs:  # gradient accumulation: two backward passes
                model(x).square().sum().backward()
    rows = comp[0].dense_grad_rows(2, 5)
    want = get_dense_grad(twin[0], "weight").reshape(7, -1)[2:5]
    assert rows.shape == (3, 5 * 9)
    torch.testing.assert_close(rows, want, rtol=1e-5, atol=1e-6)
    comp(xs[0]).sum().backward()  # a backward outside the block: the record is stale
    assert comp[0].dense_grad_rows(0, 7) is None


def test_rigl_without_a_recorded_gradient_raises_and_changes_nothing():
    comp, _ = _pair(*CONVS[0])
    opt = torch.optim.Adam(comp.parameters())
    rigl = RigL(comp, t_end=10, every=2)
    comp(torch.randn(2, 5, 9, 8)).sum().backward()  # outside backward_context
    before = comp[0].active_flat().clone()
    with pytest.raises(RuntimeError, match="backward_context"):
        rigl.update(opt, 2)
    assert torch.equal(before, comp[0].active_flat())


@pytest.mark.parametrize("backend", ["csr", "dense"])
def test_forward_after_a_rewire_equals_masked_dense(backend):
    comp, _ = _pair(*CONVS[0])
    comp[0].backend = backend
    x = torch.randn(3, 5, 9, 8)
    with torch.no_grad():
        comp(x)  # the kernel and dense copy are cached now
    opt = torch.optim.SGD(comp.parameters(), lr=0.1, momentum=0.9)
    comp(x).square().sum().backward()
    opt.step()
    stats = SET(comp, t_end=10, every=2, fraction=0.4, seed=0).update(opt, 2)
    assert stats.grown["0.weight"] > 0
    with torch.no_grad():
        comp[0].values.add_(0.5)  # grown weights are zero: make them count
        torch.testing.assert_close(comp(x), sprig.decompress(comp)(x), rtol=1e-5, atol=1e-5)


def test_set_moves_values_and_optimizer_state_with_their_positions():
    comp, _ = _pair(*CONVS[3])
    conv = comp[0]
    opt = torch.optim.SGD(comp.parameters(), lr=0.1, momentum=0.9)
    comp(torch.randn(2, 5, 13)).square().sum().backward()
    opt.step()
    flat, values = conv.active_flat().clone(), conv.values.detach().clone()
    momentum = opt.state[conv.values]["momentum_buffer"].clone()
    param = conv.values
    SET(comp, t_end=10, every=2, seed=0).update(opt, 2)
    after = conv.active_flat()
    assert conv.values is param and after.numel() == flat.numel()  # same count, same parameter
    kept = torch.isin(after, flat)
    assert 0 < int((~kept).sum()) < after.numel()
    old = torch.searchsorted(flat, after[kept])
    assert torch.equal(conv.values.detach()[kept], values[old])
    new_momentum = opt.state[conv.values]["momentum_buffer"]
    assert torch.equal(new_momentum[kept], momentum[old])
    assert bool((new_momentum[~kept] == 0).all()) and bool((conv.values[~kept] == 0).all())


def test_deepr_keeps_counts_and_signs_and_snfs_refuses():
    comp, _ = _pair(*CONVS[0])
    nnz = comp[0].nnz
    opt = torch.optim.SGD(comp.parameters(), lr=0.1)
    deepr = DeepR(comp, t_end=100, temperature=1e-3, seed=0)
    changed = 0
    for step, (x, y) in enumerate(_batches(20, (5, 9, 8))):
        opt.zero_grad()
        (comp(x) - y).square().mean().backward()
        opt.step()
        deepr.after_step(step, comp, opt)
        changed += deepr.last_stats.changed if deepr.last_stats else 0
    assert changed > 0 and comp[0].nnz == nnz
    assert all(bool((deepr._theta_compressed(c) >= 0).all()) for c in deepr.compressed)
    with pytest.raises(ValueError, match="SNFS keeps a momentum"):
        SNFS(comp, t_end=10, every=2)


def test_gradual_pruning_of_a_compressed_conv_matches_the_masked_twin():
    comp, twin = _pair(*CONVS[1], density=0.5)

    def gradual():
        return GradualPruning(Polynomial(final_density=0.2, start=5, end=25, every=5))

    with warnings.catch_warnings():
        warnings.simplefilter("error", LeftAloneWarning)
        opt, _, _ = _train(comp, (3, 7, 9), callback=gradual, steps=30)
    _train(twin, (3, 7, 9), callback=gradual, steps=30)
    assert comp[0].nnz == round(0.2 * comp[0].values.new_empty(6, 3, 3, 2).numel())
    state = opt.state[comp[0].values]
    assert state["exp_avg"].shape == comp[0].values.shape  # the optimizer followed the shrink
    _assert_same(comp, twin)


def test_save_and_load_after_rewiring_and_pruning(tmp_path):
    comp, _ = _pair(*CONVS[0])
    fresh = sprig.compress(sprig.sparsify(_net(*CONVS[0]), density=0.3, distribution="uniform"))
    opt = torch.optim.Adam(comp.parameters())
    _train(comp, (5, 9, 8), lambda m: RigL(m, t_end=25, every=10, seed=0), steps=25)
    sprig.prune.prune(comp, 0.2, optimizer=opt)
    assert comp[0].nnz != fresh[0].nnz
    sprig.save(comp, tmp_path / "cnn.safetensors")
    sprig.save(comp[0], tmp_path / "conv.safetensors")
    back = sprig.load_state(fresh, tmp_path / "cnn.safetensors")  # another count: resized
    conv = sprig.load(tmp_path / "conv.safetensors")  # rebuilt from the config it saved
    for layer in (back[0], conv):
        assert torch.equal(layer.active_flat(), comp[0].active_flat())
        assert layer.config() == comp[0].config()
    x = torch.randn(2, 5, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x), comp(x))
        torch.testing.assert_close(conv(x), comp[0](x))


def test_rewire_refuses_bad_positions_and_changes_nothing():
    comp, _ = _pair(*CONVS[0])
    conv = comp[0]
    flat, values = conv.active_flat().clone(), conv.values.detach().clone()
    numel = 7 * 5 * 3 * 3
    for bad in (flat.flip(0), torch.tensor([0, numel])):
        with pytest.raises(ValueError, match=rf"sorted, unique and in \[0, {numel}\)"):
            conv.rewire(bad, torch.zeros(bad.shape), None)
    assert torch.equal(conv.active_flat(), flat) and torch.equal(conv.values.detach(), values)


def test_files_with_the_old_1x1_module_rewire_through_its_channel_map():
    lin = sprig.compress(sprig.sparsify(nn.Linear(6, 5), density=0.4, seed=0))
    old = CompressedConv1x1(2, [1, 1], [0, 0], lin.config())  # what compress made before
    old.linear.load_state_dict(lin.state_dict())
    net = nn.Sequential(old, nn.Flatten())
    opt = torch.optim.Adam(net.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeftAloneWarning)
        rigl = RigL(net, t_end=10, every=2, seed=0)
    with rigl.backward_context(2):
        net(torch.randn(2, 6, 3, 3)).square().sum().backward()
    opt.step()
    stats = rigl.update(opt, 2)
    assert stats.grown == stats.dropped == {"0.linear.weight": 3}
