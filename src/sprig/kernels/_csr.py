"""CSR storage: masked dense weights <-> torch sparse CSR tensors with int32 indices.

MKL's CSR product through torch is the fastest CPU sparse kernel here, and int32 indices make
it faster than ``to_sparse_csr()``'s default int64 (``benchmarks/results/design_measurements.md``,
row ``csr-int32``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._threads import row_parts, run_parts
from ._warm import compiled_ready

GATHER_MIN = 200_000  # entries; below this index_select's single call is as fast

# torch warns once that CSR support is "beta"; sprig uses only its stable core (MKL products)
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def to_csr(weight: Tensor, mask: Tensor | None = None) -> Tensor:
    """A sparse CSR tensor holding the entries of ``weight`` that ``mask`` keeps.

    Entries the mask keeps are stored even when their value is exactly zero, so the structure
    is the mask's. Indices are int32 when sizes allow.

    Args:
        weight: dense 2-D tensor ``(rows, cols)``.
        mask: bool tensor of the same shape; None keeps the nonzeros.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> to_csr(w).crow_indices().dtype
        torch.int32
    """
    if weight.dim() != 2:
        raise ValueError(f"CSR needs a 2-D weight, got shape {tuple(weight.shape)}")
    keep = weight != 0 if mask is None else mask.to(device=weight.device, dtype=torch.bool)
    if keep.shape != weight.shape:
        raise ValueError(
            f"mask shape {tuple(keep.shape)} differs from weight {tuple(weight.shape)}"
        )
    rows, cols = weight.shape
    index_dtype = torch.int32 if max(rows, cols, int(keep.sum())) < 2**31 - 1 else torch.int64
    crow = torch.zeros(rows + 1, dtype=torch.int64, device=weight.device)
    crow[1:] = keep.sum(dim=1).cumsum(0)
    col = keep.nonzero()[:, 1]
    values = weight.detach()[keep]
    return torch.sparse_csr_tensor(
        crow.to(index_dtype), col.to(index_dtype), values, size=(rows, cols), check_invariants=False
    )


def csr_to_dense(csr: Tensor) -> tuple[Tensor, Tensor]:
    """The dense weight and bool mask a CSR tensor stands for (the inverse of :func:`to_csr`)."""
    rows, cols = csr.shape
    crow = csr.crow_indices().long()
    counts = crow[1:] - crow[:-1]
    row = torch.repeat_interleave(torch.arange(rows, device=csr.device), counts)
    col = csr.col_indices().long()
    weight = torch.zeros(rows, cols, dtype=csr.dtype, device=csr.device)
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=csr.device)
    weight[row, col] = csr.values()
    mask[row, col] = True
    return weight, mask


def csr_from_parts(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR tensor from its three arrays, skipping torch's O(nnz) invariant check.

    Callers build the arrays themselves (:class:`CSRStructure`) or validate them first
    (:func:`check_csr_parts`).
    """
    return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)


def check_csr_parts(
    crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int], what: str
) -> None:
    """Raise ValueError naming ``what`` unless the arrays form a valid CSR matrix of ``shape``.

    Checked: lengths, monotone row pointers, column indices in range, finite values.
    """
    rows, cols = shape
    if crow.shape != (rows + 1,) or col.shape != values.shape or col.dim() != 1:
        raise ValueError(
            f"{what}: CSR arrays do not fit shape {shape}: crow {tuple(crow.shape)} (need "
            f"({rows + 1},)), col {tuple(col.shape)}, values {tuple(values.shape)}"
        )
    c = crow.long()
    if int(c[0]) != 0 or int(c[-1]) != col.numel() or bool((c[1:] < c[:-1]).any()):
        raise ValueError(f"{what}: CSR row pointers are not monotone from 0 to nnz={col.numel()}")
    if col.numel() and (int(col.min()) < 0 or int(col.max()) >= cols):
        raise ValueError(f"{what}: CSR column indices fall outside [0, {cols})")
    if col.numel() > 1:
        # within a row, columns strictly increase (sorted, no duplicates): the kernels and the
        # gradient's positions rely on it
        step = col[1:].long() - col[:-1].long()
        row_start = torch.zeros(col.numel(), dtype=torch.bool, device=col.device)
        row_start[c[:-1][c[1:] > c[:-1]]] = True
        bad = int(((step <= 0) & ~row_start[1:]).sum())
        if bad:
            raise ValueError(
                f"{what}: CSR column indices are not sorted and unique within their rows "
                f"({bad} places); rebuild the arrays (e.g. sprig.compress of the masked layer)"
            )
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise ValueError(
            f"{what}: {bad} of {values.numel()} stored weights are not finite (nan/inf); "
            "fix the weights (e.g. torch.nan_to_num) before compressing"
        )


