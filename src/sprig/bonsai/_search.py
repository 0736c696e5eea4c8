"""Automatic growth: the smallest bonsai network that learns a task perfectly, with no
settings (what :func:`grow_bonsai` does without a config).

Sizes are tried from the smallest cells up, a few seeds each; every run trains on a
curriculum of sequence lengths (short first, then the validation length), stops early once
it is perfect or once it stalls, and is then clipped and validated as one run of
:func:`grow_once`. The search ends at the first size with a perfect graph (the smallest of its
seeds' graphs is kept) or when the time budget is spent.

The recipe differs from the post's preset runs where exploration runs measured it should
(their figures are in the notes of benchmarks/results/bonsai_user.md): a regularizer ten
times weaker (the small sizes do most of the pruning, and a strong one pulled parity's
networks to the copy y = x before they learnt anything), batches of 256 (more steps per
second), and the length curriculum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .._checks import check_int
from ._grow import Check, GrowConfig
from ._pipeline import Attempt, BonsaiResult, best_result, grow_once
from ._tasks import Task, get_task

#: Cells tried, smallest first (neurons per cell: output width x state width). A final
#: linear layer joins an output width above the task's: parity learnt in 4 of 4 seeds with
#: cells (2, 2) and in 0 of 4 with (1, 2) (exploration runs).
SIZES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((1, 1),),
    ((2, 1),),
    ((2, 2),),
    ((2, 3),),
    ((3, 3),),
    ((4, 4),),
    ((6, 6),),
    ((8, 8),),
)

#: The training recipe of every search run (GrowConfig fields; the search sets cells, seed).
RECIPE: dict[str, Any] = {
    "activation": "interpolated_ameo",
    "steps": 3000,
    "batch_size": 256,
    "length": 40,
    "intensity": 0.005,
    "curriculum": (4, 8, 16),
    "check_every": 50,
    "check_sequences": 256,
    "early_stop": 3,
    "patience": 6,
    "finetune_steps": 300,
}


@dataclass
class SearchConfig:
    """How :func:`grow_bonsai` searches when it has no :class:`GrowConfig`.

    Args:
        sizes: cells to try, smallest first (each a list of ``(output, state)`` widths).
        seeds: seeds tried per size (seeds ``seed``, ``seed + 1``, ...); a size ends at its
            first perfect seed.
        seed: the first seed.
        budget_s: wall-clock seconds for the whole search (None: no bound); the run in
            progress is cut at the deadline and still clipped and validated.
        recipe: GrowConfig fields of every run (default :data:`RECIPE`); ``cells`` and
            ``seed`` come from the search.

    Example:
        >>> SearchConfig(budget_s=60).seeds
        3
    """

    sizes: Sequence[Sequence[Sequence[int]]] = SIZES
    seeds: int = 3
    seed: int = 0
    budget_s: float | None = 180.0
    recipe: dict[str, Any] = field(default_factory=lambda: dict(RECIPE))

    def __post_init__(self) -> None:
        check_int(self.seeds, "seeds", 1)
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"budget_s must be > 0 seconds (or None), got {self.budget_s!r}")
        if not self.sizes:
            raise ValueError("sizes must list at least one cell configuration")
        for key in ("cells", "seed"):
            if key in self.recipe:
                raise ValueError(f"recipe must not set {key!r}: the search sets it")
        # every size with the recipe must be a valid GrowConfig: fail here, not mid-search
        self.configs(0)

    def configs(self, seed: int) -> list[GrowConfig]:
        """The run of each size for ``seed``."""
        return [GrowConfig(cells=cells, seed=seed, **self.recipe) for cells in self.sizes]


class Progress(NamedTuple):
    """Where a search is, for a progress bar: the run's cells and seed, its last
    :class:`Check`, and the seconds since the search began."""

    cells: tuple[tuple[int, int], ...]
    seed: int
    check: Check
    elapsed: float


def grow_bonsai(
    task: str | Task,
    config: GrowConfig | None = None,
    check_sequences: int = 5_000,
    validation_sequences: int = 50_000,
    validation_length: int = 40,
    on_step: Callable[[int, float], None] | None = None,
    quantize: bool = False,
    confirm_sequences: int | None = None,
    search: SearchConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> BonsaiResult:
    """Grow a bonsai network on ``task``, prune it to a graph and validate the graph.

    With a ``config``, one run of that recipe (:func:`grow_once`). Without one, an automatic
    search (``search``, default :class:`SearchConfig`): sizes from the smallest up, a few
    seeds each, a curriculum over sequence length, early stopping, a time budget; it returns
    the smallest perfect graph of the first size that gave one (else the most accurate run),
    with every run in ``attempts``. Built-in presets are not used: pass
    ``preset_config(name)`` for those.

    Args:
        task: a registered task name or a :class:`Task`.
        config: the training recipe of one run (None: search).
        check_sequences: fresh sequences each clip threshold must get right (post: 5,000).
        validation_sequences: fresh sequences the final graph is scored on (post: 50,000).
        validation_length: their length (post: 40).
        on_step: called with ``(step, loss)`` after each training step.
        quantize: also round the values to the coarsest step that stays perfect.
        confirm_sequences: see :func:`grow_once`.
        search: how to search (only without ``config``).
        on_progress: called with a :class:`Progress` at each training check of a search.

    Returns:
        A :class:`BonsaiResult` (``seconds``: the whole search).

    Raises:
        ValueError: ``config`` and ``search`` both given, or a budget too small for one run
            to finish training before it.

    Example:
        >>> r = grow_bonsai("delay-1", GrowConfig(cells=[(1, 1)], steps=2, batch_size=8),
        ...                 check_sequences=10, validation_sequences=10)
        >>> r.graph.counts()["neurons"] >= 1
        True
    """
    common: dict[str, Any] = {
        "check_sequences": check_sequences,
        "validation_sequences": validation_sequences,
        "validation_length": validation_length,
        "on_step": on_step,
        "quantize": quantize,
        "confirm_sequences": confirm_sequences,
    }
    if config is not None:
        if search is not None:
            raise ValueError("give a config (one run) or a search (automatic growth), not both")
        return grow_once(task, config, **common)
    return _search(get_task(task), search or SearchConfig(), on_progress, common)


def _search(
    task: Task,
    search: SearchConfig,
    on_progress: Callable[[Progress], None] | None,
    common: dict[str, Any],
) -> BonsaiResult:
    start = time.perf_counter()
    deadline = None if search.budget_s is None else start + search.budget_s
    results: list[BonsaiResult] = []
    attempts: list[Attempt] = []
    finished = 0  # runs whose training ended before the deadline
    for size in range(len(search.sizes)):
        for seed in range(search.seed, search.seed + search.seeds):
            if deadline is not None and time.perf_counter() > deadline:
                break
            r, attempt, cut = _attempt(
                task, search.configs(seed)[size], deadline, start, on_progress, common
            )
            finished += not cut
            results.append(r)
            attempts.append(attempt)
            if r.score.perfect:
                break  # the first perfect seed ends the size: later seeds rarely beat it
        if any(r.score.perfect for r in results) or (
            deadline is not None and time.perf_counter() > deadline
        ):
            break
    if not finished:
        first = attempts[0] if attempts else None
        at = (
            f": the first run (cells {list(first.cells)}) was cut after {first.steps} steps"
            if first
            else ""
        )
        raise ValueError(
            f"budget_s={search.budget_s:g} s is too small to try one size{at}; give a budget "
            "of at least a minute (--budget 60)"
        )
    best = replace(best_result(results), attempts=attempts)
    best.seconds = time.perf_counter() - start
    return best


def _attempt(
    task: Task,
    config: GrowConfig,
    deadline: float | None,
    start: float,
    on_progress: Callable[[Progress], None] | None,
    common: dict[str, Any],
) -> tuple[BonsaiResult, Attempt, bool]:
    """One run of the search: its result, its :class:`Attempt`, and whether the deadline cut
    its training."""
    cells = tuple((int(o), int(s)) for o, s in config.cells)
    last = [Check(-1, [*config.curriculum, config.length][0], 0.0, False)]
    stepped = [time.perf_counter()]
    user_step = common["on_step"]

    def on_check(check: Check) -> None:
        last[0] = check
        if on_progress is not None:
            on_progress(Progress(cells, config.seed, check, time.perf_counter() - start))

    def on_step(step: int, loss: float) -> None:
        stepped[0] = time.perf_counter()
        if user_step is not None:
            user_step(step, loss)

    r = grow_once(
        task,
        config,
        on_check=on_check,
        deadline=deadline,
        give_up=True,
        **{**common, "on_step": on_step},
    )
    # training ends at the first step after the deadline; half a second covers the step that
    # ran across it
    cut = deadline is not None and len(r.losses) < config.steps and stepped[0] > deadline - 0.5
    attempt = Attempt(
        cells,
        config.seed,
        len(r.losses),
        last[0].length,
        r.graph.counts(),
        r.score.accuracy,
        r.score.perfect,
        r.seconds,
    )
    return r, attempt, cut
