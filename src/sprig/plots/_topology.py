"""The network as a graph: neurons in columns, kept connections as lines, dead units greyed.

The RigL-on-micrograd article draws its trained networks this way (``draw_topology``) to show
that sparse training leaves many hidden units with no path from the inputs to the output:
those units are dead and can be stripped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.collections import LineCollection
from torch import Tensor, nn

from ..masks import get_mask
from ._common import new_figure, save_figure

_POS, _NEG, _DEAD = "#1f4e9c", "#c0392b", "#d0d0d0"


def _linear_chain(model: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """(weight, kept) of each linear layer in order; checks that they form a chain."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(
            f"plot_topology draws chains of linear layers (MLPs); {type(model).__name__} has none"
        )
    for a, b in zip(layers, layers[1:]):
        if a.out_features != b.in_features:
            raise ValueError(
                f"plot_topology draws chains of linear layers (MLPs); a layer with "
                f"{a.out_features} outputs is followed by one with {b.in_features} inputs"
            )
    chain = []
    for layer in layers:
        w = layer.weight.detach().to("cpu")
        mask = get_mask(layer, "weight")
        kept = (mask.to("cpu") if mask is not None else torch.ones_like(w, dtype=torch.bool)) & (
            w != 0
        )
        chain.append((w, kept))
    return chain


def alive_units(kept: list[Tensor]) -> list[Tensor]:
    """Which units lie on a path of kept connections from an input to an output.

    Args:
        kept: bool connection matrices ``(out_l, in_l)`` of a chain of layers.

    Returns:
        one bool vector per column of units (inputs, hidden layers..., outputs). A unit that is
        not alive has no effect on the output beyond a constant that the next bias can absorb.

    Example:
        >>> kept = [torch.tensor([[True, False], [False, False]]), torch.tensor([[True, True]])]
        >>> [v.tolist() for v in alive_units(kept)]
        [[True, False], [True, False], [True]]
    """
    fwd = [torch.ones(kept[0].shape[1], dtype=torch.bool)]
    for a in kept:  # reachable from some input
        fwd.append((a.float() @ fwd[-1].float()) > 0)
    bwd = [torch.ones(kept[-1].shape[0], dtype=torch.bool)]
    for a in reversed(kept):  # reaches some output
        bwd.insert(0, (a.float().T @ bwd[0].float()) > 0)
    return [f & b for f, b in zip(fwd, bwd)]


def plot_topology(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    max_units: int = 64,
    title: str | None = None,
) -> Path:
    """Draw an MLP's neurons in columns and its kept connections as lines; dead units grey.

    Line width follows the weight's magnitude, colour its sign (blue +, red -). A unit is
    dead when no path of kept connections runs from an input through it to an output.

    Args:
        model: a model whose ``nn.Linear`` layers (sprig's included) form a chain, in module
            order, like :class:`sprig.SparseMLP` or an ``nn.Sequential`` MLP.
        path: the image file to write (.png, .svg or .pdf).
        max_units: the widest layer drawn (wider ones are unreadable; use ``plot_masks``).
        title: the picture's title (default: alive units per column).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, sprig
        >>> mlp = sprig.SparseMLP([2, 16, 16, 1], densities=[1.0, 0.1, 0.2], seed=0)
        >>> plot_topology(mlp, tempfile.mkdtemp() + "/topology.png").name
        'topology.png'
    """
    chain = _linear_chain(model)
    widths = [chain[0][0].shape[1]] + [w.shape[0] for w, _ in chain]
    if max(widths) > max_units:
        raise ValueError(
            f"the widest layer has {max(widths)} units, more than max_units={max_units}; "
            "raise max_units or draw the masks with plot_masks"
        )
    alive = alive_units([k for _, k in chain])
    ys = [np.arange(n)[::-1] - (n - 1) / 2 for n in widths]  # centred columns, unit 0 on top
    wmax = max(float(w.abs().max()) for w, _ in chain) or 1.0
    segments, colors, lws = [], [], []
    for layer, (w, kept) in enumerate(chain):
        outs, ins = torch.nonzero(kept, as_tuple=True)
        for o, i in zip(outs.tolist(), ins.tolist()):
            segments.append([(layer, ys[layer][i]), (layer + 1, ys[layer + 1][o])])
            live = bool(alive[layer][i] and alive[layer + 1][o])
            value = float(w[o, i])
            colors.append((_POS if value > 0 else _NEG) if live else _DEAD)
            lws.append(0.4 + 2.6 * abs(value) / wmax if live else 0.6)
    fig = new_figure(1.8 * len(widths) + 1.5, max(3.0, 0.28 * max(widths) + 1.2))
    ax = fig.add_subplot()
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=lws, alpha=0.75))
    labels = max(widths) <= 24
    for col, (n, units) in enumerate(zip(widths, alive)):
        live_np = units.numpy()
        face = "#2e7d32" if col == 0 else "#b5442f" if col == len(widths) - 1 else _POS
        xs = np.full(n, col)
        ax.scatter(xs[live_np], ys[col][live_np], s=160, c=face, edgecolors="k", zorder=3)
        ax.scatter(
            xs[~live_np], ys[col][~live_np], s=160, c="#eeeeee", edgecolors="#aaaaaa", zorder=3
        )
        if labels:
            for i in range(n):
                ax.annotate(
                    f"{col}_{i + 1}",
                    (col, ys[col][i]),
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white" if live_np[i] else "#888888",
                    zorder=4,
                )
    ax.set_xlim(-0.5, len(widths) - 0.5)
    ax.set_ylim(-(max(widths) + 1) / 2, (max(widths) + 1) / 2)
    ax.set_xticks(
        range(len(widths)),
        ["inputs", *[f"hidden {i}" for i in range(1, len(widths) - 1)], "outputs"],
    )
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    counts = ", ".join(f"{int(v.sum())}/{v.numel()}" for v in alive)
    ax.set_title(title or f"units alive per column: {counts} (dead units grey)", fontsize=10)
    return save_figure(fig, path)
