"""Activation functions by name, so configs and the CLI can name them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .._registry import Registry
from ._ameo import AMEO_CLASSES

ACTIVATIONS: Registry[Callable[..., nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("tanh", nn.Tanh)
ACTIVATIONS.add("sigmoid", nn.Sigmoid)
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("silu", nn.SiLU)
ACTIVATIONS.add("elu", nn.ELU)
ACTIVATIONS.add("leaky_relu", nn.LeakyReLU)
ACTIVATIONS.add("identity", nn.Identity)
for _name, _cls in AMEO_CLASSES.items():  # the bonsai networks' zig-zag family
    ACTIVATIONS.add(_name, _cls)


def make_activation(name: str, **params: Any) -> nn.Module:
    """A fresh activation module from its registry name (``"relu"``, ``"tanh"``...).

    ``params`` go to the constructor (e.g. ``leak=0.1`` for ``"leaky_ameo"``).
    """
    return ACTIVATIONS.get(name)(**params)
