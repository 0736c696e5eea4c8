"""Keras training on a sparse input: fit_sparse + CompressedDense or SparseDense vs Dense fit.

Input: a (50000, 200000) scipy CSR matrix at density 0.0001 (20 nonzeros a row, a
bag-of-words shape); model: first layer 200000 -> 64 (CompressedDense or SparseDense at
density 0.05, or Dense), ReLU, Dense 64 -> 2; Adam, batch 256. ``model.fit`` densifies every
batch (256 x 200000 floats) before a dense product; ``fit_sparse`` keeps batches sparse.
Each case runs in its own process (peak memory above the process's baseline after the data
is built); the Dense epoch is timed over ``--dense-batches`` batches and scaled to the epoch
(it would take minutes).
Also the saved ``.keras`` file sizes of the two models.

Goals (issue 14): >= 3x faster per epoch than Dense fit; a .keras file smaller than Dense's.

    python benchmarks/bench_keras_fit.py [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS, FEATURES, DENSITY, UNITS, BATCH = 50_000, 200_000, 1e-4, 64, 256


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(kind: str, dense_batches: int) -> dict[str, float]:
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import scipy.sparse as sp

    from sprig.keras import CompressedDense, SparseDense, fit_sparse

    import keras  # isort: skip

    rng = np.random.default_rng(0)
    per_row = round(DENSITY * FEATURES)  # a bag of words: 20 of 200000 features a row
    cols = rng.integers(0, FEATURES, (ROWS, per_row)).ravel()
    indptr = np.arange(0, ROWS * per_row + 1, per_row)
    x = sp.csr_matrix((np.ones(cols.size, "float32"), cols, indptr), shape=(ROWS, FEATURES))
    x.sum_duplicates()
    w = rng.normal(size=FEATURES)
    y = (x @ w > 0).astype("int64")
    base = _rss_mib()
    keras.utils.set_random_seed(0)
    first = {
        "compressed": lambda: CompressedDense(UNITS, density=0.05, seed=0, activation="relu"),
        "sparse": lambda: SparseDense(UNITS, density=0.05, seed=0, activation="relu"),
        "dense": lambda: keras.layers.Dense(UNITS, activation="relu"),
    }[kind]()
    model = keras.Sequential([keras.Input((FEATURES,)), first, keras.layers.Dense(2)])
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    steps = -(-ROWS // BATCH)
    t0 = time.perf_counter()
    if kind != "dense":
        h = fit_sparse(model, x, y, batch_size=BATCH, epochs=1)
        epoch_s = time.perf_counter() - t0
        loss = h.history["loss"][-1]
    else:
        n = dense_batches * BATCH
        h = model.fit(x[:n], y[:n], batch_size=BATCH, epochs=1, verbose=0)
        epoch_s = (time.perf_counter() - t0) * steps / dense_batches
        loss = h.history["loss"][-1]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.keras"
        model.save(path)
        size = path.stat().st_size / 2**20
    return {"epoch_s": epoch_s, "peak_mib": _rss_mib() - base, "file_mib": size, "loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dense-batches", type=int, default=8)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_case(args.case, args.dense_batches)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import write_table

    load = os.getloadavg()[0]
    res = {}
    for kind in ("compressed", "sparse", "dense"):
        out = subprocess.run(
            [sys.executable, __file__, "--threads", str(args.threads), "--case", kind]
            + ["--dense-batches", str(args.dense_batches)],
            capture_output=True,
            text=True,
            check=True,
        )
        res[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        print(kind, res[kind], flush=True)
    rows = [
        [
            name,
            r["epoch_s"],
            res["dense"]["epoch_s"] / r["epoch_s"],
            r["peak_mib"],
            r["file_mib"],
        ]
        for name, r in (
            ("fit_sparse + CompressedDense(0.05)", res["compressed"]),
            ("fit_sparse + SparseDense(0.05)", res["sparse"]),
            ("model.fit + Dense", res["dense"]),
        )
    ]
    path = write_table(
        "keras_fit",
        ["path", "s per epoch", "speedup vs Dense fit", "peak MiB", ".keras MiB"],
        rows,
        {
            "rows": ROWS,
            "features": FEATURES,
            "input_density": DENSITY,
            "units": UNITS,
            "batch": BATCH,
            "dense_batches_timed": args.dense_batches,
            "threads": args.threads,
            "load_at_start": load,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
