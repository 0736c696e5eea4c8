"""The batch-1 CPU kernel (MatVec) against the slow reference on awkward cases."""

import pytest
import torch

from sprig.kernels import MatVec, _threads, csr_linear_reference, to_csr


def _case(rows, cols, density, dtype, seed, empty_rows=()):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g, dtype=dtype)
    mask = torch.rand(rows, cols, generator=g) < density
    mask[list(empty_rows)] = False
    return to_csr(w, mask), torch.randn(rows, generator=g, dtype=dtype)


@pytest.mark.parametrize("col_dtype", [torch.uint16, torch.int32, torch.int64])
@pytest.mark.parametrize(
    "rows, cols, density",
    [(1, 1, 1.0), (7, 13, 0.3), (33, 1, 0.5), (1, 100, 0.2), (64, 64, 1.0), (50, 70, 0.0)],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_reference(col_dtype, rows, cols, density, threads, monkeypatch):
    monkeypatch.setattr(_threads, "MIN_NNZ_PER_THREAD", 1)  # small cases take the threaded path
    csr, bias = _case(rows, cols, density, torch.float32, rows * cols, empty_rows=[0])
    mv = MatVec(csr.crow_indices(), csr.col_indices().to(col_dtype), csr.values(), cols)
    x = torch.randn(2, cols * 3)[1, ::3]  # non-contiguous
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for b in (None, bias):
            ref = csr_linear_reference(x.unsqueeze(0), csr, b)[0]
            torch.testing.assert_close(mv(x, b), ref, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_float64_and_balanced_parts(monkeypatch):
    monkeypatch.setattr(_threads, "MIN_NNZ_PER_THREAD", 10)
    csr, bias = _case(300, 257, 0.1, torch.float64, 1, empty_rows=range(100))
    mv = MatVec(csr.crow_indices(), csr.col_indices().to(torch.uint16), csr.values(), 257)
    x = torch.randn(257, dtype=torch.float64)
    torch.testing.assert_close(mv(x, bias), csr_linear_reference(x[None], csr, bias)[0])
    bounds = mv._split(2)
    crow = csr.crow_indices()
    halves = [int(crow[bounds[i + 1]] - crow[bounds[i]]) for i in range(2)]
    assert bounds[0] == 0 and bounds[-1] == 300 and abs(halves[0] - halves[1]) < 0.2 * sum(halves)


def test_bad_input():
    csr, _ = _case(4, 5, 0.5, torch.float32, 0)
    mv = MatVec(csr.crow_indices(), csr.col_indices(), csr.values(), 5)
    with pytest.raises(ValueError, match=r"pass a \(5,\) CPU vector"):
        mv(torch.ones(6))
    with pytest.raises(ValueError, match="float32"):
        mv(torch.ones(5, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32 and float64"):
        MatVec(csr.crow_indices(), csr.col_indices(), csr.values().half(), 5)


def test_bad_bias_and_bad_arrays_raise():
    # the compiled loop checks no bounds: a short bias or a column past the matrix must raise
    csr, _ = _case(4, 5, 0.5, torch.float32, 0)
    mv = MatVec(csr.crow_indices(), csr.col_indices(), csr.values(), 5)
    with pytest.raises(ValueError, match=r"bias of shape \(1,\) does not fit 4 outputs"):
        mv(torch.ones(5), torch.zeros(1))
    crow, col = torch.tensor([0, 1], dtype=torch.int32), torch.tensor([60000], dtype=torch.uint16)
    with pytest.raises(ValueError, match=r"MatVec: CSR column indices fall outside \[0, 4\)"):
        MatVec(crow, col, torch.ones(1), 4)


def test_forked_child_runs_after_the_parent_used_threads(monkeypatch):
    # GNU OpenMP is not fork-safe: a child forked after a parallel region aborted at its first
    # one ("fork() called from a process already using GNU OpenMP"); it must run on one thread
    import os

    monkeypatch.setattr(_threads, "MIN_NNZ_PER_THREAD", 10)
    csr, bias = _case(300, 200, 0.3, torch.float32, 3)
    mv = MatVec(csr.crow_indices(), csr.col_indices().to(torch.uint16), csr.values(), 200)
    x = torch.randn(200)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        y = mv(x, bias)  # the parent runs a parallel region
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only when its result equals the parent's
            ok = torch.allclose(mv(x, bias), y)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
    finally:
        torch.set_num_threads(before)
    assert os.waitstatus_to_exitcode(status) == 0


def test_matvec_serves_small_layers_only_on_one_thread(monkeypatch):
    """Above the cut always; below it only when torch runs one thread, where MatVec was faster
    than MKL's mv at every size (design_measurements.md, row matvec-min-nnz); not by load."""
    from torch.nn import functional as F

    import sprig
    from sprig.kernels import MATVEC_MIN_NNZ, _compiled, matvec_serves

    busy = False
    monkeypatch.setattr(_threads, "machine_busy", lambda: busy)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert not matvec_serves(MATVEC_MIN_NNZ - 1)
        assert matvec_serves(MATVEC_MIN_NNZ)
        busy = True
        assert not matvec_serves(1)  # a busy machine does not change the kernel (nor the bits)
        busy = False
        torch.set_num_threads(1)
        assert matvec_serves(1)
        calls = []
        kernel = _compiled.matvec
        monkeypatch.setattr(_compiled, "matvec", lambda *a: (calls.append(1), kernel(*a))[1])
        layer = sprig.compress(sprig.SparseLinear(50, 20, density=0.2, seed=0), backend="csr")
        layer.eval()
        x = torch.randn(1, 50)
        with torch.no_grad():
            y = layer(x)
        assert calls, "a small batch-1 layer on one thread should run MatVec"
        torch.testing.assert_close(y, F.linear(x, layer.dense_weight(), layer.bias))
    finally:
        torch.set_num_threads(threads)
