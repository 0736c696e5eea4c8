"""Sparse linear kernels vs dense, and the break-even table the dispatcher uses.

For N in {1024, 4096, 8192}, batch B in {1, 32, 256} and density d in {0.5, 0.2, 0.1, 0.05, 0.01}:
dense ``F.linear``; what a user would write (``W.to_sparse_csr()`` then a matmul); scipy CSR;
sprig's CSR kernel (forced) and sprig's dispatched layer (``CompressedLinear``, backend auto).
Ratios are measured in one run (``time_interleaved``); GB/s counts the bytes each kernel must
read (dense: 4 per weight; CSR: 8 per nonzero plus row pointers and the vectors) against a
bandwidth this script measures itself (a streaming sum over 512 MB).

Per (N, B) the script first calibrates: densities ascending, dense vs sprig CSR (unblocked and in
blocks of 32 columns), until CSR stops winning by 10%; the largest density up to which CSR always
won is the break-even, written to ``src/sprig/kernels/_breakeven.py`` and installed before the
comparison, so the "dispatched" column uses the table measured in this run. The same is done for
training (forward + backward of SparseLinear, masked dense vs CSR). Then training forward +
backward at N=4096, B=64, d=0.1 against masked dense, with gradients checked.

    python benchmarks/bench_kernels.py [--quick]
"""

from __future__ import annotations

import argparse
import pprint
import sys
import time
from pathlib import Path

import scipy.sparse as sp
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import time_interleaved, write_table  # noqa: E402

import sprig  # noqa: E402
from sprig.kernels import (  # noqa: E402
    BreakEven,
    CSRStructure,
    csr_linear,
    csr_linear_train,
    set_dispatch_table,
    to_csr,
)

TABLE_FILE = Path(__file__).parents[1] / "src" / "sprig" / "kernels" / "_breakeven.py"
MARGIN = 0.9  # CSR must be at least 10% faster than dense to be chosen
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


def rounds_for(fns: dict, budget: float) -> int:
    cost = sum(_once(f) for f in fns.values())
    return int(max(2, min(15, budget / max(cost, 1e-6))))


