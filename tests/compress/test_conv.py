"""compress/decompress of masked convolutions (1x1 and k x k); grouped ones stay dense, named."""

import pytest
import torch
from torch import nn

import sprig
from sprig.compress import CompressedConv, CompressedConv1x1
from sprig.kernels import ConvBreakEven, conv_dispatch_table
from sprig.masks import LeftAloneWarning


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(24, 40, 1), (1, 24, 9, 7)),
        (nn.Conv2d(24, 40, 1, stride=2, padding=1), (3, 24, 9, 7)),
        (nn.Conv2d(24, 40, (1, 1), stride=(1, 3), bias=False, padding="valid"), (2, 24, 5, 8)),
        (nn.Conv1d(24, 40, 1, stride=3, padding=2), (2, 24, 11)),
        (nn.Conv1d(24, 40, 1), (24, 11)),  # unbatched
    ],
)
@pytest.mark.parametrize("backend", ["csr", "dense"])
def test_1x1_outputs_equal_masked_dense(conv, shape, backend):
    torch.manual_seed(0)
    if conv.bias is not None:
        nn.init.normal_(conv.bias)
    sprig.sparsify(conv, density=0.1)
    comp = sprig.compress(conv, backend=backend)
    assert isinstance(comp, CompressedConv)
    assert comp.values.numel() == int(conv.weight_mask.sum())  # nonzeros only
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)
        back = sprig.decompress(comp)
        assert type(back) is type(conv) and back.stride == conv.stride
        assert torch.equal(back.weight_mask, conv.weight_mask)
        torch.testing.assert_close(back(x), conv(x))
        legacy = _legacy_1x1(conv)  # what compress made of 1x1 convolutions before
        torch.testing.assert_close(legacy(x), conv(x), rtol=1e-5, atol=1e-5)
        assert torch.equal(sprig.decompress(legacy).weight_mask, conv.weight_mask)


def _legacy_1x1(conv):
    out_ch, in_ch = conv.weight.shape[:2]
    twin = nn.Linear(in_ch, out_ch, bias=conv.bias is not None)
    with torch.no_grad():
        twin.weight.copy_(conv.weight.reshape(out_ch, in_ch))
        if conv.bias is not None:
            twin.bias.copy_(conv.bias)
    sprig.apply_mask(twin, "weight", conv.weight_mask.reshape(out_ch, in_ch))
    lin = sprig.compress(twin)
    padding = [0] * conv.weight.dim() if isinstance(conv.padding, str) else list(conv.padding)
    legacy = CompressedConv1x1(conv.weight.dim() - 2, list(conv.stride), padding[2:] or padding,
                               lin.config())  # fmt: skip
    legacy.linear.load_state_dict(lin.state_dict())
    return legacy


