"""Sparse training: CSR forward, nonzero-only weight gradient, transposed-CSR input gradient."""

import pytest
import torch
import torch.nn.functional as F

import sprig
from sprig.kernels import CSRStructure, _csr, _threads, csr_linear_train, nonzero_grad_reference
from sprig.kernels._train import _nonzero_grad
from sprig.masks import dense_gradients, get_dense_grad, make_mask


@pytest.mark.parametrize(("out_f", "in_f", "lead", "density"), [
    (7, 5, (3,), 0.3), (13, 17, (1,), 0.5), (33, 9, (2, 5), 1.0), (16, 31, (70,), 0.05),
])  # fmt: skip
@pytest.mark.parametrize("block", [0, 8])
@pytest.mark.parametrize("split", [False, True])
def test_values_autograd_exact_vs_masked_dense(
    out_f, in_f, lead, density, block, split, monkeypatch
):
    if split:  # the compiled sampled product and gathers on 2 threads, even at these sizes
        monkeypatch.setattr(_threads, "MIN_NNZ_PER_THREAD", 1)
        monkeypatch.setattr(_csr, "GATHER_MIN", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    mask = make_mask((out_f, in_f), density, generator=1)
    mask[0] = False  # an empty row
    w = torch.randn(out_f, in_f, dtype=torch.float64) * mask
    s = CSRStructure(mask)
    values = s.values_of(w).clone().requires_grad_(True)
    bias = torch.randn(out_f, dtype=torch.float64, requires_grad=True)
    x = torch.randn(*lead, in_f, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(*lead, out_f, dtype=torch.float64)
    csr_linear_train(x, values, s, bias, block=block).backward(gy)

    wd = w.clone().requires_grad_(True)
    bd = bias.detach().clone().requires_grad_(True)
    xd = x.detach().clone().requires_grad_(True)
    F.linear(xd, wd * mask, bd).backward(gy)
    torch.testing.assert_close(values.grad, s.values_of(wd.grad))
    torch.testing.assert_close(x.grad, xd.grad)
    torch.testing.assert_close(bias.grad, bd.grad)
    # the sampled products (sprig's compiled one, torch's) against the slow reference
    g2, x2 = gy.reshape(-1, out_f), x.detach().reshape(-1, in_f)
    ref = nonzero_grad_reference(s, g2, x2)
    torch.testing.assert_close(_nonzero_grad(s, values.detach(), g2, x2), ref)
    torch.testing.assert_close(
        _nonzero_grad(s, values.detach().float(), g2.float(), x2.float()),
        ref.float(),
        rtol=1e-5,
        atol=1e-5,
    )
    torch.testing.assert_close(
        torch.sparse.sampled_addmm(s.csr(values.detach()), g2.t(), x2, beta=0.0).values(), ref
    )


def test_gradcheck():
    mask = make_mask((5, 4), 0.5, generator=0)
    s = CSRStructure(mask)
    v = torch.randn(s.nnz, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, v, b: csr_linear_train(x, v, s, b), (x, v, b))


def test_transpose_structure():
    mask = make_mask((6, 9), 0.4, generator=2)
    w = torch.randn(6, 9) * mask
    s = CSRStructure(mask)
    v = s.values_of(w)
    torch.testing.assert_close(s.transpose(v).to_dense(), w.t())
    torch.testing.assert_close(s.csr(v).to_dense(), w)
    torch.testing.assert_close(s.scatter(v), w)


def _pair(backend_b, density=0.2, bias=True):
    a = sprig.SparseLinear(24, 18, density, bias=bias, seed=3, backend="dense")
    b = sprig.SparseLinear(24, 18, density, bias=bias, seed=3, backend=backend_b)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("lead", [(1,), (5,), (2, 3), ()])
def test_sparse_linear_csr_backend_matches_dense(lead):
    a, b = _pair("csr")
    x = torch.randn(*lead, 24)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = a(xa), b(xb)
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-5)
    gy = torch.randn_like(ya)
    ya.backward(gy)
    yb.backward(gy)
    torch.testing.assert_close(b.weight.grad, a.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.bias.grad, a.bias.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    assert bool((b.weight.grad[~b.weight_mask] == 0).all())
    with torch.no_grad():  # inference path (cached CSR)
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


def test_csr_backend_trains_like_dense_and_cache_follows_updates():
    a, b = _pair("csr")
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    x, t = torch.randn(16, 24), torch.randn(16, 18)
    for _ in range(3):
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.mse_loss(m(x), t).backward()
            opt.step()
        with torch.no_grad():  # the cached inference CSR sees the optimizer's update
            torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.weight, a.weight, rtol=1e-5, atol=1e-6)
    assert bool((b.weight[~b.weight_mask] == 0).all())


def test_dense_gradients_gives_full_gradient_through_sparse_backward():
    a, b = _pair("csr")
    x = torch.randn(8, 24)
    for m in (a, b):
        with dense_gradients(m):
            m(x).pow(2).sum().backward()
    full_a, full_b = get_dense_grad(a, "weight"), get_dense_grad(b, "weight")
    assert full_b is not None and full_a is not None
    assert int((full_b[~b.weight_mask] != 0).sum()) > 0  # pruned entries have a gradient
    torch.testing.assert_close(full_b, full_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.weight.grad, a.weight.grad, rtol=1e-5, atol=1e-5)
    assert bool((b.weight.grad[~b.weight_mask] == 0).all())  # .grad stays masked


def test_mask_change_rebuilds_structure():
    a, b = _pair("csr")
    new = make_mask((18, 24), 0.5, generator=9)
    for m in (a, b):
        sprig.apply_mask(m, "weight", new)
    x = torch.randn(4, 24)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    b.weight.grad = None
    b(x).sum().backward()
    assert int(b.weight.grad.count_nonzero()) <= int(new.sum())


def test_backend_config_round_trip(tmp_path):
    layer = sprig.SparseLinear(12, 6, 0.5, seed=0, backend="csr")
    assert layer.config()["backend"] == "csr"
    back = sprig.load(sprig.save(layer, tmp_path / "l.safetensors"))
    assert back.backend == "csr"
    torch.testing.assert_close(back.weight, layer.weight)
    with pytest.raises(ValueError, match="backend must be one of"):
        sprig.SparseLinear(4, 4, 0.5, backend="mkl")


def test_layer_with_cache_copies():
    import copy
    import pickle

    layer = sprig.SparseLinear(10, 6, 0.5, seed=0, backend="csr")
    x = torch.randn(3, 10)
    with torch.no_grad():
        y = layer(x)  # fills the CSR cache
        other = copy.deepcopy(layer)
        assert other._kernels.csr is None  # the copy starts with an empty cache
        torch.testing.assert_close(other(x), y)
    assert pickle.loads(pickle.dumps(layer._kernels)).csr is None


def test_csr_backend_gradient_stays_masked_when_other_uses_add_dense_parts():
    # other contributions (a second use of the weight, accumulation over two backwards) join
    # the CSR backward's gradient and are masked too
    layer = sprig.SparseLinear(40, 30, 0.2, seed=0, backend="csr")
    off = ~layer.weight_mask
    x = torch.randn(5, 40)
    (layer(x).sum() + (x @ layer.weight.t()).square().sum()).backward()
    assert layer.weight.grad is not None and bool((layer.weight.grad[off] == 0).all())
    layer.weight.grad = None
    layer(x).sum().backward()
    first = layer.weight.grad.clone()
    assert bool((first[off] == 0).all())
    (x @ layer.weight.t()).sum().backward()  # accumulates a dense gradient into it
    assert bool((layer.weight.grad[off] == 0).all())
    assert not torch.equal(layer.weight.grad, first)


@pytest.mark.parametrize("gather_min", [1, 10**9])
def test_gradient_penalty_differentiates_the_weight_gradient(gather_min, monkeypatch):
    # create_graph=True: the nonzero gradient itself must carry a graph (as masked dense)
    monkeypatch.setattr(_csr, "GATHER_MIN", gather_min)
    mask = make_mask((6, 5), 0.6, generator=0)
    s = CSRStructure(mask)
    w, x0 = torch.randn(6, 5) * mask, torch.randn(4, 5)
    x = x0.clone().requires_grad_()
    v = s.values_of(w).clone().requires_grad_()
    (gv,) = torch.autograd.grad(csr_linear_train(x, v, s).pow(2).sum(), v, create_graph=True)
    (gx,) = torch.autograd.grad(gv.pow(2).sum(), x)
    wr, xr = w.clone().requires_grad_(), x0.clone().requires_grad_()
    (gw,) = torch.autograd.grad(F.linear(xr, wr * mask).pow(2).sum(), wr, create_graph=True)
    (gx_ref,) = torch.autograd.grad(gw.pow(2).sum(), xr)
    torch.testing.assert_close(gx, gx_ref)
