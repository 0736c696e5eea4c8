"""csr_linear (fast) against its slow reference and dense F.linear on awkward shapes."""

import pytest
import torch
import torch.nn.functional as F

from sprig.kernels import csr_linear, csr_linear_reference, to_csr
from sprig.masks import make_mask

CASES = [
    # (out, in, lead shape, density)
    (7, 5, (3,), 0.3),
    (1, 1, (1,), 1.0),  # batch 1, single weight
    (13, 17, (1,), 0.5),  # batch 1 -> the 1-D mv path
    (13, 17, (), 0.5),  # 1-D input
    (33, 9, (2, 5), 1.0),  # density 1, 3-D input
    (16, 31, (70,), 0.05),  # more rows than a block, many empty weight rows
    (5, 4, (0,), 0.5),  # no rows at all
]


def _weight(out_f, in_f, density, seed=0):
    mask = make_mask((out_f, in_f), density, generator=seed)
    return torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(seed)) * mask, mask


@pytest.mark.parametrize(("out_f", "in_f", "lead", "density"), CASES)
@pytest.mark.parametrize("block", [0, 4])
def test_matches_reference_and_dense(out_f, in_f, lead, density, block):
    w, mask = _weight(out_f, in_f, density)
    w[0] = 0.0  # an empty row
    csr = to_csr(w, w != 0)
    x = torch.randn(*lead, in_f)
    b = torch.randn(out_f)
    want = F.linear(x, w, b)
    got = csr_linear(x, csr, b, block=block)
    ref = csr_linear_reference(x, csr, b)
    assert got.shape == want.shape == ref.shape
    torch.testing.assert_close(ref, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_all_zero_weight_and_non_contiguous_input():
    w = torch.zeros(6, 8)
    csr = to_csr(w, torch.zeros(6, 8, dtype=torch.bool))
    x = torch.randn(8, 5).t()  # (5, 8), not contiguous
    assert not x.is_contiguous()
    b = torch.randn(6)
    torch.testing.assert_close(csr_linear(x, csr, b), b.expand(5, 6))
    w2, _ = _weight(6, 8, 0.4, seed=3)
    c2 = to_csr(w2)
    x2 = torch.randn(4, 16)[:, ::2]  # strided columns
    torch.testing.assert_close(csr_linear(x2, c2), F.linear(x2, w2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(csr_linear_reference(x2, c2), F.linear(x2, w2))


def test_float64_and_input_gradient():
    w, mask = _weight(9, 11, 0.3)
    w = w.double()
    csr = to_csr(w, mask)
    x = torch.randn(4, 11, dtype=torch.float64, requires_grad=True)
    csr_linear(x, csr).sum().backward()
    torch.testing.assert_close(x.grad, w.sum(0).expand(4, 11))


@pytest.mark.parametrize(
    ("x", "err", "match"),
    [
        (torch.randn(3, 4), ValueError, "last input dim must be 5"),
        (torch.randn(3, 5, dtype=torch.float64), TypeError, "dtype torch.float64 differs"),
        (torch.randn(3, 5).to_sparse(), TypeError, "dense input"),
    ],
)
def test_bad_input(x, err, match):
    csr = to_csr(torch.eye(6, 5))
    with pytest.raises(err, match=match):
        csr_linear(x, csr)


def test_bad_weight_and_bias():
    with pytest.raises(TypeError, match="sparse CSR weight"):
        csr_linear(torch.randn(2, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="bias shape"):
        csr_linear(torch.randn(2, 3), to_csr(torch.eye(4, 3)), torch.randn(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_reference():
    w, mask = _weight(64, 48, 0.1)
    csr = to_csr(w.cuda(), mask.cuda())
    for lead in [(1,), (37,), (100,)]:
        x = torch.randn(*lead, 48, device="cuda")
        torch.testing.assert_close(
            csr_linear(x, csr, block=32), F.linear(x, w.cuda()), rtol=1e-5, atol=1e-5
        )
