import math

import pytest
import torch
from torch import nn

import sprig
from sprig.masks import get_mask, sparsify
from sprig.prune import (
    PRUNERS,
    BlockPruner,
    MagnitudePruner,
    NMPruner,
    RandomPruner,
    StructuredPruner,
    make_pruner,
    prune,
)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 30), nn.ReLU(), nn.Linear(30, 7), nn.ReLU(), nn.Linear(7, 3))


def weights(model):
    return {q: m._parameters[n] for q, m, n in sprig.masks.sparsifiable_parameters(model)}


def test_registry_names_and_unknowns():
    assert PRUNERS.names() == [
        "block", "magnitude", "nm", "random", "sparsegpt", "structured", "wanda",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown pruner 'taylor'.*magnitude"):
        make_pruner("taylor")
    with pytest.raises(ValueError, match="unknown scope 'net'.*layer, global"):
        MagnitudePruner(scope="net")
    with pytest.raises(ValueError, match="scope 'global' needs an unstructured"):
        StructuredPruner(scope="global")
    with pytest.raises(ValueError, match="bad options"):
        make_pruner("magnitude", norm=2)


@pytest.mark.parametrize("density", [0.9, 0.5, 0.13, 0.01])
def test_magnitude_layer_exact_and_keeps_largest(density):
    net = mlp()
    before = {q: w.detach().clone() for q, w in weights(net).items()}
    MagnitudePruner().prune(net, density)
    for q, w in weights(net).items():
        mask = get_mask(*_owner(net, q))
        assert int(mask.sum()) == max(1, round(density * w.numel()))
        kept, gone = before[q].abs()[mask], before[q].abs()[~mask]
        if gone.numel():
            assert kept.min() >= gone.max()


def _owner(net, qual):
    mod, _, name = qual.rpartition(".")
    return net.get_submodule(mod), name


def test_global_vs_layer_scope():
    net = mlp()
    with torch.no_grad():
        w = net[2].weight
        w.copy_(w.sign() * (1.0 + w.abs()))  # the middle layer's weights beat all others
    g, layer = mlp(), mlp()
    g.load_state_dict(net.state_dict())
    layer.load_state_dict(net.state_dict())
    MagnitudePruner(scope="global").prune(g, 0.5)
    MagnitudePruner(scope="layer").prune(layer, 0.5)
    total = sum(w.numel() for w in weights(net).values())
    assert sprig.summary(g).nnz == round(0.5 * total)  # exact over all layers
    # global: one threshold; the large layer is kept whole, the others pay for it
    assert bool(g[2].weight_mask.all())
    all_w = torch.cat([w.detach().abs().flatten() for w in weights(net).values()])
    thresh = torch.sort(all_w, descending=True).values[round(0.5 * total) - 1]
    for q, w in weights(g).items():
        mask = get_mask(*_owner(g, q))
        assert bool((w.detach().abs()[mask] >= thresh).all())
    # layer: every layer at the same density
    for s in sprig.summary(layer).rows:
        assert s.nnz == round(0.5 * s.numel)


def test_random_exact_seeded_and_not_magnitude():
    a, b = mlp(), mlp()
    b.load_state_dict(a.state_dict())
    RandomPruner().prune(a, 0.4, seed=3)
    RandomPruner().prune(b, 0.4, seed=3)
    assert torch.equal(a[0].weight_mask, b[0].weight_mask)
    assert int(a[0].weight_mask.sum()) == round(0.4 * 360)
    c = mlp()
    RandomPruner(scope="global").prune(c, 0.2, seed=1)
    assert sprig.summary(c).nnz == round(0.2 * sprig.summary(c).numel)


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("axis", ["row", "column"])
def test_structured_keeps_highest_norm(norm, axis):
    lin = nn.Linear(10, 8)
    w = lin.weight.detach().clone()
    StructuredPruner(norm=norm, axis=axis).prune(lin, 0.5)
    dim = 1 if axis == "row" else 0
    norms = w.norm(p=norm, dim=dim)
    kept = lin.weight_mask.all(dim=dim)
    assert int(kept.sum()) == norms.numel() // 2
    assert bool((lin.weight_mask.any(dim=dim) == kept).all())  # whole rows/columns
    assert norms[kept].min() >= norms[~kept].max()


def test_structured_conv_channels():
    conv = nn.Conv2d(4, 6, 3)
    w = conv.weight.detach().clone()
    StructuredPruner(norm=2, axis="row").prune(conv, 1 / 3)
    kept = conv.weight_mask.flatten(1).all(1)
    assert int(kept.sum()) == 2
    norms = w.flatten(1).norm(dim=1)
    assert set(torch.topk(norms, 2).indices.tolist()) == set(kept.nonzero().flatten().tolist())


def test_block_and_nm():
    lin = nn.Linear(8, 8)
    w = lin.weight.detach().abs().clone()
    BlockPruner(block=(4, 4)).prune(lin, 0.25)
    assert int(lin.weight_mask.sum()) == 16
    means = w.reshape(2, 4, 2, 4).mean(dim=(1, 3)).flatten()
    kept = lin.weight_mask.reshape(2, 4, 2, 4).all(3).all(1).flatten()
    assert means[kept].min() >= means[~kept].max()
    lin2 = nn.Linear(8, 5)
    w2 = lin2.weight.detach().abs().clone()
    prune(lin2, None, "nm", n=1, m=4)
    groups, mask = w2.reshape(5, 2, 4), lin2.weight_mask.reshape(5, 2, 4)
    assert bool((mask.sum(-1) == 1).all())
    assert torch.equal(groups.argmax(-1), mask.int().argmax(-1))
    with pytest.raises(ValueError, match="fixes density at 0.5"):
        NMPruner(2, 4).prune(nn.Linear(8, 2), 0.3)
    with pytest.raises(ValueError, match="multiple of 4"):
        NMPruner(2, 4).prune(nn.Linear(6, 2), None)


@pytest.mark.parametrize(
    "method,opts",
    [("magnitude", {}), ("random", {}), ("structured", {"norm": 2}), ("block", {"block": (2, 2)})],
)
def test_already_sparse_never_revives(method, opts):
    net = mlp()
    sparsify(net, 0.5, distribution="uniform", seed=2)  # random masks, unaligned
    old = {q: get_mask(*_owner(net, q)).clone() for q in weights(net)}
    prune(net, 0.2, method, seed=5, **opts)
    for q in weights(net):
        new = get_mask(*_owner(net, q))
        assert not bool((new & ~old[q]).any()), f"{method} revived weights of {q}"
    if method in ("magnitude", "random"):
        for s in sprig.summary(net).rows:
            assert s.nnz == round(0.2 * s.numel)


def test_magnitude_within_mask_keeps_largest_survivors():
    net = mlp()
    sparsify(net, 0.5, distribution="uniform", seed=2)
    w = net[0].weight.detach().clone()
    old = net[0].weight_mask.clone()
    MagnitudePruner().prune(net, 0.25)
    new = net[0].weight_mask
    assert int(new.sum()) == round(0.25 * 360)
    assert w.abs()[new].min() >= w.abs()[old & ~new].max()


def test_rnns_and_optimizer_identity():
    lstm = nn.LSTM(6, 8, num_layers=2)
    gru = nn.GRU(5, 4)
    opt = torch.optim.Adam(lstm.parameters())
    ids = [id(p) for p in lstm.parameters()]
    MagnitudePruner(scope="global").prune(lstm, 0.3)
    MagnitudePruner().prune(gru, 0.5)
    assert [id(p) for p in lstm.parameters()] == ids
    total = sum(p.numel() for n, p in lstm.named_parameters() if n.startswith("weight"))
    assert sprig.summary(lstm).nnz == round(0.3 * total)
    out, _ = lstm(torch.randn(3, 2, 6))
    out.sum().backward()
    opt.step()
    for row in sprig.masks.masked_parameters(lstm):
        assert bool((row.param[~row.mask] == 0).all())
    assert len(list(sprig.masks.masked_parameters(gru))) == 2


def test_bad_input_leaves_model_unchanged():
    net = mlp()
    MagnitudePruner().prune(net, 0.3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"target density 0.5 is above the current density 0.3"):
        MagnitudePruner().prune(net, 0.5)
    with pytest.raises(ValueError, match="above the current density"):
        MagnitudePruner(scope="global").prune(net, 0.5)
    # a failure in the last layer: the first layers must not have been pruned either
    mixed = nn.Sequential(nn.Linear(8, 8), nn.Linear(6, 2))
    before = mixed[0].weight.detach().clone()
    with pytest.raises(ValueError, match="multiple of 4"):
        NMPruner(2, 4).prune(mixed, None)
    assert get_mask(mixed[0], "weight") is None and torch.equal(mixed[0].weight, before)
    with pytest.raises(ValueError, match="must be in \\(0, 1\\]"):
        prune(net, 1.5)
    with pytest.raises(ValueError, match="found nothing to prune"):
        prune(nn.ReLU(), 0.5)
    with pytest.raises(ValueError, match="no prunable weights named"):
        prune(net, {"nope.weight": 0.1})
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])
    # strict=False leaves layers already below the target alone
    prune(net, 0.5, strict=False)
    assert math.isclose(sprig.density(net), sprig.summary(net).nnz / sprig.summary(net).numel)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])


def test_per_layer_densities():
    net = mlp()
    prune(net, {"0.weight": 0.5, "4.weight": 0.1})
    assert int(net[0].weight_mask.sum()) == 180
    assert get_mask(net[2], "weight") is None
    assert int(net[4].weight_mask.sum()) == 2


def test_conv_and_linear_global():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    before = {q: w.detach().abs().clone() for q, w in weights(net).items()}
    MagnitudePruner(scope="global").prune(net, 0.1)
    total = sum(w.numel() for w in before.values())
    assert sprig.summary(net).nnz == round(0.1 * total)
    kept = torch.cat([before[q][get_mask(*_owner(net, q))] for q in before])
    gone = torch.cat([before[q][~get_mask(*_owner(net, q))] for q in before])
    assert kept.min() >= gone.max()
    assert net(torch.randn(2, 3, 6, 6)).shape == (2, 5)
