"""Sparse linear kernels vs dense, and the break-even table the dispatcher uses.

For N in {1024, 4096, 8192}, batch B in {1, 32, 256} and density d in {0.5, 0.2, 0.1, 0.05, 0.01}:
dense ``F.linear``; what a user would write (``W.to_sparse_csr()`` then a matmul); scipy CSR;
torch's CSR product with int32 indices (MKL); sprig's CSR kernel (forced: at batch 1 and at
least ``MATVEC_MIN_NNZ`` nonzeros :class:`sprig.kernels.MatVec` over 16-bit column indices,
otherwise MKL's product, batches in blocks of 32 columns) and sprig's dispatched layer
(``CompressedLinear``, backend auto). GB/s counts the bytes sprig's kernel must read (6 per
nonzero in MatVec, 8 in MKL's, plus row pointers and the vectors) against a bandwidth
measured in the same
interleaved run: a streaming sum over a buffer of as many bytes ("stream GB/s"; the machine is
shared, so a bandwidth measured once would drift). A 512 MB streaming sum is reported too.

Per (N, B) the candidates of all densities are timed first; the largest density up to which
sprig's CSR beat dense by 20% at every smaller density is that cell's break-even, written to
``src/sprig/kernels/_breakeven.py`` and installed at once, and then dense and the dispatched
layer are timed again, head to head against an ``nn.Linear`` holding the same weight (module
against module: a module call alone costs ~4 us, 9% of a 0.045 ms product), for the
"dispatched vs dense" column.
Training (forward + backward of SparseLinear, masked dense vs CSR) is calibrated the same way,
and training at N=4096, B=64, d=0.1 is compared against masked dense with gradients checked.

Timing: candidates run in turn each round (interleaved), each a block of consecutive calls
(about 2 ms), and each keeps its best block: the inference cells, the break-evens and the
head-to-head are all measured this one way (an earlier version calibrated on alternating
single calls, where another candidate's weight had just evicted this one's from the caches,
and the head-to-head then disagreed with it). The machine is shared by several jobs (2
cores); the best block is the one least disturbed by them, where a median mostly measures
the scheduler. For the same reason it runs with one torch thread
by default (``--threads 2`` on a quiet machine).

Busy machine (``--busy`` runs only this): two processes spin on the cores while a batch-1
compressed layer and dense ``F.linear`` run as ``sprig bench`` times them (median of 20
interleaved calls), 5 runs, with all of torch's threads; the table gives each run's ratio
(dense time / compressed time, > 1: compressed faster), worst and median, with sprig's
busy-machine check on (one thread while the load average shows the cores taken) and off.
Goal: worst >= 0.8x dense. Written to ``results/kernels_busy.md``.

    python benchmarks/bench_kernels.py [--quick] [--threads N] [--busy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import scipy.sparse as sp
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import time_blocks, time_interleaved, write_table  # noqa: E402

import sprig  # noqa: E402
import sprig.kernels._threads as threads  # noqa: E402
from sprig.kernels import (  # noqa: E402
    MATVEC_MIN_NNZ,
    BreakEven,
    CSRStructure,
    MatVec,
    csr_linear,
    csr_linear_train,
    set_dispatch_table,
    to_csr,
)

TABLE_FILE = Path(__file__).parents[1] / "src" / "sprig" / "kernels" / "_breakeven.py"
MARGIN = 0.8  # CSR must be 20% faster than dense to be chosen: noise must not flip a cell
BLOCK = 32


def bandwidth() -> float:
    """Bytes per second of a streaming read (sum) over 512 MB, best of 5."""
    x = torch.ones(128 * 2**20)
    x.sum()
    best = min(_once(lambda: x.sum()) for _ in range(5))
    return x.numel() * 4 / best


def _once(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def time_best(fns: Mapping[str, Callable[[], object]], budget: float = 1.0) -> dict[str, float]:
    """Best seconds per call of each function, calling them in turn each round.

    Rounds: as many as fit in ``budget`` seconds, 3 to 40 (after one warm-up call each).
    """
    best = {name: _once(fn) for name, fn in fns.items()}  # warm-up, and the cost of a round
    rounds = int(max(3, min(40, budget / max(sum(best.values()), 1e-6))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], _once(fn))
    return best


def masked(n: int, d: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    mask = sprig.make_mask((n, n), d, generator=gen)
    return torch.randn(n, n, generator=gen) * mask, mask


def _train_times(n: int, b: int, d: float, seed: int) -> dict[str, float]:
    dense = sprig.SparseLinear(n, n, d, seed=seed, backend="dense")
    csr = sprig.SparseLinear(n, n, d, seed=seed, backend="csr")
    x = torch.randn(b, n)
    return time_best({"dense": lambda: step(dense, x), "csr": lambda: step(csr, x)}, 1.5)


def breakeven(ratios: Mapping[float, float]) -> float:
    """The largest density up to which CSR beat dense by the margin at every smaller density."""
    best = 0.0
    for d in sorted(ratios):
        if ratios[d] > MARGIN:
            break
        best = d
    return best


def calibrate_train(n: int, b: int, densities: list[float], seed: int) -> BreakEven:
    ratios = {}
    for d in sorted(densities):  # ascending: past the first loss nothing changes the break-even
        t = _train_times(n, b, d, seed)
        ratios[d] = t["csr"] / t["dense"]
        print(f"train N={n} B={b} d={d}: csr/dense {ratios[d]:.3f}", flush=True)
        if ratios[d] > MARGIN:
            break
    return BreakEven("cpu", "float32", "train", n, b, breakeven(ratios), BLOCK if b > BLOCK else 0)


def step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    for p in layer.parameters():
        p.grad = None
    layer(x).sum().backward()


def write_table_module(rows: list[BreakEven]) -> None:
    body = ",\n".join(
        # double quotes, as ruff format writes them: the generated file passes the lint
        f'    ("{r.device}", "{r.dtype}", "{r.mode}", {r.size}, {r.batch}, {r.density}, {r.block})'
        for r in rows
    )
    TABLE_FILE.write_text(
        '"""Break-even table measured by ``benchmarks/bench_kernels.py`` (generated: do not\n'
        "edit by hand; rerun the benchmark on the target machine instead).\n\n"
        "Rows: (device, dtype, mode, size, batch, density, block).\n"
        "CSR runs at densities <= density.\n"
        f"Measured on: {torch.__version__}, {torch.get_num_threads()} threads.\n"
        '"""\n\n'
        "TABLE: tuple[tuple[str, str, str, int, int, float, int], ...] = (\n"
        f"{body},\n)\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small grid, for a smoke test")
    ap.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1: on a shared, oversubscribed machine every 2-thread "
        "parallel region waits for a descheduled thread and the timings measure the scheduler)",
    )  # fmt: skip
    ap.add_argument("--busy", action="store_true", help="only the busy-machine table")
    args = ap.parse_args()
    if args.busy:
        print(busy_machine().read_text())
        return
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    sizes = [1024, 2048] if args.quick else [1024, 4096, 8192]
    batches = [1, 32, 256]
    densities = [0.5, 0.2, 0.1, 0.05, 0.01]
    bw = bandwidth()
    # first, in a fresh process: after the grid's big frees the dense step's 64 MB gradient
    # was served without page faults (29 ms against 36 ms run alone), which no training loop
    # sees (glibc maps allocations over 32 MB afresh each time)
    train = train_figure(gen)
    print(f"training: {train}", flush=True)
    steady = steady_figure(gen)
    print(f"steady state, N=8192 B=1 d=0.05: {steady}", flush=True)
    print(f"512 MB streaming read: {bw / 1e9:.1f} GB/s", flush=True)

    train_table = [
        calibrate_train(n, b, [0.2, 0.1, 0.05, 0.01], seed=n + b)
        for n in ([1024] if args.quick else [1024, 4096])
        for b in batches
    ]
    table: list[BreakEven] = []
    rows = []
    for n in sizes:
        for b in batches:
            cells = {d: measure_cell(n, b, d, gen) for d in densities}
            cut = breakeven({d: c["times"]["csr"] / c["times"]["dense"] for d, c in cells.items()})
            table.append(BreakEven("cpu", "float32", "infer", n, b, cut, BLOCK if b > BLOCK else 0))
            set_dispatch_table(table + train_table)
            for d, cell in cells.items():
                rows.append(dispatched_row(n, b, d, cell))
    table += train_table
    write_table_module(table)

    cols = [
        "N", "B", "density", "dense ms", "to_sparse_csr ms", "scipy ms", "MKL int32 ms",
        "sprig csr ms",
        "csr vs dense", "csr vs to_sparse_csr", "csr GB/s", "stream GB/s", "csr % stream",
        "path", "dispatched vs dense",
    ]  # fmt: skip
    worst = max(rows, key=lambda r: r[-1])
    extra = {
        "bandwidth_512MB_GBps": bw / 1e9,
        "training": train,
        "steady_state_8192_b1_d005": steady,
        "breakeven": [r.__dict__ for r in table],
        "worst_dispatched_vs_dense": {"N": worst[0], "B": worst[1], "d": worst[2], "x": worst[-1]},
        "timing": "best of interleaved blocks of consecutive calls (~2 ms a block)",
    }
    md = write_table("kernels", cols, rows, extra)
    with md.open("a") as fh:
        fh.write(f"\n512 MB streaming read: {bw / 1e9:.1f} GB/s.\n\nTraining (fwd+bwd):\n\n")
        fh.write("\n".join(f"- {k}: {v}" for k, v in train.items()) + "\n")
        fh.write("\nN=8192, B=1, d=0.05 in a loop over the one layer (40 ms blocks):\n\n")
        fh.write("\n".join(f"- {k}: {v}" for k, v in steady.items()) + "\n")
        fh.write(
            f"\nWorst dispatched cell: N={worst[0]} B={worst[1]} d={worst[2]}: "
            f"{worst[-1]:.3f}x dense time.\n\nBreak-even table (csr at density <= d):\n\n"
            + "\n".join(
                f"- {r.mode} N={r.size} B={r.batch}: d<={r.density} block={r.block}" for r in table
            )
            + "\n"
        )
    print(md.read_text())
    print(busy_machine().read_text())