def test_in_a_network_with_save_load(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 4, 1, stride=2))
    sprig.sparsify(net, density=0.3)
    comp = sprig.compress(net)
    x = torch.randn(2, 8, 6, 6)
    sprig.save(_legacy_1x1(net[2]), tmp_path / "c.safetensors")  # files saved before load
    sprig.save(comp[2], tmp_path / "new.safetensors")
    assert isinstance(sprig.load(tmp_path / "new.safetensors"), CompressedConv)
    again = sprig.load(tmp_path / "c.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(comp(x), net(x), rtol=1e-5, atol=1e-5)
        h = net[1](net[0](x))
        torch.testing.assert_close(again(h), net[2](h), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="8 input channels"):
        comp[0](torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize(
    ("conv", "why"),
    [
        (nn.Conv2d(8, 8, 3, groups=8), "groups=8: grouped and depthwise"),
        (nn.Conv2d(8, 8, 1, groups=2), "groups=2: grouped and depthwise"),
        (nn.Conv2d(8, 8, 1, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
        (nn.Conv3d(8, 8, 1), "no compressed form for Conv3d"),
    ],
)
def test_other_convolutions_stay_masked_dense_and_are_named(conv, why):
    net = nn.Sequential(conv, nn.Flatten())
    sprig.sparsify(net, density=0.5)
    with pytest.warns(LeftAloneWarning, match=rf"0\.weight: .*{why}"):
        comp = sprig.compress(net)
    assert type(comp[0]) is type(conv) and sprig.masks.get_mask(comp[0], "weight") is not None


KXK = [
    (nn.Conv2d(6, 10, 3, padding=1), (1, 6, 9, 7)),
    (nn.Conv2d(6, 10, 3, stride=2, padding=1, bias=False), (3, 6, 9, 8)),
    (nn.Conv2d(6, 10, (4, 3), padding="same", dilation=(1, 2)), (2, 6, 9, 9)),
    (nn.Conv2d(6, 10, 5, stride=(3, 2), dilation=2, padding="valid"), (1, 6, 17, 13)),
    (nn.Conv2d(3, 10, 7, stride=2, padding=3), (1, 3, 32, 33)),
    (nn.Conv2d(6, 10, 1, dilation=2), (1, 6, 5, 5)),  # a dilated 1x1: still a k x k module
    (nn.Conv1d(6, 10, 3, stride=2, padding=1), (2, 6, 11)),
    (nn.Conv1d(6, 10, 4, padding="same", dilation=3), (6, 20)),  # unbatched
]


def _masked(conv, density):
    torch.manual_seed(0)
    if conv.bias is not None:
        nn.init.normal_(conv.bias)
    return sprig.sparsify(conv, density=density)


@pytest.mark.parametrize(("conv", "shape"), KXK)
@pytest.mark.parametrize("backend", ["auto", "csr", "dense"])
def test_kxk_outputs_equal_masked_dense(conv, shape, backend):
    _masked(conv, 0.2)
    comp = sprig.compress(conv, backend=backend)
    assert isinstance(comp, CompressedConv)
    assert comp.values.numel() == int(conv.weight_mask.sum())  # nonzeros only
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)
        back = sprig.decompress(comp)
        assert type(back) is type(conv) and back.padding == conv.padding
        assert back.stride == conv.stride and back.dilation == conv.dilation
        assert torch.equal(back.weight_mask, conv.weight_mask)
        torch.testing.assert_close(back(x), conv(x))


@pytest.mark.parametrize("density", [0.0, 1.0])
def test_kxk_density_0_and_1(density):
    conv = nn.Conv2d(4, 5, 3, padding=1)
    sprig.apply_mask(conv, "weight", torch.full(conv.weight.shape, bool(density)))
    comp = sprig.compress(conv, backend="csr")
    x = torch.randn(2, 4, 6, 5)
    with torch.inference_mode():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)


def test_kxk_gradient_is_masked_dense_at_the_nonzeros():
    conv = _masked(nn.Conv2d(6, 8, 3, stride=2, padding=1), 0.3)
    comp = sprig.compress(conv)
    x = torch.randn(2, 6, 9, 9)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (conv(xa) ** 2).sum().backward()
    (comp(xb) ** 2).sum().backward()
    assert comp.values.grad is not None and comp.values.grad.shape == comp.values.shape
    flat = conv.weight.grad.flatten()[comp.active_flat()]
    torch.testing.assert_close(comp.values.grad, flat, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(comp.bias.grad, conv.bias.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    # a step changes the sparse kernel's output (its caches follow the values)
    with torch.no_grad():
        before = comp(x)
        comp.values.sub_(0.1 * comp.values.grad)
        after = comp(x)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, sprig.decompress(comp)(x), rtol=1e-5, atol=1e-5)


def test_dispatcher_chooses_from_the_conv_table(monkeypatch):
    conv = _masked(nn.Conv2d(64, 64, 3, padding=1), 0.1)
    comp = sprig.compress(conv)
    x = torch.randn(1, 64, 8, 8)
    calls = []
    monkeypatch.setattr(CompressedConv, "kernel", lambda self: calls.append(1) or (lambda *a: 0))
    with torch.no_grad():
        with conv_dispatch_table([ConvBreakEven("cpu", "float32", 64, 8, 3, 0.2)]):
            comp(x)
            assert calls == [1]  # 0.1 <= 0.2: the sparse kernel
        with conv_dispatch_table([ConvBreakEven("cpu", "float32", 64, 8, 3, 0.05)]):
            torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)
            assert calls == [1]  # 0.1 > 0.05: dense
        with conv_dispatch_table([]):
            comp(x)
            assert calls == [1]  # nothing measured: dense


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding="valid"),
        nn.ReLU(), nn.Conv2d(16, 4, 1), nn.Flatten(),
    )  # fmt: skip


