"""Activation functions by name, so configs and the CLI can name them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("tanh", nn.Tanh)
ACTIVATIONS.add("sigmoid", nn.Sigmoid)
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("silu", nn.SiLU)
ACTIVATIONS.add("elu", nn.ELU)
ACTIVATIONS.add("leaky_relu", nn.LeakyReLU)
ACTIVATIONS.add("identity", nn.Identity)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module from its registry name (``"relu"``, ``"tanh"``...)."""
    return ACTIVATIONS.get(name)()
