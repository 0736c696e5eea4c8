"""The whole bonsai recipe in one call: grow, threshold search, graph, validation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..nn import BonsaiRNN
from ._graph import Graph, extract_graph
from ._grow import GrowConfig, grow
from ._tasks import Task, get_task
from ._threshold import ThresholdResult, quantize_search, threshold_search
from ._validate import Score, score


@dataclass
class BonsaiResult:
    """What :func:`grow_bonsai` made.

    Attributes:
        task: the task.
        model: the trained network.
        pruned: the clipped network.
        threshold: the clip threshold found.
        perfect: whether the clipped network was perfect on the threshold check sequences.
        graph: the pruned network as a graph (dead code removed).
        score: the graph's validation score on fresh sequences.
        losses: the training loss of every step.
        seconds: wall time of the whole run.
    """

    task: Task
    model: BonsaiRNN
    pruned: BonsaiRNN
    threshold: float
    perfect: bool
    graph: Graph
    score: Score
    losses: list[float]
    seconds: float


def grow_bonsai(
    task: str | Task,
    config: GrowConfig | None = None,
    check_sequences: int = 5_000,
    validation_sequences: int = 50_000,
    validation_length: int = 40,
    on_step: Callable[[int, float], None] | None = None,
    quantize: bool = False,
    confirm_sequences: int | None = None,
) -> BonsaiResult:
    """Grow a bonsai network on ``task``, prune it to a graph and validate the graph.

    Args:
        task: a registered task name or a :class:`Task`.
        config: the training recipe (default :class:`GrowConfig`).
        check_sequences: fresh sequences each clip threshold must get right (post: 5,000).
        validation_sequences: fresh sequences the final graph is scored on (post: 50,000).
        validation_length: their length (post: 40).
        on_step: called with ``(step, loss)`` after each training step.
        quantize: after clipping, also round the values to the coarsest step that keeps the
            network perfect (:func:`quantize_search`): a more readable graph.
        confirm_sequences: fresh sequences a threshold that passes the check must also get
            right before it is kept (:func:`threshold_search`; None: as many as the
            validation, so a rare error is caught before the validation, not by it).

    Returns:
        A :class:`BonsaiResult`.

    Example:
        >>> r = grow_bonsai("delay-1", GrowConfig(cells=[(1, 1)], steps=2, batch_size=8),
        ...                 check_sequences=10, validation_sequences=10)
        >>> r.graph.counts()["neurons"] >= 1
        True
    """
    start = time.perf_counter()
    task = get_task(task)
    config = config or GrowConfig()
    model, losses = grow(task, config, on_step=on_step)
    confirm = validation_sequences if confirm_sequences is None else confirm_sequences
    found = threshold_search(
        model,
        task,
        sequences=check_sequences,
        seed=config.seed + 1,
        finetune_steps=config.finetune_steps,
        finetune_length=config.length,  # the length the network was grown on
        confirm_sequences=confirm,
    )
    if quantize and found.perfect:
        rounded = quantize_search(
            found.model, task, check_sequences, seed=config.seed + 1, confirm_sequences=confirm
        )
        if rounded.perfect:
            found = ThresholdResult(rounded.model, found.threshold, True)
    graph = extract_graph(
        found.model,
        task=task.name,
        threshold=found.threshold,
        seed=config.seed,
    )
    val = score(graph.evaluate, task, validation_sequences, validation_length, seed=config.seed + 2)
    return BonsaiResult(
        task,
        model,
        found.model,
        found.threshold,
        found.perfect,
        graph,
        val,
        losses,
        time.perf_counter() - start,
    )


def best_result(results: Sequence[BonsaiResult]) -> BonsaiResult:
    """The run to keep among several (seeds): the smallest graph that is perfect on its
    validation sequences (neurons + states + edges, the earlier run on ties), else the run
    with the highest validation accuracy.

    Seeds differ a lot on the harder tasks (switcher, 5 seeds: 3 perfect, with 12/7/67 to
    25/12/372), as in the post, which reports its best runs.
    """
    if not results:
        raise ValueError("best_result needs at least one BonsaiResult")
    perfect = [r for r in results if r.score.perfect]
    if perfect:
        return min(perfect, key=lambda r: sum(r.graph.counts().values()))
    return max(results, key=lambda r: r.score.accuracy)
