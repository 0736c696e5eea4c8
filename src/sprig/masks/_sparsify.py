"""Make any model sparse, measure it, and bake its masks away."""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .._checks import check_density, check_module, reject_keywords, sub_seed
from .._stack import user_stacklevel
from ._distributions import DISTRIBUTIONS, layer_counts
from ._layouts import is_transposed_linear, layer_mask, linear_shape
from ._mechanism import apply_mask, get_mask, mask_pattern, masked_parameters, remove_mask
from ._patterns import make_mask, parse_pattern
from ._storage import StoresWeights

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NOT_MASKABLE = "not maskable"  # summary's pattern label for weights sprig cannot mask


def sparsifiable_names(module: nn.Module) -> list[str]:
    """Names of ``module``'s own parameters that sprig masks by default (weights, not biases).

    A module can choose by defining ``sparsifiable_parameters() -> list[str]``.
    """
    own = getattr(module, "sparsifiable_parameters", None)
    if callable(own):
        return list(own())
    if isinstance(module, (nn.Linear, *_CONV)) or is_transposed_linear(module):
        return ["weight"]
    if isinstance(module, nn.RNNBase):
        return [n for n, _ in module.named_parameters(recurse=False) if n.startswith("weight_")]
    return []


def sparsifiable_parameters(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> Iterator[tuple[str, nn.Module, str]]:
    """(qualified name, owning module, parameter name) for each weight sprig would mask.

    ``include``/``exclude`` are shell-style patterns matched against the parameter's qualified
    name (``"layers.0.weight"``) and its module's name (``"layers.0"``).
    """
    for mod_name, module in model.named_modules():
        for name in sparsifiable_names(module):
            qual = f"{mod_name}.{name}" if mod_name else name
            if selected(qual, mod_name, include, exclude):
                yield qual, module, name


def selected(
    qual: str, mod_name: str, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> bool:
    """Whether a weight passes ``include``/``exclude`` (shell patterns on either name)."""
    return (include is None or _hit(include, qual, mod_name)) and (
        exclude is None or not _hit(exclude, qual, mod_name)
    )


def _hit(patterns: Sequence[str], qual: str, mod_name: str) -> bool:
    return any(fnmatch.fnmatchcase(qual, p) or fnmatch.fnmatchcase(mod_name, p) for p in patterns)


class LeftAloneWarning(UserWarning):
    """A sprig operation left some weights as they were; the message names each and says why."""


def left_alone(
    model: nn.Module, exclude: Sequence[str] | None = None
) -> list[tuple[str, nn.Module, str, str]]:
    """Weight tensors of ``model`` that sprig cannot mask: (qualified name, module, name, why).

    A weight is a parameter of rank >= 2 (biases and norm scales are not counted). Tensors that
    are also a maskable weight elsewhere (an embedding tied to ``lm_head``) are not listed, nor
    names matching ``exclude``.

    Returns:
        ``(qualified name, module, parameter name, reason)`` per weight, in module order.

    Example:
        >>> net = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
        >>> [(q, why.split(" is ")[0]) for q, _, _, why in left_alone(net)]
        [('0.weight', 'Embedding')]
    """
    maskable = {id(module._parameters[name]) for _, module, name in sparsifiable_parameters(model)}
    out = []
    # a layer that stores its weights sparsely (compressed, Keras SparseDense) lists them
    # itself in the summary, under whatever module names its tensors are also reached
    seen = {
        id(p)
        for _, part in _parts(model)
        if isinstance(part, StoresWeights) and isinstance(part, nn.Module)
        for p in part.parameters()
    }
    for mod_name, module in model.named_modules():
        own = set(sparsifiable_names(module))
        for name, param in module.named_parameters(recurse=False):
            qual = f"{mod_name}.{name}" if mod_name else name
            if param.dim() < 2 or name in own or id(param) in maskable or id(param) in seen:
                continue
            seen.add(id(param))  # a tensor reached under two module names is listed once
            if exclude is not None and _hit(exclude, qual, mod_name):
                continue
            out.append((qual, module, name, _why(module)))
    return out


def _why(module: nn.Module) -> str:
    kind = type(module).__name__
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return f"{kind} is a table lookup, not a product that sparse kernels speed up"
    return (
        f"sprig does not know how {kind} uses it (it masks Linear, Hugging Face Conv1D, Conv "
        "and RNN weights and layers that define sparsifiable_parameters())"
    )


def warn_left_alone(action: str, items: Sequence[tuple[str, str]]) -> None:
    """One :class:`LeftAloneWarning` naming every ``(weight, reason)`` that ``action`` skipped."""
    if not items:
        return
    lines = "\n".join(f"  {qual}: {why}" for qual, why in items)
    warnings.warn(
        f"{action} left {len(items)} weight tensor(s) as they were:\n{lines}",
        LeftAloneWarning,
        stacklevel=user_stacklevel(),
    )


class TiedWeightWarning(UserWarning):
    """A masked weight is the same tensor as another module's weight, which its mask changes."""


def warn_tied(action: str, model: nn.Module, quals: Sequence[str]) -> None:
    """One :class:`TiedWeightWarning` naming each weight in ``quals`` (masked by ``action``)
    that is also another module's parameter, such as ``lm_head.weight`` tied to a token
    embedding: its mask zeroes the same entries there."""
    names: dict[int, list[str]] = {}
    for qual, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(qual)
    params = dict(model.named_parameters(remove_duplicate=False))
    lines = []
    for qual in quals:
        others = [o for o in names.get(id(params.get(qual)), []) if o != qual]
        if qual in params and others:
            lines.append(f"  {qual} is also {', '.join(others)}")
    if lines:
        warnings.warn(
            f"{action} masked weights that other modules share (tied weights); their masks "
            "zero the same entries there:\n" + "\n".join(lines) + "\nExclude them (exclude="
            "['lm_head']) to keep the shared tensor whole, or untie the weights first "
            "(Hugging Face: tie_word_embeddings=False).",
            TiedWeightWarning,
            stacklevel=user_stacklevel(),
        )


def sparsify(
    model: nn.Module,
    density: float | None = None,
    *,
    distribution: str = "erk",
    pattern: str = "unstructured",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    seed: int = 0,
    **unknown: Any,
) -> nn.Module:
    """Mask the weights of ``model`` in place to a global ``density`` and return the model.

    Weights of ``nn.Linear``, Hugging Face ``Conv1D`` (its ``(in, out)`` layout respected: N:M
    groups run along the inputs), ``nn.Conv1d/2d/3d``, ``nn.RNN/GRU/LSTM`` (every
    ``weight_ih_l*`` and ``weight_hh_l*``) and sprig's layers are masked; biases are not. Other
    weight tensors (embeddings, unknown layers) stay dense with one :class:`LeftAloneWarning`
    naming each (not raised when ``include`` picks the weights). A model that is already
    masked is re-masked cleanly (new masks replace the old ones, never stack). If any layer
    cannot take the pattern, nothing is changed.

    Args:
        model: any ``nn.Module``.
        density: global fraction of weights kept, in (0, 1]. None only for N:M patterns.
        distribution: how the density is shared among layers: ``"erk"``, ``"er"``, ``"uniform"``.
        pattern: ``"unstructured"``, ``"row"``, ``"column"``, ``"block:4x4"``, ``"2:4"``...
        include: shell patterns of parameter or module names to mask (default: all eligible).
        exclude: shell patterns of names to leave dense.
        seed: seed for the random masks (each layer derives its own stable sub-seed).

    Returns:
        ``model``, masked.

    Example:
        >>> net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
        >>> _ = sparsify(net, density=0.1, distribution="uniform")
        >>> round(density(net), 3)
        0.1
    """
    reject_keywords("sparsify", unknown)
    spec = parse_pattern(pattern)
    DISTRIBUTIONS.get(distribution)  # fail early on unknown names
    targets = list(sparsifiable_parameters(model, include, exclude))
    # with include the user named what to mask, so only a whole-model call reports the rest
    skipped = [] if include is not None else left_alone(model, exclude)
    if not targets:
        raise ValueError(
            f"found nothing to sparsify in {type(model).__name__} "
            f"(include={include!r}, exclude={exclude!r}); sprig masks the weights of Linear, "
            "Conv and RNN layers and of sprig's own layers"
        )
    shapes = {
        q: linear_shape(mod, n, tuple(mod._parameters[n].shape))  # type: ignore[union-attr]
        for q, mod, n in targets
    }
    if spec.fixed_density is not None:
        if density is not None and abs(check_density(density) - spec.fixed_density) > 1e-9:
            raise ValueError(
                f"pattern {spec} fixes density at {spec.fixed_density:g}, but density={density!r}"
                " was given; pass density=None"
            )
        per_layer: dict[str, float | None] = {q: None for q in shapes}
    else:
        if density is None:
            raise ValueError("sparsify needs a density in (0, 1], e.g. density=0.1")
        counts = layer_counts(shapes, check_density(density), distribution)
        per_layer = {q: counts[q] / math.prod(shapes[q]) for q in shapes}
    # Build every mask first: a layer that cannot take the pattern leaves the model untouched.
    masks: list[tuple[nn.Module, str, Tensor]] = []
    for qual, module, name in targets:
        d, gen = per_layer[qual], sub_seed(seed, qual)
        shape = tuple(module._parameters[name].shape)  # type: ignore[union-attr]

        def make(
            view: tuple[int, ...], _: Tensor | None, d: float | None = d, g: int = gen
        ) -> Tensor:
            return make_mask(view, d, spec, generator=g)

        try:
            mask = layer_mask(module, name, make, shape)
        except ValueError as err:
            raise ValueError(f"{qual}: {err}") from None
        masks.append((module, name, mask))
    for module, name, mask in masks:
        apply_mask(module, name, mask, pattern=str(spec))
    warn_left_alone("sparsify", [(q, why) for q, _, _, why in skipped])
    warn_tied("sparsify", model, [q for q, _, _ in targets])
    return model


def density(model: nn.Module) -> float:
    """Fraction of sparsifiable weights that are kept: mask counts where masked, nonzeros elsewhere.

    Compressed layers (``sprig.compress``) count their stored entries.

    Example:
        >>> density(nn.Linear(3, 3))
        1.0
    """
    check_module(model, "sprig.density")
    rows = _rows(model)
    if not rows:
        raise ValueError(f"{type(model).__name__} has no weights that sprig can measure")
    return sum(r.nnz for r in rows) / sum(r.numel for r in rows)


@dataclass(frozen=True)
class SummaryRow:
    tensor: str
    shape: tuple[int, ...]
    nnz: int
    numel: int
    pattern: str

    @property
    def density(self) -> float:
        return self.nnz / self.numel


@dataclass(frozen=True)
class Summary:
    """Per-tensor sparsity of a model; ``str()`` gives a table."""

    rows: tuple[SummaryRow, ...]

    @property
    def nnz(self) -> int:
        return sum(r.nnz for r in self.rows)

    @property
    def numel(self) -> int:
        return sum(r.numel for r in self.rows)

    @property
    def density(self) -> float:
        return self.nnz / self.numel if self.numel else 1.0

    def __str__(self) -> str:
        head = ("tensor", "shape", "nnz", "density", "pattern")
        body = [
            (r.tensor, "x".join(map(str, r.shape)), str(r.nnz), f"{r.density:.4f}", r.pattern)
            for r in self.rows
        ]
        body.append(("total", "", str(self.nnz), f"{self.density:.4f}", ""))
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head,)]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        return "\n".join(lines)


