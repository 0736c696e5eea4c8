"""Sparse convolution vs dense: the break-even table, and a sparse ResNet-18 end to end.

Grid (batch 1, 3x3 and 1x1 kernels, "same" padding, in = out channels C in {64, 128, 256,
512}, an S x S plane, S in {2, 4, 8, 16, 28, 56}, density d in {0.3, 0.2, 0.1, 0.05}): torch's
dense convolution (``nn.Conv2d``: oneDNN) against ``CompressedConv`` forced to the direct sparse
kernel, timed in one interleaved run per cell (best of blocks of consecutive calls,
``_common.time_blocks``). GFLOP/s counts the multiply-adds each does (dense
``C * C * k * k * S^2``, sparse ``nnz * S^2``). Per (k, C, S) the largest density up to which
the sparse kernel beat dense by 20% at every smaller density (``bench_kernels.breakeven``) is
written to ``src/sprig/kernels/_conv_breakeven.py``, the table ``choose_conv`` reads.

End to end (``examples/resnet_sparse.py``'s ResNet-18, BatchNorm folded, every convolution but
the stem masked uniformly to d, batch 1, 64x64 and 224x224 inputs): the dense model (the same
network unmasked, torch's convolutions), the masked-dense model (sprig's masks, dense
convolutions) and the compressed model (the dispatcher's choice per layer, with the table just
measured), with the compressed output checked against masked dense. Goal: >= 3x dense at
d=0.1, >= 5x at d=0.05.

One torch thread (and one numba thread) by default: the machine is shared (2 cores); ``--threads
2`` adds 2-thread end-to-end rows. Load averages before and after are in the results.

``--profile`` writes only where the compressed model's time goes, per kind of layer
(``results/conv_profile.md``).

``--keep-grid`` reruns only the end-to-end rows, keeping the grid and table of the last run
(a busy machine spoils the end-to-end timings more often than the grid's).

    python benchmarks/bench_conv.py [--quick] [--threads 2] [--profile] [--keep-grid]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
from _common import RESULTS, append_notes, time_blocks, write_table  # noqa: E402
from bench_kernels import MARGIN, breakeven  # noqa: E402
from resnet_sparse import ResNet18, fold_batchnorm, randomize_batchnorm, sparse_resnet  # noqa: E402

import sprig  # noqa: E402
from sprig.compress import CompressedConv  # noqa: E402
from sprig.kernels import ConvBreakEven, set_conv_dispatch_table  # noqa: E402

TABLE_FILE = Path(__file__).parents[1] / "src" / "sprig" / "kernels" / "_conv_breakeven.py"


def measure_cell(ch: int, size: int, k: int, d: float) -> dict[str, float]:
    """Dense vs the direct sparse kernel for one (C, S, k, d) cell."""
    torch.manual_seed(ch + size)
    conv = nn.Conv2d(ch, ch, k, padding=k // 2)
    dense = nn.Conv2d(ch, ch, k, padding=k // 2)
    with torch.no_grad():
        dense.load_state_dict(conv.state_dict())
    sprig.sparsify(conv, d, distribution="uniform")
    comp = sprig.compress(conv, backend="csr")
    assert isinstance(comp, CompressedConv)
    x = torch.randn(1, ch, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-4, atol=1e-4)
        t = time_blocks({"dense": lambda: dense(x), "sparse": lambda: comp(x)}, 1.0)
    macs = {"dense": ch * ch * k * k * size * size, "sparse": comp.nnz * size * size}
    return {
        "dense ms": t["dense"] * 1e3,
        "sparse ms": t["sparse"] * 1e3,
        "dense GFLOP/s": 2 * macs["dense"] / t["dense"] / 1e9,
        "sparse GFLOP/s": 2 * macs["sparse"] / t["sparse"] / 1e9,
    }


def write_table_module(rows: list[ConvBreakEven]) -> None:
    body = ",\n".join(
        f'    ("{r.device}", "{r.dtype}", {r.channels}, {r.size}, {r.kernel}, {r.density})'
        for r in rows
    )
    TABLE_FILE.write_text(
        '"""Convolution break-even table measured by ``benchmarks/bench_conv.py`` (generated: do\n'
        "not edit by hand; rerun the benchmark on the target machine instead).\n\n"
        "Rows: (device, dtype, channels, size, kernel, density).\n"
        "The direct sparse convolution runs at densities <= density.\n"
        f"Measured on: {torch.__version__}, {torch.get_num_threads()} threads.\n"
        '"""\n\n'
        "TABLE: tuple[tuple[str, str, int, int, int, float], ...] = (\n"
        f"{body},\n)\n"
    )


