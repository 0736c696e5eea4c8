"""Kernels: CSR storage and sparse products. Knows tensors, not training."""

from ._csr import csr_to_dense, to_csr
from ._linear import csr_linear

__all__ = ["csr_linear", "csr_to_dense", "to_csr"]
