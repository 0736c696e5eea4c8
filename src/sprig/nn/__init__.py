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
from ._linear import SparseLinear
from ._mlp import SparseMLP

__all__ = [
    "ACTIVATIONS",
    "MODULES",
    "Ameo",
    "BonsaiCell",
    "BonsaiRNN",
    "InterpolatedAmeo",
    "LeakyAmeo",
    "SoftLeakyAmeo",
    "SparseLinear",
    "SparseMLP",
    "ameo",
    "ameo_scalar",
    "interpolated_ameo",
    "leaky_ameo",
    "make_activation",
    "module_config",
    "soft_leaky_ameo",
    "sprig_module",
]