def grid(
    channels: list[int], sizes: list[int], kernels: list[int], densities: list[float]
) -> tuple[list, list]:
    rows, table = [], []
    for k, ch, size in itertools.product(kernels, channels, sizes):
        cells = {}
        for d in sorted(densities):  # ascending: past the first loss nothing changes
            cells[d] = measure_cell(ch, size, k, d)
            c = cells[d]
            rows.append([k, ch, size, d, *c.values(), c["dense ms"] / c["sparse ms"]])
            print(" | ".join(f"{v:.3g}" for v in rows[-1]), flush=True)
            if c["sparse ms"] / c["dense ms"] > MARGIN:
                break
        cut = breakeven({d: c["sparse ms"] / c["dense ms"] for d, c in cells.items()})
        table.append(ConvBreakEven("cpu", "float32", ch, size, k, cut))
    return rows, table


def end_to_end(size: int, d: float, threads: int, stem: bool = False) -> list[object]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dense = fold_batchnorm(randomize_batchnorm(ResNet18()))
    masked = sparse_resnet(d, stem=stem)
    fast = sprig.compress(masked)
    if stem:  # 3 input channels: fewer than the table measured, so "auto" keeps it dense
        fast.stem[0].backend = "csr"
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        want, got = masked(x), fast(x)
        err = float((got - want).abs().max() / want.abs().max())
        fns = {"dense": lambda: dense(x), "masked": lambda: masked(x), "fast": lambda: fast(x)}
        t = time_blocks(fns, 4.0 if size > 100 else 2.0)
    # the plans the layers made for this input (one input size per model here)
    sparse_layers = sum(
        1
        for m in fast.modules()
        if isinstance(m, CompressedConv) and any(p.kernel == "csr" for p in m._plans.values())
    )
    row = [
        size, d, "sparse" if stem else "dense", threads,
        t["dense"] * 1e3, t["masked"] * 1e3, t["fast"] * 1e3,
        t["dense"] / t["fast"], t["masked"] / t["fast"], err, sparse_layers,
    ]  # fmt: skip
    print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row), flush=True)
    return row


def max_pool_figure() -> dict[str, float]:
    """The example's max pooling: torch's NCHW kernel against a channels-last detour."""
    x = torch.randn(1, 64, 112, 112)

    def last() -> torch.Tensor:
        y = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 3, 2, 1)
        return y.contiguous()

    with torch.inference_mode():
        t = time_blocks({"nchw": lambda: F.max_pool2d(x, 3, 2, 1), "last": last}, 1.0)
    return {"nchw ms": t["nchw"] * 1e3, "channels-last ms": t["last"] * 1e3}


