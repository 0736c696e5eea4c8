"""What every plot shares: a pyplot-free figure and an atomic save that returns the path."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from ..io import atomic_path

_FORMATS = ("png", "svg", "pdf")


def new_figure(width: float, height: float) -> Figure:
    """A figure that is not registered with pyplot: no global state, no GUI, nothing to close."""
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from its suffix: png, svg or pdf) atomically."""
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(
            f"cannot write a plot to {target}: the name must end in one of "
            f"{', '.join('.' + f for f in _FORMATS)}"
        )
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return target
