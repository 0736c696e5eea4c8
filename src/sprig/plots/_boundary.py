"""Decision boundaries of 2-D classifiers (the RigL-on-micrograd article's moons pictures)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ._common import new_figure, save_figure


@torch.no_grad()
def _predict(model: nn.Module, points: Tensor) -> np.ndarray:
    was_training = model.training
    model.eval()
    # the model's own dtype and device (a float64 model refuses the float32 grid); compressed
    # layers keep theirs in buffers
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors:
        points = points.to(device=tensors[0].device, dtype=tensors[0].dtype)
    out = model(points).cpu()
    model.train(was_training)
    # one output column is a logit read by its sign; more columns are class scores
    pred = (out[:, 0] > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
    return pred.numpy()


def plot_decision_boundary(
    models: nn.Module | Mapping[str, nn.Module],
    x: Tensor,
    y: Tensor,
    path: str | os.PathLike[str],
    *,
    resolution: int = 200,
    margin: float = 1.0,
    title: str | None = None,
) -> Path:
    """Colour the plane by each model's predicted class and scatter the data on top.

    Args:
        models: one classifier or several by name (drawn side by side, like the article's
            static / RigL / compressed RigL panels). Outputs ``(N, classes)``, or ``(N, 1)``
            read as a logit.
        x: points ``(N, 2)``.
        y: integer labels ``(N,)``.
        path: the image file to write (.png, .svg or .pdf).
        resolution: grid points per axis.
        margin: how far the grid reaches beyond the data.
        title: a title over the panels.

    Returns:
        ``path``.

    Example:
        >>> import tempfile, sprig
        >>> from sprig.data import moons
        >>> data = moons(n_samples=50)
        >>> mlp = sprig.SparseMLP([2, 8, 2], densities=0.5)
        >>> out = tempfile.mkdtemp() + "/b.png"
        >>> plot_decision_boundary(mlp, data.x_train, data.y_train, out).name
        'b.png'
    """
    named = {"model": models} if isinstance(models, nn.Module) else dict(models)
    if not named:
        raise ValueError("no models to draw")
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y)
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(
            f"decision boundaries need 2-D inputs, x has shape {tuple(x.shape)}; expected (N, 2)"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    lo = x.min(0).values - margin
    hi = x.max(0).values + margin
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")  # (R, R) each
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # (R*R, 2)
    fig = new_figure(4.2 * len(named), 4.0 + (0.3 if title else 0))
    axes = fig.subplots(1, len(named), squeeze=False)[0]
    for ax, (name, model) in zip(axes, named.items()):
        z = _predict(model, grid).reshape(resolution, resolution)
        acc = float((torch.as_tensor(_predict(model, x)) == y).float().mean())
        ax.contourf(gx.numpy(), gy.numpy(), z, cmap="Spectral", alpha=0.8)
        ax.scatter(x[:, 0], x[:, 1], c=y.numpy(), s=18, cmap="Spectral", edgecolors="k", lw=0.4)
        ax.set_xlim(float(lo[0]), float(hi[0]))
        ax.set_ylim(float(lo[1]), float(hi[1]))
        ax.set_title(f"{name} (accuracy {acc:.0%} on these points)", fontsize=10)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
