"""Sparse linear kernels vs dense, and the break-even table the dispatcher uses.

For N in {1024, 4096, 8192}, batch B in {1, 32, 256} and density d in
{0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01}:
dense ``F.linear``; what a user would write (``W.to_sparse_csr()`` then a matmul); scipy CSR;
torch's CSR product with int32 indices (MKL); sprig's CSR kernel (forced: at batch 1 and at
least ``MATVEC_MIN_NNZ`` nonzeros, or any size on one thread (``matvec_serves``),
:class:`sprig.kernels.MatVec` over 16-bit column indices, otherwise MKL's product, batches in
blocks of 32 columns) and sprig's dispatched layer
(``CompressedLinear``, backend auto). GB/s counts the bytes sprig's kernel must read (6 per
nonzero in MatVec, 8 in MKL's, plus row pointers and the vectors) against a bandwidth
measured in the same
interleaved run: a streaming sum over a buffer of as many bytes ("stream GB/s"; the machine is
shared, so a bandwidth measured once would drift). A 512 MB streaming sum is reported too.

Every cell streams its weights from memory, as a model's forward does: a candidate's call runs
as many copies of the layer in turn (each its own random weights) as it takes for the dense
copies to fill twice the last-level cache (16 copies of a 1024 x 1024 layer on a 32 MiB L3,
one of the larger ones), and the time per layer is reported. An earlier version called one
layer over and over, whose weights stayed in the caches: at N=1024 and batch 1 dense then beat
CSR at density 0.5 while a decoding model, streaming 200 MB of weights a token, ran CSR 1.26x
faster than dense (``results/decode.md``). The sparse copies are as many as the dense ones (a
model's layers), so at low density they may fit in the cache where dense does not, as in a
model.

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

``--sizes`` and ``--batches`` measure part of the grid (the lock window of a shared machine
is short): the other cells' rows of ``results/kernels.json`` and of the table are kept, so the
written files hold the whole grid, each cell from its latest run. ``--infer-only`` skips the
training figures and calibration and keeps the table's training rows.

    python benchmarks/bench_kernels.py [--quick] [--threads N] [--busy]
        [--sizes N ...] [--batches B ...] [--infer-only]
"""

from __future__ import annotations

import argparse
import json
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
from _common import (  # noqa: E402
    RESULTS,
    copies_for,
    time_blocks,
    time_interleaved,
    write_table,
)

import sprig  # noqa: E402
import sprig.kernels._threads as threads  # noqa: E402
from sprig.kernels import (  # noqa: E402
    BreakEven,
    CSRStructure,
    MatVec,
    csr_linear,
    csr_linear_train,
    get_dispatch_table,
    matvec_serves,
    set_dispatch_table,
    to_csr,
)

TABLE_FILE = Path(__file__).parents[1] / "src" / "sprig" / "kernels" / "_breakeven.py"
MARGIN = 0.8  # CSR must be 20% faster than dense to be chosen: noise must not flip a cell
BLOCK = 32
SIZES = [1024, 4096, 8192]
BATCHES = [1, 32, 256]
DENSITIES = [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]


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


