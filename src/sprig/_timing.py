"""Interleaved timing, shared by the benchmarks and ``sprig demo``'s measured speedups."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def time_interleaved(
    fns: Mapping[str, Callable[[], object]], rounds: int = 15, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn each round.

    Interleaving keeps slow drifts of a shared machine (other processes, turbo) out of the
    ratios: every candidate sees the same conditions.

    Example:
        >>> sorted(time_interleaved({"a": lambda: None, "b": lambda: None}, rounds=2))
        ['a', 'b']
    """
    _compiled_kernels()
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def time_blocks(
    fns: Mapping[str, Callable[[], object]], budget: float = 1.0, block: float = 2e-3
) -> dict[str, float]:
    """Best mean seconds per call over blocks of consecutive calls, the blocks interleaved.

    Each round runs every function for a block of about ``block`` seconds (at least one call),
    as a layer runs inside a loop: its data stays in the caches, where alternating single
    calls measure how fast it comes back after another candidate evicted it. Rounds: as many
    as fit in ``budget`` seconds, 3 to 30, after one warm-up call each (a first call may
    compile, load or validate).

    Example:
        >>> sorted(time_blocks({"a": lambda: None, "b": lambda: None}, budget=0.01))
        ['a', 'b']
    """
    _compiled_kernels()
    for fn in fns.values():
        fn()
    once = {name: _once(fn) for name, fn in fns.items()}  # the cost of a call
    calls = {name: max(1, int(block / max(t, 1e-7))) for name, t in once.items()}
    rounds = int(max(3, min(30, budget / max(block * len(fns), sum(once.values())))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
    return best


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _compiled_kernels() -> None:
    # time sprig's compiled kernels, not the PyTorch paths that stand in while numba warms up
    # (sprig.kernels._warm)
    from .kernels import wait_compiled

    wait_compiled()