def layer_profile(size: int, d: float, runs: int = 30) -> dict[str, float]:
    """Milliseconds per forward spent in each kind of layer of the compressed model (forward
    hooks around every leaf module; "CompressedConv 3x3 csr": the sparse kernel's layers):
    each layer's least time over ``runs`` forwards, summed per kind, and the least whole
    forward (a busy machine only adds time)."""
    torch.manual_seed(0)
    fast = sprig.compress(sparse_resnet(d))
    best: dict[nn.Module, float] = {}
    start: dict[nn.Module, float] = {}

    def name(m: nn.Module) -> str:
        if not hasattr(m, "kernel_size"):
            return type(m).__name__
        k = m.kernel_size[0]
        plans = getattr(m, "_plans", {})
        how = f" {next(iter(plans.values())).kernel}" if plans else ""
        return f"{type(m).__name__} {k}x{k}{how}"

    def before(m: nn.Module, _: object) -> None:
        start[m] = time.perf_counter()

    def after(m: nn.Module, _: object, __: object) -> None:
        best[m] = min(best.get(m, float("inf")), time.perf_counter() - start[m])

    for m in fast.modules():
        if not list(m.children()):
            m.register_forward_pre_hook(before)
            m.register_forward_hook(after)
    x = torch.randn(1, 3, size, size)
    total = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            fast(x)
        best.clear()
        for _ in range(runs):
            t0 = time.perf_counter()
            fast(x)
            total = min(total, time.perf_counter() - t0)
    spent: dict[str, float] = {}
    for m, t in best.items():
        spent[name(m)] = spent.get(name(m), 0.0) + t
    out = {k: v * 1e3 for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {"total (hooks included)": total * 1e3, **out}


def profile() -> Path:
    """Where the compressed ResNet-18's time goes: ``results/conv_profile.md``."""
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    cases = [(224, 0.1), (224, 0.05), (64, 0.1), (64, 0.05)]
    found = {case: layer_profile(*case) for case in cases}
    kinds = sorted({k for f in found.values() for k in f}, key=lambda k: -found[cases[0]].get(k, 0))
    rows = [[k, *(round(found[c].get(k, 0.0), 2) for c in cases)] for k in kinds]
    cols = ["layers", *(f"{s}x{s} d={d} ms" for s, d in cases)]
    extra = {"loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    md = write_table("conv_profile", cols, rows, extra)
    append_notes(
        md,
        {
            "what": "ms per forward in each kind of layer of the compressed ResNet-18 "
            "(examples/resnet_sparse.py, stem dense), batch 1, 1 thread, timed by forward "
            "hooks: each layer's least time over 30 forwards, summed per kind, and the least "
            "whole forward (so the kinds may sum to less than the total); csr/dense: the "
            "dispatcher's choice",
            "load average before": load_before,
            "load average after": extra["loadavg_after"],
        },
    )
    return md


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small grid, for a smoke test")
    ap.add_argument("--threads", type=int, default=1, help="also run end to end on N threads")
    ap.add_argument("--profile", action="store_true", help="only the per-layer profile")
    ap.add_argument(
        "--keep-grid",
        action="store_true",
        help="end to end only: keep the grid and break-even table of results/conv.json",
    )
    args = ap.parse_args()
    if args.profile:
        print(profile().read_text())
        return
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    grid_load = load_before  # the load average before the grid was measured
    if args.keep_grid:  # the table module already holds these break-evens
        kept = json.loads((RESULTS / "conv.json").read_text())
        grid_rows = kept["grid"]
        table = [ConvBreakEven(**r) for r in kept["breakeven"]]
        grid_load = kept.get("grid_loadavg_before", kept["loadavg_before"])
    else:
        channels = [64, 256] if args.quick else [64, 128, 256, 512]
        sizes = [8, 28] if args.quick else [2, 4, 8, 16, 28, 56]  # 2: layer 4 at 64x64
        densities = [0.3, 0.2, 0.1, 0.05]
        grid_rows, table = grid(channels, sizes, [3, 1], densities)
        write_table_module(table)
    set_conv_dispatch_table(table)

    rows = []
    for size in (64, 224):
        for d in (0.2, 0.1, 0.05):
            rows.append(end_to_end(size, d, 1))
    for size in (64, 224):  # the stem masked too: what the dense stem costs
        for d in (0.1, 0.05):
            rows.append(end_to_end(size, d, 1, stem=True))
    if args.threads > 1:
        for size in (64, 224):
            for d in (0.1, 0.05):
                rows.append(end_to_end(size, d, args.threads))
    torch.set_num_threads(1)
    pool = max_pool_figure()
    load_after = os.getloadavg()
    cols = [
        "input", "density", "stem", "threads", "dense ms", "masked dense ms", "compressed ms",
        "x dense", "x masked dense", "max rel err", "sparse conv layers",
    ]  # fmt: skip
    grid_cols = [
        "k", "C", "S", "density", "dense ms", "sparse ms", "dense GFLOP/s", "sparse GFLOP/s",
        "x dense",
    ]  # fmt: skip
    extra = {
        "max_pool": pool,
        "grid_columns": grid_cols,
        "grid": grid_rows,
        "breakeven": [r.__dict__ for r in table],
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "grid_loadavg_before": grid_load,
        "grid_kept": args.keep_grid,
        "timing": "best of interleaved blocks of consecutive calls (_common.time_blocks)",
        "goal": ">= 3x dense at density 0.1, >= 5x at 0.05 (batch 1, 64x64 and 224x224)",
    }
    md = write_table("conv", cols, rows, extra)
    with md.open("a") as fh:
        fh.write("\n## Grid: one k x k convolution, C -> C channels, S x S, batch 1, 1 thread\n\n")
        fh.write("| " + " | ".join(grid_cols) + " |\n|" + "---|" * len(grid_cols) + "\n")
        for r in grid_rows:
            fh.write("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v)
                                       for v in r) + " |\n")  # fmt: skip
        fh.write(
            "\nBreak-even (sparse at density <= d): "
            + ", ".join(f"k={r.kernel} C={r.channels} S={r.size}: {r.density}" for r in table)
            + "\n"
        )
    append_notes(
        md,
        {
            "model": "ResNet-18 (examples/resnet_sparse.py), BatchNorm folded; head (512->1000 "
            "linear) dense; all other convolutions masked uniformly, the stem (3->64, 7x7, "
            "stride 2) only in the rows 'stem sparse', where it runs the sparse kernel (forced)",
            "dense": "the same network unmasked, torch's convolutions (oneDNN), eager",
            "masked dense": "sprig masks on the weights, torch's convolutions",
            "compressed": "sprig.compress: every masked convolution (3x3 and the 1x1 shortcuts) "
            "-> CompressedConv, dense or sparse per layer as the dispatcher chooses",
            "sparse conv layers": "how many of the 19 CompressedConv layers (20 with the stem) "
            "the dispatcher sends to the sparse kernel at this input size",
            "max pooling": "run channels-last in the example's model: torch's 3x3/2 max pooling "
            f"of the 64x112x112 stem output took {pool['nchw ms']:.2f} ms in NCHW and "
            f"{pool['channels-last ms']:.2f} ms channels-last (conversions included), in "
            "dense and compressed models alike",
            "load average before": load_before,
            "load average after": load_after,
            "grid": f"kept from the previous run (load average before it: {grid_load})"
            if args.keep_grid
            else "measured in this run",
        },
    )
    print(md.read_text())


if __name__ == "__main__":
    main()
