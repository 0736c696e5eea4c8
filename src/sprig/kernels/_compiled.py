"""Compiled CPU loops (numba, imported lazily): the batch-1 CSR product, the sampled product
of sparse training, a parallel gather and scatter, and the direct sparse convolution.

Each loop body is written once, over a range of rows; a serial entry point runs it on all rows
and a parallel one on one part of rows per thread (``_threads``). The recurrent loops live in
``_recurrent_numba``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import prange

from ._threads import configure_numba

configure_numba()  # before the first parallel call

_FM = {"reassoc", "contract", "nsz", "arcp"}  # reassociation lets LLVM vectorize the row sums
# error_model="numpy": a float division may give inf instead of raising, which removes the
# zero-check branch that otherwise keeps LLVM from vectorizing any loop with a division.
# error_model="numpy": no zero-division branch (see _recurrent_numba)
_jit = numba.njit(cache=True, fastmath=_FM, nogil=True, error_model="numpy")
_pjit = numba.njit(cache=True, fastmath=_FM, nogil=True, error_model="numpy", parallel=True)
_inline = numba.njit(cache=True, fastmath=_FM, inline="always", error_model="numpy")


@_inline
def _matvec_range(
    crow: Any, col: Any, val: Any, x: Any, bias: Any, y: Any, r0: int, r1: int
) -> None:
    # y[r] = bias[r] + sum_k val[k] x[col[k]]
    for r in range(r0, r1):
        acc = bias[r]
        for k in range(crow[r], crow[r + 1]):
            acc += val[k] * x[col[k]]
        y[r] = acc


@_jit
def matvec(crow: Any, col: Any, val: Any, x: Any, bias: Any, y: Any) -> None:
    _matvec_range(crow, col, val, x, bias, y, 0, y.shape[0])


@_pjit
def matvec_parallel(crow: Any, col: Any, val: Any, x: Any, bias: Any, y: Any, bounds: Any) -> None:
    for p in prange(bounds.shape[0] - 1):
        _matvec_range(crow, col, val, x, bias, y, bounds[p], bounds[p + 1])


@_inline
def _sampled_range(
    crow: Any, col: Any, gy_t: Any, x_t: Any, out: Any, zero: Any, r0: int, r1: int
) -> None:
    # out[k] = gy_t[r] . x_t[col[k]]: the weight gradient at the nonzeros; ``zero`` is a 0 of
    # the values' dtype (the sums keep that dtype)
    B = gy_t.shape[1]
    for r in range(r0, r1):
        g = gy_t[r]
        for k in range(crow[r], crow[r + 1]):
            xr = x_t[col[k]]
            acc = zero
            for b in range(B):
                acc += g[b] * xr[b]
            out[k] = acc


@_jit
def sampled(crow: Any, col: Any, gy_t: Any, x_t: Any, out: Any, zero: Any) -> None:
    _sampled_range(crow, col, gy_t, x_t, out, zero, 0, crow.shape[0] - 1)


@_pjit
def sampled_parallel(
    crow: Any, col: Any, gy_t: Any, x_t: Any, out: Any, zero: Any, bounds: Any
) -> None:
    for p in prange(bounds.shape[0] - 1):
        _sampled_range(crow, col, gy_t, x_t, out, zero, bounds[p], bounds[p + 1])


@_pjit
def gather(src: Any, index: Any, out: Any, parts: int) -> None:
    # out[i] = src[index[i]], the index cut into ``parts`` contiguous pieces
    n = index.shape[0]
    step = (n + parts - 1) // parts
    for p in prange(parts):
        for i in range(p * step, min(n, (p + 1) * step)):
            out[i] = src[index[i]]


@_pjit
def scatter(src: Any, index: Any, out: Any, parts: int) -> None:
    # out[index[i]] = src[i] (distinct indices), the index cut into ``parts`` pieces
    n = index.shape[0]
    step = (n + parts - 1) // parts
    for p in prange(parts):
        for i in range(p * step, min(n, (p + 1) * step)):
            out[index[i]] = src[i]


# sparse inputs into a sparse layer (_sparse_input): y += x W^T and the gradient at W's
# nonzeros, both over the nonzeros of x and of W's transpose
@_jit
def sparse_input_forward(
    xcrow: Any, xcol: Any, xval: Any, tcrow: Any, tcol: Any, vt: Any, y: Any
) -> None:
    # y[n, i] += x[n, j] * W[i, j]: x's row n, then W's column j (W^T's row j)
    for n in range(y.shape[0]):
        for p in range(xcrow[n], xcrow[n + 1]):
            j = xcol[p]
            xv = xval[p]
            for q in range(tcrow[j], tcrow[j + 1]):
                y[n, tcol[q]] += xv * vt[q]


@_jit
def sparse_input_grad(
    xccol: Any, xcrow_idx: Any, xcval: Any, tcrow: Any, tcol: Any, gy: Any, gvt: Any
) -> None:
    # gvt[q] = sum_n x[n, j] gy[n, i] for W^T's entry q = (j, i): x's column j (CSC)
    for j in range(tcrow.shape[0] - 1):
        for p in range(xccol[j], xccol[j + 1]):
            n = xcrow_idx[p]
            xv = xcval[p]
            for q in range(tcrow[j], tcrow[j + 1]):
                gvt[q] += xv * gy[n, tcol[q]]


# planes whose wide output run is at most this many floats take _conv_small's fixed-width loop;
# the input must then have that many readable floats past its end (SparseConv pads them)
CONV_SMALL = 80  # ResNet's 8x8 planes: runs of 78


@_inline
def _conv_small(crow: Any, off: Any, val: Any, xb: Any, acc: Any, t0: int, o: int, v: int) -> None:
    # acc[:v] += the nonzeros of o over a run of v positions, v a constant at each call site:
    # with a known trip count LLVM turns the loop into whole vectors, where a run-time n of 6,
    # 22 or 78 (ResNet's 2x2, 4x4, 8x8 planes) runs all or part in the scalar remainder loop.
    # Unsigned indices drop numba's negative-index wraparound branch, which otherwise blocks
    # vectorizing (slices instead cost more than the multiply-adds at this width).
    k = crow[o]
    k1 = crow[o + 1]
    while k + 4 <= k1:
        w0, w1, w2, w3 = val[k], val[k + 1], val[k + 2], val[k + 3]
        a0 = np.uint64(off[k] + t0)
        a1 = np.uint64(off[k + 1] + t0)
        a2 = np.uint64(off[k + 2] + t0)
        a3 = np.uint64(off[k + 3] + t0)
        for i in range(v):
            u = np.uint64(i)
            acc[i] += w0 * xb[a0 + u] + w1 * xb[a1 + u] + w2 * xb[a2 + u] + w3 * xb[a3 + u]
        k += 4
    while k < k1:
        w0 = val[k]
        a0 = np.uint64(off[k] + t0)
        for i in range(v):
            acc[i] += w0 * xb[a0 + np.uint64(i)]
        k += 1


@_inline
def _conv_range(
    crow: Any, off: Any, val: Any, x: Any, bias: Any, y: Any, wq: int, tile: int, o0: int, o1: int
) -> None:
    # Direct sparse convolution over output channels o0..o1 (see _conv). x: (B, L) flat padded
    # (and, for strides > 1, polyphase) input; y: (B, O, Ho, Wo). Output rows are computed
    # "wide": position i = oy * wq + ox over the input's row pitch wq, so that every nonzero adds
    # w * x[off + i] over one contiguous run of i (the columns ox >= Wo are thrown away). Row
    # tiles of ``tile`` rows keep the accumulator in L1. Four nonzeros per pass: one load and
    # store of the accumulator per four multiply-adds (the store port is the limit otherwise).
    # Runs of at most CONV_SMALL positions take _conv_small (x padded past its end).
    n_out, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    acc = np.empty(tile * wq + CONV_SMALL, dtype=y.dtype)
    for b in range(x.shape[0]):
        xb = x[b]
        for r0 in range(0, ho, tile):
            r1 = min(ho, r0 + tile)
            t0 = r0 * wq
            n = (r1 - 1 - r0) * wq + wo
            for o in range(o0, min(o1, n_out)):
                bo = bias[o]
                for i in range(max(n, CONV_SMALL)):
                    acc[i] = bo
                k = crow[o]
                k1 = crow[o + 1]
                if n <= 8:
                    _conv_small(crow, off, val, xb, acc, t0, o, 8)
                    k = k1
                elif n <= 16:
                    _conv_small(crow, off, val, xb, acc, t0, o, 16)
                    k = k1
                elif n <= 32:
                    _conv_small(crow, off, val, xb, acc, t0, o, 32)
                    k = k1
                elif n <= 48:
                    _conv_small(crow, off, val, xb, acc, t0, o, 48)
                    k = k1
                elif n <= 64:  # a 1x1 convolution's 8x8 plane: exactly 64
                    _conv_small(crow, off, val, xb, acc, t0, o, 64)
                    k = k1
                elif n <= CONV_SMALL:
                    _conv_small(crow, off, val, xb, acc, t0, o, CONV_SMALL)
                    k = k1
                while k + 4 <= k1:
                    w0, w1, w2, w3 = val[k], val[k + 1], val[k + 2], val[k + 3]
                    x0 = xb[off[k] + t0 : off[k] + t0 + n]
                    x1 = xb[off[k + 1] + t0 : off[k + 1] + t0 + n]
                    x2 = xb[off[k + 2] + t0 : off[k + 2] + t0 + n]
                    x3 = xb[off[k + 3] + t0 : off[k + 3] + t0 + n]
                    for i in range(n):
                        acc[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                    k += 4
                while k < k1:
                    w0 = val[k]
                    x0 = xb[off[k] + t0 : off[k] + t0 + n]
                    for i in range(n):
                        acc[i] += w0 * x0[i]
                    k += 1
                yo = y[b, o]
                for r in range(r1 - r0):
                    for c in range(wo):
                        yo[r0 + r, c] = acc[r * wq + c]


@_jit
def sparse_conv(
    crow: Any, off: Any, val: Any, x: Any, bias: Any, y: Any, wq: int, tile: int
) -> None:
    _conv_range(crow, off, val, x, bias, y, wq, tile, 0, y.shape[1])


@_pjit
def sparse_conv_parallel(
    crow: Any, off: Any, val: Any, x: Any, bias: Any, y: Any, wq: int, tile: int, bounds: Any
) -> None:
    for p in prange(bounds.shape[0] - 1):
        _conv_range(crow, off, val, x, bias, y, wq, tile, bounds[p], bounds[p + 1])