BUSY_CASES = [(2048, 0.05), (8192, 0.05)]  # MKL's mv, then sprig's MatVec (>= MATVEC_MIN_NNZ)


def _busy_runs(n: int, d: float, check: bool, runs: int = 5) -> list[tuple[float, float]]:
    """Per run: (dense, compressed) seconds per call at batch 1, as ``sprig bench`` times them."""
    saved = threads.BUSY_LOAD_PER_CORE
    threads.BUSY_LOAD_PER_CORE = saved if check else float("inf")
    threads._busy = (-1e9, False)  # look at the load again now
    try:
        layer = sprig.SparseLinear(n, n, density=d, seed=0)
        fast = sprig.compress(layer)
        w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
        x = torch.randn(1, n)
        out = []
        with torch.inference_mode():
            for _ in range(runs):
                fns = {"dense": lambda: F.linear(x, w, b), "sprig": lambda: fast(x)}
                t = time_interleaved(fns, rounds=20)
                out.append((t["dense"], t["sprig"]))
        return out
    finally:
        threads.BUSY_LOAD_PER_CORE = saved


def busy_machine(spinners: int = 2) -> Path:
    """The busy-machine table: ``spinners`` processes spin while batch-1 layers are timed."""
    torch.set_num_threads(os.cpu_count() or 1)  # a user's default: all cores
    load_before = os.getloadavg()
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(spinners)]
    rows = []
    try:
        time.sleep(20)  # the 1-minute load average must see them (as it would on a busy machine)
        for n, d in BUSY_CASES:
            for check in (True, False):
                times = _busy_runs(n, d, check)
                r = [dense / own for dense, own in times]
                rows.append(
                    [n, d, "on" if check else "off", min(r), statistics.median(r),
                     " ".join(f"{v:.2f}" for v in r),
                     statistics.median(t[0] for t in times) * 1e3,
                     statistics.median(t[1] for t in times) * 1e3]
                )  # fmt: skip
                print(rows[-1], flush=True)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    load_after = os.getloadavg()
    cols = [
        "N", "density", "busy check", "worst x dense", "median x dense", "runs x dense",
        "dense ms (median)", "sprig ms (median)",
    ]  # fmt: skip
    extra = {
        "spinners": spinners,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "timing": "median of 20 interleaved calls per run (sprig bench), 5 runs",
        "goal": "worst >= 0.8x dense",
    }
    md = write_table("kernels_busy", cols, rows, extra)
    with md.open("a") as fh:
        fh.write(
            f"\n{spinners} spinning processes, {torch.get_num_threads()} torch threads, batch 1. "
            f"Load average (1, 5, 15 min) before: {load_before}, after: {load_after} (other "
            "jobs share this machine too). x dense = dense time / compressed time.\n"
        )
    return md


