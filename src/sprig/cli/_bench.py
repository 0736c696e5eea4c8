"""``sprig bench``: one layer, measured now on this machine, against the alternatives.

The full grids live in ``benchmarks/`` (in the repository); this is the quick check a user runs
on their own machine before trusting a speedup: dense ``F.linear``, the CSR a user would build
by hand (``W.to_sparse_csr()``), scipy, and sprig's compressed layer with the path its
dispatcher chose, timed interleaved in one run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

import torch
from torch.nn import functional as F

from .._checks import check_density
from .._timing import time_interleaved
from ._run import UsageError


def run_bench(
    size: int, batch: int, density: float, rounds: int, echo: Callable[[str], None]
) -> dict[str, float]:
    import scipy.sparse

    import sprig
    from sprig.kernels import choose

    try:
        check_density(density)
    except ValueError as err:
        raise UsageError(f"--density: {err}") from None
    if size < 1 or batch < 1 or rounds < 1:
        raise UsageError(
            f"size, batch and rounds must be >= 1, got {size}, {batch}, {rounds}; "
            "e.g. sprig bench --size 4096 --batch 1 --density 0.05"
        )
    layer = sprig.SparseLinear(size, size, density=density, seed=0)
    fast = sprig.compress(layer)
    w = layer.weight.detach().clone()
    b = layer.bias.detach().clone() if layer.bias is not None else None
    by_hand = w.to_sparse_csr()
    w_scipy = scipy.sparse.csr_matrix(w.numpy())
    x = torch.randn(batch, size)
    x_np = x.numpy()

    def hand() -> torch.Tensor:
        return (by_hand @ x.t()).t() + b

    fns: dict[str, Callable[[], object]] = {
        "dense F.linear": partial(F.linear, x, w, b),
        "W.to_sparse_csr() @ x": hand,
        "scipy csr": lambda: w_scipy @ x_np.T,
        "sprig compressed": partial(fast, x),
    }
    with torch.inference_mode():
        diff = float((fast(x) - F.linear(x, w, b)).abs().max())
        times = time_interleaved(fns, rounds=rounds)
    plan = choose(density, (size, size), batch, w.dtype, w.device, "infer")
    base = times["dense F.linear"]
    echo(
        f"layer {size}x{size}, batch {batch}, density {density:g}, {torch.get_num_threads()} "
        f"threads; sprig's dispatcher chose: {plan.kernel}"
        + (f" (blocks of {plan.block})" if plan.block else "")
    )
    from sprig.kernels._threads import machine_busy

    if batch == 1 and machine_busy():
        load = os.getloadavg()[0]
        echo(
            f"  the machine is busy (load average {load:.1f} on {os.cpu_count()} cores): "
            "batch-1 kernels run on one thread, as a thread team would wait for its "
            "descheduled threads (benchmarks/results/kernels_busy.md)"
        )
    width = max(len(k) for k in fns)
    for name, t in times.items():
        echo(f"  {name.ljust(width)}  {t * 1e3:9.3f} ms  {base / t:6.2f}x dense")
    echo(f"  max |sprig - dense| = {diff:.1e}")
    return times
