"""Accuracy against density: one line per series, density on a log axis from dense to sparse."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..io import write_atomic

_TICKS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)


def plot_accuracy_vs_density(
    series: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    title: str = "Accuracy vs density",
    *,
    spread: Mapping[str, Sequence[float]] | None = None,
    reference: float | None = None,
    ylabel: str = "test accuracy",
) -> Path:
    """Draw ``{name: [(density, accuracy), ...]}`` as lines and save a PNG atomically.

    The density axis is logarithmic and runs from 1 (dense, left) towards sparse (right), the
    way the Lottery Ticket paper draws it.

    Args:
        series: one list of ``(density, accuracy)`` points per line; densities in (0, 1].
        path: where to write the picture (``.png``).
        title: the figure title.
        spread: optional ``{name: [std, ...]}`` (one per point) drawn as a shaded band.
        reference: optional accuracy drawn as a dotted horizontal line (e.g. dense).
        ylabel: the y-axis label.

    Returns:
        the path written.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "acc.png"
        >>> pts = {"ticket": [(1.0, 0.9), (0.5, 0.91), (0.1, 0.8)]}
        >>> plot_accuracy_vs_density(pts, out).exists()
        True
    """
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError("series is empty; pass {name: [(density, accuracy), ...]}")
    for name, points in series.items():
        if not points:
            raise ValueError(f"series {name!r} has no points")
        bad = [d for d, _ in points if not 0 < d <= 1]
        if bad:
            raise ValueError(f"series {name!r} has densities outside (0, 1]: {bad}")
        if spread is not None and name in spread and len(spread[name]) != len(points):
            raise ValueError(
                f"spread for {name!r} has {len(spread[name])} values for {len(points)} points"
            )
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    try:
        for name, points in series.items():
            pts = sorted(points, key=lambda p: -p[0])
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, label=name)
            if spread is not None and name in spread:
                order = sorted(range(len(points)), key=lambda i: -points[i][0])
                sd = [spread[name][i] for i in order]
                lo = [y - s for y, s in zip(ys, sd)]
                hi = [y + s for y, s in zip(ys, sd)]
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle=":", linewidth=1, label="dense")
        ax.set_xscale("log")
        low = min(d for points in series.values() for d, _ in points)
        ticks = [t for t in _TICKS if t >= low * 0.999] or [1.0]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("density (fraction of weights kept, log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        suffix = Path(path).suffix.lstrip(".") or "png"
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format=suffix, dpi=120))
    finally:
        plt.close(fig)
