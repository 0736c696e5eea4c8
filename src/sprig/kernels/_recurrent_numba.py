"""The compiled time loops behind :func:`sprig.kernels.csr_recurrent` (numba, imported lazily).

Three loops over the same CSR arrays, each running a whole sequence in one call:

* ``loop_vec`` (batch 1, or sequence by sequence): first the input part of every step at once
  (``W_ih X``, time innermost, vectorized), then per step one CSR mat-vec ``W_hh h`` whose rows
  gather ``h[col[k]]``, folded with the input part, then the cell's element-wise update.
* ``loop_vec_parallel``: ``loop_vec`` with each step's recurrent product split over OpenMP
  threads, for big layers only (one parallel region per step; :func:`csr_recurrent` picks it,
  and ``benchmarks/bench_rnn.py`` has the table where it gains);
* ``loop_mat`` (batch > 1) keeps the batch innermost (``(H, B)`` states), so each nonzero is
  loaded once per step for all sequences.

What made them fast (figures: ``benchmarks/results/design_measurements.md``, rows
``numba-uint32``, ``numba-errmodel``, ``numba-branches``):

* uint32 indices: with signed ones numba adds a negative-index wrap-around to every gather,
  which stops LLVM from vectorizing the row loops;
* ``error_model="numpy"``: numba's default puts a zero-division branch in every loop that
  divides, so the tanh loop did not vectorize;
* one branch-free element-wise loop per common cell instead of a generic one with branches.

float32 uses Eigen's rational tanh (max abs error 4.2e-7 against torch's float32 tanh) and
``sigmoid(x) = 0.5 + 0.5 tanh(x / 2)``; float64 keeps libm's exact functions. Threads pay only
for big layers (waking them costs more than a small step's products), hence the size rule in
:func:`csr_recurrent` rather than a threaded build for all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange, types
from numba.extending import overload

# one home for the compile options (fastmath set, error model, threading layer): _compiled
from ._compiled import _inline, _jit, _pjit
from ._recurrent import Act, Cell

# the codes as plain ints, which numba freezes into the compiled loops as constants
_RNN, _GRU, _LSTM = int(Cell.RNN), int(Cell.GRU), int(Cell.LSTM)
_TANH, _RELU, _SIGMOID, _IDENTITY = (
    int(Act.TANH),
    int(Act.RELU),
    int(Act.SIGMOID),
    int(Act.IDENTITY),
)
_SILU, _GELU, _ELU = int(Act.SILU), int(Act.GELU), int(Act.ELU)

_F = np.float32
_CLAMP = _F(7.99881172180175781)
_A = tuple(
    _F(a)
    for a in (
        -2.76076847742355e-16,
        2.00018790482477e-13,
        -8.60467152213735e-11,
        5.12229709037114e-08,
        1.48572235717979e-05,
        6.37261928875436e-04,
        4.89352455891786e-03,
    )
)
_B = tuple(_F(b) for b in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03))
_B0 = _F(4.89352518554385e-03)
_HALF = _F(0.5)


@_inline
def fast_tanh(x: Any) -> Any:
    # Eigen's generic_fast_tanh_float in float32 (max abs error 4.2e-7 against torch.tanh)
    x = max(min(x, _CLAMP), -_CLAMP)
    x2 = x * x
    p = x2 * _A[0] + _A[1]
    p = x2 * p + _A[2]
    p = x2 * p + _A[3]
    p = x2 * p + _A[4]
    p = x2 * p + _A[5]
    p = x2 * p + _A[6]
    q = x2 * _B[0] + _B[1]
    q = x2 * q + _B[2]
    q = x2 * q + _B0
    return x * p / q


def ftanh(x):  # type: ignore[no-untyped-def]  # compiled code uses the overload below
    return math.tanh(x)


def fsigmoid(x):  # type: ignore[no-untyped-def]
    return 1.0 / (1.0 + math.exp(-x))


# float32 sums get the fast vectorizable forms; float64 ones keep libm's exact functions.
@overload(ftanh, inline="always")
def _ftanh(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: fast_tanh(x)
    return lambda x: math.tanh(x)


@overload(fsigmoid, inline="always")
def _fsigmoid(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: _HALF + _HALF * fast_tanh(_HALF * x)
    return lambda x: 1.0 / (1.0 + math.exp(-x))


@_inline
def activate(v: Any, code: int) -> Any:
    # codes: the Act enum in _recurrent.py (LEAKY_RELU is the last branch)
    if code == _TANH:
        return np.float64(ftanh(v))
    if code == _RELU:
        return max(np.float64(v), 0.0)
    if code == _SIGMOID:
        return np.float64(fsigmoid(v))
    if code == _IDENTITY:
        return np.float64(v)
    if code == _SILU:
        return v / (1.0 + math.exp(-np.float64(v)))
    if code == _GELU:
        return 0.5 * v * (1.0 + math.erf(np.float64(v) * 0.7071067811865476))
    if code == _ELU:
        return np.float64(v) if v > 0 else math.expm1(np.float64(v))
    return np.float64(v) if v > 0 else 0.01 * np.float64(v)


@_inline
def spmv(
    crow: Any,
    col: Any,
    val: Any,
    v: Any,
    bias: Any,
    gi: Any,
    t: int,
    fold: int,
    out: Any,
    r0: int,
    r1: int,
) -> None:
    # out = W v + bias on rows r0 <= i < r1, plus the step's input part gi[:, t] on the
    # first ``fold`` rows
    for i in range(r0, r1):
        acc = bias[i] + gi[i, t] if i < fold else bias[i]
        for k in range(crow[i], crow[i + 1]):
            acc += val[k] * v[col[k]]
        out[i] = acc


@_inline
def update_vec(cell: int, act: int, gh: Any, gi: Any, t: int, hb: Any, cb: Any, ob: Any) -> None:
    # the cell's element-wise update from the gates ``gh``: ob = h_t, cb = c_t (LSTM).
    # One branch-free loop per common cell: these vectorize (a loop with branches and libm
    # calls runs slower: design_measurements.md, row numba-branches).
    H = hb.shape[0]
    if cell == _RNN and act == _TANH:
        for j in range(H):
            ob[j] = ftanh(gh[j])
    elif cell == _RNN and act == _RELU:
        for j in range(H):
            ob[j] = max(gh[j], 0)
    elif cell == _RNN:
        for j in range(H):
            ob[j] = activate(gh[j], act)
    elif cell == _LSTM:
        for j in range(H):
            cn = fsigmoid(gh[H + j]) * cb[j] + fsigmoid(gh[j]) * ftanh(gh[2 * H + j])
            cb[j] = cn
            ob[j] = fsigmoid(gh[3 * H + j]) * ftanh(cn)
    else:
        for j in range(H):
            r = fsigmoid(gh[j])
            z = fsigmoid(gh[H + j])
            # the GRU's n gate keeps its two parts apart: n = tanh(in + r * rec)
            n = ftanh(gi[2 * H + j, t] + r * gh[2 * H + j])
            ob[j] = (1 - z) * n + z * hb[j]
    hb[:] = ob


@_jit
def loop_vec(
    x: Any,  # (B, I, T): time innermost, for the all-steps input product
    lengths: Any,  # (B,) int64
    h: Any,  # (B, H) in: h0, out: h_n
    c: Any,  # (B, H) LSTM cell state, in and out
    ih_crow: Any,  # uint32
    ih_col: Any,  # uint32
    ih_val: Any,
    hh_crow: Any,
    hh_col: Any,
    hh_val: Any,
    b_ih: Any,  # (G*H,)
    b_hh: Any,
    cell: int,
    act: int,
    out: Any,  # (B, T, H), zeros in
) -> None:
    B, _, T = x.shape
    H = h.shape[1]
    gi = np.empty((b_ih.shape[0], T), dtype=h.dtype)
    gh = np.empty(b_ih.shape[0], dtype=h.dtype)
    for b in range(B):
        hb = h[b]
        cb = c[b]
        # The input part of every step at once (time is the contiguous inner loop): only the
        # recurrent product is left inside the sequential loop.
        spmm(ih_crow, ih_col, ih_val, x[b], b_ih, gi)
        fold = 2 * H if cell == _GRU else gh.shape[0]
        for t in range(lengths[b]):
            spmv(hh_crow, hh_col, hh_val, hb, b_hh, gi, t, fold, gh, 0, gh.shape[0])
            update_vec(cell, act, gh, gi, t, hb, cb, out[b, t])


@_pjit
def loop_vec_parallel(
    x: Any,
    lengths: Any,
    h: Any,
    c: Any,
    ih_crow: Any,
    ih_col: Any,
    ih_val: Any,
    hh_crow: Any,
    hh_col: Any,
    hh_val: Any,
    b_ih: Any,
    b_hh: Any,
    cell: int,
    act: int,
    out: Any,
    bounds: Any,  # (parts + 1,) row cuts of W_hh, one part per thread
) -> None:
    # loop_vec with each step's recurrent product split over threads (one parallel region per
    # step: it pays for big layers only, see csr_recurrent)
    B, _, T = x.shape
    H = h.shape[1]
    gi = np.empty((b_ih.shape[0], T), dtype=h.dtype)
    gh = np.empty(b_ih.shape[0], dtype=h.dtype)
    fold = 2 * H if cell == _GRU else gh.shape[0]
    for b in range(B):
        hb = h[b]
        cb = c[b]
        spmm(ih_crow, ih_col, ih_val, x[b], b_ih, gi)
        for t in range(lengths[b]):
            for p in prange(bounds.shape[0] - 1):
                spmv(hh_crow, hh_col, hh_val, hb, b_hh, gi, t, fold, gh, bounds[p], bounds[p + 1])
            update_vec(cell, act, gh, gi, t, hb, cb, out[b, t])


@_inline
def spmm(crow: Any, col: Any, val: Any, v: Any, bias: Any, out: Any) -> None:
    # out (R, B) = W (R, n) @ v (n, B) + bias; the batch is the contiguous inner loop.
    # Plain 2-D indexing, no row views: a view per nonzero costs a reference-count update.
    B = out.shape[1]
    for i in range(out.shape[0]):
        for b in range(B):
            out[i, b] = bias[i]
        for k in range(crow[i], crow[i + 1]):
            w = val[k]
            ck = col[k]
            for b in range(B):
                out[i, b] += w * v[ck, b]


@_inline
def gates_mat(cell: int, act: int, gi: Any, gh: Any, h: Any, c: Any, hn: Any, cn: Any) -> None:
    # hn (and cn, LSTM) from the step's input part gi and recurrent part gh (biases included)
    # and the previous h, c. Branch-free loops per common cell (they vectorize).
    H, B = h.shape
    if cell == _RNN and act == _TANH:
        for j in range(H):
            for b in range(B):
                hn[j, b] = ftanh(gh[j, b] + gi[j, b])
    elif cell == _RNN and act == _RELU:
        for j in range(H):
            for b in range(B):
                hn[j, b] = max(gh[j, b] + gi[j, b], 0)
    elif cell == _RNN:
        for j in range(H):
            for b in range(B):
                hn[j, b] = activate(gh[j, b] + gi[j, b], act)
    elif cell == _LSTM:
        for j in range(H):
            for b in range(B):
                i_g = fsigmoid(gh[j, b] + gi[j, b])
                f_g = fsigmoid(gh[H + j, b] + gi[H + j, b])
                g_g = ftanh(gh[2 * H + j, b] + gi[2 * H + j, b])
                cv = f_g * c[j, b] + i_g * g_g
                cn[j, b] = cv
                hn[j, b] = fsigmoid(gh[3 * H + j, b] + gi[3 * H + j, b]) * ftanh(cv)
    else:
        for j in range(H):
            for b in range(B):
                r = fsigmoid(gh[j, b] + gi[j, b])
                z = fsigmoid(gh[H + j, b] + gi[H + j, b])
                # the GRU's n gate keeps its two parts apart: n = tanh(in + r * rec)
                n = ftanh(gi[2 * H + j, b] + r * gh[2 * H + j, b])
                hn[j, b] = (1 - z) * n + z * h[j, b]


@_inline
def update_mat(
    cell: int,
    act: int,
    gi: Any,  # (GH, B) input part of the step, b_ih included
    gh: Any,  # (GH, B) recurrent part, b_hh included
    h: Any,  # (H, B) in: h_{t-1}, out: h_t (sequences past their length keep theirs)
    c: Any,  # (H, B) LSTM cell state, in and out
    hn: Any,  # (H, B) scratch
    cn: Any,  # (H, B) scratch
    live: Any,  # (B,) bool: the sequence has this step
    ot: Any,  # (H, B) the step's output (untouched for finished sequences)
) -> None:
    H, B = h.shape
    all_live = True
    for b in range(B):
        all_live = all_live and live[b]
    if all_live:  # the common case: straight into the output, no masked commit
        gates_mat(cell, act, gi, gh, h, c, ot, cn)
        h[:, :] = ot
        if cell == _LSTM:
            c[:, :] = cn
        return
    gates_mat(cell, act, gi, gh, h, c, hn, cn)
    for j in range(H):
        for b in range(B):
            if live[b]:
                ot[j, b] = hn[j, b]
                h[j, b] = hn[j, b]
                if cell == _LSTM:
                    c[j, b] = cn[j, b]


@_jit
def loop_mat(
    x: Any,  # (T, I, B)
    lengths: Any,  # (B,) int64
    h: Any,  # (H, B) in: h0, out: h_n
    c: Any,  # (H, B)
    ih_crow: Any,
    ih_col: Any,
    ih_val: Any,
    hh_crow: Any,
    hh_col: Any,
    hh_val: Any,
    b_ih: Any,
    b_hh: Any,
    cell: int,
    act: int,
    out: Any,  # (T, H, B), zeros in
) -> None:
    T = x.shape[0]
    H, B = h.shape
    GH = b_ih.shape[0]
    gi = np.empty((GH, B), dtype=h.dtype)
    gh = np.empty((GH, B), dtype=h.dtype)
    hn = np.empty((H, B), dtype=h.dtype)
    cn = np.empty((H, B), dtype=h.dtype)
    live = np.empty(B, dtype=np.bool_)
    for t in range(T):
        for b in range(B):
            live[b] = t < lengths[b]
        spmm(ih_crow, ih_col, ih_val, x[t], b_ih, gi)
        spmm(hh_crow, hh_col, hh_val, h, b_hh, gh)
        update_mat(cell, act, gi, gh, h, c, hn, cn, live, out[t])
