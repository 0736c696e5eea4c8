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

from ._lanes import LANES, vadd, vfma, vload, vsplat, vstore, vzeros
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


# output positions per block of _conv_block (four vectors) and of _conv_wide (sixteen); the
# input must have CONV_BLOCK readable floats past its end, as the last block may run past the
# last position (a wide block never does)
CONV_BLOCK = 4 * LANES
CONV_WIDE = 16 * LANES


@_inline
def _conv_block(
    off: Any, val: Any, xb: Any, q0: int, acc: Any, p: int, k0: int, k1: int, bo: Any
) -> None:
    # acc[p : p + CONV_BLOCK] = bo + the sum over k in k0..k1 of val[k] * xb[off[k] + q0 :]
    # with the sums in registers throughout. Two nonzeros a pass into two sets of four vectors:
    # eight independent chains, as a multiply-add takes four cycles and two issue per cycle.
    # Unsigned indices drop numba's negative-index wraparound code from the loop.
    a0 = vsplat(bo)
    a1, a2, a3 = a0, a0, a0
    b0 = vzeros(a0)
    b1, b2, b3 = b0, b0, b0
    k = np.uint64(k0)
    end = np.uint64(k1)
    one = np.uint64(1)
    while k + one < end:
        w, q = val[k], off[k] + q0
        v, r = val[k + one], off[k + one] + q0
        a0 = vfma(a0, w, vload(xb, q))
        a1 = vfma(a1, w, vload(xb, q + LANES))
        a2 = vfma(a2, w, vload(xb, q + 2 * LANES))
        a3 = vfma(a3, w, vload(xb, q + 3 * LANES))
        b0 = vfma(b0, v, vload(xb, r))
        b1 = vfma(b1, v, vload(xb, r + LANES))
        b2 = vfma(b2, v, vload(xb, r + 2 * LANES))
        b3 = vfma(b3, v, vload(xb, r + 3 * LANES))
        k += np.uint64(2)
    if k < end:
        w, q = val[k], off[k] + q0
        a0 = vfma(a0, w, vload(xb, q))
        a1 = vfma(a1, w, vload(xb, q + LANES))
        a2 = vfma(a2, w, vload(xb, q + 2 * LANES))
        a3 = vfma(a3, w, vload(xb, q + 3 * LANES))
    vstore(acc, p, vadd(a0, b0))
    vstore(acc, p + LANES, vadd(a1, b1))
    vstore(acc, p + 2 * LANES, vadd(a2, b2))
    vstore(acc, p + 3 * LANES, vadd(a3, b3))


@_inline
def _conv_lanes(
    off: Any, val: Any, xb: Any, q0: int, acc: Any, p: int, k0: int, k1: int, bo: Any
) -> None:
    # _conv_block for one vector of positions (small planes: 2x2 and 4x4 outputs), four
    # nonzeros a pass into four chains
    a0 = vsplat(bo)
    a1 = vzeros(a0)
    a2, a3 = a1, a1
    k = np.uint64(k0)
    end = np.uint64(k1)
    one = np.uint64(1)
    while k + np.uint64(3) < end:
        a0 = vfma(a0, val[k], vload(xb, off[k] + q0))
        a1 = vfma(a1, val[k + one], vload(xb, off[k + one] + q0))
        a2 = vfma(a2, val[k + np.uint64(2)], vload(xb, off[k + np.uint64(2)] + q0))
        a3 = vfma(a3, val[k + np.uint64(3)], vload(xb, off[k + np.uint64(3)] + q0))
        k += np.uint64(4)
    while k < end:
        a0 = vfma(a0, val[k], vload(xb, off[k] + q0))
        k += one
    vstore(acc, p, vadd(vadd(a0, a1), vadd(a2, a3)))


