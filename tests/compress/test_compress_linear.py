"""compress/decompress of masked Linear layers: outputs, storage, save/load, bad input."""

import warnings

import pytest
import torch

import sprig
from sprig.compress import CompressedLinear
from sprig.kernels import BreakEven, dispatch_table


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 5, bias=False),
    )  # fmt: skip
    sprig.sparsify(net, density=0.2, seed=0)
    return net


@pytest.mark.parametrize("backend", ["auto", "csr", "dense"])
@pytest.mark.parametrize("lead", [(1,), (17,), (3, 4), ()])
def test_outputs_equal_masked_dense(backend, lead):
    net = _net()
    comp = sprig.compress(net, backend=backend)
    assert all(isinstance(comp[i], CompressedLinear) for i in (0, 2, 4))
    assert isinstance(net[0], torch.nn.Linear)  # the original is untouched
    x = torch.randn(*lead, 30)
    with torch.no_grad():
        torch.testing.assert_close(comp(x), net(x), rtol=1e-5, atol=1e-6)


def test_stores_only_nonzeros_16bit_columns():
    net = _net()
    comp = sprig.compress(net)
    layer = comp[2]
    nnz = int(net[2].weight_mask.sum())
    assert {n for n, _ in layer.named_buffers()} == {"crow", "col"}
    # the nonzeros (and bias) are what trains: optimizer state is nonzero-sized
    assert {n: tuple(p.shape) for n, p in layer.named_parameters()} == {
        "values": (nnz,),
        "bias": (net[2].out_features,),
    }
    assert layer.col.dtype == torch.uint16 and layer.crow.dtype == torch.int32


def test_wide_layer_keeps_int32_columns():
    lin = torch.nn.Linear(2**16 + 3, 2)
    sprig.sparsify(lin, density=0.01, seed=0)
    layer = sprig.compress(lin)
    assert layer.col.dtype == torch.int32 and int(layer.col.max()) > 2**16 - 1000
    x = torch.randn(2**16 + 3)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), lin(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="65536 inputs"):
        CompressedLinear(2**16 + 1, 2, 0, index_dtype="uint16")


def test_decompress_gives_back_masked_dense():
    mlp = sprig.SparseMLP([8, 16, 3], densities=[0.5, 0.3], seed=1)
    back = sprig.decompress(sprig.compress(mlp))
    assert type(back.layers[0]) is sprig.SparseLinear
    for a, b in zip(mlp.layers, back.layers):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.weight_mask, b.weight_mask)
        assert sprig.get_mask(b, "weight") is not None
    net = _net()
    back = sprig.decompress(sprig.compress(net))
    assert type(back[0]) is torch.nn.Linear and torch.equal(back[0].weight_mask, net[0].weight_mask)
    x = torch.randn(4, 30)
    torch.testing.assert_close(back(x), net(x))


def test_save_load_compressed(tmp_path):
    mlp = sprig.SparseMLP([8, 16, 3], densities=0.3, seed=1)
    comp = sprig.compress(mlp)
    loaded = sprig.load(sprig.save(comp, tmp_path / "c.safetensors"))
    assert isinstance(loaded.layers[0], CompressedLinear)
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), mlp(x), rtol=1e-5, atol=1e-6)
    # a user's own model: load_state swaps the compressed layers in
    net = _net()
    path = sprig.save(sprig.compress(net), tmp_path / "net.safetensors")
    fresh = torch.nn.Sequential(
        torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 5, bias=False),
    )  # fmt: skip
    sprig.load_state(fresh, path)
    with torch.no_grad():
        torch.testing.assert_close(fresh(torch.ones(2, 30)), net(torch.ones(2, 30)))
    # a model that does not fit is left as it was (the swaps are undone)
    wrong = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.Linear(64, 64))
    with pytest.raises(sprig.SprigFileError):
        sprig.load_state(wrong, path)
    assert type(wrong[0]) is torch.nn.Linear and not list(sprig.masked_parameters(wrong))


def test_dispatch_is_per_call():
    layer = sprig.compress(sprig.SparseLinear(64, 64, density=0.1, seed=0))
    table = [BreakEven("cpu", "float32", "infer", 64, 1, 0.2),
             BreakEven("cpu", "float32", "infer", 64, 256, 0.05, block=32)]  # fmt: skip
    x1, x2 = torch.randn(1, 64), torch.randn(256, 64)
    with torch.no_grad(), dispatch_table(table):
        layer(x1)
        assert "dense" not in layer._cache  # CSR at batch 1
        y = layer(x2)
        assert "dense" in layer._cache  # dense above the break-even at batch 256
        layer.drop_dense()
    torch.testing.assert_close(y, x2 @ layer.dense_weight().t() + layer.bias, rtol=1e-5, atol=1e-5)


def test_no_masks_warns_and_returns_unchanged():
    net = torch.nn.Linear(4, 2)
    with pytest.warns(UserWarning, match="no sprig masks"):
        out = sprig.compress(net)
    assert type(out) is torch.nn.Linear and torch.equal(out.weight, net.weight)


def test_bad_input():
    net = _net()
    with torch.no_grad():
        net[2].weight[net[2].weight_mask.nonzero()[0].tolist()] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        sprig.compress(net)
    comp = sprig.compress(_net())
    with pytest.raises(ValueError, match="last input dim must be 30"):
        comp(torch.randn(2, 31))
    with pytest.raises(TypeError, match="dtype torch.float64 differs"):
        comp(torch.randn(2, 30, dtype=torch.float64))
    with pytest.raises(ValueError, match="backend must be one of"):
        sprig.compress(_net(), backend="gpu")
    # a corrupted stored weight is caught when the layer rebuilds its CSR
    layer = comp[0]
    with torch.no_grad():
        layer.values[0] = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        layer(torch.randn(2, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sprig.compress(_net())  # a masked model compresses without warnings


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compressed_matches():
    net = _net().cuda()
    comp = sprig.compress(net, backend="csr")
    x = torch.randn(9, 30, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(comp(x), net(x), rtol=1e-5, atol=1e-5)