def measure_cell(n: int, b: int, d: float, gen: torch.Generator) -> dict[str, object]:
    """One (N, B, d) cell: every candidate timed in one interleaved run."""
    w, mask = masked(n, d, gen)
    c32 = to_csr(w, mask)
    c64 = w.to_sparse_csr()
    ws = sp.csr_matrix(w.numpy())
    x = torch.randn(b, n, generator=gen)
    xn = x.numpy()
    xv = x[0] if b == 1 else x
    nnz = int(mask.sum())
    mv = MatVec(c32.crow_indices(), c32.col_indices().to(torch.uint16), c32.values(), n)
    own = b == 1 and nnz >= MATVEC_MIN_NNZ  # sprig's own kernel, else MKL's (CompressedLinear)
    words = nnz * 3 // 2 if own else nnz * 2  # 4-byte words per nonzero: 6 or 8 bytes
    stream = torch.ones(words + (n + 1) + 2 * b * n)  # as many bytes as sprig's kernel reads
    fns = {
        "dense": lambda: F.linear(x, w),
        "user": lambda: (c64 @ x.t()).t(),
        "mkl": lambda: csr_linear(xv, c32, block=BLOCK if b > BLOCK else 0),
        "stream": lambda: stream.sum(),
    }
    if own:
        fns["csr"] = lambda: mv(xv)
    if nnz * b <= 2e8:  # scipy is single-threaded: skip the multi-second cells
        fns["scipy"] = lambda: (ws @ xn.T).T
    with torch.no_grad():
        t = time_blocks(fns, 1.5)
    t.setdefault("csr", t["mkl"])  # above batch 1 sprig's kernel is MKL's
    gbs = stream.numel() * 4 / t["csr"] / 1e9
    stream_gbs = stream.numel() * 4 / t["stream"] / 1e9
    print(f"N={n} B={b} d={d}: " + ", ".join(f"{k} {v * 1e3:.3f}ms" for k, v in t.items()))
    sys.stdout.flush()
    lin = torch.nn.Linear(n, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    sprig.apply_mask(lin, "weight", mask)
    comp = sprig.compress(lin)  # kept for the head-to-head (the dense weight is not)
    return {"times": t, "comp": comp, "x": x, "gbs": gbs, "stream_gbs": stream_gbs, "own": own}


def dispatched_row(n: int, b: int, d: float, cell: dict) -> list[object]:
    """Dense and the dispatched layer head to head, with the table of this (N, B) installed."""
    comp, x, t = cell["comp"], cell["x"], cell["times"]
    with torch.no_grad():
        # the dense layer a user runs otherwise: a plain nn.Linear module holding the same
        # (masked) weight, no mask hooks; module against module
        dense = torch.nn.Linear(n, n, bias=False)
        dense.weight.copy_(comp.dense_weight())
        comp.drop_dense()
        comp(x)  # builds its CSR (and, on the dense path, its dense copy)
        t2 = time_blocks({"dense": lambda: dense(x), "disp": lambda: comp(x)}, 1.0)
        comp.drop_dense()
    plan = sprig.kernels.choose(d, (n, n), b, torch.float32, "cpu")
    row = [
        n, b, d, t["dense"] * 1e3, t["user"] * 1e3,
        t["scipy"] * 1e3 if "scipy" in t else "skipped",
        t["mkl"] * 1e3 if cell["own"] else "= sprig", t["csr"] * 1e3,
        t["dense"] / t["csr"], t["user"] / t["csr"], cell["gbs"], cell["stream_gbs"],
        100 * cell["gbs"] / cell["stream_gbs"],
        plan.kernel + (f"/blk{plan.block}" if plan.block else ""), t2["disp"] / t2["dense"],
    ]  # fmt: skip
    print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row), flush=True)
    return row


