"""Sparse recurrent networks: compressed inference and masked training against dense torch.

Inference (T=100 steps, input 256): dense ``nn.RNN``, a Python loop of torch CSR products, the
source article's scipy CSR loop, and ``sprig.compress`` (``sprig.kernels.csr_recurrent``), for
H in {256, 1024, 4096}, B in {1, 16}, density in {0.1, 0.05, 0.01}; GRU and LSTM at H=1024.
Training: one step (forward, backward, Adam) of a masked ``SparseRNN`` against dense torch at
H=1024, T=100, B=16, density 0.1. All times of one row are measured interleaved in one run.

python benchmarks/bench_rnn.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from _common import time_blocks, time_interleaved, write_table
from torch import nn

import sprig

T, IN = 100, 256
GOALS = {
    "rnn H=1024 d=0.01 B=1 speedup vs nn.RNN": ">= 15",
    "rnn H=4096 d=0.05 B=1 speedup vs nn.RNN": ">= 8",
    "train rnn H=1024 d=0.1 B=16 time vs dense": "<= 1.5",
}

NOTES = """
Inference: best of interleaved blocks of consecutive calls (~20 ms a block; 3 rounds for
H=4096, up to 2 s otherwise); training: medians of interleaved rounds. sprig = `sprig.compress` for
inference: batch 1 runs one compiled loop per layer (each step's rows split over 2 OpenMP
threads when W_hh holds >= 100k nonzeros); batch 16 runs the compiled batch-inner loop, or,
when nnz(W_hh) * B >= 200k, a Python loop of MKL CSR products and torch cell ops. The "torch
CSR loop" column keeps only the last state (no outputs), sprig keeps every step's. For
training, a masked `SparseRNN` (torch's fused kernel, sprig's mask hooks) with
`Adam(fused=True)` against the same dense torch module.
"dense torch" uses torch's default 2 threads, "dense 1-thread" one thread. Multi-threaded
torch ops suffer most when other jobs share the 2 cores, so the load average measured during
this run is written below the table.
"""


def _torch_csr_loop(model: nn.RNN, x: torch.Tensor) -> Callable[[], object]:
    """What a user writes by hand: one torch CSR product pair per step in Python."""
    from sprig.kernels import to_csr

    w_ih = to_csr(model.weight_ih_l0.detach(), model.weight_ih_l0_mask)
    w_hh = to_csr(model.weight_hh_l0.detach(), model.weight_hh_l0_mask)
    b = (model.bias_ih_l0 + model.bias_hh_l0).detach().unsqueeze(1)  # (H, 1)
    xt = x.transpose(1, 2).contiguous()  # (T, I, B)

    def run() -> torch.Tensor:
        h = torch.zeros(model.hidden_size, x.shape[1])
        for t in range(x.shape[0]):
            h = torch.tanh(torch.sparse.mm(w_ih, xt[t]) + torch.sparse.mm(w_hh, h) + b)
        return h

    return run


def _scipy_loop(model: nn.RNN, x: torch.Tensor) -> Callable[[], object]:
    """The article's loop (scipy CSR mat-vec per step), with the biases the others have."""
    w_ih = sp.csr_matrix(model.weight_ih_l0.detach().numpy())
    w_hh = sp.csr_matrix(model.weight_hh_l0.detach().numpy())
    b = (model.bias_ih_l0 + model.bias_hh_l0).detach().numpy()[:, None]
    xs = x.transpose(1, 2).numpy()  # (T, I, B)

    def run() -> np.ndarray:
        h = np.zeros((model.hidden_size, x.shape[1]), dtype=np.float32)
        for t in range(xs.shape[0]):
            h = np.tanh(w_ih.dot(xs[t]) + w_hh.dot(h) + b)
        return h

    return run


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def inference_row(cell: str, H: int, B: int, d: float, rounds: int) -> list[Any]:
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
    dense = cls(IN, H)
    masked = sprig.sparsify(cls(IN, H), density=d, distribution="uniform", seed=0)
    small = sprig.compress(masked)
    x = torch.randn(T, B, IN)

    def dense_1thread() -> object:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return dense(x)
        finally:
            torch.set_num_threads(threads)

    fns: dict[str, Callable[[], object]] = {
        "dense": _no_grad(lambda: dense(x)),
        "dense_1t": _no_grad(dense_1thread),
        "sprig": _no_grad(lambda: small(x)),
    }
    if cell == "rnn":
        fns["torch_csr"] = _no_grad(_torch_csr_loop(masked, x))
        fns["scipy"] = _scipy_loop(masked, x)
    with torch.no_grad():  # the compressed model is checked against the masked one each time
        torch.testing.assert_close(small(x)[0], masked(x)[0], rtol=1e-4, atol=1e-5)
    # blocks of consecutive calls (~20 ms), as a model runs in a loop: single alternating
    # calls measured how fast the small sparse model comes back after dense evicted it
    # (H=1024, d=0.01: 0.75-0.95 ms against 0.59 ms in a loop)
    t = time_blocks(fns, budget=0.0 if rounds <= 3 else 2.0, block=20e-3)
    ms = {k: v * 1e3 for k, v in t.items()}
    return [
        "inference",
        cell,
        H,
        B,
        d,
        ms["dense"],
        ms["dense_1t"],
        ms.get("torch_csr", float("nan")),
        ms.get("scipy", float("nan")),
        ms["sprig"],
        t["dense"] / t["sprig"],
        t["dense_1t"] / t["sprig"],
    ]