def write_table_module(rows: list[BreakEven], note: str) -> None:
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
        f"{note}\n"
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
    ap.add_argument("--sizes", type=int, nargs="+", choices=SIZES, help="part of the grid")
    ap.add_argument("--batches", type=int, nargs="+", choices=BATCHES, help="part of the grid")
    ap.add_argument(
        "--infer-only", action="store_true",
        help="skip the training figures and calibration; keep the table's training rows",
    )  # fmt: skip
    args = ap.parse_args()
    if args.busy:
        print(busy_machine().read_text())
        return
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    sizes = [1024, 2048] if args.quick else args.sizes or SIZES
    batches = args.batches or BATCHES
    load_before = os.getloadavg()
    bw = bandwidth()
    old = _previous_results()
    if args.infer_only:
        train = {**old.get("training", {}), "note": "from an earlier run (--infer-only)"}
        train_table = [r for r in get_dispatch_table() if r.mode == "train"]
    else:
        # first, in a fresh process: after the grid's big frees the dense step's 64 MB
        # gradient was served without page faults (29 ms against 36 ms run alone), which no
        # training loop sees (glibc maps allocations over 32 MB afresh each time)
        train = train_figure(gen)
        print(f"training: {train}", flush=True)
        train_table = [
            calibrate_train(n, b, [0.2, 0.1, 0.05, 0.01], seed=n + b)
            for n in ([1024] if args.quick else [1024, 4096])
            for b in BATCHES
        ]
    steady = steady_figure(gen)
    print(f"steady state, N=8192 B=1 d=0.05: {steady}", flush=True)
    print(f"512 MB streaming read: {bw / 1e9:.1f} GB/s", flush=True)

    measured = {(n, b) for n in sizes for b in batches}
    # the cells of this run replace their rows; the others keep their latest run's
    table = [
        r for r in get_dispatch_table() if r.mode == "infer" and (r.size, r.batch) not in measured
    ]
    cells_runs = {
        k: v for k, v in old.get("cells", {}).items() if tuple(map(int, k.split())) not in measured
    }
    rows = [r for r in old.get("rows", []) if (r[0], r[1]) not in measured]
    for n in sizes:
        for b in batches:
            cells = {d: measure_cell(n, b, d, gen) for d in DENSITIES}
            cut = breakeven({d: c["times"]["csr"] / c["times"]["dense"] for d, c in cells.items()})
            table.append(BreakEven("cpu", "float32", "infer", n, b, cut, BLOCK if b > BLOCK else 0))
            table.sort(key=lambda r: (r.size, r.batch))
            set_dispatch_table(table + train_table)
            for d, cell in cells.items():
                rows.append(dispatched_row(n, b, d, cell))
            cells_runs[f"{n} {b}"] = {
                "threads": args.threads,
                "copies": copies_for(n),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
    rows.sort(key=lambda r: (r[0], r[1], -r[2]))
    threads_used = sorted({c["threads"] for c in cells_runs.values()})
    # rows of runs before the streaming measurement (no "cells" entry) say so
    older = [f"N={r.size} B={r.batch}" for r in table if f"{r.size} {r.batch}" not in cells_runs]
    table += train_table
    write_table_module(
        table,
        f"Measured on: torch {torch.__version__}; inference cells streaming from memory\n"
        f"with {' and '.join(map(str, threads_used))} thread(s)"
        + (f";\n{', '.join(older)}: an earlier run's, one layer cache-hot" if older else "")
        + (";\ntraining rows kept from an earlier run." if args.infer_only else "."),
    )
    load_after = os.getloadavg()

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
        "timing": "best of interleaved blocks of consecutive calls (~2 ms a block), each call a "
        "pass over copies of the layer filling twice the last-level cache (time per layer)",
        "cells": cells_runs,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
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
            + "\n\nCells (N B: threads, copies of the layer per call, when):\n\n"
            + "\n".join(f"- {k}: {v}" for k, v in sorted(cells_runs.items()))
            + f"\n\nLoad average (1, 5, 15 min) before: {load_before}, after: {load_after}.\n"
        )
    print(md.read_text())
    if not args.infer_only:
        print(busy_machine().read_text())


def _previous_results() -> dict:
    """The last run's ``results/kernels.json`` (empty when none): rows a partial run keeps."""
    path = RESULTS / "kernels.json"
    return json.loads(path.read_text()) if path.exists() else {}


# (N, density, batch): MKL's mv, then sprig's MatVec (>= MATVEC_MIN_NNZ). A batch of 32
# (MKL's batched product, 1024^2 at 0.1) did not collapse on two threads here with 3
# spinners (2.8x dense with the check off, 2.1x with a one-thread switch; load 2.2-3.9)
BUSY_CASES = [(2048, 0.05, 1), (8192, 0.05, 1)]


def _busy_runs(
    n: int, d: float, batch: int, check: bool, runs: int = 5
) -> list[tuple[float, float]]:
    """Per run: (dense, compressed) seconds per call, as ``sprig bench`` times them."""
    saved = threads.BUSY_LOAD_PER_CORE
    threads.BUSY_LOAD_PER_CORE = saved if check else float("inf")
    threads._busy = (-1e9, False)  # look at the load again now
    try:
        layer = sprig.SparseLinear(n, n, density=d, seed=0)
        fast = sprig.compress(layer)
        w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
        x = torch.randn(batch, n)
        out = []
        with torch.inference_mode():
            for _ in range(runs):
                fns = {"dense": lambda: F.linear(x, w, b), "sprig": lambda: fast(x)}
                t = time_interleaved(fns, rounds=20)
                out.append((t["dense"], t["sprig"]))
        return out
    finally:
        threads.BUSY_LOAD_PER_CORE = saved


