"""Kernels: CSR storage, sparse products (forward and backward), sparse convolution, sparse
inputs, the dispatcher.

Knows tensors, not training concepts (no pruners, no mask updaters).
"""

from ._conv import SparseConv, conv_padding, sparse_conv_reference
from ._csr import CSRStructure, check_csr_parts, csr_from_parts, csr_to_dense, to_csr
from ._dispatch import (
    BACKENDS,
    BreakEven,
    ConvBreakEven,
    Plan,
    choose,
    choose_conv,
    conv_dispatch_table,
    dispatch_table,
    get_conv_dispatch_table,
    get_dispatch_table,
    set_conv_dispatch_table,
    set_dispatch_table,
)
from ._inputs import apply_rows, check_layer_input, is_sparse_input
from ._linear import csr_linear, csr_linear_reference
from ._matvec import MATVEC_MIN_NNZ, MatVec, matvec_serves
from ._recurrent import (
    CELL_GATES,
    GATES,
    KERNEL_ACTIVATIONS,
    PreparedLayer,
    RecurrentLayer,
    csr_recurrent,
    prepare_layer,
    recurrent_reference,
)
from ._sparse_input import sparse_input_linear, sparse_input_linear_reference
from ._train import csr_linear_train, masked_csr_linear, nonzero_grad_reference
from ._warm import compiled_ready, wait_compiled, warm_up

__all__ = [
    "BACKENDS",
    "CELL_GATES",
    "GATES",
    "KERNEL_ACTIVATIONS",
    "apply_rows",
    "BreakEven",
    "check_csr_parts",
    "choose",
    "choose_conv",
    "compiled_ready",
    "conv_dispatch_table",
    "conv_padding",
    "ConvBreakEven",
    "csr_from_parts",
    "csr_linear",
    "csr_linear_reference",
    "csr_linear_train",
    "csr_recurrent",
    "csr_to_dense",
    "CSRStructure",
    "dispatch_table",
    "get_conv_dispatch_table",
    "get_dispatch_table",
    "check_layer_input",
    "is_sparse_input",
    "masked_csr_linear",
    "MatVec",
    "MATVEC_MIN_NNZ",
    "matvec_serves",
    "nonzero_grad_reference",
    "Plan",
    "prepare_layer",
    "PreparedLayer",
    "recurrent_reference",
    "RecurrentLayer",
    "set_conv_dispatch_table",
    "set_dispatch_table",
    "sparse_conv_reference",
    "SparseConv",
    "sparse_input_linear",
    "sparse_input_linear_reference",
    "to_csr",
    "wait_compiled",
    "warm_up",
]
