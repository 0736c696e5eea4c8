import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import sprig
from sprig.data import course_task
from sprig.dst import METHODS, SET, SNFS, DeepR, RigL, make_updater, reset_optimizer_state
from sprig.training import TrainConfig, train_classifier

OPTIMIZERS = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}


def _net(n_in: int, hidden: int, density: float, seed: int) -> nn.Module:
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    return sprig.sparsify(net, density=density, distribution="uniform", seed=seed)


def _masks(model: nn.Module) -> dict[str, torch.Tensor]:
    return {mp.qualname: mp.mask.clone() for mp in sprig.masked_parameters(model)}


def _train_steps(model, opt, updater, steps, seed=0, n_in=None):
    gen = torch.Generator().manual_seed(seed)
    n_in = n_in or next(model.parameters()).shape[1]
    for step in range(steps):
        x = torch.randn(16, n_in, generator=gen)
        opt.zero_grad()
        with updater.backward_context(step):
            model(x).square().mean().backward()
        updater.after_backward(step, model, opt)
        opt.step()
        yield step
        updater.after_step(step, model, opt)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("method", ["rigl", "set", "snfs", "deepr"])
@settings(max_examples=3, deadline=None)
@given(
    n_in=st.integers(3, 11),
    hidden=st.integers(2, 9),
    density=st.floats(0.1, 0.9),
    seed=st.integers(0, 50),
)
def test_every_update_is_exact(method, opt_name, n_in, hidden, density, seed):
    """nnz per layer unchanged (total for SNFS), no overlap, state zero at regrown entries."""
    net = _net(n_in, hidden, density, seed)
    opt = OPTIMIZERS[opt_name](net.parameters())
    kwargs = {"temperature": 1e-2} if method == "deepr" else {"every": 2}
    upd = make_updater(method, net, t_end=12, seed=seed, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    updates = 0
    for step in range(12):
        opt.zero_grad()
        with upd.backward_context(step):
            net(torch.randn(16, n_in, generator=gen)).square().mean().backward()
        upd.after_backward(step, net, opt)
        opt.step()
        before = _masks(net)
        upd.after_step(step, net, opt)
        if not upd.is_update_step(step):
            assert all(torch.equal(before[q], m) for q, m in _masks(net).items())
            continue
        after = _masks(net)
        stats = upd.last_stats
        assert stats is not None and stats.step == step
        updates += 1
        total_before = sum(int(m.sum()) for m in before.values())
        assert sum(int(m.sum()) for m in after.values()) == total_before
        for mp in sprig.masked_parameters(net):
            old, new = before[mp.qualname], after[mp.qualname]
            dropped, grown = old & ~new, new & ~old
            assert int(dropped.sum()) == stats.dropped[mp.qualname]
            assert int(grown.sum()) == stats.grown[mp.qualname]
            if method != "snfs":  # SNFS moves counts between layers, the total stays
                assert int(new.sum()) == int(old.sum())
            assert not bool((dropped & grown).any())
            assert bool((mp.param[~new] == 0).all())
            assert bool((mp.param[grown] == 0).all())  # zero init
            for v in opt.state[mp.param].values():
                if isinstance(v, torch.Tensor) and v.shape == mp.param.shape:
                    assert bool((v[grown | dropped] == 0).all())
    assert updates >= 1


def test_counts_follow_fraction_and_cosine_decay():
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 3))
    sprig.sparsify(net, density=0.3, distribution="erk", seed=0)  # ERK layout: unequal layers
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    upd = SET(net, t_end=100, every=10, fraction=0.3)
    assert upd.fraction_at(0) == pytest.approx(0.3)
    assert upd.fraction_at(50) == pytest.approx(0.15)
    assert [s for s in range(120) if upd.is_update_step(s)] == list(range(10, 100, 10))
    nnz = {mp.qualname: int(mp.mask.sum()) for mp in sprig.masked_parameters(net)}
    free = {
        mp.qualname: mp.mask.numel() - int(mp.mask.sum()) for mp in sprig.masked_parameters(net)
    }
    stats = upd.update(opt, step=50)
    # floor(fraction * nnz), capped by the free slots (only those can grow: no overlap)
    assert stats.dropped == {q: min(math.floor(0.15 * n), free[q]) for q, n in nnz.items()}
    assert stats.dropped["2.weight"] == free["2.weight"] < math.floor(0.15 * nnz["2.weight"])
    assert {mp.qualname: int(mp.mask.sum()) for mp in sprig.masked_parameters(net)} == nnz


def test_rigl_grows_largest_dense_gradient_and_drops_smallest_weight():
    lin = nn.Linear(4, 1, bias=False)
    sprig.apply_mask(lin, "weight", torch.tensor([[1, 1, 0, 0]]))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -0.01, 0.0, 0.0]]))
    opt = torch.optim.SGD(lin.parameters(), lr=0.0)
    rigl = RigL(lin, t_end=10, every=1, fraction=0.5, decay="constant")
    with rigl.backward_context(1):
        lin(torch.tensor([[1.0, 1.0, 0.1, 3.0]])).sum().backward()
    opt.step()
    rigl.after_step(1, lin, opt)
    assert lin.weight_mask.tolist() == [[True, False, False, True]]
    assert lin.weight.tolist() == [[0.5, 0.0, 0.0, 0.0]]