def steady_figure(gen: torch.Generator) -> dict[str, float]:
    """N=8192, B=1, d=0.05 as a layer runs in an inference loop: 40 ms blocks of consecutive
    calls, dense ``nn.Linear`` against the compressed layer (the grid's 2 ms blocks hold one or
    two calls of it, right after another candidate evicted its nonzeros from the caches)."""
    n, d = 8192, 0.05
    w, mask = masked(n, d, gen)
    dense = torch.nn.Linear(n, n, bias=False)
    with torch.no_grad():
        dense.weight.copy_(w)
    sprig.apply_mask(dense, "weight", mask)
    comp = sprig.compress(dense)
    plain = torch.nn.Linear(n, n, bias=False)  # no mask hooks: the dense layer at its fastest
    with torch.no_grad():
        plain.weight.copy_(w)
    x = torch.randn(1, n, generator=gen)
    with torch.no_grad():
        t = time_blocks({"dense": lambda: plain(x), "sprig": lambda: comp(x)}, 4.0, 40e-3)
    nnz = int(mask.sum())
    return {
        "dense ms": round(t["dense"] * 1e3, 3),
        "sprig ms": round(t["sprig"] * 1e3, 3),
        "speedup": round(t["dense"] / t["sprig"], 2),
        "sprig GB/s": round(nnz * 6 / t["sprig"] / 1e9, 1),
    }


