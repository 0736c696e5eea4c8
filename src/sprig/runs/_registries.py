"""The named choices an experiment config makes: data, model, sparsity method, LR schedule.

Each registry maps a name to a callable whose keyword parameters *are* the config's options:
``[method] name = "rigl"`` with ``every = 100`` calls the registered ``rigl`` with
``every=100``, after checking the key and its type against the signature. Parameters
with the names listed in ``*_INPUTS`` are filled in by the run instead.

Adding a sparsity method is one function whose options are keyword parameters::

    def my_set(model, steps, seed, every=100):  # [method] name = "my_set", every = 50
        return sprig.SET(model, t_end=steps, every=every, seed=seed)

    RUN_METHODS.add("my_set", my_set)

A method receives what it asks for by name among :data:`METHOD_INPUTS` (``model``,
``optimizer``, ``data``, ``steps``/``total_steps``, ``seed``, ``generator``) and returns a
callback, a list of callbacks, or None. Callbacks with ``state_dict``/``load_state_dict`` are
checkpointed; the ``generator`` it is given is checkpointed by the run, so a method that draws
its randomness from it resumes exactly.

Units: a run's options that say *when* are fractions of the run and end in ``_fraction``
(``start_fraction = 0.1``, ``end_fraction = 0.75``); the run turns them into the step numbers
that the library takes (:class:`sprig.dst.DSTConfig`'s ``start``/``t_end``,
:class:`sprig.prune.Polynomial`'s ``start``/``end``). ``every`` is a number of steps in both.
The old option names ``start``/``end`` are still accepted as the fractions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from .._registry import Registry
from ..data import Split, course_task, mnist1d, moons
from ..dst import make_updater
from ..masks import density
from ..nn import SparseMLP
from ..prune import GradualPruning, Polynomial, make_pruner

DATASETS: Registry[Callable[..., Split]] = Registry("dataset")
DATASETS.add("moons", moons)
DATASETS.add("course_task", course_task)
DATASETS.add("mnist1d", mnist1d)

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
MODEL_INPUTS = ("n_features", "n_classes", "seed")

RUN_METHODS: Registry[Callable[..., Any]] = Registry("sparsity method")
METHOD_INPUTS = ("model", "optimizer", "data", "steps", "total_steps", "seed", "generator")

LR_SCHEDULES: Registry[Callable[..., float]] = Registry("schedule")
SCHEDULE_INPUTS = ("step", "steps")


@MODELS.register("mlp")
def mlp(
    n_features: int,
    n_classes: int,
    seed: int,
    hidden: Sequence[int] = (16, 16),
    densities: float | Sequence[float] = 1.0,
    activation: str = "relu",
    pattern: str = "unstructured",
    bias: bool = True,
    storage: str = "masked",
) -> nn.Module:
    """A :class:`sprig.SparseMLP` from the data's width to one output per class.

    ``densities`` has one entry per layer (``len(hidden) + 1``) or one for all. ``storage``
    is ``"masked"`` or ``"compressed"`` (nonzeros only: trains in nonzero-sized memory).
    """
    dens = densities if isinstance(densities, (int, float)) else list(densities)
    sizes = [n_features, *hidden, n_classes]
    return SparseMLP(sizes, dens, activation, pattern, bias, seed, storage=storage)


@RUN_METHODS.register("static")
def static() -> None:
    """Static sparse training: the masks the model was built with never change."""
    return None


@RUN_METHODS.register("dense")
def dense(model: nn.Module) -> None:
    """The dense baseline: every weight trains (the model must be built with densities 1)."""
    kept = density(model)
    if kept < 1.0:
        raise ValueError(
            f"method 'dense' trains every weight, but the model keeps only {kept:.3f} of them; "
            "set model.densities = 1.0, or use method 'static'"
        )
    # the all-ones masks stay: sprig.load rebuilds a SparseMLP with its masks
    return None


@LR_SCHEDULES.register("constant")
def constant(step: int, steps: int) -> float:
    """The learning rate stays as given."""
    return 1.0


@LR_SCHEDULES.register("linear")
def linear(step: int, steps: int, final_factor: float = 0.1) -> float:
    """From the learning rate down to ``final_factor`` times it, linearly (the article's
    ``1 - 0.9 * k / N``)."""
    return 1.0 - (1.0 - final_factor) * step / max(steps, 1)


@LR_SCHEDULES.register("cosine")
def cosine(step: int, steps: int, final_factor: float = 0.0) -> float:
    """Half a cosine from the learning rate down to ``final_factor`` times it."""
    return final_factor + (1.0 - final_factor) * 0.5 * (
        1 + math.cos(math.pi * step / max(steps, 1))
    )


def _fraction(name: str, value: float | None, old: float | None, default: float) -> float:
    """A fraction-of-the-run option under its name ``name`` or its old one (``name`` less
    ``_fraction``), which configs written before the rename still use."""
    if value is not None and old is not None:
        short = name.removesuffix("_fraction")
        raise ValueError(
            f"[method] sets both {name}={value!r} and {short}={old!r}, the old name of the same "
            f"option; keep only {name}"
        )
    if value is not None:
        return value
    return default if old is None else old


def _mask_updater(method: str, doc: str) -> Callable[..., Any]:
    """A run method for the DST updater registered as ``method`` in :mod:`sprig.dst`."""

    def factory(
        model: nn.Module,
        steps: int,
        seed: int,
        fraction: float = 0.3,
        every: int = 100,
        end_fraction: float | None = None,
        decay: str = "cosine",
        init: str = "zero",
        end: float | None = None,
    ) -> Any:
        # end_fraction is a fraction of the run; the updater's t_end is a step (see module doc)
        stop = _fraction("end_fraction", end_fraction, end, 0.75)
        if not 0.0 < stop <= 1.0:
            raise ValueError(
                f"[method] end_fraction is the fraction of the run after which masks stop "
                f"changing, in (0, 1]; got {stop!r} (RigL uses 0.75)"
            )
        return make_updater(
            method,
            model,
            t_end=max(1, int(stop * steps)),
            fraction=fraction,
            every=every,
            decay=decay,
            init=init,
            seed=seed,
        )

    factory.__doc__ = doc
    return factory


RUN_METHODS.add("rigl", _mask_updater("rigl", "RigL: grow where the dense gradient is largest."))
RUN_METHODS.add("set", _mask_updater("set", "SET: drop the smallest weights, grow at random."))
RUN_METHODS.add("snfs", _mask_updater("snfs", "Sparse momentum: grow by momentum, redistribute."))
RUN_METHODS.add("deepr", _mask_updater("deepr", "Deep Rewiring: noisy signed updates, rewire."))


@RUN_METHODS.register("gradual")
def gradual(
    steps: int,
    seed: int,
    final_density: float = 0.1,
    start_fraction: float | None = None,
    end_fraction: float | None = None,
    every: int = 50,
    pruner: str = "magnitude",
    scope: str = "layer",
    start: float | None = None,
    end: float | None = None,
) -> Any:
    """Gradual magnitude pruning (Zhu & Gupta 2017) from the model's density down to
    ``final_density``, between ``start_fraction`` (default 0.1) and ``end_fraction`` (default
    0.75) of the run, every ``every`` steps. Build the model dense (densities = 1.0) or sparse;
    pruning never revives a weight. ``start``/``end``: the old names of the two fractions."""
    first = _fraction("start_fraction", start_fraction, start, 0.1)
    last = _fraction("end_fraction", end_fraction, end, 0.75)
    if not 0.0 <= first < last <= 1.0:
        raise ValueError(
            f"[method] needs 0 <= start_fraction < end_fraction <= 1 (fractions of the run), got "
            f"start_fraction={first!r}, end_fraction={last!r}"
        )
    # Polynomial's start/end are steps
    schedule = Polynomial(
        final_density=final_density,
        start=int(first * steps),
        end=max(int(first * steps) + 1, int(last * steps)),
        every=every,
    )
    return GradualPruning(schedule, make_pruner(pruner, scope=scope), seed=seed)
