"""Which weights each layer keeps: mask heatmaps and nonzeros per layer."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from torch import Tensor, nn

from ..masks import get_mask, mask_pattern, sparsifiable_parameters, summary
from ._common import new_figure, save_figure

# kept entries dark, pruned ones pale: the course notebook's "Blues" look
_KEPT = "#1f4e9c"
_PRUNED = "#eef3fb"


def _model_masks(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Mask of every sparsifiable tensor (its sprig mask, or its nonzeros where unmasked), and
    what each one is: the owning layer's type and the mask's pattern."""
    out, kinds = {}, {}
    for qual, module, name in sparsifiable_parameters(model):
        param = module._parameters[name]
        assert param is not None
        mask = get_mask(module, name)
        out[qual] = (mask if mask is not None else param != 0).detach().to("cpu")
        kinds[qual] = f"{type(module).__name__}, {mask_pattern(module, name) or 'unmasked'}"
    return out, kinds


def _as_2d(mask: Tensor, max_side: int) -> np.ndarray:
    """(rows, cols) float array in [0, 1]; big masks are pooled to the fraction kept per block."""
    m = mask.reshape(mask.shape[0], -1) if mask.dim() != 1 else mask.reshape(1, -1)
    m = m.float()
    rows, cols = m.shape
    fr, fc = math.ceil(rows / max_side), math.ceil(cols / max_side)
    if fr > 1 or fc > 1:
        # (1, 1, rows, cols) -> average over (fr, fc) blocks: each pixel shows a block's density
        m = torch.nn.functional.avg_pool2d(m[None, None], (fr, fc), ceil_mode=True)[0, 0]
    return m.numpy()


def plot_masks(
    source: nn.Module | Mapping[str, Tensor],
    path: str | os.PathLike[str],
    *,
    max_cols: int = 4,
    max_side: int = 256,
    title: str | None = None,
) -> Path:
    """Draw each layer's mask as a heatmap (kept entries dark), one panel per tensor.

    Random, row and block patterns look as different as they are (the sparse-networks course's
    mask pictures). Masks larger than ``max_side`` on a side are pooled: a pixel then shows the
    fraction kept in its block.

    Args:
        source: a model (its sprig masks; unmasked weights show their nonzeros) or a mapping of
            names to masks (bool or 0/1 tensors, 1-D or more; dims after the first are
            flattened, so a conv mask ``(out, in, kh, kw)`` is drawn ``(out, in*kh*kw)``).
        path: the image file to write (.png, .svg or .pdf).
        max_cols: panels per row.
        max_side: the largest side drawn at full resolution.
        title: a title over all panels.

    Returns:
        ``path``.

    Example:
        >>> import tempfile, sprig
        >>> mlp = sprig.SparseMLP([16, 32, 2], densities=[0.3, 0.5], pattern="unstructured")
        >>> plot_masks(mlp, tempfile.mkdtemp() + "/masks.png").name
        'masks.png'
    """
    masks, kinds = _model_masks(source) if isinstance(source, nn.Module) else (dict(source), {})
    if not masks:
        raise ValueError("nothing to draw: the model has no weights sprig can mask")
    if max_cols < 1 or max_side < 1:
        raise ValueError(f"max_cols and max_side must be >= 1, got {max_cols}, {max_side}")
    n = len(masks)
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig = new_figure(3.2 * cols, 3.0 * rows + (0.4 if title else 0))
    binary = ListedColormap([_PRUNED, _KEPT])
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, mask) in zip(axes.flat, masks.items()):
        mask = torch.as_tensor(mask)
        img = _as_2d(mask != 0, max_side)
        pooled = img.shape != tuple(mask.reshape(mask.shape[0], -1).shape)
        ax.imshow(
            img,
            cmap="Blues" if pooled else binary,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
            aspect="auto" if max(img.shape) > 4 * min(img.shape) else "equal",
        )
        kept, total = int((mask != 0).sum()), mask.numel()
        shape = "x".join(map(str, mask.shape))
        # a bare tensor name ("0.weight") says little: the layer type and pattern say which
        kind = f" ({kinds[name]})" if name in kinds else ""
        ax.set_title(
            f"{name}{kind}  {shape}\n{kept}/{total} kept ({kept / max(total, 1):.1%})",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("inputs" + (" (pooled)" if pooled else ""), fontsize=8)
        ax.set_ylabel("outputs", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_nnz(model: nn.Module, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Bar chart of the weights each layer keeps (nonzeros) against its size.

    Args:
        model: any model; masked tensors count their mask, others their nonzeros.
        path: the image file to write (.png, .svg or .pdf).
        title: the chart's title (default: total kept and density).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, sprig
        >>> mlp = sprig.SparseMLP([2, 16, 16, 2], densities=[1.0, 0.1, 0.5])
        >>> plot_nnz(mlp, tempfile.mkdtemp() + "/nnz.png").suffix
        '.png'
    """
    table = summary(model)
    if not table.rows:
        raise ValueError(f"{type(model).__name__} has no weights that sprig can measure")
    names = [r.tensor for r in table.rows]
    x = np.arange(len(names))
    fig = new_figure(max(4.0, 0.9 * len(names) + 2.0), 3.6)
    ax = fig.add_subplot()
    ax.bar(x, [r.numel for r in table.rows], color="#dfe6f0", label="all weights")
    bars = ax.bar(x, [r.nnz for r in table.rows], color=_KEPT, label="kept (nonzero)")
    for bar, r in zip(bars, table.rows):
        ax.annotate(
            f"{r.nnz}\n{r.density:.0%}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    # long tensor names collide under narrow bars: slant them
    slant = max(len(n) for n in names) * 0.075 > 0.9
    ax.set_xticks(x, names, rotation=25 if slant else 0, ha="right" if slant else "center")
    ax.set_ylabel("weights")
    if max(r.numel for r in table.rows) > 50 * max(1, min(r.nnz for r in table.rows)):
        ax.set_yscale("log")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or f"nonzeros per layer: {table.nnz} of {table.numel} ({table.density:.1%})")
    return save_figure(fig, path)
