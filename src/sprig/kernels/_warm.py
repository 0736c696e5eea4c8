"""Compiled kernels load in a background thread; until they are ready, PyTorch's kernels serve.

A new process pays numba's start-up before its first compiled call: 0.4-1 s on this machine
even with every kernel cached on disk, nearly all of it numba installing its CPU target's
registries rather than loading sprig's code (``benchmarks/results/startup.md``). So the first
call that could use a compiled kernel, or ``sprig.compress``, starts :func:`warm_up`: a daemon
thread imports the compiled modules and runs one tiny kernel, which makes numba set itself up
(on the first run ever it compiles that kernel; the others compile at their first compiled
call, as before). Until that is done, :func:`compiled_ready` is False and inference calls take
the PyTorch paths they already have for CUDA and other dtypes (MKL's CSR products, the torch
recurrent loop, ``index_select``, a dense convolution), which the tests compare with the
compiled ones. The first calls of a process may therefore differ from later ones in the last
bits (and a dense convolution turns an inf input into NaN where the sparse kernel skips the
zero weights, as when the dispatcher picks dense). Training gradients and sparse inputs have no
such path: they wait. :func:`wait_compiled` blocks until the compiled kernels serve (``sprig
run`` and the benchmarks call it: for timing and bit-exact runs).

A fork waits for the thread first (a child must not inherit a half-done import); a child whose
parent had not finished (an interrupted wait) starts its own. The interpreter's exit waits up
to ``EXIT_WAIT_S`` for it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings

_lock = threading.Lock()
_ready = threading.Event()
_thread: threading.Thread | None = None
_error: BaseException | None = None


def compiled_ready() -> bool:
    """Whether the compiled kernels serve now; starts loading them if nothing has yet."""
    if _ready.is_set():
        return True
    warm_up()
    return _ready.is_set()


def warm_up() -> None:
    """Start loading the compiled kernels in a background thread (once per process).

    ``sprig.compress`` calls this; call it earlier (e.g. at a server's start) to overlap
    numba's start-up with other work.
    """
    global _thread
    if _thread is not None or _ready.is_set():
        return
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_load_quietly, name="sprig-warm-up", daemon=True)
            _thread.start()


def wait_compiled() -> None:
    """Block until the compiled kernels serve (load them now if no warm-up ran).

    Raises:
        RuntimeError: the compiled kernels failed to load (numba missing or broken); the
            message carries numba's error.
    """
    warm_up()
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    if _error is not None:
        raise RuntimeError(
            f"sprig's compiled kernels failed to load ({type(_error).__name__}: {_error}); "
            "compressed layers run on PyTorch's kernels. Reinstall numba "
            "(pip install -e . in sprig's folder) to get them back."
        ) from _error


def _load() -> None:
    import numpy as np

    from . import _compiled as nb
    from . import _recurrent_numba  # noqa: F401  # its overloads register at import

    # one tiny call of the batch-1 product with the index and value types compressed layers
    # use: numba sets up its CPU target here, and loads (or compiles) this kernel
    crow = np.zeros(2, dtype=np.uint32)
    col = np.zeros(0, dtype=np.uint16)
    val = np.zeros(0, dtype=np.float32)
    y = np.empty(1, dtype=np.float32)
    nb.matvec(crow, col, val, np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.float32), y)


# The warm-up holds the GIL for most of its work (imports, numba's set-up). A caller's torch
# ops release the GIL and must wait up to the switch interval (5 ms by default) to get it back,
# which made a 20-step LSTM's first call (about 160 ops) take 270 ms instead of 10-25 ms; a
# shorter interval while the warm-up runs bounds that wait.
_SWITCH_INTERVAL_S = 5e-4


def _load_quietly() -> None:
    global _error
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, _SWITCH_INTERVAL_S))
    try:
        _load()
    except Exception as e:  # reported by wait_compiled and in this warning
        _error = e
        warnings.warn(
            f"sprig's compiled kernels failed to load ({type(e).__name__}: {e}); compressed "
            "layers run on PyTorch's kernels",
            RuntimeWarning,
            stacklevel=1,
        )
        return
    finally:
        if sys.getswitchinterval() == min(before, _SWITCH_INTERVAL_S):  # unless changed since
            sys.setswitchinterval(before)
    _ready.set()


# numba writes its cache files under temporary names and renames them into place, so an exit
# that stops waiting leaves no half-written kernel; the wait only keeps the exit orderly
EXIT_WAIT_S = 10.0


def _join(timeout: float | None = None) -> None:
    thread = _thread
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout)


def _after_fork_in_child() -> None:
    global _thread, _lock
    _lock = threading.Lock()  # another thread of the parent may have held it
    if not _ready.is_set():
        _thread = None  # the parent's thread does not exist here: warm_up starts one


os.register_at_fork(before=_join, after_in_child=_after_fork_in_child)
atexit.register(_join, EXIT_WAIT_S)
