"""One bonsai run: grow, threshold search, graph, validation (:func:`grow_once`); the
automatic search over sizes and seeds that :func:`sprig.bonsai.grow_bonsai` runs without a
config is in ``_search.py``."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from .._checks import check_int
from ..nn import BonsaiRNN
from ._compile import CompileError, compile_machine
from ._fsm import FSMError, counterexample, extract_fsm
from ._graph import Graph, extract_graph
from ._grow import Check, GrowConfig, grow
from ._minimize import minimize, prune_weights
from ._tasks import Task, get_task
from ._threshold import CLOSE, ThresholdResult, quantize_search, threshold_search
from ._validate import Score, score


@dataclass
class BonsaiResult:
    """What :func:`grow_bonsai` made.

    Attributes:
        task: the task.
        model: the trained network.
        pruned: the clipped network (pruned further with ``config.prune_finetunes``, and the graph
            then minimised by :func:`minimize`: it may be smaller than this network's); with
            ``config.compile_machine``, the compiled network when its graph was kept.
        threshold: the clip threshold found (of the grown network).
        perfect: whether the clipped network was perfect on the threshold check sequences.
        graph: the pruned network as a graph (dead code removed), or the compiled one
            (``meta["grown"]`` then holds the grown graph's counts).
        score: the graph's validation score on fresh sequences.
        losses: the training loss of every step.
        seconds: wall time of the whole run (of the whole search, for a searched result).
        attempts: every run of an automatic search, in order (empty for one run).
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
    attempts: list[Attempt] = field(default_factory=list)


class Attempt(NamedTuple):
    """One run of an automatic search: its cells and seed, what it gave and how long it took.

    ``steps`` is how many training steps ran (early stopping ends most runs sooner);
    ``length`` the sequence length the curriculum had reached; ``counts`` the graph's neurons,
    states and edges; ``accuracy`` and ``perfect`` its validation (on at most 1,000 sequences
    for a run given up on, see :func:`grow_once`); ``seconds`` the run's wall time.
    """

    cells: tuple[tuple[int, int], ...]
    seed: int
    steps: int
    length: int
    counts: dict[str, int]
    accuracy: float
    perfect: bool
    seconds: float


def grow_once(
    task: str | Task,
    config: GrowConfig,
    check_sequences: int = 5_000,
    validation_sequences: int = 50_000,
    validation_length: int = 40,
    on_step: Callable[[int, float], None] | None = None,
    quantize: bool = False,
    confirm_sequences: int | None = None,
    on_check: Callable[[Check], None] | None = None,
    deadline: float | None = None,
    give_up: bool = False,
) -> BonsaiResult:
    """Grow one bonsai network on ``task`` with ``config``, prune it to a graph and validate
    the graph (what :func:`sprig.bonsai.grow_bonsai` does with a config).

    Args:
        task: a registered task name or a :class:`Task`.
        config: the training recipe.
        check_sequences: fresh sequences each clip threshold must get right (post: 5,000).
        validation_sequences: fresh sequences the final graph is scored on (post: 50,000).
        validation_length: their length (post: 40).
        on_step: called with ``(step, loss)`` after each training step.
        quantize: after clipping, also round the values to the coarsest step that keeps the
            network perfect (:func:`quantize_search`): a more readable graph.
        confirm_sequences: fresh sequences a threshold that passes the check must also get
            right before it is kept (:func:`threshold_search`; None: as many as the
            validation, so a rare error is caught before the validation, not by it).
        on_check: called with each training :class:`Check` (``config.check_every``).
        deadline: a ``time.perf_counter()`` value at which training stops.
        give_up: when training stopped before its last curriculum length, or its last check
            got fewer than ``CLOSE`` (97%) of the output bits right, skip the fine-tuning and
            validate on at most 1,000 sequences: such a run only needs its accuracy on record
            (the search's hopeless sizes and seeds).

    Returns:
        A :class:`BonsaiResult`.

    Example:
        >>> r = grow_once("delay-1", GrowConfig(cells=[(1, 1)], steps=2, batch_size=8),
        ...               check_sequences=10, validation_sequences=10)
        >>> r.graph.counts()["neurons"] >= 1
        True
    """
    start = time.perf_counter()
    task = get_task(task)
    checks: list[Check] = []

    def record(check: Check) -> None:
        checks.append(check)
        if on_check is not None:
            on_check(check)

    model, losses = grow(task, config, on_step=on_step, on_check=record, deadline=deadline)
    # a run that never reached its last length (or ended far from perfect) is not rescued by
    # fine-tuning: a search spent most of a minute on each run stalled near perfect (row
    # finetune-stall of benchmarks/results/design_measurements.md)
    hopeless = give_up and (
        not checks or checks[-1].length < config.length or checks[-1].accuracy < CLOSE
    )
    if hopeless:
        validation_sequences = min(validation_sequences, 1_000)
    confirm = validation_sequences if confirm_sequences is None else confirm_sequences
    found = threshold_search(
        model,
        task,
        sequences=check_sequences,
        seed=config.seed + 1,
        finetune_steps=0 if hopeless else config.finetune_steps,
        finetune_length=config.length,  # the length the network was grown on
        confirm_sequences=confirm,
    )
    if quantize and found.perfect:
        rounded = quantize_search(
            found.model, task, check_sequences, seed=config.seed + 1, confirm_sequences=confirm
        )
        if rounded.perfect:
            found = ThresholdResult(rounded.model, found.threshold, True)
    clipped = None
    if config.prune_finetunes and found.perfect:
        clipped = extract_graph(found.model).counts()
        found = ThresholdResult(
            prune_weights(
                found.model,
                task,
                check_sequences,
                validation_length,  # every removal is checked at the length validated
                seed=config.seed + 1,
                confirm_sequences=confirm,
                finetune_steps=config.finetune_steps,
                max_finetunes=config.prune_finetunes,
                finetune_length=config.length,  # the length the network was grown on
                recheck=config.prune_recheck,
            ),
            found.threshold,
            True,
        )
    graph = extract_graph(
        found.model,
        task=task.name,
        threshold=found.threshold,
        seed=config.seed,
    )
    if config.prune_finetunes and found.perfect:
        graph = _minimized(graph, task, config, check_sequences, confirm)
        graph.meta["clipped"] = clipped  # the counts at the clip threshold alone
    val = score(graph.evaluate, task, validation_sequences, validation_length, seed=config.seed + 2)
    pruned = found.model
    if config.compile_machine and not val.perfect:
        graph.meta["compile_machine"] = "not compiled: the grown graph is not perfect"
    elif config.compile_machine:
        compiled = _compiled(graph, task, config, check_sequences, confirm)
        if isinstance(compiled, str):
            graph.meta["compile_machine"] = compiled
        else:
            cval = score(
                compiled[1].evaluate,
                task,
                validation_sequences,
                validation_length,
                seed=config.seed + 2,
            )
            if cval.perfect:
                pruned, graph, val = compiled[0], compiled[1], cval
            else:
                graph.meta["compile_machine"] = (
                    "kept the grown graph: the compiled one erred on the validation"
                )
    return BonsaiResult(
        task,
        model,
        pruned,
        found.threshold,
        found.perfect,
        graph,
        val,
        losses,
        time.perf_counter() - start,
    )


def _minimized(
    graph: Graph, task: Task, config: GrowConfig, check_sequences: int, confirm_sequences: int
) -> Graph:
    """:func:`minimize` as every run does it: the grown graph (``config.prune_finetunes``) and
    the compiled one alike."""
    return minimize(
        graph,
        task,
        check_sequences,
        seed=config.seed + 1,
        confirm_sequences=confirm_sequences,
        recheck=config.prune_recheck,
    )


def _compiled(
    graph: Graph,
    task: Task,
    config: GrowConfig,
    check_sequences: int,
    confirm_sequences: int,
) -> tuple[BonsaiRNN, Graph] | str:
    """``config.compile_machine``: the network compiled from ``graph``'s minimal machine and
    its graph, minimised (it is small, so this takes seconds), when that graph has fewer edges
    than ``graph`` and its machine equals the task's own (:func:`counterexample`, where the task
    has a step function: the minimisation must not have broken the exact codes); otherwise why
    not, for ``graph.meta["compile_machine"]`` (nothing is skipped silently)."""
    try:
        machine = extract_fsm(graph, seed=config.seed)
        net = compile_machine(machine, seed=config.seed)
    except (FSMError, CompileError) as err:
        return f"not compiled: {err}"
    compiled = extract_graph(
        net, task=task.name, seed=config.seed, compiled_states=machine.num_states
    )
    compiled = _minimized(compiled, task, config, check_sequences, confirm_sequences)
    mine, theirs = compiled.counts()["edges"], graph.counts()["edges"]
    if mine >= theirs:
        return f"kept the grown graph: the compiled one has {mine} edges, not fewer than {theirs}"
    try:
        if counterexample(extract_fsm(compiled, seed=config.seed), task) is not None:
            return "kept the grown graph: the compiled one differs from the task's machine"
    except FSMError as err:
        return f"kept the grown graph: the compiled one has no machine ({err})"
    except ValueError:
        pass  # the task has no machine of its own: the validation decides alone
    compiled.meta["grown"] = graph.counts()  # what the grown network was pruned to
    compiled.meta["exact_check"] = "passed"
    if "clipped" in graph.meta:
        compiled.meta["clipped"] = graph.meta["clipped"]
    return net, compiled


# what the forked workers of grow_seeds run: set before the pool starts, inherited by fork, so
# a task holding closures (a user's step function) never has to be pickled
_JOB: tuple[Task, dict[str, Any]] | None = None


def _grow_job(config: GrowConfig) -> dict[str, Any]:
    assert _JOB is not None
    torch.set_num_threads(1)  # one process per core
    task, options = _JOB
    result = grow_once(task, config, **options)
    return {k: v for k, v in vars(result).items() if k != "task"}  # the parent has the task


def grow_seeds(
    task: str | Task,
    configs: Sequence[GrowConfig],
    jobs: int = 1,
    on_done: Callable[[GrowConfig, BonsaiResult], None] | None = None,
    **options: Any,
) -> list[BonsaiResult]:
    """:func:`grow_once` for every config (usually one recipe at several seeds), ``jobs`` at a
    time in forked processes of one torch thread each; results in the order of ``configs``.

    Seeds are independent runs, so on a 2-core machine two grow in the time of one. With
    ``jobs=1``, or where processes cannot fork, they run one after the other here.
    ``on_done(config, result)`` is called as each run ends; ``options`` go to
    :func:`grow_once` (``on_step`` only when runs are not forked).

    Example:
        >>> cfg = [GrowConfig(cells=[(1, 1)], steps=2, batch_size=8, seed=s) for s in (0, 1)]
        >>> rs = grow_seeds("delay-1", cfg, jobs=1, check_sequences=10, validation_sequences=10)
        >>> len(rs), rs[1].task.name
        (2, 'delay-1')
    """
    global _JOB
    check_int(jobs, "jobs", 1, " (processes growing at once)")
    task = get_task(task)
    forked = jobs > 1 and len(configs) > 1 and "fork" in mp.get_all_start_methods()
    if not forked:
        results = []
        for config in configs:
            results.append(grow_once(task, config, **options))
            if on_done is not None:
                on_done(config, results[-1])
        return results
    options = {k: v for k, v in options.items() if k != "on_step"}  # a bar in each child
    _JOB = (task, options)
    out: dict[int, BonsaiResult] = {}
    try:
        with ProcessPoolExecutor(
            min(jobs, len(configs)), mp_context=mp.get_context("fork")
        ) as pool:
            futures = {pool.submit(_grow_job, c): i for i, c in enumerate(configs)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    out[i] = BonsaiResult(task=task, **future.result())
                    if on_done is not None:
                        on_done(configs[i], out[i])
            except BaseException:
                # a failed seed (or ^C) ends the call: seeds not started yet never start
                # (the ones running finish their run first)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        _JOB = None
    return [out[i] for i in range(len(configs))]


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
