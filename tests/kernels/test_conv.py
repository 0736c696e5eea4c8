"""The direct sparse convolution against its reference and torch's dense convolution."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sprig.kernels import SparseConv, conv_padding, sparse_conv_reference, to_csr
from sprig.kernels import _conv as conv_module

CASES = [
    # dims, kernel, stride, padding, dilation, batch, spatial
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (9, 7)),
    (2, (3, 3), (2, 2), 1, (1, 1), 3, (9, 8)),
    (2, (3, 3), (1, 1), "same", (2, 2), 1, (10, 5)),
    (2, (4, 3), (1, 1), "same", (1, 2), 2, (9, 9)),
    (2, (5, 5), (3, 2), 0, (2, 1), 1, (17, 13)),
    (2, (7, 7), (2, 2), 3, (1, 1), 1, (33, 32)),
    (2, (3, 1), (1, 2), (0, 2), (1, 1), 1, (6, 11)),
    (2, (3, 3), (1, 1), "valid", (1, 1), 1, (3, 3)),  # one output position
    # wide runs of n positions about the compiled loop's widths (16-float vectors, 64- and
    # 256-float blocks; the last <= 32 go vector by vector): n = 16, 17, 38, 52, 64, 33, 68,
    # 96, 97, 255, 256, 257, 506
    (2, (3, 3), (1, 1), 1, (1, 1), 2, (3, 4)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (1, 17)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (4, 8)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (6, 7)),
    (2, (3, 3), (1, 1), 1, (1, 1), 3, (2, 31)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (1, 33)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (7, 8)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (1, 96)),
    (2, (3, 3), (2, 2), 1, (1, 1), 2, (2, 194)),  # stride 2: n = 97 over the phase planes
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (1, 255)),
    (2, (3, 3), (1, 1), 1, (1, 1), 2, (1, 256)),
    (2, (3, 3), (1, 1), 1, (1, 1), 1, (1, 257)),
    (2, (3, 3), (1, 1), "same", (2, 2), 1, (2, 251)),  # dilation 2: n = 255 + 251
    (2, (1, 1), (2, 2), 1, (1, 1), 2, (9, 8)),
    (2, (1, 1), (1, 1), 0, (1, 1), 1, (5, 6)),
    (1, (3,), (2,), 1, (1,), 2, (11,)),
    (1, (1,), (3,), 2, (1,), 1, (10,)),
    (1, (4,), (1,), "same", (3,), 1, (20,)),
    (1, (5,), (1,), 0, (1,), 3, (5,)),
]


def _case(dims, kernel, stride, padding, dilation, batch, spatial, density, dtype=torch.float32):
    gen = torch.Generator().manual_seed(hash((kernel, stride, batch)) % 2**31)
    out_ch, in_ch = 6, 5
    # scaled as torch initialises (outputs of order 1: float32 sums to 1e-5)
    fan_in = in_ch * torch.tensor(kernel).prod().item()
    w = torch.randn(out_ch, in_ch, *kernel, generator=gen, dtype=dtype) / fan_in**0.5
    mask = torch.rand(w.shape, generator=gen) < density
    mask[1] = False  # an empty output channel
    w = w * mask
    x = torch.randn(batch, in_ch, *spatial, generator=gen, dtype=dtype)
    bias = torch.randn(out_ch, generator=gen, dtype=dtype)
    csr = to_csr(w.reshape(out_ch, -1), mask.reshape(out_ch, -1))
    pads = conv_padding(padding, kernel, dilation)
    conv = SparseConv(
        csr.crow_indices(), csr.col_indices(), csr.values(), w.shape, stride, pads, dilation
    )
    dense = (F.conv1d if dims == 1 else F.conv2d)(
        F.pad(x, [p for pair in reversed(pads) for p in pair]), w, bias, stride, 0, dilation
    )
    ref = sparse_conv_reference(
        x, csr.crow_indices(), csr.col_indices(), csr.values(), w.shape, bias, stride, pads,
        dilation,
    )  # fmt: skip
    return conv, x, bias, dense, ref


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_kernel_equals_reference_and_dense(case, density):
    conv, x, bias, dense, ref = _case(*case, density)
    torch.testing.assert_close(ref, dense, rtol=1e-5, atol=1e-5)
    y = conv(x, bias)
    assert y.shape == dense.shape
    torch.testing.assert_close(y, dense, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv(x), dense - bias.view(-1, *[1] * (x.dim() - 2)), atol=1e-5,
                               rtol=1e-5)  # fmt: skip


def test_float64_and_threads(monkeypatch):
    # parts of output channels on threads (every part worth a thread here)
    monkeypatch.setattr(conv_module, "MIN_NNZ_PER_THREAD", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        conv, x, bias, dense, _ = _case(*CASES[1], 0.5, dtype=torch.float64)
        torch.testing.assert_close(conv(x, bias), dense)
    finally:
        torch.set_num_threads(threads)


def test_short_last_tile(monkeypatch):
    # row tiles of 7 rows of a 9-float pitch: the last tile is one row of 7 outputs, which
    # goes as one vector (reading past the input's end, into its slack)
    monkeypatch.setattr(conv_module, "TILE_POSITIONS", 63)
    conv, x, bias, dense, _ = _case(2, (3, 3), (1, 1), 1, (1, 1), 2, (15, 7), 0.5)
    torch.testing.assert_close(conv(x, bias), dense, rtol=1e-5, atol=1e-5)


def test_int64_offsets(monkeypatch):
    # past INT32_OFFSETS floats of flat input the offsets are int64 (a second compiled loop)
    monkeypatch.setattr(conv_module, "INT32_OFFSETS", 10)
    conv, x, bias, dense, _ = _case(2, (3, 3), (2, 2), 1, (1, 1), 2, (9, 40), 0.5)
    torch.testing.assert_close(conv(x, bias), dense, rtol=1e-5, atol=1e-5)
    assert next(iter(conv._plans.values())).off.dtype == np.int64


@pytest.mark.parametrize("spatial", [(3, 4), (7, 8)])
def test_infinite_bias_stays_infinite(spatial):
    # the second set of sums starts at zero, not at bias * 0 (NaN for an infinite bias)
    conv, x, bias, dense, _ = _case(2, (3, 3), (1, 1), 1, (1, 1), 1, spatial, 0.5)
    bias[0] = float("inf")
    y = conv(x, bias)
    assert torch.isinf(y[:, 0]).all() and not torch.isnan(y).any()


def test_padding_rules_and_bad_inputs():
    assert conv_padding("same", (4, 3), (1, 2)) == [(1, 2), (2, 2)]
    assert conv_padding("valid", (3,), (1,)) == [(0, 0)]
    assert conv_padding(2, (3, 3), (1, 1)) == [(2, 2), (2, 2)]
    with pytest.raises(ValueError, match="'same', 'valid' or ints"):
        conv_padding("full", (3,), (1,))
    conv, x, *_ = _case(*CASES[0], 0.5)
    with pytest.raises(ValueError, match=r"pass \(B, 5, \*2 spatial sizes\)"):
        conv(x[:, :3])
    with pytest.raises(ValueError, match="does not fit a torch.float32"):
        conv(x.double())
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        conv(torch.randn(1, 5, 1, 1)[..., :0, :0].new_zeros(1, 5, 0, 0))
    with pytest.raises(ValueError, match="does not fit 6 outputs"):
        conv(x, torch.zeros(3))