def train_figure(gen: torch.Generator) -> dict[str, float | str]:
    """Forward + backward at N=4096, B=64, d=0.1: masked dense vs sprig, gradients checked."""
    n, b, d = 4096, 64, 0.1
    dense = sprig.SparseLinear(n, n, d, seed=1, backend="dense")
    layer = sprig.SparseLinear(n, n, d, seed=1, backend="csr")
    s = CSRStructure(dense.weight_mask)
    values = s.values_of(dense.weight).clone().requires_grad_(True)
    bias = dense.bias.detach().clone().requires_grad_(True)  # type: ignore[union-attr]
    x = torch.randn(b, n, generator=gen)
    block = sprig.kernels.choose(d, (n, n), b, torch.float32, "cpu", "train", "csr").block

    def kernel() -> None:
        values.grad = bias.grad = None
        csr_linear_train(x, values, s, bias, block=block).sum().backward()

    fns = {
        "masked_dense": lambda: step(dense, x),
        "sparselinear_csr": lambda: step(layer, x),
        "csr_linear_train": kernel,
    }
    t = time_best(fns, 6.0)
    err_layer = float((layer.weight.grad - dense.weight.grad).abs().max())  # type: ignore[operator]
    err_kernel = float((values.grad - s.values_of(dense.weight.grad)).abs().max())  # type: ignore[arg-type]
    return {
        "masked dense ms": round(t["masked_dense"] * 1e3, 2),
        "SparseLinear(backend=csr) ms": round(t["sparselinear_csr"] * 1e3, 2),
        "csr_linear_train (values) ms": round(t["csr_linear_train"] * 1e3, 2),
        "SparseLinear csr speedup": round(t["masked_dense"] / t["sparselinear_csr"], 2),
        "csr_linear_train speedup": round(t["masked_dense"] / t["csr_linear_train"], 2),
        "max |grad diff| layer": err_layer,
        "max |grad diff| kernel": err_kernel,
    }


if __name__ == "__main__":
    main()