def training_row(cell: str, H: int, B: int, d: float, rounds: int) -> list[Any]:
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
    dense = cls(IN, H)
    sparse = sprig.SparseRNN(IN, H, cell=cell, density=d, seed=0)
    x = torch.randn(T, B, IN)

    def step(model: nn.Module, opt: torch.optim.Optimizer) -> Callable[[], object]:
        def run() -> object:
            opt.zero_grad()
            out, _ = model(x)
            out.square().mean().backward()
            opt.step()
            return out

        return run

    fns = {
        "dense": step(dense, torch.optim.Adam(dense.parameters(), lr=1e-3, fused=True)),
        "sprig": step(sparse, torch.optim.Adam(sparse.parameters(), lr=1e-3, fused=True)),
    }
    t = time_interleaved(fns, rounds=rounds, warmup=2)
    w = sparse.weight_hh_l0
    assert bool((w[~sparse.weight_hh_l0_mask] == 0).all()), "training must keep pruned weights 0"
    nan = float("nan")
    ms = {k: v * 1e3 for k, v in t.items()}
    ratio = t["sprig"] / t["dense"]
    return ["train step", cell, H, B, d, ms["dense"], nan, nan, nan, ms["sprig"], ratio, nan]


def main(quick: bool = False) -> None:
    warnings.simplefilter("ignore")  # torch's "sparse CSR is beta" warnings
    torch.manual_seed(0)
    rows = []
    hs = (256, 1024) if quick else (256, 1024, 4096)
    for H in hs:
        for B in (1, 16):
            for d in (0.1, 0.05, 0.01):
                rounds = 3 if H == 4096 else 7
                rows.append(inference_row("rnn", H, B, d, rounds))
                print(rows[-1], flush=True)
    for cell in ("gru", "lstm"):
        for B in (1, 16):
            for d in (0.1, 0.01):
                rows.append(inference_row(cell, 1024, B, d, 5))
                print(rows[-1], flush=True)
    for cell in ("rnn", "gru", "lstm"):
        rows.append(training_row(cell, 1024, 16, 0.1, 5))
        print(rows[-1], flush=True)
    columns = [
        "case",
        "cell",
        "H",
        "B",
        "density",
        "dense torch ms",
        "dense 1-thread ms",
        "torch CSR loop ms",
        "scipy loop ms",
        "sprig ms",
        "speedup vs dense (train: sprig/dense time)",
        "speedup vs dense 1-thread",
    ]
    extra = {
        "T": T,
        "input_size": IN,
        "goals": GOALS,
        "note": "sprig = sprig.compress (compiled loop, or MKL products per step for big "
        "batched steps) for inference, masked "
        "SparseRNN on torch's fused kernel + Adam(fused=True) for training; dense torch uses "
        "all threads; the machine was shared with other jobs",
    }
    path = write_table("rnn" if not quick else "rnn_quick", columns, rows, extra)
    load = os.getloadavg()
    path.write_text(
        path.read_text()
        + NOTES
        + f"Load average at the end of this run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min).\n"
    )
    print(path.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip H=4096")
    main(parser.parse_args().quick)
