"""Training curves: loss, accuracy and density against the step, from a run's metrics."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._common import new_figure, save_figure


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a JSON-lines metrics file; a torn last line (a killed run) is skipped."""
    records = []
    with open(path) as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
    return records


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for rec in records:
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "step" in rec:
            xs.append(float(rec["step"]))
            ys.append(float(value))
    return xs, ys


def plot_training_curves(
    metrics: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Plot loss, accuracies and (when it changes) density against the training step.

    Args:
        metrics: a JSON-lines file (as ``sprig run`` writes) or records such as
            ``{"step": 10, "loss": 0.3, "test_accuracy": 0.9, "density": 0.2}``. Every numeric
            key ending in ``accuracy`` gets a line in the accuracy panel.
        path: the image file to write (.png, .svg or .pdf).
        title: a title over the panels.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> recs = [{"step": s, "loss": 1 / (s + 1), "test_accuracy": s / 10} for s in range(10)]
        >>> plot_training_curves(recs, tempfile.mkdtemp() + "/curves.png").name
        'curves.png'
    """
    records = read_metrics(metrics) if isinstance(metrics, (str, os.PathLike)) else list(metrics)
    acc_keys = sorted(
        {k for r in records for k, v in r.items() if k.endswith("accuracy") and v is not None}
    )
    loss = _series(records, "loss")
    density = _series(records, "density")
    show_density = len(set(density[1])) > 1
    if not loss[0] and not acc_keys:
        raise ValueError(
            "no curves to draw: the metrics hold no 'loss' or '*accuracy' values with a 'step'"
        )
    panels = 1 + bool(acc_keys) + show_density
    fig = new_figure(4.2 * panels, 3.4)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    if loss[0]:
        ax.plot(*loss, color="#1f4e9c", lw=1.2)
        if min(loss[1]) > 0 and max(loss[1]) / min(loss[1]) > 30:
            ax.set_yscale("log")
    ax.set_title("training loss")
    ax.set_xlabel("step")
    i = 1
    if acc_keys:
        ax = axes[i]
        i += 1
        for key in acc_keys:
            ax.plot(*_series(records, key), marker="o", ms=3, label=key.replace("_", " "))
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("accuracy")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    if show_density:
        ax = axes[i]
        ax.plot(*density, color="#b5442f", marker="o", ms=3)
        ax.set_ylim(0, min(1.05, max(density[1]) * 1.1 if math.isfinite(max(density[1])) else 1))
        ax.set_title("density (fraction of weights kept)")
        ax.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_loss_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Training loss against the step, one line per run (the course's sparse-vs-dense picture).

    Args:
        curves: run label -> loss at steps 0, 1, 2...
        path: the image file to write (.png, .svg or .pdf).
        title: the chart's title.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> curves = {"density 1.0": [1.0, 0.5, 0.2], "density 0.1": [1.0, 0.7, 0.5]}
        >>> plot_loss_curves(curves, tempfile.mkdtemp() + "/loss.png").name
        'loss.png'
    """
    if not curves or not any(len(c) for c in curves.values()):
        raise ValueError("no loss curves to draw: give {label: [loss at step 0, 1, ...]}")
    fig = new_figure(5.6, 3.8)
    ax = fig.subplots()
    for label, losses in curves.items():
        ax.plot(range(len(losses)), list(losses), lw=1.2, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "training loss")
    return save_figure(fig, path)