def summary(model: nn.Module) -> Summary:
    """A table of every weight tensor: name, shape, nnz, density, pattern.

    Weights sprig can mask come first (``nnz`` counts the mask, or the nonzeros of an unmasked
    weight); then the weights it cannot mask (embeddings, unknown layers), at density 1.0 with
    pattern ``"not maskable"``, so nothing dense hides from the totals.

    Example:
        >>> print(summary(nn.Linear(2, 2)))  # doctest: +NORMALIZE_WHITESPACE
        tensor  shape  nnz  density  pattern
        ------  -----  ---  -------  -------
        weight  2x2    4    1.0000   dense
        total          4    1.0000
    """
    check_module(model, "sprig.summary")
    rows = _rows(model)
    for qual, module, name, _ in left_alone(model):
        param = module._parameters[name]
        assert param is not None
        rows.append(
            SummaryRow(qual, tuple(param.shape), param.numel(), param.numel(), _NOT_MASKABLE)
        )
    return Summary(tuple(rows))


def _parts(model: nn.Module) -> list[tuple[str, Any]]:
    """``model.named_modules()``, plus the layers of a Keras model (torch backend): Keras
    tracks its layers apart from torch's module tree, so they are reached by their names."""
    out: list[tuple[str, Any]] = list(model.named_modules())
    flatten = getattr(model, "_flatten_layers", None)
    if callable(flatten):
        out += [(layer.name, layer) for layer in flatten(include_self=False, recursive=True)]
    unique: dict[int, tuple[str, Any]] = {}
    for name, part in out:
        unique.setdefault(id(part), (name, part))  # the first name of a layer seen twice
    return list(unique.values())