def masked(n: int, d: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    mask = sprig.make_mask((n, n), d, generator=gen)
    return torch.randn(n, n, generator=gen) * mask, mask


def _infer_times(n: int, b: int, d: float, gen: torch.Generator) -> dict[str, float]:
    w, mask = masked(n, d, gen)
    c = to_csr(w, mask)
    x = torch.randn(b, n, generator=gen)
    xv = x[0] if b == 1 else x
    fns = {"dense": lambda: F.linear(x, w), "csr": lambda: csr_linear(xv, c)}
    if b > BLOCK:
        fns["blk"] = lambda: csr_linear(x, c, block=BLOCK)
    with torch.no_grad():
        return time_interleaved(fns, rounds=rounds_for(fns, 1.0), warmup=1)


def _train_times(n: int, b: int, d: float, seed: int) -> dict[str, float]:
    dense = sprig.SparseLinear(n, n, d, seed=seed, backend="dense")
    csr = sprig.SparseLinear(n, n, d, seed=seed, backend="csr")
    x = torch.randn(b, n)
    fns = {"dense": lambda: step(dense, x), "csr": lambda: step(csr, x)}
    return time_interleaved(fns, rounds=rounds_for(fns, 1.5), warmup=1)


def calibrate_infer(n: int, b: int, densities: list[float], gen: torch.Generator) -> BreakEven:
    best_d, block_votes = 0.0, {0: 0, BLOCK: 0}
    for d in sorted(densities):
        t = _infer_times(n, b, d, gen)
        csr_t = min(t["csr"], t.get("blk", float("inf")))
        block_votes[BLOCK if t.get("blk", float("inf")) < t["csr"] else 0] += 1
        if csr_t > MARGIN * t["dense"]:
            break
        best_d = d
    block = max(block_votes, key=lambda k: block_votes[k])
    return BreakEven("cpu", "float32", "infer", n, b, best_d, block)


def calibrate_train(n: int, b: int, densities: list[float], seed: int) -> BreakEven:
    best_d = 0.0
    for d in sorted(densities):
        t = _train_times(n, b, d, seed)
        if t["csr"] > MARGIN * t["dense"]:
            break
        best_d = d
    block = BLOCK if b > BLOCK else 0
    return BreakEven("cpu", "float32", "train", n, b, best_d, block)


def step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    for p in layer.parameters():
        p.grad = None
    layer(x).sum().backward()


def write_table_module(rows: list[BreakEven]) -> None:
    body = ",\n".join(
        f"    ({r.device!r}, {r.dtype!r}, {r.mode!r}, {r.size}, {r.batch}, {r.density}, {r.block})"
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
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    sizes = [256, 1024] if args.quick else [1024, 4096, 8192]
    calib_sizes = [256, *sizes] if not args.quick else sizes
    batches = [1, 32, 256]
    densities = [0.5, 0.2, 0.1, 0.05, 0.01]
    bw = bandwidth()
    print(f"measured read bandwidth: {bw / 1e9:.1f} GB/s", flush=True)

    table = [calibrate_infer(n, b, densities, gen) for n in calib_sizes for b in batches]
    train_sizes = [256, 1024] if args.quick else [256, 1024, 4096]
    table += [
        calibrate_train(n, b, [0.2, 0.1, 0.05, 0.01], seed=n + b)
        for n in train_sizes
        for b in batches
    ]
    write_table_module(table)
    set_dispatch_table(table)
    pprint.pprint(table)

    cols = [
        "N", "B", "density", "dense ms", "to_sparse_csr ms", "scipy ms", "sprig csr ms",
        "sprig dispatched ms", "path", "csr vs dense", "csr vs to_sparse_csr",
        "dispatched vs dense", "csr GB/s", "csr % bw",
    ]  # fmt: skip
    rows = [measure_cell(n, b, d, gen, bw) for n in sizes for b in batches for d in densities]
    train = train_figure(gen)
    worst = max(rows, key=lambda r: r[11])
    extra = {
        "bandwidth_GBps": bw / 1e9,
        "training": train,
        "breakeven": [r.__dict__ for r in table],
        "worst_dispatched_vs_dense": {"N": worst[0], "B": worst[1], "d": worst[2], "x": worst[11]},
    }
    md = write_table("kernels", cols, rows, extra)
    with md.open("a") as fh:
        fh.write(f"\nMeasured read bandwidth: {bw / 1e9:.1f} GB/s.\n\nTraining (fwd+bwd):\n\n")
        fh.write("\n".join(f"- {k}: {v}" for k, v in train.items()) + "\n")
        fh.write(
            f"\nWorst dispatched cell: N={worst[0]} B={worst[1]} d={worst[2]}: "
            f"{worst[11]:.3f}x dense time.\n\nBreak-even table (csr at density <= d):\n\n"
            + "\n".join(
                f"- {r.mode} N={r.size} B={r.batch}: d<={r.density} block={r.block}" for r in table
            )
            + "\n"
        )
    print(md.read_text())


def measure_cell(n: int, b: int, d: float, gen: torch.Generator, bw: float) -> list[object]:
    """One (N, B, d) cell: every candidate timed in one interleaved run."""
    w, mask = masked(n, d, gen)
    c32 = to_csr(w, mask)
    c64 = w.to_sparse_csr()
    ws = sp.csr_matrix(w.numpy())
    x = torch.randn(b, n, generator=gen)
    xn = x.numpy()
    lin = torch.nn.Linear(n, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    sprig.apply_mask(lin, "weight", mask)
    comp = sprig.compress(lin)
    comp.weight_csr()
    xv = x[0] if b == 1 else x
    fns = {
        "dense": lambda: F.linear(x, w),
        "user": lambda: (c64 @ x.t()).t(),
        "csr": lambda: csr_linear(xv, c32, block=BLOCK if b > BLOCK else 0),
        "disp": lambda: comp(x),
    }
    nnz = int(mask.sum())
    if nnz * b <= 2e8:  # scipy is single-threaded: skip the multi-second cells
        fns["scipy"] = lambda: (ws @ xn.T).T
    with torch.no_grad():
        t = time_interleaved(fns, rounds=rounds_for(fns, 2.0), warmup=1)
        plan = sprig.kernels.choose(d, (n, n), b, torch.float32, "cpu")
    bytes_csr = nnz * 8 + (n + 1) * 4 + 2 * b * n * 4
    gbs = bytes_csr / t["csr"] / 1e9
    row = [
        n, b, d, t["dense"] * 1e3, t["user"] * 1e3,
        t["scipy"] * 1e3 if "scipy" in t else "skipped",
        t["csr"] * 1e3, t["disp"] * 1e3,
        plan.kernel + (f"/blk{plan.block}" if plan.block else ""),
        t["dense"] / t["csr"], t["user"] / t["csr"], t["disp"] / t["dense"],
        gbs, 100 * gbs * 1e9 / bw,
    ]  # fmt: skip
    print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row), flush=True)
    return row


def train_figure(gen: torch.Generator) -> dict[str, float | str]:
    """Forward + backward at N=4096, B=64, d=0.1: masked dense vs sprig, gradients checked."""
    n, b, d = 4096, 64, 0.1
    dense = sprig.SparseLinear(n, n, d, seed=1, backend="dense")
    layer = sprig.SparseLinear(n, n, d, seed=1, backend="csr")
    s = CSRStructure(dense.weight_mask)
    values = s.values_of(dense.weight).clone().requires_grad_(True)
    bias = dense.bias.detach().clone().requires_grad_(True)  # type: ignore[union-attr]
    x = torch.randn(b, n, generator=gen)

    def kernel() -> None:
        values.grad = bias.grad = None
        csr_linear_train(x, values, s, bias, block=BLOCK).sum().backward()

    fns = {
        "masked_dense": lambda: step(dense, x),
        "sparselinear_csr": lambda: step(layer, x),
        "csr_linear_train": kernel,
    }
    t = time_interleaved(fns, rounds=10, warmup=2)
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
