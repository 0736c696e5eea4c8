"""Sparse layers and models."""

from ._activations import ACTIVATIONS, make_activation
from ._ameo import (
    Ameo,
    InterpolatedAmeo,
    LeakyAmeo,
    SoftLeakyAmeo,
    ameo,
    ameo_scalar,
    interpolated_ameo,
    leaky_ameo,
    soft_leaky_ameo,
)
from ._base import MODULES, module_config, sprig_module
from ._bonsai import BonsaiCell, BonsaiRNN
from ._linear import STORAGES, SparseLinear
from ._mlp import SparseMLP
from ._rnn import CELL_GATES, SparseRNN, check_rnn_input

__all__ = [
    "ACTIVATIONS",
    "CELL_GATES",
    "MODULES",
    "STORAGES",
    "Ameo",
    "BonsaiCell",
    "BonsaiRNN",
    "InterpolatedAmeo",
    "LeakyAmeo",
    "SoftLeakyAmeo",
    "SparseLinear",
    "SparseMLP",
    "SparseRNN",
    "check_rnn_input",
    "ameo",
    "ameo_scalar",
    "interpolated_ameo",
    "leaky_ameo",
    "make_activation",
    "module_config",
    "soft_leaky_ameo",
    "sprig_module",
]
