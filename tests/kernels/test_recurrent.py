import pytest
import torch

from sprig.kernels import (
    KERNEL_ACTIVATIONS,
    RecurrentLayer,
    _recurrent,
    _threads,
    csr_recurrent,
    recurrent_reference,
    to_csr,
)
from sprig.kernels import _recurrent_numba as nb
from sprig.masks import make_mask

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _layer(cell, I, H, density, dtype=torch.float32, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = GATES[cell]
    parts = []
    for shape in ((G * H, I), (G * H, H)):
        if density == 0:
            mask = torch.zeros(shape, dtype=torch.bool)
        else:
            mask = make_mask(shape, density, generator=seed)
        w = torch.randn(shape, generator=g, dtype=dtype) * mask
        parts.append((w, mask))
    b = [torch.randn(G * H, generator=g, dtype=dtype) if bias else None for _ in range(2)]
    dense = RecurrentLayer(parts[0][0], parts[1][0], *b)
    csr = RecurrentLayer(to_csr(*parts[0]), to_csr(*parts[1]), *b)
    return dense, csr


# awkward shapes: one unit, odd sizes, batch 1, single step, empty rows, all-zero, density 1
SHAPES = [
    # (T, B, I, H, density)
    (1, 1, 1, 1, 1.0),
    (7, 1, 5, 3, 0.3),
    (6, 3, 4, 9, 0.05),  # mostly empty rows
    (4, 2, 3, 5, 0.0),  # all-zero weights
    (5, 4, 11, 13, 1.0),
]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(("T", "B", "I", "H", "density"), SHAPES)
@pytest.mark.parametrize("split", [False, True])
def test_matches_reference(cell, T, B, I, H, density, split, monkeypatch):
    calls = []
    monkeypatch.setattr(_recurrent, "MKL_STEP_MIN", 0 if split else 10**12)
    if split:  # every step's recurrent product split over 2 threads, even this small one
        monkeypatch.setattr(_threads, "MIN_NNZ_PER_THREAD", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
        parallel = nb.loop_vec_parallel
        monkeypatch.setattr(nb, "loop_vec_parallel", lambda *a: calls.append(1) or parallel(*a))
    # batches: with split, the torch loop of CSR products and cell ops
    mkl = []
    mkl_loop = _recurrent._torch_csr_loop
    monkeypatch.setattr(_recurrent, "_torch_csr_loop", lambda *a: mkl.append(1) or mkl_loop(*a))
    dense, csr = _layer(cell, I, H, density, seed=T * 100 + H)
    x = torch.randn(T, B, I)
    h0 = torch.randn(B, H)
    c0 = torch.randn(B, H) if cell == "lstm" else None
    lengths = torch.randint(0, T + 1, (B,))
    for kw in ({}, {"h0": h0, "c0": c0, "lengths": lengths}):
        got = csr_recurrent(x, csr, cell, **kw)
        want = recurrent_reference(x, dense, cell, **kw)
        for a, b in zip(got, want):
            if b is None:
                assert a is None
            else:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert bool(calls) == (split and B == 1 and density * H * H * GATES[cell] >= 2)
    assert bool(mkl) == (split and B > 1)


@pytest.mark.parametrize("act", sorted(KERNEL_ACTIVATIONS))
def test_every_kernel_activation(act):
    dense, csr = _layer("rnn", 6, 10, 0.4, seed=5)
    x = torch.randn(8, 2, 6)
    got = csr_recurrent(x, csr, "rnn", act)
    want = recurrent_reference(x, dense, "rnn", act)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)


def test_function_activation_runs_torch_loop():
    dense, csr = _layer("rnn", 3, 7, 0.5, seed=6)
    x = torch.randn(5, 2, 3)
    lengths = torch.tensor([5, 2])

    def act(v):
        return torch.sin(v)

    got = csr_recurrent(x, csr, "rnn", act, lengths=lengths)
    want = recurrent_reference(x, dense, "rnn", act, lengths=lengths)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])


def test_float64_and_no_bias():
    dense, csr = _layer("lstm", 4, 6, 0.5, dtype=torch.float64, bias=False, seed=7)
    x = torch.randn(9, 2, 4, dtype=torch.float64)
    got = csr_recurrent(x, csr, "lstm")
    want = recurrent_reference(x, dense, "lstm")
    assert got[0].dtype == torch.float64
    torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    dense, csr = _layer("gru", 4, 6, 0.5)
    x = torch.randn(3, 2, 4)
    with pytest.raises(ValueError, match="valid names are: rnn, gru, lstm"):
        csr_recurrent(x, csr, "elman")
    with pytest.raises(ValueError, match=r"\(4\*H, I\)"):
        csr_recurrent(x, csr, "lstm")
    with pytest.raises(ValueError, match=r"x must be \(T, B, input_size\)"):
        csr_recurrent(x[0], csr, "gru")
    with pytest.raises(ValueError, match="x has 5 features but weight_ih expects 4"):
        csr_recurrent(torch.randn(3, 2, 5), csr, "gru")
    with pytest.raises(ValueError, match=r"h0 must have shape \(B, H\) = \(2, 6\)"):
        csr_recurrent(x, csr, "gru", h0=torch.zeros(6))
    with pytest.raises(ValueError, match=r"in \[0, T=3\]"):
        csr_recurrent(x, csr, "gru", lengths=torch.tensor([4, 1]))
    with pytest.raises(ValueError, match="needs CSR weights"):
        csr_recurrent(x, dense, "gru")
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        csr_recurrent(x, _layer("rnn", 4, 6, 0.5)[1], "rnn", "swish2")


def test_bad_bias_and_bad_csr_raise_before_the_compiled_loop():
    # the compiled loops check no bounds: a short bias read past its end, a long one crashed
    _, csr = _layer("gru", 4, 6, 0.5)
    x = torch.randn(3, 1, 4)
    for b in (torch.zeros(1), torch.zeros(18 + 500)):
        bad = RecurrentLayer(csr.weight_ih, csr.weight_hh, b, csr.bias_hh)
        with pytest.raises(ValueError, match=r"bias_ih of shape .* does not fit: pass \(18,\)"):
            csr_recurrent(x, bad, "gru")
    w = csr.weight_hh
    col = w.col_indices().clone()
    col[0] = 99
    broken = torch.sparse_csr_tensor(
        w.crow_indices(), col, w.values(), size=w.shape, check_invariants=False
    )
    with pytest.raises(ValueError, match=r"weight_hh: CSR column indices fall outside \[0, 6\)"):
        csr_recurrent(x, RecurrentLayer(csr.weight_ih, broken, csr.bias_ih, csr.bias_hh), "gru")
