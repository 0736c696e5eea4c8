import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import sprig
from sprig.masks import apply_mask


def _random_masks(model: nn.Module, density: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            apply_mask(m, "weight", torch.rand(m.weight.shape, generator=gen) < density)
            if m.bias is not None:
                with torch.no_grad():
                    m.bias.normal_(generator=gen)


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    density=st.floats(0.05, 0.9),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "identity"]),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_sparse_mlp_strip_keeps_outputs(sizes, density, activation, bias, seed):
    mlp = sprig.SparseMLP(sizes, densities=1.0, activation=activation, bias=bias).double()
    _random_masks(mlp, density, seed)
    res = sprig.strip(mlp)
    x = torch.randn(7, sizes[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(res.model(x), mlp(x), rtol=1e-12, atol=1e-12)
    assert res.sizes_before == tuple(sizes)
    assert res.sizes_after[0] == sizes[0] and res.sizes_after[-1] == sizes[-1]
    assert all(a <= b for a, b in zip(res.sizes_after, res.sizes_before))
    assert isinstance(res.model, sprig.SparseMLP)
    assert res.weights_after <= res.weights_before
    # nothing dead is left: every hidden neuron has an input and an output, unless a whole
    # layer died (one silent placeholder neuron then)
    layers = list(res.model.layers)
    for cur, nxt in zip(layers, layers[1:]):
        alive = cur.weight_mask.any(1) & nxt.weight_mask.any(0)
        assert bool(alive.all()) or (cur.out_features == 1 and not bool(cur.weight_mask.any()))


@settings(max_examples=10, deadline=None)
@given(
    widths=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    density=st.floats(0.1, 0.8),
    seed=st.integers(0, 1000),
    masked=st.booleans(),
)
def test_sequential_strip_keeps_outputs(widths, density, seed, masked):
    acts = [nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.Sigmoid, nn.SiLU]
    mods: list[nn.Module] = []
    dims = [5, *widths, 3]
    for i in range(len(dims) - 1):
        mods.append(nn.Linear(dims[i], dims[i + 1], bias=i % 2 == 0))
        if i < len(dims) - 2:
            mods.append(acts[(seed + i) % len(acts)]())
    net = nn.Sequential(*mods).double()
    if masked:
        _random_masks(net, density, seed)
    else:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    m.weight.mul_(torch.rand(m.weight.shape, generator=gen) < density)
    res = sprig.strip(net)
    x = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(res.model(x), net(x), rtol=1e-12, atol=1e-12)
    assert sprig.masks.is_sparse(res.model) == masked


def test_constant_neuron_is_folded_into_next_bias():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False))
    apply_mask(net[0], "weight", torch.tensor([[1, 1], [0, 0], [1, 0]]))
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([0.0, 2.0, -1.0]))
        net[2].weight.copy_(torch.tensor([[1.0, 3.0, 0.5]]))
    res = sprig.strip(net)
    assert res.sizes_after == (2, 2, 1)
    assert res.model[2].bias is not None and float(res.model[2].bias.detach()) == pytest.approx(6.0)
    x = torch.randn(6, 2)
    torch.testing.assert_close(res.model(x), net(x))


def test_whole_layer_dead_gives_constant_net_and_saves(tmp_path):
    mlp = sprig.SparseMLP([3, 4, 2], densities=1.0)
    apply_mask(mlp.layers[1], "weight", torch.zeros(2, 4, dtype=torch.bool))
    res = sprig.strip(mlp)
    assert res.sizes_after == (3, 1, 2)
    x = torch.randn(5, 3)
    torch.testing.assert_close(res.model(x), mlp(x))
    sprig.save(res.model, tmp_path / "s.safetensors")
    torch.testing.assert_close(sprig.load(tmp_path / "s.safetensors")(x), mlp(x))


def test_strip_rejects_what_it_cannot_strip():
    with pytest.raises(ValueError, match="Dropout is neither"):
        sprig.strip(nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1)))
    with pytest.raises(ValueError, match="starts with nn.Linear"):
        sprig.strip(nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    with pytest.raises(TypeError, match="got Linear"):
        sprig.strip(nn.Linear(2, 2))
    assert str(sprig.strip(nn.Sequential(nn.Linear(2, 2)))).startswith("2-2 -> 2-2")
