"""The batch-1 CSR product on the CPU: a compiled row loop, split over OpenMP threads.

At batch 1 a sparse layer is one pass over its nonzeros, so its speed is the bytes each nonzero
costs. MKL (through torch) reads 8 per nonzero (float32 value + int32 column). This kernel reads
the column indices as 16-bit when the layer has at most 65,536 inputs: 6 bytes per nonzero.
``benchmarks/bench_kernels.py`` times it against MKL (its "MKL int32" and "sprig csr" columns
and the steady-state figure in ``benchmarks/results/kernels.md``).

Below ``MATVEC_MIN_NNZ`` nonzeros MKL's ``mv`` was faster in that benchmark's 2-thread,
cache-hot grid (its call costs less than this kernel's few microseconds of Python and numba
dispatch). On one thread this kernel was faster at every size tried, hot and streaming (row
matvec-min-nnz of ``benchmarks/results/design_measurements.md``). So compressed layers use it
(:func:`matvec_serves`) above the cut, and at every size when torch runs one thread. Not when
a busy machine makes both run on one thread (``_threads.machine_busy``): the choice of kernel,
and so the last bits of a result, would then change with the load.

The rows are cut into one part per torch thread, balanced by nonzeros, and the parts run on
OpenMP threads (``_threads`` says why those). Small products run on one thread.

The compiled loop lives in ``_compiled`` (numba is imported on first use).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._csr import check_csr_parts
from ._threads import row_parts, run_parts

MATVEC_MIN_NNZ = 400_000


def matvec_serves(nnz: int) -> bool:
    """Whether a batch-1 product with ``nnz`` nonzeros runs on :class:`MatVec` rather than MKL's
    ``mv``: at least ``MATVEC_MIN_NNZ`` nonzeros, or any size when torch runs one thread."""
    return nnz >= MATVEC_MIN_NNZ or torch.get_num_threads() == 1


class MatVec:
    """``y = W x + b`` for one CSR matrix on the CPU, prepared once and called per input.

    The arrays are shared with the tensors given (no copies); they must stay unchanged while
    this object is used (:class:`sprig.compress.CompressedLinear` rebuilds it when they change).

    Args:
        crow: ``(rows + 1,)`` int32 or int64 row pointers.
        col: ``(nnz,)`` column indices: uint16 (fewest bytes), int32 or int64.
        values: ``(nnz,)`` float32 or float64.
        n_cols: columns of the matrix (the input size).
        validate: check the arrays (:func:`check_csr_parts`; the compiled loop checks no
            bounds); False only for arrays validated already.

    Example:
        >>> from sprig.kernels import to_csr
        >>> w = to_csr(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))
        >>> mv = MatVec(w.crow_indices(), w.col_indices().to(torch.uint16), w.values(), 3)
        >>> mv(torch.ones(3), torch.tensor([0.5, 1.0])).tolist()
        [3.5, 1.0]
    """

    def __init__(
        self, crow: Tensor, col: Tensor, values: Tensor, n_cols: int, validate: bool = True
    ) -> None:
        if values.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"MatVec runs float32 and float64 values, got {values.dtype}")
        if crow.device.type != "cpu" or col.device.type != "cpu" or values.device.type != "cpu":
            raise ValueError("MatVec runs on CPU tensors; on CUDA use csr_linear")
        if validate:
            wide = col.to(torch.int32) if col.dtype == torch.uint16 else col
            check_csr_parts(crow, wide, values, (crow.numel() - 1, n_cols), "MatVec")
        self.rows, self.cols, self.nnz = crow.numel() - 1, n_cols, values.numel()
        self.dtype = values.dtype
        # unsigned views: numba then skips the negative-index wrap-around on every gather
        # (see _recurrent_numba), which keeps the row loop vectorized
        self._crow = _unsigned(crow)
        self._col = _unsigned(col)
        self._val = values.detach().contiguous().numpy()
        self._zeros = np.zeros(self.rows, dtype=self._val.dtype)  # the bias when there is none
        self._bounds: dict[int, Any] = {}  # row cuts per thread count

    def _split(self, threads: int) -> Any:
        if threads not in self._bounds:
            self._bounds[threads] = row_parts(self._crow, threads)
        return self._bounds[threads]

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """``W x + b`` for a dense CPU vector ``x`` of ``n_cols`` (any strides), no gradient."""
        from . import _compiled as nb

        if x.shape != (self.cols,) or x.dtype != self.dtype or x.device.type != "cpu":
            raise ValueError(
                f"MatVec: input of shape {tuple(x.shape)}, dtype {x.dtype} on {x.device} does "
                f"not fit a ({self.rows}, {self.cols}) {self.dtype} CPU matrix: pass a "
                f"({self.cols},) CPU vector"
            )
        if bias is not None and tuple(bias.shape) != (self.rows,):
            raise ValueError(
                f"MatVec: bias of shape {tuple(bias.shape)} does not fit {self.rows} outputs: "
                f"pass a ({self.rows},) bias or None"
            )
        xn = x.detach().contiguous().numpy()
        y = np.empty(self.rows, dtype=self._val.dtype)
        b = self._zeros if bias is None else bias.detach().to(self.dtype).contiguous().numpy()
        args = (self._crow, self._col, self._val, xn, b, y)
        run_parts(
            lambda bounds: nb.matvec_parallel(*args, bounds),
            lambda: nb.matvec(*args),
            self._split(torch.get_num_threads()),
        )
        return torch.from_numpy(y)


def _unsigned(t: Tensor) -> Any:
    a = t.detach().contiguous().numpy()
    if a.dtype == np.int32:
        return a.view(np.uint32)
    if a.dtype == np.int64:
        return a.view(np.uint64)
    if a.dtype == np.uint16:
        return a
    raise TypeError(f"CSR indices must be uint16, int32 or int64, got {t.dtype}")
