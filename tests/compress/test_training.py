"""Compressed layers train: nonzero-sized parameters, rewiring, pruning, same results as masked."""

from __future__ import annotations

import math

import pytest
import torch

import sprig
from sprig.dst import SET, SNFS, DeepR, RigL
from sprig.dst._base import _top_k, top_k_blocked
from sprig.masks import sample_positions
from sprig.prune import GradualPruning, Polynomial, prune


def _batches(steps: int, n_in: int, n_out: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randn(16, n_in, generator=g), torch.randn(16, n_out, generator=g)


def _train(model, updater=None, callback=None, steps=200, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    up = updater(model) if updater is not None else None
    cb = callback() if callback is not None else None
    for step, (x, y) in enumerate(_batches(steps, 20, 5)):
        ctx = up.backward_context(step) if up is not None else torch.enable_grad()
        with ctx:
            opt.zero_grad()
            (model(x) - y).square().mean().backward()
        opt.step()
        if up is not None:
            up.after_step(step, model, opt)
        if cb is not None:
            cb.after_step(step, model, opt)
    return model, opt, up


def _assert_same(compressed, masked):
    back = sprig.decompress(compressed)
    for a, b in zip(back.layers, masked.layers):
        assert torch.equal(a.weight_mask, b.weight_mask)
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a.bias, b.bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["auto", "csr", "dense"])
def test_rigl_on_compressed_matches_masked_twin(backend):
    comp = sprig.SparseMLP([20, 64, 64, 5], [0.3, 0.1, 0.5], seed=0, storage="compressed")
    twin = sprig.decompress(comp)  # masked SparseLinear layers, same weights and masks
    for layer in twin.layers:
        layer.backend = backend

    def rigl(m):
        return RigL(m, t_end=150, every=25, fraction=0.3, seed=0)

    comp, _, up_c = _train(comp, rigl)
    twin, _, up_t = _train(twin, rigl)
    assert up_c.updates == up_t.updates == 5
    assert up_c.last_stats == up_t.last_stats and up_c.last_stats.changed > 0
    _assert_same(comp, twin)


def test_gradual_pruning_on_compressed_matches_masked_twin():
    comp = sprig.SparseMLP([20, 64, 5], [0.5, 0.5], seed=0, storage="compressed")
    twin = sprig.decompress(comp)

    def gradual():
        return GradualPruning(Polynomial(final_density=0.1, start=10, end=60, every=10))

    comp, opt, _ = _train(comp, callback=gradual, steps=100)
    twin, _, _ = _train(twin, callback=gradual, steps=100)
    assert [layer.nnz for layer in comp.layers] == [128, 32]
    assert sprig.masks.density(comp) == pytest.approx(0.1, abs=1e-3)
    # the optimizer follows the shrunk values: its state is nonzero-sized
    for layer in comp.layers:
        state = opt.state[layer.values]
        assert state["exp_avg"].shape == layer.values.shape
    _assert_same(comp, twin)


def test_set_rewires_exactly_and_moves_optimizer_state():
    layer = sprig.SparseLinear(40, 30, density=0.2, seed=0, storage="compressed")
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    layer(torch.randn(8, 40)).square().sum().backward()
    opt.step()
    before_flat = layer.active_flat().clone()
    before_v = layer.values.detach().clone()
    before_m = opt.state[layer.values]["exp_avg"].clone()
    values_param = layer.values
    stats = SET(layer, t_end=100, every=10, seed=0).update(opt, step=10)
    after = layer.active_flat()
    assert layer.values is values_param  # same count: same parameter, optimizer still holds it
    assert after.numel() == before_flat.numel() == 240
    assert bool((after[1:] > after[:-1]).all())
    kept = torch.isin(after, before_flat)
    grown = ~kept
    k = math.floor(0.3 * 0.5 * (1 + math.cos(math.pi * 10 / 100)) * 240)  # cosine decay
    assert int(grown.sum()) == stats.grown["weight"] == stats.dropped["weight"] == k
    old_pos = torch.searchsorted(before_flat, after[kept])
    assert torch.equal(layer.values.detach()[kept], before_v[old_pos])
    m = opt.state[layer.values]["exp_avg"]
    assert torch.equal(m[kept], before_m[old_pos])
    assert bool((m[grown] == 0).all()) and bool((layer.values.detach()[grown] == 0).all())
    # the dropped ones were the smallest magnitudes
    dropped = before_v[~torch.isin(before_flat, after)].abs()
    assert float(dropped.max()) <= float(before_v[old_pos].abs().min())


def test_mixed_masked_and_compressed_under_one_updater():
    net = torch.nn.Sequential(
        sprig.SparseLinear(20, 32, density=0.3, seed=0),
        torch.nn.ReLU(),
        sprig.SparseLinear(32, 5, density=0.3, seed=1, storage="compressed"),
    )
    _, _, up = _train(net, lambda m: RigL(m, t_end=80, every=20, seed=0), steps=100)
    assert set(up.last_stats.grown) == {"0.weight", "2.weight"}
    assert int(net[0].weight_mask.sum()) == round(0.3 * 640) and net[2].nnz == 48


def test_storage_compressed_has_masked_statistics_and_counts():
    comp = sprig.SparseLinear(512, 256, density=0.1, seed=0, storage="compressed")
    masked = sprig.SparseLinear(512, 256, density=0.1, seed=0)
    assert comp.nnz == int(masked.weight_mask.sum())
    bound = 1 / math.sqrt(512)
    v = comp.values.detach()
    kept = masked.weight.detach()[masked.weight_mask]
    assert float(v.abs().max()) <= bound
    assert float(v.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform's
    assert float(kept.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert float(v.mean()) == pytest.approx(0.0, abs=0.05 * bound)
    rows = torch.div(comp.active_flat(), 512, rounding_mode="floor")
    # positions spread over the rows like a uniform draw (no row empty at 51 per row)
    assert int(torch.bincount(rows, minlength=256).min()) > 20


def test_storage_compressed_never_builds_the_dense_shape():
    # 2^17 x 2^16: a dense bool mask alone would take 8.6 GB
    layer = sprig.SparseLinear(2**16, 2**17, density=1e-6, seed=0, storage="compressed")
    assert layer.nnz == round(1e-6 * 2**33) and layer.col.dtype == torch.uint16
    x = torch.zeros(2, 2**16)
    x[:, :100] = 1.0
    layer(x).sum().backward()
    assert layer.values.grad.shape == (layer.nnz,)


def test_storage_rejects_structured_patterns_and_unknown_storage():
    with pytest.raises(ValueError, match="unstructured"):
        sprig.SparseLinear(8, 8, density=0.5, pattern="row", storage="compressed")
    with pytest.raises(ValueError, match="storage"):
        sprig.SparseMLP([4, 4], 0.5, storage="sparse")


def test_top_k_blocked_equals_full_top_k_with_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (37, 23), generator=g).double()  # many ties
    active = torch.rand(37, 23, generator=g) < 0.3
    flat_active = active.flatten().nonzero().squeeze(1)
    for k in (1, 17, 200, int((~active).sum())):
        want = _top_k(scores, ~active, k).flatten().nonzero().squeeze(1)
        got = top_k_blocked(lambda a, b: scores[a:b], (37, 23), flat_active, k, block_entries=50)
        assert torch.equal(got, want)


@pytest.mark.parametrize("numel", [1000, 2**25])
def test_sample_positions_distinct_sorted_outside_exclude(numel):
    g = torch.Generator().manual_seed(0)
    exclude = torch.arange(0, numel, 7)[:300]
    got = sample_positions(numel, 500, g, exclude=exclude)
    assert got.numel() == 500 and bool((got[1:] > got[:-1]).all())
    assert not bool(torch.isin(got, exclude).any()) and int(got.max()) < numel
    with pytest.raises(ValueError, match="free"):
        sample_positions(10, 11, g)


def test_optimizer_built_before_compress_raises():
    net = sprig.SparseMLP([8, 16, 2], 0.5, seed=0)
    stale = torch.optim.Adam(net.parameters())
    comp = sprig.compress(net)
    comp(torch.randn(3, 8)).sum().backward()
    with pytest.raises(RuntimeError, match="after compress"):
        stale.step()
    # training the original while compressing copies of it stays fine
    net(torch.randn(3, 8)).sum().backward()
    stale.step()


def test_pruning_without_the_optimizer_is_caught_at_step():
    layer = sprig.SparseLinear(16, 16, density=0.5, seed=0, storage="compressed")
    opt = torch.optim.Adam(layer.parameters())
    prune(layer, 0.25)
    layer(torch.randn(2, 16)).sum().backward()
    with pytest.raises(RuntimeError, match="optimizer=opt"):
        opt.step()


def test_save_load_after_pruning_restores_the_new_count(tmp_path):
    m = sprig.SparseMLP([20, 64, 5], [0.5, 0.2], seed=0, storage="compressed")
    prune(m, 0.1)
    sprig.save(m, tmp_path / "m.safetensors")
    back = sprig.load(tmp_path / "m.safetensors")
    x = torch.randn(3, 20)
    assert [la.nnz for la in back.layers] == [128, 32]
    torch.testing.assert_close(back(x), m(x))


def test_methods_that_need_dense_tensors_refuse_compressed_layers():
    comp = sprig.SparseMLP([8, 16, 2], 0.5, seed=0, storage="compressed")
    with pytest.raises(ValueError, match="SNFS keeps a momentum"):
        SNFS(comp, t_end=10, every=2)
    with pytest.raises(ValueError, match="decompress"):
        prune(comp, None, "nm", n=2, m=4)


def test_deepr_on_compressed_keeps_signs_and_counts():
    comp = sprig.SparseMLP([20, 64, 5], [0.3, 0.5], seed=0, storage="compressed")
    counts = [la.nnz for la in comp.layers]
    opt = torch.optim.SGD(comp.parameters(), lr=0.1)
    deepr = DeepR(comp, t_end=100, temperature=1e-3, seed=0)
    seen = 0
    for step, (x, y) in enumerate(_batches(60, 20, 5)):
        opt.zero_grad()
        (comp(x) - y).square().mean().backward()
        opt.step()
        deepr.after_step(step, comp, opt)
        seen += deepr.last_stats.changed if deepr.last_stats else 0
    assert seen > 0 and [la.nnz for la in comp.layers] == counts
    for c in deepr.compressed:
        theta = deepr._theta_compressed(c)
        assert bool((theta >= 0).all())  # every active weight has its connection's sign
    again = DeepR(sprig.SparseMLP([20, 64, 5], [0.3, 0.5], storage="compressed"), t_end=100)
    again.load_state_dict(deepr.state_dict())
    assert all(torch.equal(again.sign_seeds[k], v) for k, v in deepr.sign_seeds.items())


def test_optimizer_without_the_values_is_refused():
    comp = sprig.SparseMLP([8, 16, 2], 0.5, seed=0, storage="compressed")
    opt = torch.optim.SGD([comp.layers[0].bias], lr=0.1)
    rigl = RigL(comp, t_end=10, every=2)
    with pytest.raises(ValueError, match="does not hold"):
        rigl.update(opt, 2)


def test_edited_structure_and_non_finite_values_are_clear_errors():
    layer = sprig.SparseLinear(16, 8, density=0.5, seed=0, storage="compressed")
    x = torch.randn(2, 16)
    col = layer.col.clone()
    with torch.no_grad():
        layer.col[0], layer.col[1] = layer.col[1], layer.col[0]  # unsorted row
    with pytest.raises(ValueError, match="sorted and unique"):
        layer(x).sum().backward()
    with torch.no_grad():
        layer.col.copy_(col)
        layer.col[0] = 16  # out of range
    with pytest.raises(ValueError, match="outside"):
        layer(x).sum().backward()
    with torch.no_grad():
        layer.col.copy_(col)
        layer.values[3] = float("nan")
    with pytest.raises(ValueError, match="not finite.*learning rate"):
        layer(x).sum().backward()


def test_rigl_without_recorded_gradient_raises_and_changes_nothing():
    comp = sprig.SparseMLP([8, 16, 2], 0.5, seed=0, storage="compressed")
    opt = torch.optim.Adam(comp.parameters())
    rigl = RigL(comp, t_end=10, every=2)
    comp(torch.randn(3, 8)).sum().backward()  # outside backward_context
    before = [la.active_flat().clone() for la in comp.layers]
    with pytest.raises(RuntimeError, match="backward_context"):
        rigl.update(opt, 2)
    assert all(torch.equal(b, la.active_flat()) for b, la in zip(before, comp.layers))


def test_dense_and_csr_training_paths_agree():
    layer = sprig.SparseLinear(30, 20, density=0.3, seed=0, storage="compressed")
    x = torch.randn(7, 30, requires_grad=True)
    grads = []
    for backend in ("csr", "dense"):
        layer.backend = backend
        layer.zero_grad()
        x.grad = None
        layer(x).square().sum().backward()
        grads.append((layer.values.grad.clone(), layer.bias.grad.clone(), x.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