def test_rigl_without_dense_gradients_fails_cleanly():
    net = _net(5, 6, 0.4, 0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    rigl = RigL(net, t_end=10, every=1)
    before = _masks(net)
    with pytest.raises(RuntimeError, match="dense gradient"):
        rigl.update(opt, step=1)
    assert all(torch.equal(before[q], m) for q, m in _masks(net).items())


def test_snfs_redistributes_but_keeps_total():
    net = _net(12, 40, 0.2, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    upd = SNFS(net, t_end=30, every=5)
    total = sum(int(m.sum()) for m in _masks(net).values())
    per_layer = []
    for step in _train_steps(net, opt, upd, 30, 0, 12):
        del step
        per_layer.append({q: int(m.sum()) for q, m in _masks(net).items()})
        assert sum(per_layer[-1].values()) == total
    assert len({tuple(p.values()) for p in per_layer}) > 1  # counts did move between layers


def test_deepr_keeps_signs_and_count():
    net = _net(10, 20, 0.3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    upd = DeepR(net, t_end=40, temperature=1e-3, l1=1e-3, seed=0)
    nnz = {q: int(m.sum()) for q, m in _masks(net).items()}
    swapped = 0
    for _ in _train_steps(net, opt, upd, 40, 0, 10):
        pass
    for mp in sprig.masked_parameters(net):
        assert int(mp.mask.sum()) == nnz[mp.qualname]
        theta = mp.param.detach() * upd.signs[mp.qualname]
        assert bool((theta[mp.mask] >= 0).all())
    swapped = upd.updates
    assert swapped > 0


def test_dense_layer_is_a_no_op_and_train_classifier_drives_it():
    mlp = sprig.SparseMLP([20, 32, 2], densities=[1.0, 0.3], seed=0)
    first = mlp.layers[0].weight_mask.clone()
    rigl = RigL(mlp, t_end=80, every=20)
    hist = train_classifier(
        mlp,
        course_task(n_train=500, n_test=200),
        TrainConfig(steps=100, lr=1e-2),
        callbacks=[rigl],
    )
    assert rigl.updates == 3 and rigl.last_stats is not None
    assert rigl.last_stats.dropped["layers.0.weight"] == 0
    assert torch.equal(mlp.layers[0].weight_mask, first)
    assert int(mlp.layers[1].weight_mask.sum()) == round(0.3 * 64)
    assert hist.final_accuracy > 0.8


def test_reset_optimizer_state_zeroes_only_where_asked():
    p = nn.Parameter(torch.ones(2, 3))
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(2, 3)
    opt.step()
    where = torch.zeros(2, 3, dtype=torch.bool)
    where[0, 1] = True
    reset_optimizer_state(opt, p, where)
    for key in ("exp_avg", "exp_avg_sq"):
        assert opt.state[p][key][0, 1] == 0 and bool((opt.state[p][key][~where] != 0).all())


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        RigL(_net(4, 4, 0.5, 0), t_end=100, fraction=fraction)


def test_bad_schedule_optimizer_and_model():
    net = _net(4, 4, 0.5, 0)
    with pytest.raises(ValueError, match="t_end=50 is not after the first update at step 100"):
        RigL(net, t_end=50, every=100)
    with pytest.raises(ValueError, match="valid names are"):
        SET(net, t_end=50, every=10, decay="exp")
    with pytest.raises(ValueError, match="no sprig masks"):
        SET(nn.Linear(3, 3), t_end=50, every=10)
    with pytest.raises(ValueError, match="valid names are: deepr, rigl, set, snfs"):
        make_updater("dsr", net, t_end=50)
    assert METHODS.names() == ["deepr", "rigl", "set", "snfs"]
    upd = SET(net, t_end=50, every=10)
    other = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    before = _masks(net)
    with pytest.raises(ValueError, match=r"does not hold the masked parameters \['0.weight'"):
        upd.after_step(10, net, other)
    assert all(torch.equal(before[q], m) for q, m in _masks(net).items())
    with pytest.raises(ValueError, match="another model"):
        upd.after_step(10, _net(4, 4, 0.5, 0), other)
    structured = sprig.sparsify(nn.Linear(8, 8), density=0.5, pattern="row")
    with pytest.raises(ValueError, match="structured"):
        SET(structured, t_end=50, every=10)


@settings(max_examples=30, deadline=None)
@given(
    scores=st.lists(st.integers(0, 3), min_size=1, max_size=30),
    eligible_bits=st.integers(0, 2**30),
    data=st.data(),
)
def test_fast_top_k_matches_stable_sort(scores, eligible_bits, data):
    """The O(n) selection equals the obviously-correct stable sort, ties included."""
    from sprig.dst._base import _bottom_k, _top_k

    s = torch.tensor(scores, dtype=torch.float32)
    eligible = torch.tensor([bool(eligible_bits >> i & 1) for i in range(len(scores))])
    k = data.draw(st.integers(0, int(eligible.sum())))
    for fast, sign in ((_top_k, 1.0), (_bottom_k, -1.0)):
        key = torch.where(eligible, sign * s.double(), torch.tensor(-math.inf).double())
        ref = torch.zeros(len(scores), dtype=torch.bool)
        ref[torch.sort(key, descending=True, stable=True).indices[:k]] = True
        assert torch.equal(fast(s, eligible, k), ref)


def test_normal_init_gives_regrown_weights_the_layers_spread():
    net = _net(16, 32, 0.3, 0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    upd = SET(net, t_end=50, every=10, init="normal", seed=3)
    old = _masks(net)
    upd.update(opt, step=10)
    w = net[0].weight.detach()
    grown = net[0].weight_mask & ~old["0.weight"]
    assert int(grown.sum()) > 0 and bool((w[grown] != 0).all())
    assert float(w[grown].std()) < 3 * float(w[net[0].weight_mask].std())


def test_an_update_after_a_backward_outside_the_context_raises():
    # RigL silently reused the dense gradient of its previous update step
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    sprig.sparsify(net, density=0.2)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    r = RigL(net, t_end=100, every=10)
    x = torch.randn(16, 20)
    with r.backward_context(10):
        net(x).square().sum().backward()
    opt.step()
    r.after_step(10, net, opt)
    opt.zero_grad()
    net(x).square().sum().backward()  # step 20, outside backward_context
    opt.step()
    with pytest.raises(RuntimeError, match="needs the dense gradient"):
        r.after_step(20, net, opt)


def test_arguments_in_the_wrong_order_name_the_signature():
    net = _net(6, 8, 0.5, 0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    rigl = RigL(net, t_end=100, every=10)
    with pytest.raises(TypeError, match=r"after_step\(step, model, optimizer\).*step must be"):
        rigl.after_step(net, opt, 10)
    with pytest.raises(TypeError, match=r"update\(optimizer, step\).*step must be an int"):
        rigl.update(10, opt)
    snfs = SNFS(net, t_end=100, every=10)
    with pytest.raises(TypeError, match=r"after_backward\(step, model, optimizer\)"):
        snfs.after_backward(0, opt, net)


def test_layer_too_small_to_swap_warns_once():
    # the article's 3-connection output layer: floor(0.3 * 3) = 0
    net = sprig.sparsify(
        nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1)),
        density=0.2,
        distribution="uniform",
        seed=0,
    )
    with pytest.warns(UserWarning, match=r"2\.weight \(3 kept\).*never rewired") as got:
        RigL(net, t_end=100, every=10, fraction=0.3)
    assert len([w for w in got if "never rewired" in str(w.message)]) == 1


def test_t_end_beyond_the_run_warns():
    net = _net(20, 8, 0.5, 0)
    rigl = RigL(net, t_end=500, every=10)
    with pytest.warns(UserWarning, match=r"t_end=500 is beyond the run's 20 steps"):
        train_classifier(net, course_task(), TrainConfig(steps=20), callbacks=[rigl])


@pytest.mark.parametrize("name", ["RigL", "SET", "SNFS", "DeepR", "rigl"])
def test_make_updater_takes_the_class_spelling(name):
    updater = make_updater(name, _net(6, 8, 0.5, 0), t_end=100, every=10)
    assert type(updater).__name__.lower() == name.lower()


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_constant_fan_in_is_kept_row_by_row(method):
    net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    sprig.sparsify(net, density=0.25, distribution="uniform", pattern="fanin", seed=0)
    fans = {q: m.sum(1) for q, m in _masks(net).items()}
    assert {q: f.unique().tolist() for q, f in fans.items()} == {"0.weight": [3], "2.weight": [4]}
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    updater = make_updater(method, net, t_end=40, every=5, fraction=0.5)
    before = _masks(net)
    for step in _train_steps(net, opt, updater, 30):
        updater.after_step(step, net, opt)
    after = _masks(net)
    assert any(not torch.equal(before[q], after[q]) for q in before)  # it did rewire
    for q, m in after.items():
        torch.testing.assert_close(m.sum(1), fans[q])  # every row kept its fan-in
        assert sprig.masks.mask_pattern(*_owner(net, q)) == "fanin"


def _owner(net, qual):
    mod, _, name = qual.rpartition(".")
    return net.get_submodule(mod), name


def test_updaters_that_cannot_keep_fan_in_refuse_it():
    net = sprig.sparsify(nn.Sequential(nn.Linear(12, 16)), density=0.25, pattern="fanin")
    with pytest.raises(ValueError, match="SNFS swaps single connections.*structured"):
        SNFS(net, t_end=100, every=10)