class CSRStructure:
    """Where the nonzeros of a masked ``(rows, cols)`` weight sit, with its transpose, cached.

    Built once per mask; each step only gathers the current values (``values_of``). The
    transpose (CSR of ``W^T``) shares the nonzeros through a permutation, so the input gradient
    of a sparse layer runs through a CSR product as well.

    Args:
        mask: bool tensor ``(rows, cols)``.

    Example:
        >>> s = CSRStructure(torch.tensor([[True, False], [True, True]]))
        >>> s.nnz, s.transpose(torch.tensor([1.0, 2.0, 3.0])).to_dense().tolist()
        (3, [[1.0, 2.0], [0.0, 3.0]])
    """

    def __init__(self, mask: Tensor) -> None:
        if mask.dim() != 2:
            raise ValueError(f"a CSR structure needs a 2-D mask, got shape {tuple(mask.shape)}")
        nz = mask.to(torch.bool).nonzero()  # (nnz, 2), row-major order
        self._setup(nz[:, 0], nz[:, 1], (int(mask.shape[0]), int(mask.shape[1])))

    @classmethod
    def from_csr(cls, crow: Tensor, col: Tensor, shape: tuple[int, int]) -> CSRStructure:
        """The structure of a CSR matrix given by its row pointers and column indices.

        Never builds anything of the dense shape: what compressed layers train with. The
        arrays must be valid (sorted unique columns per row; :func:`check_csr_parts`).
        """
        rows = int(shape[0])
        counts = crow[1:].long() - crow[:-1].long()
        row = torch.repeat_interleave(torch.arange(rows, device=crow.device), counts)
        new = cls.__new__(cls)
        new._setup(row, col.long(), (rows, int(shape[1])))
        return new

    def _setup(self, row: Tensor, col: Tensor, shape: tuple[int, int]) -> None:
        rows, cols = shape
        index = torch.int32 if max(rows, cols, row.numel()) < 2**31 - 1 else torch.int64
        self.shape = (rows, cols)
        self.nnz = int(row.numel())
        self.density = self.nnz / max(rows * cols, 1)
        self.crow = _row_pointers(row, rows).to(index)
        self.col = col.to(index)
        # transpose: nonzeros ordered by (col, row)
        self.perm_t = torch.argsort(col * rows + row)
        self.crow_t = _row_pointers(col[self.perm_t], cols).to(index)
        self.col_t = row[self.perm_t].to(index)
        self._flat: Tensor | None = None
        self._np_index: dict[str, Any] = {}  # numpy copies for the compiled loops

    @property
    def flat(self) -> Tensor:
        """``(nnz,)`` int64: each nonzero's position in the flattened dense weight (row-major,
        so sorted). Made on first use: compressed layers that never touch a dense weight
        skip its 8 bytes per nonzero."""
        if self._flat is None:
            counts = self.crow[1:].long() - self.crow[:-1].long()
            row = torch.repeat_interleave(torch.arange(self.shape[0]), counts)
            self._flat = row.to(self.col.device) * self.shape[1] + self.col.long()
        return self._flat

    def values_of(self, weight: Tensor) -> Tensor:
        """The stored entries of a dense ``weight`` (``(nnz,)``, CSR order)."""
        if tuple(weight.shape) != self.shape:
            raise ValueError(
                f"weight of shape {tuple(weight.shape)} does not fit this {self.shape} sparsity "
                "structure: build the structure from this weight's mask"
            )
        return self._take(weight.detach().reshape(-1), self.flat, "flat")

    def _check_values(self, values: Tensor) -> None:
        if tuple(values.shape) != (self.nnz,):
            raise ValueError(
                f"values of shape {tuple(values.shape)} do not fit this structure's "
                f"{self.nnz} nonzeros: pass one value per nonzero, in CSR order"
            )

    def csr(self, values: Tensor) -> Tensor:
        """The CSR matrix ``(rows, cols)`` with these values."""
        self._check_values(values)
        return csr_from_parts(self.crow, self.col, values, self.shape)

    def transpose(self, values: Tensor) -> Tensor:
        """The CSR matrix of the transpose ``(cols, rows)`` with these values (CSR order)."""
        self._check_values(values)
        values_t = self._take(values, self.perm_t, "perm_t")
        return csr_from_parts(self.crow_t, self.col_t, values_t, self.shape[::-1])

    def compiled(self, threads: int) -> tuple[Any, Any, Any]:
        """Row pointers, columns (16-bit where they fit) and row cuts for ``threads``, as
        numpy arrays for the compiled loops (built once)."""
        key = f"rows{threads}"
        if key not in self._np_index:
            if "crow" not in self._np_index:
                self._np_index["crow"] = self.crow.numpy().astype(np.uint32)
                col = np.uint16 if self.shape[1] <= 2**16 else np.uint32
                self._np_index["col"] = self.col.numpy().astype(col)
            self._np_index[key] = row_parts(self._np_index["crow"], threads)
        return self._np_index["crow"], self._np_index["col"], self._np_index[key]

    def _take(self, src: Tensor, index: Tensor, name: str) -> Tensor:
        """``src[index]`` for a 1-D ``src``: a compiled parallel gather for big CPU tensors.

        The compiled gather over 32-bit indices beats ``index_select`` on big tensors
        (``benchmarks/results/design_measurements.md``, row ``csr-gather``). Small, CUDA,
        other dtypes and anything that needs a gradient go through ``index_select``.
        """
        if not _compiled_fits(src, index.numel()):
            return src.index_select(0, index)  # beats src[index] (row index-select)
        from . import _compiled as nb

        idx = self._np(name, index, src.numel())
        src_np = src.contiguous().numpy()
        out = np.empty(index.numel(), dtype=src_np.dtype)
        run_parts(
            lambda cuts: nb.gather(src_np, idx, out, len(cuts) - 1),
            lambda: out.__setitem__(slice(None), src_np[idx]),
            _parts(index.numel()),
        )
        return torch.from_numpy(out)

    def _np(self, name: str, index: Tensor, size: int) -> Any:
        """A cached numpy copy of ``index`` (32-bit when ``size`` allows) for compiled loops."""
        idx = self._np_index.get(name)
        if idx is None:
            idx = self._np_index[name] = index.numpy().astype(
                np.uint64 if size >= 2**32 else np.uint32
            )
        return idx

    def scatter(self, values: Tensor) -> Tensor:
        """A dense ``(rows, cols)`` tensor with ``values`` at the nonzeros, zero elsewhere.

        Not a view: autograd then keeps it as the gradient without a copy.
        """
        self._check_values(values)
        out = torch.zeros(self.shape, dtype=values.dtype, device=values.device)
        flat = out.view(-1)
        if not _compiled_fits(values, self.nnz):
            flat.index_copy_(0, self.flat, values)
            return out
        from . import _compiled as nb

        idx = self._np("flat", self.flat, out.numel())
        src, dst = values.contiguous().numpy(), flat.numpy()
        run_parts(
            lambda cuts: nb.scatter(src, idx, dst, len(cuts) - 1),
            lambda: dst.__setitem__(idx, src),
            _parts(self.nnz),
        )
        return out


def _compiled_fits(t: Tensor, n: int) -> bool:
    """Whether the compiled gather/scatter serves ``n`` entries of ``t`` (else torch's ops)."""
    return (
        n >= GATHER_MIN
        and t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
        and not (t.requires_grad and torch.is_grad_enabled())
        and compiled_ready()
    )


def _parts(n: int) -> Any:
    parts = max(1, min(torch.get_num_threads(), n // GATHER_MIN))
    return np.arange(parts + 1)  # run_parts only counts the parts here


def _row_pointers(row: Tensor, rows: int) -> Tensor:
    crow = torch.zeros(rows + 1, dtype=torch.int64, device=row.device)
    crow[1:] = torch.bincount(row, minlength=rows).cumsum(0)
    return crow
