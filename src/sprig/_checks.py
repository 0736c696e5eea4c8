"""Validation of user input at sprig's boundary, with messages that name the value and the fix."""

from __future__ import annotations

import math
import numbers
import os
import zlib
from typing import Any

import torch


def check_density(density: Any, what: str = "density") -> float:
    """Return ``density`` as a float in (0, 1], or raise ValueError saying how to fix it."""
    if isinstance(density, bool) or not isinstance(density, (int, float)):
        raise TypeError(f"{what} must be a number in (0, 1], got {density!r}")
    d = float(density)
    if not math.isfinite(d) or not 0.0 < d <= 1.0:
        raise ValueError(
            f"{what} must be in (0, 1] (the fraction of weights kept), got {density!r}; "
            "sprig speaks density, not sparsity: sparsity 0.9 is density 0.1"
        )
    return d


def check_int(
    value: Any,
    what: str,
    minimum: int | None = None,
    hint: str = "",
    error: type[Exception] = ValueError,
) -> int:
    """Return ``value`` as an int if it is one (not a bool) >= ``minimum``, else raise ``error``.

    The message names the value and the range: "steps must be a positive int, got 1.5".

    Example:
        >>> check_int(3, "steps", 1)
        3
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)  # numpy's ints too (sizes from arrays)
        or (minimum is not None and value < minimum)
    ):
        kind = (
            "an int"
            if minimum is None
            else "a positive int"
            if minimum == 1
            else (f"an int >= {minimum}")
        )
        raise error(f"{what} must be {kind}{hint}, got {value!r}")
    return int(value)


def check_module(model: Any, what: str) -> None:
    """Raise TypeError naming the fix unless ``model`` is a ``torch.nn.Module``."""
    if not isinstance(model, torch.nn.Module):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        raise TypeError(f"{what} takes a torch.nn.Module (a model or a layer), got {kind}")


def check_path(path: Any, what: str) -> None:
    """Raise TypeError unless ``path`` is a file path (str or os.PathLike)."""
    if not isinstance(path, (str, os.PathLike)):
        kind = f"{type(path).__module__}.{type(path).__name__}"
        raise TypeError(f"{what} takes a file path (str or pathlib.Path), got {kind}")


def reject_keywords(what: str, unknown: dict[str, Any], density_name: str = "density") -> None:
    """Raise TypeError for keyword arguments ``what`` does not take, pointing a ``sparsity``
    (other libraries' word) to sprig's ``density``."""
    if not unknown:
        return
    for key, value in unknown.items():
        if key.startswith("sparsit"):
            raise TypeError(
                f"{what} got {key}={value!r}, but sprig speaks density (the fraction kept): "
                f"pass {density_name}= instead (sparsity 0.9 is density 0.1)"
            )
        if key.startswith("densit"):
            raise TypeError(f"{what} got {key}={value!r}: its keyword is {density_name}=")
    raise TypeError(f"{what} got unexpected keyword arguments {sorted(unknown)}")


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU generator from a seed, a generator (returned as is) or None (seeded from torch)."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, (), device="cpu").item()))
    else:
        gen.manual_seed(
            check_int(seed, "seed", hint=", a torch.Generator or None", error=TypeError)
        )
    return gen


def sub_seed(seed: int, *names: object) -> int:
    """A stable sub-seed for ``names`` (crc32; Python's ``hash`` is salted per process)."""
    return zlib.crc32(":".join(str(n) for n in (seed, *names)).encode()) & 0x7FFFFFFF
