"""The compiled row loops behind :class:`sprig.kernels.MatVec` (numba, imported lazily)."""

from __future__ import annotations

from typing import Any

import numba
from numba import prange

from ._threads import configure_numba

configure_numba()  # before the first parallel call

_FM = {"reassoc", "contract", "nsz", "arcp"}  # reassociation lets LLVM vectorize the row sums
# error_model="numpy": no zero-division branch (see _recurrent_numba)
_jit = numba.njit(cache=True, fastmath=_FM, nogil=True, error_model="numpy")
_pjit = numba.njit(cache=True, fastmath=_FM, nogil=True, error_model="numpy", parallel=True)


@_jit
def rows(crow: Any, col: Any, val: Any, x: Any, bias: Any, y: Any, r0: int, r1: int) -> None:
    # y[r] = bias[r] + sum_k val[k] x[col[k]] for rows r0 <= r < r1
    for r in range(r0, r1):
        acc = bias[r]
        for k in range(crow[r], crow[r + 1]):
            acc += val[k] * x[col[k]]
        y[r] = acc


@_pjit
def rows_parallel(crow: Any, col: Any, val: Any, x: Any, bias: Any, y: Any, bounds: Any) -> None:
    # one part of rows per thread, bounds[p] <= r < bounds[p + 1]
    for p in prange(bounds.shape[0] - 1):
        for r in range(bounds[p], bounds[p + 1]):
            acc = bias[r]
            for k in range(crow[r], crow[r + 1]):
                acc += val[k] * x[col[k]]
            y[r] = acc
