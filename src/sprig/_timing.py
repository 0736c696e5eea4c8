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
