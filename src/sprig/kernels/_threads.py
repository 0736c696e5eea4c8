"""Threads for sprig's compiled kernels: numba's OpenMP layer, rows split by nonzeros.

numba runs parallel loops through a "threading layer"; sprig asks for its OpenMP one. On this
2-core machine the choice decided whether threads paid at all: torch's libgomp threads keep
spinning for milliseconds after every torch operation, and a kernel interleaved with dense
torch products ran fastest on OpenMP threads, well ahead of Python threads or one thread
(``benchmarks/results/design_measurements.md``, rows ``omp-spin`` and ``thread-layers``). numba's
OpenMP layer loads its own copy of libgomp (not torch's), so it is a second pool all the same;
why it fares so much better than the others was not pinned down, only measured. A user who
chose a numba threading layer keeps their choice. When no threading layer loads, the kernels
run on one thread.

On a busy machine (every core taken by other processes: a browser, a CI job, DataLoader
workers) a thread team is a liability: GNU OpenMP's threads meet at a barrier after each
parallel region, and one of them descheduled by the OS keeps the others waiting for a time
slice. ``benchmarks/bench_kernels.py --busy`` measures it: with the busy check off, a batch-1
product sharing the cores with two spinning processes falls far below dense
(``benchmarks/results/kernels_busy.md``, the rows "off"). Passive waiting
(``OMP_WAIT_POLICY=PASSIVE``) fixes it only when set before the OpenMP runtime loads (before
``import torch``), which a library cannot do; one thread fixes it as well, and costs at most
the threads' gain. So while the load average shows the cores taken (:func:`machine_busy`),
batch-1 kernels run on one thread.

GNU OpenMP is not fork-safe: a child forked after the parent ran a parallel region aborts at
its first one ("fork() called from a process already using GNU OpenMP"). Such a child (a
``fork`` multiprocessing worker, a DataLoader worker) runs the kernels on one thread instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

# a part must be worth waking a thread (design_measurements.md, row thread-min-part)
MIN_NNZ_PER_THREAD = 50_000

# the 1-minute load average per usable core from which the machine counts as busy: other
# processes then hold every core, and a thread team waits on whichever of its threads the OS
# descheduled (see the module docstring)
BUSY_LOAD_PER_CORE = 1.0
# os.getloadavg is cheap next to a batch-1 call (design_measurements.md, row loadavg-cost),
# but not free: look twice a second
_BUSY_RECHECK_S = 0.5
_busy = (-1e9, False)  # (monotonic time of the last look, busy then)

_parallel_ok = True  # False once numba's threading layer failed to load, or in a forked child
_launched = False  # whether this process has run a parallel region


def _after_fork_in_child() -> None:
    global _parallel_ok
    if _launched:
        _parallel_ok = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure_numba() -> None:
    """Ask numba for its OpenMP threading layer unless the user chose one (before any launch)."""
    import numba

    if numba.config.THREADING_LAYER == "default":  # type: ignore[attr-defined]
        numba.config.THREADING_LAYER = "omp"  # type: ignore[attr-defined]


def row_parts(crow: Any, threads: int, min_nnz: int | None = None) -> Any:
    """Row cuts ``(parts + 1,)`` int64 giving each part about the same number of nonzeros.

    One part per thread, but each part gets at least ``min_nnz`` nonzeros (default
    ``MIN_NNZ_PER_THREAD``): small products run as one part.
    """
    rows = crow.shape[0] - 1
    nnz = int(crow[-1])
    parts = max(1, min(threads, nnz // (MIN_NNZ_PER_THREAD if min_nnz is None else min_nnz)))
    cuts = np.searchsorted(crow.astype(np.int64), np.linspace(0, nnz, parts + 1)[1:-1])
    return np.array([0, *cuts, rows], dtype=np.int64)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_busy() -> bool:
    """Whether other processes keep every core busy (load average >= cores), looked up at most
    twice a second; False where the system has no load average."""
    global _busy
    now = time.monotonic()
    if now - _busy[0] < _BUSY_RECHECK_S:
        return _busy[1]
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        load = 0.0
    _busy = (now, load >= BUSY_LOAD_PER_CORE * _cores())
    return _busy[1]


@contextlib.contextmanager
def one_thread_if_busy() -> Iterator[None]:
    """Run torch's (MKL's) kernels inside on one thread while :func:`machine_busy`."""
    threads = torch.get_num_threads()
    if threads == 1 or not machine_busy():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_parts(parallel: Callable[[Any], None], serial: Callable[[], None], bounds: Any) -> None:
    """``parallel(bounds)`` when there are several parts and threads work, else ``serial()``
    (also while the machine is busy: :func:`machine_busy`)."""
    global _parallel_ok, _launched
    if len(bounds) > 2 and _parallel_ok and not machine_busy():
        try:
            _launched = True
            parallel(bounds)
            return
        except (ValueError, ImportError, RuntimeError):
            if _layer_loaded():
                raise  # a real error of the kernel, not a missing threading layer
            _parallel_ok = False
    serial()


def _layer_loaded() -> bool:
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # "Threading layer is not initialized": none could be loaded
        return False
    return True
