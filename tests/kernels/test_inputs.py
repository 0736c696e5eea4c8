"""Sparse inputs (torch COO/CSR, scipy.sparse) and chunked streaming with bounded memory."""

import gc
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

import sprig


def _layers():
    layer = sprig.SparseLinear(40, 12, density=0.3, seed=0)
    return layer, sprig.compress(layer)


def _inputs(n=23, seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(n, 40, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    m = sp.csr_matrix(m.multiply(np.arange(n)[:, None] != 3))  # row 3 empty
    dense = torch.from_numpy(m.toarray())
    return m, dense


@pytest.mark.parametrize("kind", ["scipy_csr", "scipy_coo", "scipy_csc", "torch_coo", "torch_csr"])
@pytest.mark.parametrize("chunk_size", [None, 1, 5, 100])
def test_sparse_inputs_match_dense(kind, chunk_size):
    m, dense = _inputs()
    x = {
        "scipy_csr": m,
        "scipy_coo": m.tocoo(),
        "scipy_csc": m.tocsc(),
        "torch_coo": dense.to_sparse(),
        "torch_csr": dense.to_sparse_csr(),
    }[kind]
    for layer in _layers():
        want = F.linear(dense, layer.weight if hasattr(layer, "weight") else layer.dense_weight(),
                        layer.bias)  # fmt: skip
        with torch.no_grad():
            got = layer(x, chunk_size=chunk_size)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_scipy_float64_is_cast_and_dense_chunks_work():
    m, dense = _inputs()
    layer, comp = _layers()
    with torch.no_grad():
        torch.testing.assert_close(comp(m.astype(np.float64)), comp(dense), rtol=1e-5, atol=1e-5)
        x = torch.randn(3, 7, 40)
        torch.testing.assert_close(comp(x, chunk_size=4), comp(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer(x, chunk_size=4), layer(x), rtol=1e-5, atol=1e-5)
        assert comp(sp.csr_matrix((0, 40), dtype=np.float32)).shape == (0, 12)


def test_bad_sparse_inputs():
    _, comp = _layers()
    _, dense = _inputs()
    with pytest.raises(ValueError, match="unsupported sparse layout torch.sparse_csc"):
        comp(dense.to_sparse_csc())
    with pytest.raises(ValueError, match=r"must be \(N, 40\)"):
        comp(torch.zeros(3, 41).to_sparse())
    with pytest.raises(TypeError, match="dtype torch.float64 differs"):
        comp(dense.double().to_sparse())
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        comp(dense.to_sparse(), chunk_size=0)
    with pytest.raises(TypeError, match="input must be a torch tensor or a scipy.sparse matrix"):
        comp(np.zeros((2, 40)), chunk_size=1)


def _peak_growth(fn) -> int:
    """Bytes by which the process's peak RSS rises over its current RSS while ``fn`` runs."""

    def status(field):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

    # garbage of earlier tests freed during fn would lower the RSS below `before` and hide the
    # growth (a full-suite run measured 0): collect it first
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
    before = status("VmRSS")
    out = fn()
    grow = status("VmHWM") - before
    del out
    return grow


@pytest.mark.slow
@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc peak-RSS reset"
)
def test_chunked_streaming_keeps_peak_memory_bounded():
    """Peak memory of a chunked pass stays flat as rows grow 4x; unchunked it grows with rows."""
    in_f = 1000
    layer = sprig.compress(sprig.SparseLinear(in_f, 4, density=0.1, seed=0))
    rng = np.random.default_rng(0)
    small, large = 20_000, 80_000  # densified: 80 MB and 320 MB
    xs = {n: sp.random(n, in_f, density=0.001, format="csr", random_state=rng,
                       dtype=np.float32) for n in (small, large)}  # fmt: skip
    with torch.no_grad():
        layer(xs[small][:10], chunk_size=5)  # warm up (allocator, MKL)
        chunked = {n: _peak_growth(lambda n=n: layer(xs[n], chunk_size=500)) for n in xs}
        whole = _peak_growth(lambda: layer(xs[small]))
    dense_small = small * in_f * 4
    # the check has teeth: converting at once costs at least the dense input
    assert whole >= 0.9 * dense_small, whole
    # chunked: a chunk (2 MB) plus the (N, 4) output, whatever N
    out_large = large * 4 * 4
    assert chunked[large] <= out_large + 12 * 2**20, chunked
    assert chunked[large] <= chunked[small] + out_large + 4 * 2**20, chunked
    assert chunked[large] < 0.1 * large * in_f * 4