@_inline
def _conv_wide(
    off: Any, val: Any, xb: Any, q0: int, acc: Any, p: int, k0: int, k1: int, bo: Any
) -> None:
    # _conv_block over CONV_WIDE positions: sixteen chains already, so one nonzero a pass. Each
    # nonzero reads one 1 KB run of x; on large planes, whose input does not fit L1 (ResNet's
    # 64 x 58 x 58 floats), that measured faster than four 256-byte runs (x streams from L2)
    a0 = vsplat(bo)
    a1, a2, a3, a4, a5, a6, a7 = a0, a0, a0, a0, a0, a0, a0
    a8, a9, a10, a11, a12, a13, a14, a15 = a0, a0, a0, a0, a0, a0, a0, a0
    k = np.uint64(k0)
    end = np.uint64(k1)
    while k < end:
        w, q = val[k], off[k] + q0
        a0 = vfma(a0, w, vload(xb, q))
        a1 = vfma(a1, w, vload(xb, q + LANES))
        a2 = vfma(a2, w, vload(xb, q + 2 * LANES))
        a3 = vfma(a3, w, vload(xb, q + 3 * LANES))
        a4 = vfma(a4, w, vload(xb, q + 4 * LANES))
        a5 = vfma(a5, w, vload(xb, q + 5 * LANES))
        a6 = vfma(a6, w, vload(xb, q + 6 * LANES))
        a7 = vfma(a7, w, vload(xb, q + 7 * LANES))
        a8 = vfma(a8, w, vload(xb, q + 8 * LANES))
        a9 = vfma(a9, w, vload(xb, q + 9 * LANES))
        a10 = vfma(a10, w, vload(xb, q + 10 * LANES))
        a11 = vfma(a11, w, vload(xb, q + 11 * LANES))
        a12 = vfma(a12, w, vload(xb, q + 12 * LANES))
        a13 = vfma(a13, w, vload(xb, q + 13 * LANES))
        a14 = vfma(a14, w, vload(xb, q + 14 * LANES))
        a15 = vfma(a15, w, vload(xb, q + 15 * LANES))
        k += np.uint64(1)
    vstore(acc, p, a0)
    vstore(acc, p + LANES, a1)
    vstore(acc, p + 2 * LANES, a2)
    vstore(acc, p + 3 * LANES, a3)
    vstore(acc, p + 4 * LANES, a4)
    vstore(acc, p + 5 * LANES, a5)
    vstore(acc, p + 6 * LANES, a6)
    vstore(acc, p + 7 * LANES, a7)
    vstore(acc, p + 8 * LANES, a8)
    vstore(acc, p + 9 * LANES, a9)
    vstore(acc, p + 10 * LANES, a10)
    vstore(acc, p + 11 * LANES, a11)
    vstore(acc, p + 12 * LANES, a12)
    vstore(acc, p + 13 * LANES, a13)
    vstore(acc, p + 14 * LANES, a14)
    vstore(acc, p + 15 * LANES, a15)


@_inline
def _conv_range(
    crow: Any, off: Any, val: Any, x: Any, bias: Any, y: Any, wq: int, tile: int, o0: int, o1: int
) -> None:
    # Direct sparse convolution over output channels o0..o1 (see _conv). x: (B, L) flat padded
    # (and, for strides > 1, polyphase) input with CONV_BLOCK floats of slack at its end;
    # y: (B, O, Ho, Wo). Output rows are computed "wide": position i = oy * wq + ox over the
    # input's row pitch wq, so that every nonzero adds w * x[off + i] over one contiguous run
    # of i (the columns ox >= Wo are thrown away). Row tiles of ``tile`` rows run every output
    # channel before the next tile; within one, each block of positions keeps its sums in
    # registers over all the channel's nonzeros (wide blocks, then blocks, then vectors).
    n_out, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    acc = np.empty(tile * wq + CONV_BLOCK, dtype=y.dtype)  # a block may run past n
    for b in range(x.shape[0]):
        xb = x[b]
        for r0 in range(0, ho, tile):
            r1 = min(ho, r0 + tile)
            t0 = r0 * wq
            n = (r1 - 1 - r0) * wq + wo
            for o in range(o0, min(o1, n_out)):
                k0, k1, bo = crow[o], crow[o + 1], bias[o]
                p = 0
                while n - p >= CONV_WIDE:
                    _conv_wide(off, val, xb, t0 + p, acc, p, k0, k1, bo)
                    p += CONV_WIDE
                while n - p > 2 * LANES:  # the last at most two vectors go one by one
                    _conv_block(off, val, xb, t0 + p, acc, p, k0, k1, bo)
                    p += CONV_BLOCK
                while p < n:
                    _conv_lanes(off, val, xb, t0 + p, acc, p, k0, k1, bo)
                    p += LANES
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
