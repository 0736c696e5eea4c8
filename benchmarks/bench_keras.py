"""Keras 3 inference with a sparse 4096x4096 layer at density 0.05, batch 1 and 64.

Candidates, timed interleaved in one run (Keras on its torch backend, CPU, float32):
  article    the question's SparseDense: a scipy.sparse kernel, ``inputs @ kernel.toarray()``
             (the kernel densified on every call)
  dense      a plain ``keras.layers.Dense`` of the same size
  sparse     ``sprig.keras.SparseDense`` (CSR kernel through sprig.kernels.csr_linear)
  sparse-dense  SparseDense with ``inference="dense"`` (masked dense matmul), for reference

Each is called as a layer under ``torch.no_grad()`` (how ``model.predict`` runs it), so Keras's
per-call layer overhead is in every number. Ratios are each candidate's time over SparseDense's.

    python benchmarks/bench_keras.py [--n 4096] [--density 0.05] [--rounds 15] [--sweep]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from _common import time_interleaved, write_table

from sprig.keras import SparseDense

import keras  # isort: skip  (after sprig.keras, which selects the torch backend)


class ArticleSparseDense(keras.layers.Layer):
    """The article's Example 1, for Keras 3: a scipy CSR kernel, densified at every call."""

    def __init__(self, kernel: sp.csr_matrix) -> None:
        super().__init__()
        self.kernel = kernel  # (in, units) scipy CSR

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs @ torch.from_numpy(self.kernel.toarray())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sweep", action="store_true", help="also CSR vs dense over densities")
    args = ap.parse_args()
    n = args.n
    keras.utils.set_random_seed(0)
    sparse = SparseDense(n, density=args.density, seed=0, use_bias=False)
    sparse.build((None, n))
    sparse_dense = SparseDense(n, density=args.density, seed=0, use_bias=False, inference="dense")
    sparse_dense.build((None, n))
    kernel = sparse.kernel.value.detach() * sparse.kernel_mask.value  # (in, units)
    sparse_dense.kernel.assign(kernel)
    dense = keras.layers.Dense(n, use_bias=False)
    dense.build((None, n))
    dense.kernel.assign(kernel)  # same values; the dense layer multiplies all the zeros too
    article = ArticleSparseDense(sp.csr_matrix(kernel.numpy()))

    layers = {"article": article, "dense": dense, "sparse": sparse, "sparse-dense": sparse_dense}
    rows = []
    results = {}
    for batch in (1, 64):
        x = torch.randn(batch, n)
        with torch.no_grad():
            outs = {name: layer(x) for name, layer in layers.items()}
            want = outs["dense"]
            for name, out in outs.items():  # all candidates compute the same function
                torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4, msg=name)
            fns = {name: (lambda lay=lay, x=x: lay(x)) for name, lay in layers.items()}
            t = time_interleaved(fns, rounds=args.rounds)
        base = t["sparse"]
        for name in layers:
            rows.append([batch, name, t[name] * 1e3, t[name] / base])
        results[f"batch{batch}"] = {k: v * 1e3 for k, v in t.items()}
    md = write_table(
        "keras",
        ["batch", "layer", "ms per call (median)", "time / SparseDense"],
        rows,
        {
            "n": n,
            "density": args.density,
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "ms": results,
            "note": "CPU shared with other jobs while measured; ratios are from one run",
        },
    )
    print(md.read_text())
    print(f"nnz {int(np.count_nonzero(kernel.numpy()))} of {n * n}")
    if args.sweep:
        print(breakeven(n, args.rounds).read_text())


def breakeven(n: int, rounds: int) -> Path:
    """SparseDense's CSR inference against its masked dense matmul over densities: where the
    ``inference="auto"`` threshold (``CSR_MAX_DENSITY``) comes from."""
    rows = []
    for density in (0.02, 0.05, 0.1, 0.2, 0.3):
        csr = SparseDense(n, density=density, seed=0, inference="csr")
        csr.build((None, n))
        dense = SparseDense(n, density=density, seed=0, inference="dense")
        dense.build((None, n))
        dense.set_weights(csr.get_weights())
        for batch in (1, 64):
            x = torch.randn(batch, n)
            with torch.no_grad():
                fns = {"csr": lambda c=csr, x=x: c(x), "dense": lambda d=dense, x=x: d(x)}
                t = time_interleaved(fns, rounds)
            rows.append([density, batch, t["csr"] * 1e3, t["dense"] * 1e3, t["dense"] / t["csr"]])
    return write_table(
        "keras_breakeven",
        ["density", "batch", "csr ms", "masked dense ms", "dense / csr"],
        rows,
        {"n": n, "note": "CPU shared with other jobs while measured; ratios from one run"},
    )


if __name__ == "__main__":
    main()
