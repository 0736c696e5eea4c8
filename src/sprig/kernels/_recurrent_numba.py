"""The compiled time loops behind :func:`sprig.kernels.csr_recurrent` (numba, imported lazily).

Two loops over the same CSR arrays:

* ``loop_vec`` walks the batch one sequence at a time and does a CSR mat-vec per step: a row's
  dot product gathers ``v[col[k]]``. Unsigned (uint32) indices matter here: with signed ones
  numba adds a negative-index wrap-around to every gather, which stops LLVM from vectorizing
  the loop into gather instructions (measured 0.84 -> 0.33 ns per nonzero at H=1024, d=0.01).
* ``loop_mat`` keeps the batch innermost (``(H, B)`` states) so each nonzero is loaded once per
  step and multiplies B contiguous values; it is the better shape for batches above one.

Activations are written out as arithmetic so the element-wise part vectorizes too: tanh is
Eigen's rational approximation (max abs error 2.4e-7 against torch's float32 tanh), sigmoid is
``0.5 + 0.5 * tanh(x / 2)``.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

_FM = {"reassoc", "contract", "nsz", "arcp"}  # reassociation lets LLVM vectorize reductions
_jit = numba.njit(cache=True, fastmath=_FM, nogil=True)
_inline = numba.njit(cache=True, fastmath=_FM, inline="always")


@_inline  # type: ignore[misc]
def fast_tanh(x: Any) -> Any:
    # Eigen's generic_fast_tanh_float, evaluated in float64.
    x = min(max(np.float64(x), -7.99881172180175781), 7.99881172180175781)
    x2 = x * x
    p = x2 * -2.76076847742355e-16 + 2.00018790482477e-13
    p = x2 * p + -8.60467152213735e-11
    p = x2 * p + 5.12229709037114e-08
    p = x2 * p + 1.48572235717979e-05
    p = x2 * p + 6.37261928875436e-04
    p = x2 * p + 4.89352455891786e-03
    q = x2 * 1.19825839466702e-06 + 1.18534705686654e-04
    q = x2 * q + 2.26843463243900e-03
    q = x2 * q + 4.89352518554385e-03
    return x * p / q


def ftanh(x):  # type: ignore[no-untyped-def]  # compiled code uses the overload below
    return math.tanh(x)


def fsigmoid(x):  # type: ignore[no-untyped-def]
    return 1.0 / (1.0 + math.exp(-x))


# float32 sums get the fast vectorizable forms; float64 ones keep libm's exact functions.
@overload(ftanh, inline="always")  # type: ignore[misc]
def _ftanh(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: np.float32(fast_tanh(x))
    return lambda x: math.tanh(x)


@overload(fsigmoid, inline="always")  # type: ignore[misc]
def _fsigmoid(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: np.float32(0.5 + 0.5 * fast_tanh(0.5 * np.float64(x)))
    return lambda x: 1.0 / (1.0 + math.exp(-x))


@_inline  # type: ignore[misc]
def activate(v: Any, code: int) -> Any:
    # codes: KERNEL_ACTIVATIONS in _recurrent.py
    if code == 0:
        return np.float64(ftanh(v))
    if code == 1:
        return max(np.float64(v), 0.0)
    if code == 2:
        return np.float64(fsigmoid(v))
    if code == 3:
        return np.float64(v)
    if code == 4:
        return v / (1.0 + math.exp(-np.float64(v)))
    if code == 5:
        return 0.5 * v * (1.0 + math.erf(np.float64(v) * 0.7071067811865476))
    if code == 6:
        return np.float64(v) if v > 0 else math.expm1(np.float64(v))
    return np.float64(v) if v > 0 else 0.01 * np.float64(v)


@_inline  # type: ignore[misc]
def cell_update(cell: int, act: int, s0: Any, s1: Any, s2: Any, s3: Any, h: Any, c: Any) -> Any:
    """New (hidden, cell) value of one unit from its gate sums.

    Elman: ``s0`` = pre-activation. GRU: ``s0, s1`` = r and z sums, ``s2`` = input part and
    ``s3`` = recurrent part of n. LSTM: ``s0..s3`` = i, f, g, o sums.
    """
    if cell == 0:
        return activate(s0, act), np.float64(0.0)
    if cell == 1:
        r = fsigmoid(s0)
        z = fsigmoid(s1)
        n = ftanh(s2 + r * s3)
        return np.float64((1 - z) * n + z * h), np.float64(0.0)
    c_new = fsigmoid(s1) * c + fsigmoid(s0) * ftanh(s2)
    return np.float64(fsigmoid(s3) * ftanh(c_new)), np.float64(c_new)


@_inline  # type: ignore[misc]
def gate_sums(cell: int, H: int, gi: Any, a: int, gh: Any, b: int, j: int) -> Any:
    """The four gate sums ``cell_update`` takes for unit j: input part ``gi[:, a]``, recurrent
    part ``gh[:, b]`` (both ``(G*H, n)`` arrays)."""
    if cell == 0:
        return gi[j, a] + gh[j, b], 0.0, 0.0, 0.0
    if cell == 1:
        return (
            gi[j, a] + gh[j, b],
            gi[H + j, a] + gh[H + j, b],
            gi[2 * H + j, a],
            gh[2 * H + j, b],
        )
    return (
        gi[j, a] + gh[j, b],
        gi[H + j, a] + gh[H + j, b],
        gi[2 * H + j, a] + gh[2 * H + j, b],
        gi[3 * H + j, a] + gh[3 * H + j, b],
    )


@_inline  # type: ignore[misc]
def spmv(crow: Any, col: Any, val: Any, v: Any, bias: Any, out: Any) -> None:
    for i in range(out.shape[0]):
        acc = bias[i]
        for k in range(crow[i], crow[i + 1]):
            acc += val[k] * v[col[k]]
        out[i] = acc


@_jit  # type: ignore[misc]
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
    gh2 = gh.reshape((b_ih.shape[0], 1))
    for b in range(B):
        hb = h[b]
        cb = c[b]
        # The input part of every step at once (time is the contiguous inner loop): only the
        # recurrent product is left inside the sequential loop.
        spmm(ih_crow, ih_col, ih_val, x[b], b_ih, gi)
        for t in range(lengths[b]):
            spmv(hh_crow, hh_col, hh_val, hb, b_hh, gh)
            ob = out[b, t]
            # One branch-free loop per common cell: these vectorize (the generic loop, with
            # its branches and libm calls, runs ~3x slower at H=1024).
            if cell == 0 and act == 0:
                for j in range(H):
                    ob[j] = ftanh(gi[j, t] + gh[j])
            elif cell == 0 and act == 1:
                for j in range(H):
                    ob[j] = max(gi[j, t] + gh[j], 0)
            elif cell == 2:
                for j in range(H):
                    cn = fsigmoid(gi[H + j, t] + gh[H + j]) * cb[j] + fsigmoid(
                        gi[j, t] + gh[j]
                    ) * ftanh(gi[2 * H + j, t] + gh[2 * H + j])
                    cb[j] = cn
                    ob[j] = fsigmoid(gi[3 * H + j, t] + gh[3 * H + j]) * ftanh(cn)
            elif cell == 1:
                for j in range(H):
                    r = fsigmoid(gi[j, t] + gh[j])
                    z = fsigmoid(gi[H + j, t] + gh[H + j])
                    n = ftanh(gi[2 * H + j, t] + r * gh[2 * H + j])
                    ob[j] = (1 - z) * n + z * hb[j]
            else:
                for j in range(H):
                    s0, s1, s2, s3 = gate_sums(cell, H, gi, t, gh2, 0, j)
                    hn, cn = cell_update(cell, act, s0, s1, s2, s3, hb[j], cb[j])
                    ob[j] = hn
            hb[:] = ob


@_inline  # type: ignore[misc]
def spmm(crow: Any, col: Any, val: Any, v: Any, bias: Any, out: Any) -> None:
    # out (R, B) = W (R, n) @ v (n, B) + bias; the batch is the contiguous inner loop
    B = out.shape[1]
    for i in range(out.shape[0]):
        o = out[i]
        for b in range(B):
            o[b] = bias[i]
        for k in range(crow[i], crow[i + 1]):
            w = val[k]
            vr = v[col[k]]
            for b in range(B):
                o[b] += w * vr[b]


@_jit  # type: ignore[misc]
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
    gi = np.empty((b_ih.shape[0], B), dtype=h.dtype)
    gh = np.empty((b_ih.shape[0], B), dtype=h.dtype)
    for t in range(T):
        spmm(ih_crow, ih_col, ih_val, x[t], b_ih, gi)
        spmm(hh_crow, hh_col, hh_val, h, b_hh, gh)
        ot = out[t]
        for j in range(H):
            for b in range(B):
                if t < lengths[b]:
                    s0, s1, s2, s3 = gate_sums(cell, H, gi, b, gh, b, j)
                    hn, cn = cell_update(cell, act, s0, s1, s2, s3, h[j, b], c[j, b])
                    ot[j, b] = hn
                    h[j, b] = hn
                    c[j, b] = cn