def test_save_load_of_a_compressed_cnn(tmp_path):
    torch.manual_seed(0)
    net = sprig.sparsify(_cnn(), density=0.3)
    comp = sprig.compress(net, backend="csr")
    assert [type(m).__name__ for m in comp[0:5:2]] == [
        "CompressedConv", "CompressedConv", "CompressedConv",
    ]  # fmt: skip
    sprig.save(comp, tmp_path / "cnn.safetensors")
    again = sprig.load_state(_cnn(), tmp_path / "cnn.safetensors")  # a user's model class
    assert isinstance(again[2], CompressedConv)
    sprig.save(comp[2], tmp_path / "layer.safetensors")  # a layer alone: rebuilt from its config
    layer = sprig.load(tmp_path / "layer.safetensors")
    assert isinstance(layer, CompressedConv) and layer.config() == comp[2].config()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x), rtol=1e-5, atol=1e-5)
    assert sprig.density(again) == pytest.approx(sprig.density(net))


def test_bad_inputs_are_named():
    comp = sprig.compress(_masked(nn.Conv2d(4, 5, 3), 0.5))
    with pytest.raises(ValueError, match="4 input channels"):
        comp(torch.randn(1, 3, 6, 6))
    with pytest.raises(TypeError, match="input dtype torch.float64"):
        comp(torch.randn(1, 4, 6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        CompressedConv(2, 4, 5, [3, 3], [2, 2], "same", [1, 1], 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_dense_and_trains():
    # the sparse kernel is CPU-only: on CUDA every call runs torch's convolution
    conv = _masked(nn.Conv2d(6, 8, 3, stride=2, padding=1), 0.3).cuda()
    comp = sprig.compress(conv, backend="csr")
    x = torch.randn(2, 6, 9, 9, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)
    comp(x).sum().backward()
    assert comp.values.grad is not None and comp.values.grad.device.type == "cuda"


def test_edge_inputs_get_one_answer_on_every_path():
    """An empty batch, an input smaller than the kernel and a numpy array: the sparse kernel,
    the dense path and the masked conv agree (a review found a crash and raw errors)."""
    import numpy as np

    from sprig.kernels import SparseConv

    conv = sprig.sparsify(nn.Conv2d(8, 6, 3, padding=1), density=0.3, distribution="uniform")
    for backend in ("csr", "dense", "auto"):
        comp = sprig.compress(conv, backend=backend)
        with torch.no_grad():
            assert comp(torch.randn(0, 8, 5, 5)).shape == (0, 6, 5, 5)
            with pytest.raises(ValueError, match="smaller than the dilated kernel"):
                sprig.compress(sprig.sparsify(nn.Conv2d(8, 6, 5), density=0.3), backend=backend)(
                    torch.randn(1, 8, 3, 3)
                )
            with pytest.raises(TypeError, match="torch.from_numpy"):
                comp(np.zeros((1, 8, 5, 5), dtype=np.float32))
    kernel = sprig.compress(conv, backend="csr").kernel()
    assert isinstance(kernel, SparseConv) and kernel(torch.randn(0, 8, 5, 5)).shape == (0, 6, 5, 5)


@pytest.mark.parametrize("make", ["linear", "conv"])
def test_a_converted_dtype_survives_save_and_load(tmp_path, make):
    """.double() changes the values; the saved config must say so (it said float32, and the
    file loaded back as float32)."""
    if make == "linear":
        layer = sprig.compress(sprig.SparseLinear(8, 4, density=0.5, seed=0))
    else:
        layer = sprig.compress(sprig.sparsify(nn.Conv2d(3, 4, 3), density=0.5))
    layer = layer.double()
    assert layer.config()["dtype"] == "float64"
    sprig.save(layer, tmp_path / "m.safetensors")
    back = sprig.load(tmp_path / "m.safetensors")
    assert back.values.dtype == torch.float64
    torch.testing.assert_close(back.values, layer.values)
