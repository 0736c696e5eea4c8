"""Sparse layers and models."""

from ._activations import ACTIVATIONS, make_activation
from ._base import MODULES, module_config, sprig_module
from ._linear import SparseLinear
from ._mlp import SparseMLP

__all__ = [
    "ACTIVATIONS",
    "MODULES",
    "SparseLinear",
    "SparseMLP",
    "make_activation",
    "module_config",
    "sprig_module",
]
