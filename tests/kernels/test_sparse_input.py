"""Sparse inputs into a sparse layer: forward and weight gradient against the dense reference."""

from __future__ import annotations

import pytest
import scipy.sparse as sp
import torch

import sprig
from sprig.kernels import CSRStructure, sparse_input_linear, sparse_input_linear_reference


def _case(n, in_f, out_f, x_density, w_density, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(out_f, in_f, generator=g) < w_density
    mask[0] = False  # an empty row of W
    s = CSRStructure(mask)
    x = torch.randn(n, in_f, generator=g) * (torch.rand(n, in_f, generator=g) < x_density)
    x[-1] = 0  # an empty input row
    return s, torch.randn(s.nnz, generator=g), torch.randn(out_f, generator=g), x


@pytest.mark.parametrize("shape", [(1, 7, 5), (13, 64, 33), (40, 300, 17)])
@pytest.mark.parametrize("layout", ["coo", "csr", "scipy"])
def test_forward_and_gradients_match_the_dense_reference(shape, layout):
    s, v, b, x = _case(*shape, x_density=0.1, w_density=0.3)
    sparse_x = {
        "coo": x.to_sparse(),
        "csr": x.to_sparse_csr(),
        "scipy": sp.csr_matrix(x.double().numpy()),
    }[layout]
    outs = []
    for fn in (sparse_input_linear, sparse_input_linear_reference):
        vv, bb = v.clone().requires_grad_(), b.clone().requires_grad_()
        y = fn(sparse_x, vv, s, bb)
        (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
        outs.append((y.detach(), vv.grad, bb.grad))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compressed_first_layer_trains_on_scipy_without_densifying(monkeypatch):
    layer = sprig.SparseLinear(5000, 8, density=0.05, seed=0, storage="compressed")
    x = sp.random(32, 5000, density=0.001, format="csr", random_state=0)
    twin = sprig.decompress(layer)

    def no_dense(*args, **kwargs):
        raise AssertionError("the sparse input was densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", no_dense)
    monkeypatch.setattr(torch.Tensor, "to_dense", no_dense)
    y = layer(x)
    y.square().sum().backward()
    monkeypatch.undo()
    dense_x = torch.from_numpy(x.toarray()).float()
    y_twin = twin(dense_x)
    y_twin.square().sum().backward()
    torch.testing.assert_close(y, y_twin, rtol=1e-5, atol=1e-6)
    want = twin.weight.grad[twin.weight_mask]  # row-major: the compressed layer's order
    torch.testing.assert_close(layer.values.grad, want, rtol=1e-5, atol=1e-6)


def test_bad_sparse_inputs_are_named():
    s, v, b, x = _case(3, 10, 4, 0.3, 0.5)
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        sparse_input_linear(sp.csr_matrix((3, 9)), v, s)
    with pytest.raises(TypeError, match="dtype"):
        sparse_input_linear(x.double().to_sparse_csr(), v, s)
