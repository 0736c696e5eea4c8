"""Kernels: CSR storage and sparse products. Knows tensors, not training."""

from ._csr import csr_to_dense, to_csr

__all__ = ["csr_to_dense", "to_csr"]
