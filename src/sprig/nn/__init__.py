"""Sparse layers and models."""

from ._activations import ACTIVATIONS, make_activation
from ._base import MODULES, module_config, sprig_module
from ._linear import SparseLinear
from ._mlp import SparseMLP
from ._rnn import CELL_GATES, SparseRNN, check_rnn_input

__all__ = [
    "ACTIVATIONS",
    "CELL_GATES",
    "MODULES",
    "SparseLinear",
    "SparseMLP",
    "SparseRNN",
    "check_rnn_input",
    "make_activation",
    "module_config",
    "sprig_module",
]
