"""Sparse training end to end: dense vs masked vs compressed storage, time per step and memory.

One step = forward, backward, Adam, and RigL every 100 steps (its update step, with the dense
gradient in row blocks, is timed and amortised over 100 steps). Model: MLP
1024-4096-4096-4096-10, the three big layers at the density, the output layer dense. Each case
runs in its own process (peak memory is the process's, above its baseline after imports and
data), on ``--threads`` threads.

Goals (issue 14): at density 0.05, batch 64, compressed >= 5x faster than masked and >= 3x
faster than dense, with peak memory <= 25% of masked's; at 0.01, >= 10x faster than masked.

``--cnn`` times RigL training of a small CNN instead (``examples/resnet_sparse.py``'s ResNet-18
at widths 16/32/64/128 with BatchNorm, 64x64 inputs, every block convolution at the density):
compressed convolutions (rewired in place, issue 16) against their masked-dense twins, all
three storages in one process, their steps interleaved (``--steps`` rounds).

``--big`` runs the two "bigger than the machine" cases instead: SparseMLP([16384, 16384,
16384, 10], [0.01, 0.01, 1.0]) with RigL (goal: peak <= 1.5 GB; its dense twin with Adam
needs ~8.6 GB), and a 65536-wide one at density 0.001 (dense twin with Adam ~137 GB) trained on
scikit-learn's digits, embedded to 65536 inputs by a fixed sparse random projection, with its
loss and accuracy over the run.

    python benchmarks/bench_training.py [--threads 1] [--steps 12] [--big | --cnn]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import append_notes, time_interleaved, write_table
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
import sprig  # noqa: E402
from sprig.dst import RigL  # noqa: E402
from sprig.masks import masked_parameters  # noqa: E402

SIZES = [1024, 4096, 4096, 4096, 10]
STORAGES = ("dense", "masked", "compressed")
DENSITIES = (0.2, 0.1, 0.05, 0.01)
BATCHES = (64, 256)
EVERY = 100  # RigL's update interval the update step is amortised over


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _model(storage: str, density: float, sizes: list[int]) -> nn.Module:
    densities = [density] * (len(sizes) - 2) + [1.0]
    if storage == "dense":
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    return sprig.SparseMLP(sizes, densities, seed=0, storage=storage)


def run_case(storage: str, batch: int, density: float, steps: int) -> dict[str, float]:
    """Time ``steps`` training steps of the MLP (RigL updates once, at step 2) in this process."""
    torch.manual_seed(0)
    x = torch.randn(batch, SIZES[0])
    y = torch.randint(0, SIZES[-1], (batch,))
    base = _rss_mib()
    return _time_steps(_model(storage, density, SIZES), storage, x, y, steps, base)


CNN_WIDTHS = (16, 32, 64, 128)
CNN_SIZE = 64  # input height and width (32: per-step overheads outweigh the convolutions)


def _cnn(storage: str, density: float) -> nn.Module:
    """The small ResNet-18 (BatchNorm kept: it trains); block convolutions masked to
    ``density`` unless dense, and compressed for ``"compressed"``."""
    from resnet_sparse import ResNet18

    torch.manual_seed(0)
    model: nn.Module = ResNet18(num_classes=10, widths=CNN_WIDTHS)
    if storage == "dense":
        return model
    sprig.sparsify(model, density, distribution="uniform", include=["blocks.*"], seed=0)
    return sprig.compress(model) if storage == "compressed" else model


def _time_steps(
    model: nn.Module, storage: str, x: torch.Tensor, y: torch.Tensor, steps: int, base: float
) -> dict[str, float]:
    """Adam steps with RigL (not for dense): the median ordinary step plus the update step's
    extra time amortised over ``EVERY`` steps, and peak memory above ``base``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rigl = None
    if storage != "dense":
        rigl = RigL(model, t_end=10**6, every=EVERY, start=2, fraction=0.3, seed=0)
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        ctx = rigl.backward_context(step) if rigl is not None else torch.enable_grad()
        with ctx:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if rigl is not None:
            rigl.after_step(step, model, opt)
        times.append(time.perf_counter() - t0)
    normal = sorted(times[3:])[len(times[3:]) // 2]  # median of the ordinary steps
    update = times[2] - normal if rigl is not None else 0.0
    return {
        "ms_step": (normal + update / EVERY) * 1e3,
        "ms_update": update * 1e3,
        "peak_mib": _rss_mib() - base,
    }


def run_big(width: int, densities: list[float], steps: int, digits: bool) -> dict[str, object]:
    """Train a huge compressed MLP with RigL; loss on digits embedded to ``width`` inputs."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    base = _rss_mib()
    sizes = [width, width, width, 10]
    model = sprig.SparseMLP(sizes, densities, seed=0, storage="compressed")
    built = _rss_mib() - base
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rigl = RigL(model, t_end=10**6, every=EVERY, start=EVERY, fraction=0.3, seed=0)
    d = load_digits()
    feats = torch.tensor(d.data, dtype=torch.float32) / 16.0  # (1797, 64)
    labels = torch.tensor(d.target)
    # a fixed sparse embedding to `width` inputs: each pixel drives 16 random input units
    gen = torch.Generator().manual_seed(0)
    rows = torch.arange(64).repeat_interleave(16)
    cols = torch.randint(0, width, (64 * 16,), generator=gen)
    embed = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), torch.ones(64 * 16), (64, width), check_invariants=True
    )
    train_idx, test_idx = torch.arange(0, 1500), torch.arange(1500, 1797)
    batch = 64
    losses, times = [], []
    for step in range(steps):
        idx = train_idx[torch.randint(0, len(train_idx), (batch,), generator=gen)]
        x = torch.sparse.mm(embed.t(), feats[idx].t()).t()  # (batch, width), dense input
        t0 = time.perf_counter()
        with rigl.backward_context(step):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            loss.backward()
        opt.step()
        rigl.after_step(step, model, opt)
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    with torch.no_grad():
        xt = torch.sparse.mm(embed.t(), feats[test_idx].t()).t()
        acc = float((model(xt).argmax(1) == labels[test_idx]).float().mean())
    dense_adam_gb = sum(a * b for a, b in zip(sizes, sizes[1:])) * 16 / 1e9
    first = sum(losses[:20]) / 20
    last = sum(losses[-20:]) / 20
    return {
        "width": width,
        "densities": densities,
        "nnz": sum(layer.nnz for layer in model.layers),
        "dense_twin_with_adam_gb": dense_adam_gb,
        "built_mib": built,
        "peak_mib": _rss_mib() - base,
        "ms_step_median": sorted(times)[len(times) // 2] * 1e3,
        "rigl_updates": rigl.updates,
        "loss_first20": first,
        "loss_last20": last,
        "test_accuracy": acc,
        "steps": steps,
    }


def _child(args: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--cnn", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # storage,batch,density (child)
    ap.add_argument("--big-case", help=argparse.SUPPRESS)  # width,density (child)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        storage, batch, density = args.case.split(",")
        print(json.dumps(run_case(storage, int(batch), float(density), args.steps)))
        return
    if args.big_case:
        width, density, steps = args.big_case.split(",")
        w, d = int(width), float(density)
        print(json.dumps(run_big(w, [d, d, 1.0], int(steps), True)))
        return
    common = ["--threads", str(args.threads), "--steps", str(args.steps)]
    load = os.getloadavg()[0]
    if args.cnn:
        cnn_table(args.threads, load, rounds=max(args.steps, 5))
        return
    if args.big:
        rows_big = []
        for width, density, steps in ((16384, 0.01, 300), (65536, 0.001, 200)):
            r = _child([*common, "--big-case", f"{width},{density},{steps}"])
            print(r, flush=True)
            rows_big.append(
                [
                    r["width"],
                    density,
                    r["nnz"],
                    r["dense_twin_with_adam_gb"],
                    r["peak_mib"],
                    r["ms_step_median"],
                    r["loss_first20"],
                    r["loss_last20"],
                    r["test_accuracy"],
                ]
            )
        path = write_table(
            "training_big",
            [
                "width",
                "density",
                "nnz",
                "dense twin + Adam GB",
                "peak MiB",
                "ms/step",
                "loss (first 20)",
                "loss (last 20)",
                "test acc",
            ],
            rows_big,
            {"threads": args.threads, "load_at_start": load, "task": "digits embedded"},
        )
        print(f"wrote {path}")
        return
    rows = []
    for batch in BATCHES:
        dense = _child([*common, "--case", f"dense,{batch},1.0"])
        for density in DENSITIES:
            r = {s: _child([*common, "--case", f"{s},{batch},{density}"]) for s in STORAGES[1:]}
            r["dense"] = dense
            ms = {s: float(r[s]["ms_step"]) for s in STORAGES}  # type: ignore[arg-type]
            mem = {s: float(r[s]["peak_mib"]) for s in STORAGES}  # type: ignore[arg-type]
            row = [
                batch,
                density,
                ms["dense"],
                ms["masked"],
                ms["compressed"],
                ms["masked"] / ms["compressed"],
                ms["dense"] / ms["compressed"],
                mem["dense"],
                mem["masked"],
                mem["compressed"],
                mem["compressed"] / mem["masked"],
                float(r["compressed"]["ms_update"]),  # type: ignore[arg-type]
            ]
            print(row, flush=True)
            rows.append(row)
    path = write_table(
        "training",
        [
            "batch",
            "density",
            "dense ms/step",
            "masked ms/step",
            "compressed ms/step",
            "speedup vs masked",
            "speedup vs dense",
            "dense peak MiB",
            "masked peak MiB",
            "compressed peak MiB",
            "compressed / masked memory",
            "compressed RigL update ms",
        ],
        rows,
        {
            "sizes": SIZES,
            "threads": args.threads,
            "steps": args.steps,
            "rigl_every": EVERY,
            "load_at_start": load,
            "note": "peak memory above the process's baseline after imports and data",
        },
    )
    print(f"wrote {path}")


def _cnn_row(batch: int, density: float, rounds: int) -> list[object]:
    """One row of the ``--cnn`` table (see :func:`cnn_table`)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, CNN_SIZE, CNN_SIZE, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    models = {s: _cnn(s, density) for s in STORAGES}
    opts = {s: torch.optim.Adam(m.parameters(), lr=1e-3) for s, m in models.items()}
    rigls = {
        s: RigL(models[s], t_end=10**6, every=EVERY, start=EVERY, fraction=0.3, seed=0)
        for s in STORAGES[1:]
    }

    def step(s: str, update: bool = False) -> None:
        ctx = rigls[s].backward_context(EVERY) if update else torch.enable_grad()
        with ctx:
            opts[s].zero_grad()
            nn.functional.cross_entropy(models[s](x), y).backward()
        opts[s].step()
        if update:
            rigls[s].update(opts[s], EVERY)

    steps = {s: functools.partial(step, s) for s in STORAGES}
    updates = {s: functools.partial(step, s, True) for s in STORAGES[1:]}
    ms = {s: t * 1e3 for s, t in time_interleaved(steps, rounds).items()}
    up = {s: t * 1e3 for s, t in time_interleaved(updates, max(3, rounds // 3)).items()}
    back = sprig.decompress(models["compressed"])
    pairs = zip(masked_parameters(back), masked_parameters(models["masked"]))
    same = all(a.qualname == b.qualname and torch.equal(a.mask, b.mask) for a, b in pairs)
    amortised = {s: ms[s] + (up[s] - ms[s]) / EVERY for s in STORAGES[1:]}
    return [
        batch,
        density,
        ms["dense"],
        ms["masked"],
        ms["compressed"],
        ms["masked"] / ms["compressed"],
        amortised["masked"] / amortised["compressed"],
        ms["dense"] / ms["compressed"],
        up["masked"],
        up["compressed"],
        str(same),
    ]


def cnn_table(threads: int, load: float, rounds: int) -> None:
    """The ``--cnn`` table: dense, masked and compressed training steps of the small CNN, and
    RigL update steps, all timed interleaved in this process (a shared machine's drifts stay
    out of the ratios). Masked and compressed models see the same steps and updates, so their
    masks must end equal: the table says whether they did."""
    rows = []
    for batch in (16, 64):
        for density in (0.1,):
            row = _cnn_row(batch, density, rounds)
            print(row, flush=True)
            rows.append(row)
    end = os.getloadavg()[0]
    path = write_table(
        "training_cnn",
        [
            "batch",
            "density",
            "dense ms/step",
            "masked ms/step",
            "compressed ms/step",
            "masked / compressed",
            "masked / compressed with RigL amortised",
            "dense / compressed",
            "masked RigL step ms",
            "compressed RigL step ms",
            "same masks",
        ],
        rows,
        {
            "model": f"ResNet-18 widths {CNN_WIDTHS}, BatchNorm, {CNN_SIZE}x{CNN_SIZE} inputs",
            "threads": threads,
            "rounds": rounds,
            "rigl_every": EVERY,
            "load_at_start": load,
            "load_at_end": end,
        },
    )
    append_notes(
        path,
        {
            "model": f"examples/resnet_sparse.py's ResNet18(widths={CNN_WIDTHS}) with "
            f"BatchNorm, {CNN_SIZE}x{CNN_SIZE} inputs, 10 classes; block convolutions masked "
            "uniformly (stem and head dense); Adam",
            "timing": f"median of {rounds} interleaved training steps per storage (forward, "
            "backward, Adam); a RigL step (dense gradients recorded, then the update) timed "
            f"interleaved too; 'with RigL amortised' adds its extra time over {EVERY} steps",
            "compressed": "sprig.compress of the masked model: CompressedConv layers that "
            "RigL rewires in place; a training step scatters the values into a dense weight "
            "and runs torch's convolution (no sparse convolution backward yet)",
            "same masks": "masked and compressed models took the same steps and RigL updates; "
            "True: identical masks at the end",
            "load average (1 min)": f"{load:.2f} at start, {end:.2f} at end",
            "threads": threads,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