def busy_machine(spinners: int = 3) -> Path:
    """The busy-machine table: ``spinners`` processes spin while layers are timed."""
    torch.set_num_threads(os.cpu_count() or 1)  # a user's default: all cores
    load_before = os.getloadavg()
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(spinners)]
    rows = []
    try:
        # the 1-minute load average must see them, as it would on a busy machine
        deadline = time.monotonic() + 120
        while os.getloadavg()[0] < (os.cpu_count() or 1) and time.monotonic() < deadline:
            time.sleep(2)
        for n, d, batch in BUSY_CASES:
            for check in (True, False):
                times = _busy_runs(n, d, batch, check)
                r = [dense / own for dense, own in times]
                rows.append(
                    [n, d, batch, "on" if check else "off", min(r), statistics.median(r),
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
        "N", "density", "batch", "busy check", "worst x dense", "median x dense", "runs x dense",
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
            f"\n{spinners} spinning processes, {torch.get_num_threads()} torch threads. "
            f"Load average (1, 5, 15 min) before: {load_before}, after: {load_after} (other "
            "jobs share this machine too). x dense = dense time / compressed time.\n"
        )
    return md


def measure_cell(n: int, b: int, d: float, gen: torch.Generator) -> dict[str, object]:
    """One (N, B, d) cell: every candidate timed in one interleaved run, each call a pass
    over :func:`copies_for` copies of the layer (the time is per layer)."""
    copies = copies_for(n)
    ws, masks = zip(*(masked(n, d, gen) for _ in range(copies)), strict=True)
    c32 = [to_csr(w, m) for w, m in zip(ws, masks, strict=True)]
    c64 = [w.to_sparse_csr() for w in ws]
    x = torch.randn(b, n, generator=gen)
    xn = x.numpy()
    xv = x[0] if b == 1 else x
    nnz = int(masks[0].sum())
    own = b == 1 and matvec_serves(nnz)  # sprig's own kernel, else MKL's (CompressedLinear)
    words = nnz * 3 // 2 if own else nnz * 2  # 4-byte words per nonzero: 6 or 8 bytes
    stream = torch.ones(copies, words + (n + 1) + 2 * b * n)  # as many bytes as sprig reads
    blk = BLOCK if b > BLOCK else 0

    def each(fn: Callable[[int], object]) -> Callable[[], None]:
        def run() -> None:
            for i in range(copies):
                fn(i)

        return run

    fns = {
        "dense": each(lambda i: F.linear(x, ws[i])),
        "user": each(lambda i: (c64[i] @ x.t()).t()),
        "mkl": each(lambda i: csr_linear(xv, c32[i], block=blk)),
        "stream": each(lambda i: stream[i].sum()),
    }
    if own:
        mvs = [
            MatVec(c.crow_indices(), c.col_indices().to(torch.uint16), c.values(), n) for c in c32
        ]
        fns["csr"] = each(lambda i: mvs[i](xv))
    if nnz * b <= 2e8:  # scipy is single-threaded: skip the multi-second cells
        scs = [sp.csr_matrix(w.numpy()) for w in ws]
        fns["scipy"] = each(lambda i: (scs[i] @ xn.T).T)
    with torch.no_grad():
        t = {k: v / copies for k, v in time_blocks(fns, 1.5).items()}
    t.setdefault("csr", t["mkl"])  # above batch 1 sprig's kernel is MKL's
    gbs = stream[0].numel() * 4 / t["csr"] / 1e9
    stream_gbs = stream[0].numel() * 4 / t["stream"] / 1e9
    print(f"N={n} B={b} d={d}: " + ", ".join(f"{k} {v * 1e3:.3f}ms" for k, v in t.items()))
    sys.stdout.flush()
    comps = []
    for w, mask in zip(ws, masks, strict=True):
        lin = torch.nn.Linear(n, n, bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        sprig.apply_mask(lin, "weight", mask)
        comps.append(sprig.compress(lin))  # kept for the head-to-head (the dense weight is not)
    return {"times": t, "comps": comps, "x": x, "gbs": gbs, "stream_gbs": stream_gbs, "own": own}


def dispatched_row(n: int, b: int, d: float, cell: dict) -> list[object]:
    """Dense and the dispatched layer head to head, with the table of this (N, B) installed."""
    comps, x, t = cell["comps"], cell["x"], cell["times"]
    with torch.no_grad():
        # the dense layer a user runs otherwise: a plain nn.Linear module holding the same
        # (masked) weight, no mask hooks; module against module
        denses = []
        for comp in comps:
            dense = torch.nn.Linear(n, n, bias=False)
            dense.weight.copy_(comp.dense_weight())
            comp.drop_dense()
            comp(x)  # builds its CSR (and, on the dense path, its dense copy)
            denses.append(dense)

        def run(layers: list[torch.nn.Module]) -> Callable[[], None]:
            def call() -> None:
                for layer in layers:
                    layer(x)

            return call

        t2 = time_blocks({"dense": run(denses), "disp": run(comps)}, 1.0)
        for comp in comps:
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