def _rows(model: nn.Module) -> list[SummaryRow]:
    """One row per sparsifiable weight and per weight a compressed module stores, in module order.

    A module that keeps its weights in another form (CSR buffers) describes them itself
    (:class:`StoresWeights`).
    """
    order = {id(m): i for i, (_, m) in enumerate(_parts(model))}
    rows: list[tuple[int, SummaryRow]] = []
    for qual, module, name in sparsifiable_parameters(model):
        param = module._parameters[name]
        assert param is not None
        mask = get_mask(module, name)
        nnz = int(mask.sum()) if mask is not None else int(param.count_nonzero())
        pattern = mask_pattern(module, name) or "dense"
        rows.append(
            (order[id(module)], SummaryRow(qual, tuple(param.shape), nnz, param.numel(), pattern))
        )
    for prefix, module in _parts(model):
        if not isinstance(module, StoresWeights):
            continue
        for name, shape, nnz, pattern in module.stored_weights():
            qual = f"{prefix}.{name}" if prefix else name
            row = SummaryRow(qual, tuple(shape), int(nnz), math.prod(shape), pattern)
            rows.append((order[id(module)], row))
    rows.sort(key=lambda r: r[0])  # stable: a module's own weights keep their order
    return [r for _, r in rows]


def bake(model: nn.Module) -> nn.Module:
    """Remove every mask from ``model``; the pruned weights stay zero but become trainable."""
    for mp in list(masked_parameters(model)):
        remove_mask(mp.module, mp.name)
    return model


def is_sparse(model: nn.Module) -> bool:
    """True when any parameter of ``model`` is masked."""
    return any(True for _ in masked_parameters(model))
