import pytest
import torch

import sprig


def test_sparse_linear():
    layer = sprig.SparseLinear(30, 20, density=0.1, seed=0)
    assert int(layer.weight_mask.sum()) == 60
    assert isinstance(layer, torch.nn.Linear)
    assert layer(torch.randn(4, 30)).shape == (4, 20)
    assert sprig.SparseLinear(8, 4, pattern="2:4").density == 0.5
    assert "density=0.1" in repr(layer)


def test_density_is_read_from_the_mask_and_the_config_keeps_the_construction():
    layer = sprig.SparseLinear(30, 20, density=0.5, seed=0)
    sprig.prune.prune(layer, 0.1)
    assert layer.density == pytest.approx(60 / 600)  # was stuck at 0.5 before
    assert layer.density_config == layer.config()["density"] == 0.5
    rnn = sprig.SparseRNN(4, 8, cell="gru", density={"r": 0.5, "z": 0.25, "n": 1.0}, seed=0)
    assert rnn.density == pytest.approx(sprig.density(rnn))
    assert rnn.density_config == {"r": 0.5, "z": 0.25, "n": 1.0}


def test_sparse_mlp_article_shape():
    mlp = sprig.SparseMLP([2, 16, 16, 1], densities=[1.0, 0.1, 0.2], seed=0)
    assert [int(layer.weight_mask.sum()) for layer in mlp.layers] == [32, 26, 3]
    assert mlp(torch.randn(5, 2)).shape == (5, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [2], "densities": 1.0}, "at least input and output"),
        ({"sizes": [2, 3, 1], "densities": [1.0]}, "2 layers .* need 2 densities"),
        ({"sizes": [2, 3], "densities": 1.0, "activation": "swish2"}, "valid names are"),
        ({"sizes": [2, 3], "densities": 1.2}, r"\(0, 1\]"),
    ],
)
def test_mlp_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sprig.SparseMLP(**kwargs)


def test_micrograd_style_calls_point_to_sizes_and_densities():
    with pytest.raises(TypeError, match=r"MLP\(2, \[16, 16, 1\]\) is SparseMLP\(\[2, 16, 16, 1\]"):
        sprig.SparseMLP(2, [16, 16, 1])
    with pytest.raises(TypeError, match=r"sparsities=.*pass densities="):
        sprig.SparseMLP([2, 16, 1], sparsities=[0.9, 0.5])
    with pytest.raises(TypeError, match=r"sparsity=0.9.*pass density="):
        sprig.sparsify(torch.nn.Linear(4, 4), sparsity=0.9)
    with pytest.raises(TypeError, match="needs densities="):
        sprig.SparseMLP([2, 16, 1])


@pytest.mark.parametrize("storage", ["masked", "compressed"])
def test_a_wrong_input_width_names_the_layer_and_the_width(storage):
    mlp = sprig.nn.SparseMLP([4, 8, 2], densities=0.5, storage=storage)
    with pytest.raises(ValueError, match=r"input shape \(3, 5\).*must be.* 4"):
        mlp(torch.randn(3, 5))
    assert mlp(torch.randn(3, 4)).shape == (3, 2)  # the right width still runs
    layer = sprig.nn.SparseLinear(4, 2, density=0.5, storage=storage)
    with pytest.raises(ValueError, match=r"input shape \(5,\)"):
        layer(torch.randn(5))
    assert layer(torch.randn(4)).shape == (2,)
