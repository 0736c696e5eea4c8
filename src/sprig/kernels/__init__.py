"""Kernels: CSR storage and sparse products. Knows tensors, not training."""

from ._csr import csr_to_dense, to_csr
from ._linear import csr_linear
from ._recurrent import (
    KERNEL_ACTIVATIONS,
    PreparedLayer,
    RecurrentLayer,
    csr_recurrent,
    prepare_layer,
    recurrent_reference,
)

__all__ = [
    "KERNEL_ACTIVATIONS",
    "PreparedLayer",
    "RecurrentLayer",
    "csr_linear",
    "csr_recurrent",
    "csr_to_dense",
    "prepare_layer",
    "recurrent_reference",
    "to_csr",
]
