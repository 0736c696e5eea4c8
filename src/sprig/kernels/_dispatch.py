"""The dispatcher: CSR or dense (and batch blocking) per layer and call, from measured break-evens.

``benchmarks/bench_kernels.py`` times dense and CSR products over a grid of sizes, batches and
densities and writes the break-even densities to ``_breakeven.py`` (the table below reads it).
It times each product over copies of the layer that overflow the last-level cache, as a model
streams its weights from memory: one layer called over and over keeps its weights in the
caches, where at batch 1 dense won at density 0.5 while a decoding model ran CSR faster
(``benchmarks/results/decode.md``).
A call runs CSR when the layer's density is at or below the break-even of the nearest measured
cells (the smaller one of the two cells around it, in size and in batch: where they disagree,
dense wins), with one weight of slack for the rounding of a mask's count. Layers smaller than
the smallest measured size run dense; larger ones use the largest measured size's break-even
(sparse only gains with size). With no measurement for a device, dtype or mode, dense wins.

Users override it per layer (``backend="dense"|"csr"``), per block of code
(:func:`dispatch_table`) or for the process (:func:`set_dispatch_table`).

Sparse convolutions (:func:`choose_conv`) have their own table, measured by
``benchmarks/bench_conv.py`` into ``_conv_breakeven.py`` (:func:`conv_dispatch_table`
overrides it): cells of channels, output plane size and kernel taps, at batch 1.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from . import _breakeven, _conv_breakeven

BACKENDS = ("auto", "dense", "csr")
MODES = ("infer", "train")


@dataclass(frozen=True)
class BreakEven:
    """One measured cell: at ``size`` x ``size`` and ``batch`` rows, CSR pays up to ``density``.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"``, ``"float64"``...
        mode: ``"infer"`` (forward) or ``"train"`` (forward + backward).
        size: the layer is ``size`` x ``size`` (other shapes match by ``out * in``).
        batch: rows in the call.
        density: CSR runs at densities <= this (0: never).
        block: column block for the batch (0: none).
    """

    device: str
    dtype: str
    mode: str
    size: int
    batch: int
    density: float
    block: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.size < 1 or self.batch < 1 or self.block < 0:
            raise ValueError(f"size, batch must be >= 1 and block >= 0, got {self}")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"break-even density must be in [0, 1], got {self.density}")


@dataclass(frozen=True)
class Plan:
    """What one call runs: ``kernel`` is ``"dense"`` or ``"csr"``; ``block`` 0 means no blocking."""

    kernel: str
    block: int = 0


_DEFAULT: tuple[BreakEven, ...] = tuple(BreakEven(*row) for row in _breakeven.TABLE)
_table: tuple[BreakEven, ...] = _DEFAULT
_version = 0  # bumped on every table change; part of the plan cache's key


@dataclass(frozen=True)
class ConvBreakEven:
    """One measured convolution cell: ``channels`` in and out, a ``size`` x ``size`` output plane
    and a ``kernel`` x ``kernel`` kernel at batch 1; the direct sparse kernel pays up to
    ``density``.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"``...
        channels: in = out channels (other shapes match by ``sqrt(in * out)``).
        size: side of the output plane (others match by ``sqrt(positions)``).
        kernel: side of the kernel (others match by ``sqrt(taps)``).
        density: the sparse kernel runs at densities <= this (0: never).
    """

    device: str
    dtype: str
    channels: int
    size: int
    kernel: int
    density: float

    def __post_init__(self) -> None:
        if min(self.channels, self.size, self.kernel) < 1:
            raise ValueError(f"channels, size and kernel must be >= 1, got {self}")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"break-even density must be in [0, 1], got {self.density}")


_CONV_DEFAULT: tuple[ConvBreakEven, ...] = tuple(
    ConvBreakEven(*row) for row in _conv_breakeven.TABLE
)
_conv_table: tuple[ConvBreakEven, ...] = _CONV_DEFAULT


def get_dispatch_table() -> tuple[BreakEven, ...]:
    """The break-even table in use (by default the one the benchmark measured)."""
    return _table


def set_dispatch_table(table: Sequence[BreakEven] | None) -> None:
    """Replace the break-even table for the process; None restores the measured one."""
    global _table, _version
    _table = _DEFAULT if table is None else tuple(table)
    _version += 1


@contextlib.contextmanager
def dispatch_table(table: Sequence[BreakEven]) -> Iterator[None]:
    """Use ``table`` inside the block (e.g. ``[]``: dense everywhere), then restore."""
    old = _table
    set_dispatch_table(table)
    try:
        yield
    finally:
        set_dispatch_table(old)


def get_conv_dispatch_table() -> tuple[ConvBreakEven, ...]:
    """The convolution break-even table in use (by default the one the benchmark measured)."""
    return _conv_table


def set_conv_dispatch_table(table: Sequence[ConvBreakEven] | None) -> None:
    """Replace the convolution table for the process; None restores the measured one."""
    global _conv_table, _version
    _conv_table = _CONV_DEFAULT if table is None else tuple(table)
    _version += 1


@contextlib.contextmanager
def conv_dispatch_table(table: Sequence[ConvBreakEven]) -> Iterator[None]:
    """Use the convolution ``table`` inside the block (``[]``: dense everywhere), then restore."""
    old = _conv_table
    set_conv_dispatch_table(table)
    try:
        yield
    finally:
        set_conv_dispatch_table(old)


def dispatch_version() -> int:
    """A number that changes whenever the table does (layers key cached plans on it)."""
    return _version


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def _around(values: list[int], v: float) -> list[int]:
    """The measured values around ``v`` (one at the ends)."""
    i = bisect.bisect_left(values, v)
    if i < len(values) and values[i] == v:
        return [values[i]]
    return [values[j] for j in (i - 1, i) if 0 <= j < len(values)]


def choose(
    density: float,
    shape: tuple[int, int],
    batch: int,
    dtype: torch.dtype,
    device: torch.device | str,
    mode: str = "infer",
    backend: str = "auto",
    block: int | None = None,
) -> Plan:
    """The kernel for one call of a ``shape = (out, in)`` layer on ``batch`` rows.

    Args:
        density: fraction of stored weights.
        shape: ``(out, in)``.
        batch: rows in the call (the product of the input's leading dims).
        dtype, device: of the weight.
        mode: ``"infer"`` (no gradient) or ``"train"``.
        backend: ``"auto"`` (the table), ``"dense"`` or ``"csr"`` (forced).
        block: forced column block (None: the table's).

    Example:
        >>> choose(0.5, (64, 64), 1, torch.float32, "cpu", backend="csr")
        Plan(kernel='csr', block=0)
        >>> with dispatch_table([BreakEven("cpu", "float32", "infer", 64, 1, 0.2)]):
        ...     choose(0.1, (64, 64), 1, torch.float32, "cpu").kernel
        'csr'
    """
    check_backend(backend)
    if backend == "dense":
        return Plan("dense")
    dev = device.type if isinstance(device, torch.device) else torch.device(device).type
    # layers call this on every forward: plans are cached (keyed on the table's version).
    # torch.compile would trace through the cache (and warn that it does) into the table
    # look-up's Python; the plan is a Python decision, so it runs outside the graph instead
    plan = _plan_eager if torch.compiler.is_compiling() else _plan
    return plan(density, shape, batch, dtype, dev, mode, backend, block, _version)


@functools.lru_cache(maxsize=4096)
def _plan(
    density: float,
    shape: tuple[int, int],
    batch: int,
    dtype: torch.dtype,
    dev: str,
    mode: str,
    backend: str,
    block: int | None,
    version: int,
) -> Plan:
    dt = str(dtype).removeprefix("torch.")
    cells = [c for c in _table if c.device == dev and c.dtype == dt and c.mode == mode]
    if backend == "csr":
        return Plan("csr", _block_for(cells, shape, batch) if block is None else block)
    if not cells:
        return Plan("dense")
    size = (shape[0] * shape[1]) ** 0.5
    sizes = sorted({c.size for c in cells})
    if size < sizes[0]:
        return Plan("dense")  # smaller than anything measured: per-call overheads dominate
    worst = 1.0
    for s in _around(sizes, size):
        batches = sorted({c.batch for c in cells if c.size == s})
        for b in _around(batches, max(batch, 1)):
            worst = min(worst, *(c.density for c in cells if c.size == s and c.batch == b))
    # one weight of slack: a mask built at the measured density holds round(d * out * in)
    # weights, a hair above d (8192^2 at 0.2: 0.200000003), and must count as measured
    if density > worst + 1.0 / (shape[0] * shape[1]):
        return Plan("dense")
    return Plan("csr", _block_for(cells, shape, batch) if block is None else block)


def _block_for(cells: Sequence[BreakEven], shape: tuple[int, int], batch: int) -> int:
    """The block of the measured cell nearest in batch (then size); 0 when none fits."""
    if not cells or batch <= 1:
        return 0
    size = (shape[0] * shape[1]) ** 0.5
    best = min(cells, key=lambda c: (abs(math.log(c.batch / batch)), abs(math.log(c.size / size))))
    return best.block if best.block < batch else 0


def choose_conv(
    density: float,
    channels: tuple[int, int],
    positions: int,
    taps: int,
    dtype: torch.dtype,
    device: torch.device | str,
    backend: str = "auto",
) -> Plan:
    """Dense convolution or the direct sparse one (``Plan("csr")``) for one inference call.

    Args:
        density: fraction of stored weights.
        channels: ``(out, in)``.
        positions: output positions of one input (``Ho * Wo``).
        taps: kernel taps (``kh * kw``).
        dtype, device: of the weight.
        backend: ``"auto"`` (the table), ``"dense"`` or ``"csr"`` (forced).

    The cells around the layer in channels and in plane size decide (the smallest break-even
    among them); the nearest measured kernel size stands for the layer's. Layers with fewer
    channels than any measured run dense (per-call costs dominate), larger ones use the edge
    cells. Batches above 1 use the batch-1 cells: both kernels' work grows with the batch.

    Example:
        >>> with conv_dispatch_table([ConvBreakEven("cpu", "float32", 64, 16, 3, 0.2)]):
        ...     choose_conv(0.1, (64, 64), 256, 9, torch.float32, "cpu").kernel
        'csr'
    """
    check_backend(backend)
    if backend != "auto":
        return Plan(backend)
    dev = device.type if isinstance(device, torch.device) else torch.device(device).type
    return _conv_plan(density, channels, positions, taps, dtype, dev, _version)


@functools.lru_cache(maxsize=4096)
def _conv_plan(
    density: float,
    channels: tuple[int, int],
    positions: int,
    taps: int,
    dtype: torch.dtype,
    dev: str,
    version: int,
) -> Plan:
    dt = str(dtype).removeprefix("torch.")
    cells = [c for c in _conv_table if c.device == dev and c.dtype == dt]
    if not cells:
        return Plan("dense")
    k = math.sqrt(taps)
    kernel = min({c.kernel for c in cells}, key=lambda m: (abs(math.log(m / k)), m))
    cells = [c for c in cells if c.kernel == kernel]
    ch = math.sqrt(channels[0] * channels[1])
    chans = sorted({c.channels for c in cells})
    if ch < chans[0]:
        return Plan("dense")
    worst = 1.0
    for c_ in _around(chans, ch):
        sizes = sorted({c.size for c in cells if c.channels == c_})
        for s in _around(sizes, math.sqrt(positions)):
            worst = min(worst, *(c.density for c in cells if c.channels == c_ and c.size == s))
    # one weight of slack, as for linear layers (a mask holds round(d * numel) weights)
    if density > worst + 1.0 / (channels[0] * channels[1] * taps):
        return Plan("dense")
    return Plan("csr")


#: :func:`_plan` for torch.compile: run eagerly, outside the traced graph (a graph break at a
#: Python decision, instead of Dynamo tracing the table look-up and warning about the cache)
_plan_eager = torch.compiler.disable(_plan)
