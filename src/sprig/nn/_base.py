"""What sprig's own modules share: a registry (so ``sprig.load`` can rebuild them) and configs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from .._registry import Registry

MODULES: Registry[type[nn.Module]] = Registry("sprig module")

M = TypeVar("M", bound=type[nn.Module])


def sprig_module(name: str) -> Callable[[M], M]:
    """Register a module class that ``sprig.load`` can rebuild from its ``config()``.

    The class must define ``config() -> dict`` (JSON-able constructor keyword arguments) and be
    constructible as ``cls(**config)``.
    """

    def deco(cls: M) -> M:
        MODULES.add(name, cls)
        cls._sprig_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def module_config(module: nn.Module) -> dict[str, Any] | None:
    """``{"class": name, "config": {...}}`` for a registered sprig module, else None."""
    name = getattr(type(module), "_sprig_name", None)
    if name is None or MODULES.get(name) is not type(module):
        return None
    return {"class": name, "config": module.config()}  # type: ignore[operator]
