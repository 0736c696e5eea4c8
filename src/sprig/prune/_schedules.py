"""Pruning schedules (when to prune, to what density) and the callback that runs one.

Zhu & Gupta 2017, "To prune, or not to prune", write gradual pruning in *sparsity*:

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3,   t in {t0, t0 + dt, ..., t0 + n dt}

sprig speaks *density* (d = 1 - s). Substituting s = 1 - d on both sides gives the same
formula in densities, because ``s_i - s_f = d_f - d_i``:

    d_t = d_f + (d_i - d_f) (1 - (t - t0) / (n dt))^3

so a schedule from sparsity 0 to 0.9 is a schedule from density 1.0 to 0.1, with the same
cubic shape: fast pruning early, when the network has many redundant weights, then slower.
Here ``end = t0 + n dt``.

:class:`GradualPruning` is a :class:`sprig.training.Callback`: give it to
:func:`sprig.training.train_classifier` (or call :meth:`GradualPruning.step` after each
optimizer step in your own loop). It counts optimizer steps; after step ``t`` (counting from 1)
it prunes to ``schedule.density_at(t)`` when the schedule says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

import torch
from torch import nn

from .._callback import Callback
from .._checks import check_density, check_int
from .._registry import Registry
from ..masks import density as model_density
from ._pruners import MagnitudePruner, Pruner


class Schedule:
    """When to prune and to what density; subclasses define :meth:`density_at`."""

    def density_at(self, step: int) -> float | None:
        """Target density after optimizer step ``step`` (1-based), or None: no pruning then."""
        raise NotImplementedError

    def target(self, step: int) -> float:
        """The density the schedule wants by ``step`` (defined at every step)."""
        raise NotImplementedError


SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


@SCHEDULES.register("one_shot")
@dataclass(frozen=True)
class OneShot(Schedule):
    """Prune once, to ``density``, after step ``at`` (``at=0``: at :class:`GradualPruning`'s
    first call, after the first step).

    Example:
        >>> s = OneShot(density=0.1, at=500)
        >>> s.density_at(499), s.density_at(500), s.target(1000)
        (None, 0.1, 0.1)
    """

    density: float
    at: int = 0

    def __post_init__(self) -> None:
        check_density(self.density)
        if self.at < 0:
            raise ValueError(f"at must be a step >= 0, got {self.at}")

    def density_at(self, step: int) -> float | None:
        return self.density if step == self.at else None

    def target(self, step: int) -> float:
        return self.density if step >= self.at else 1.0


@SCHEDULES.register("polynomial")
@dataclass(frozen=True)
class Polynomial(Schedule):
    """Gradual pruning (Zhu & Gupta 2017) from ``initial_density`` to ``final_density``.

    ``d_t = d_f + (d_i - d_f) (1 - (t - start) / (end - start))^power``, pruning every
    ``every`` steps from ``start`` to ``end`` (both included); see the module docstring for the
    conversion from the paper's sparsity form.

    Args:
        final_density: d_f, in (0, 1].
        start: t0, the first pruning step.
        end: t0 + n dt, the last pruning step (reaches ``final_density``).
        every: dt, steps between pruning events; ``end - start`` must be a multiple of it.
        initial_density: d_i (default 1.0, dense).
        power: 3 in the paper.

    Example:
        >>> s = Polynomial(final_density=0.1, start=0, end=100, every=10)
        >>> s.density_at(0), round(s.density_at(50), 4), s.density_at(55), s.density_at(100)
        (1.0, 0.2125, None, 0.1)
    """

    final_density: float
    start: int
    end: int
    every: int = 100
    initial_density: float = 1.0
    power: float = 3.0

    def __post_init__(self) -> None:
        check_density(self.final_density, "final_density")
        check_density(self.initial_density, "initial_density")
        if self.final_density > self.initial_density:
            raise ValueError(
                f"final_density {self.final_density} is above initial_density "
                f"{self.initial_density}; pruning only removes weights: swap them"
            )
        if self.start < 0:
            raise ValueError(f"start must be a step >= 0, got {self.start}")
        if self.end <= self.start:
            raise ValueError(
                f"schedule end ({self.end}) must be after its start ({self.start}); "
                f"e.g. start={self.start}, end={self.start + 10 * max(1, self.every)}"
            )
        if self.every < 1:
            raise ValueError(f"every must be >= 1 step, got {self.every}")
        if (self.end - self.start) % self.every:
            fix = self.start + self.every * -(-(self.end - self.start) // self.every)
            raise ValueError(
                f"end - start ({self.end - self.start}) must be a multiple of every "
                f"({self.every}); e.g. end={fix}"
            )
        if not self.power > 0:
            raise ValueError(f"power must be > 0, got {self.power}")

    def target(self, step: int) -> float:
        frac = min(1.0, max(0.0, (step - self.start) / (self.end - self.start)))
        d_i, d_f = self.initial_density, self.final_density
        return d_f + (d_i - d_f) * (1.0 - frac) ** self.power

    def density_at(self, step: int) -> float | None:
        if step < self.start or step > self.end or (step - self.start) % self.every:
            return None
        return self.target(step)


class GradualPruning(Callback):
    """Prunes a model on a schedule while it trains: a training-loop callback.

    Every call of :meth:`step` (one per optimizer step; ``train_classifier`` calls it through
    ``after_step``) advances the step count; when the schedule gives a density for that step,
    the pruner prunes to it within the current masks. Layers already at or below the target are
    left as they are.

    Args:
        schedule: a :class:`OneShot` or :class:`Polynomial` (any :class:`Schedule`).
        pruner: how to choose the weights (default: magnitude, layer scope).
        include, exclude: which weights to prune (shell patterns, as :func:`sprig.sparsify`).
        seed: for random pruners.

    Example:
        >>> from sprig.data import course_task
        >>> from sprig.training import TrainConfig, train_classifier
        >>> net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
        >>> cb = GradualPruning(Polynomial(final_density=0.1, start=10, end=40, every=10))
        >>> _ = train_classifier(net, course_task(), TrainConfig(steps=50), callbacks=[cb])
        >>> round(model_density(net), 3), cb.state_dict()["step"]
        (0.1, 50)
    """

    def __init__(
        self,
        schedule: Schedule,
        pruner: Pruner | None = None,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a sprig Schedule, got {schedule!r}")
        self.schedule = schedule
        self.pruner = pruner if pruner is not None else MagnitudePruner()
        self.include = include
        self.exclude = exclude
        self.seed = seed
        self.steps_done = 0
        self.history: list[tuple[int, float]] = []  # (step, density reached)

    def step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
    ) -> float | None:
        """Count one optimizer step; prune if due. Returns the density pruned to, or None.

        ``optimizer`` is needed for compressed layers (their optimizer state shrinks with them).
        """
        self.steps_done += 1
        target = self.schedule.density_at(self.steps_done)
        if self.steps_done == 1 and target is None:
            # no call comes before the first step: a target "after step 0" (OneShot's default
            # at=0) applies at the first call (it was never applied)
            target = self.schedule.density_at(0)
        if target is None:
            return None
        self.pruner.prune(
            model,
            target,
            include=self.include,
            exclude=self.exclude,
            seed=self.seed + self.steps_done,
            strict=False,
            optimizer=optimizer,
        )
        reached = model_density(model)
        self.history.append((self.steps_done, reached))
        return reached

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.step(model, optimizer)

    def state_dict(self) -> dict[str, Any]:
        """The step count and pruning history (the schedule and pruner are configuration)."""
        sched: dict[str, Any] = {}
        if is_dataclass(self.schedule) and not isinstance(self.schedule, type):
            sched = asdict(self.schedule)
        return {
            "step": self.steps_done,
            "history": [list(h) for h in self.history],
            "schedule": {"kind": type(self.schedule).__name__, **sched},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (the model's masks come back with the model)."""
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError("state must be a dict from GradualPruning.state_dict() with 'step'")
        step = state["step"]
        check_int(step, "state 'step'", 0)
        saved = state.get("schedule", {}).get("kind")
        if saved is not None and saved != type(self.schedule).__name__:
            raise ValueError(
                f"state was saved with a {saved} schedule, this callback has a "
                f"{type(self.schedule).__name__}; build the callback with the same schedule"
            )
        self.steps_done = step
        self.history = [(int(s), float(d)) for s, d in state.get("history", [])]
