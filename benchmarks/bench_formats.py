"""Denser batch-1 formats than 16-bit CSR at density 0.3-0.5: do fewer bytes per weight pay?

At batch 1 a layer streams its weights from memory once per token. Dense reads 4 bytes per
weight; sprig's CSR (``MatVec``) 6 per nonzero (float32 value + uint16 column), 3 per weight
at density 0.5. Two denser layouts, each with a compiled loop written like sprig's own
(``sprig.kernels._compiled``'s numba flags), are timed against both:

- ``tile8``: CSR whose columns are 8-bit offsets inside 256-wide column tiles, with one
  pointer per (row, tile): 5 bytes per nonzero (+ 4 per 256 weights). The nonzeros keep CSR's
  order, so the values are shared with a CSR layer's and only the offsets and the tile
  pointers are extra. The inner loop over a tile is CSR's (no prefix sum).
- ``delta8``: CSR whose columns are 8-bit gaps from the previous column of the row: 5 bytes
  per nonzero; a gap over 255 is bridged by zero-valued fillers of gap 255. The column is a
  running sum, which keeps the loop serial.
- ``bitmap``: one bit per weight and the nonzeros packed: 4 d + 1/8 bytes per weight (2.125
  at 0.5), decoded byte by byte through a 256-entry table of set-bit positions.

Every candidate is checked against the dense product, then timed as a decode step runs its
layers: each call is a pass over as many copies of a ``1024 x 2816`` layer (``down_proj`` of
``bench_decode.py``'s model) as fill twice the last-level cache, each copy its own random
weights; candidates interleaved, best of the rounds, one thread. Writes ``results/formats.md``.

    python benchmarks/bench_formats.py [--densities 0.5 0.3] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _common import append_notes, copies_for, write_table

from sprig.kernels import _compiled as nb

OUT, IN, TILE = 1024, 2816, 256


@nb._jit
def tile8(seg: Any, col8: Any, val: Any, x: Any, y: Any, tiles: int) -> None:
    # y[r] = sum over the row's tiles t of sum_k val[k] x[t * 256 + col8[k]]
    for r in range(y.shape[0]):
        acc = val.dtype.type(0)
        s = r * tiles
        for t in range(tiles):
            base = t * 256
            for k in range(seg[s + t], seg[s + t + 1]):
                acc += val[k] * x[base + np.uint32(col8[k])]
        y[r] = acc


@nb._jit
def delta8(crow: Any, gap: Any, val: Any, x: Any, y: Any) -> None:
    # the column is the running sum of the gaps within the row (the first gap is the column)
    for r in range(y.shape[0]):
        acc = val.dtype.type(0)
        c = np.uint32(0)
        for k in range(crow[r], crow[r + 1]):
            c += np.uint32(gap[k])
            acc += val[k] * x[c]
        y[r] = acc


@nb._jit
def bitmap(bits: Any, vptr: Any, val: Any, x: Any, y: Any, pos: Any, count: Any) -> None:
    # bits (rows, ceil(cols / 8)): bit i of byte j marks column 8 j + i; values packed by row
    for r in range(y.shape[0]):
        acc = val.dtype.type(0)
        k = vptr[r]
        for j in range(bits.shape[1]):
            m = bits[r, j]
            base = j * 8
            for i in range(count[m]):
                acc += val[k + i] * x[base + pos[m, i]]
            k += count[m]
        y[r] = acc


def _positions() -> tuple[Any, Any]:
    pos = np.zeros((256, 8), np.uint8)
    count = np.zeros(256, np.uint8)
    for m in range(256):
        bits = [i for i in range(8) if m >> i & 1]
        count[m], pos[m, : len(bits)] = len(bits), bits
    return pos, count


def layer(d: float, rng: np.random.Generator) -> dict[str, Any]:
    """One random ``OUT x IN`` layer at density ``d`` in every format."""
    mask = rng.random((OUT, IN)) < d
    w = rng.standard_normal((OUT, IN)).astype(np.float32) * mask
    rows, cols = np.nonzero(mask)  # row-major: CSR order
    val = w[rows, cols]
    crow = np.zeros(OUT + 1, np.uint32)
    crow[1:] = np.cumsum(mask.sum(1))
    tiles = -(-IN // TILE)
    seg = np.zeros(OUT * tiles + 1, np.uint32)
    seg[1:] = np.cumsum(np.bincount(rows * tiles + cols // TILE, minlength=OUT * tiles))
    # delta8: gaps from the previous column of the row; gaps over 255 get fillers of 255
    first = np.r_[True, rows[1:] != rows[:-1]]
    gaps = np.where(first, cols, cols - np.r_[0, cols[:-1]])
    # entries of gap 255 before each nonzero (none for gaps up to 255)
    fillers = np.maximum(gaps - 1, 0) // 255
    at = np.arange(val.size) + np.cumsum(fillers)  # where each nonzero lands
    d_gap = np.full(val.size + int(fillers.sum()), 255, np.uint8)
    d_val = np.zeros(d_gap.size, np.float32)
    d_gap[at], d_val[at] = gaps - 255 * fillers, val
    d_crow = np.zeros(OUT + 1, np.uint32)
    d_crow[1:] = np.cumsum(np.bincount(rows, weights=1 + fillers, minlength=OUT)).astype(np.uint32)
    return {
        "w": torch.from_numpy(w),
        "csr": (crow, cols.astype(np.uint16), val),
        "tile8": (seg, (cols % TILE).astype(np.uint8), val, tiles),
        "delta8": (d_crow, d_gap, d_val),
        "bitmap": (np.packbits(mask, axis=1, bitorder="little"), crow, val),
        "fillers": int(fillers.sum()),
    }


def bytes_per_weight(lay: dict[str, Any]) -> dict[str, float]:
    def size(parts: tuple[Any, ...]) -> int:
        return sum(p.nbytes for p in parts if isinstance(p, np.ndarray))

    return {
        "dense": 4.0,
        **{k: size(lay[k]) / (OUT * IN) for k in ("csr", "tile8", "delta8", "bitmap")},
    }


def measure(d: float, rounds: int, rng: np.random.Generator) -> list[list[object]]:
    copies = copies_for(OUT, IN)
    layers = [layer(d, rng) for _ in range(copies)]
    x = rng.standard_normal(IN).astype(np.float32)
    xt, y = torch.from_numpy(x), np.empty(OUT, np.float32)
    zeros = np.zeros(OUT, np.float32)
    pos, count = _positions()
    calls: dict[str, Callable[[dict[str, Any]], object]] = {
        "dense": lambda lay: torch.mv(lay["w"], xt),
        "csr": lambda lay: nb.matvec(*lay["csr"], x, zeros, y),  # MatVec's serial loop
        "tile8": lambda lay: tile8(*lay["tile8"][:3], x, y, lay["tile8"][3]),
        "delta8": lambda lay: delta8(*lay["delta8"], x, y),
        "bitmap": lambda lay: bitmap(*lay["bitmap"], x, y, pos, count),
    }
    want = layers[0]["w"].numpy() @ x
    for name, call in calls.items():  # compiles, and checks every format
        got = call(layers[0])
        got = got.numpy() if isinstance(got, torch.Tensor) else y
        if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
            raise AssertionError(f"{name} differs from the dense product at density {d}")
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for lay in layers:
                call(lay)
            best[name] = min(best[name], (time.perf_counter() - start) / copies)
    nbytes = bytes_per_weight(layers[0])
    print(f"d={d}: " + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in best.items()), flush=True)
    return [
        [d, k, nbytes[k], t * 1e6, best["dense"] / t, best["csr"] / t, layers[0]["fillers"]]
        for k, t in best.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--densities", type=float, nargs="+", default=[0.5, 0.3])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    rows = [r for d in args.densities for r in measure(d, args.rounds, rng)]
    load_after = os.getloadavg()
    notes = {
        "layer": f"{OUT} x {IN} float32, batch 1, {copies_for(OUT, IN)} copies per pass",
        "timing": f"best of {args.rounds} interleaved rounds, time per layer, 1 thread",
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    md = write_table(
        "formats",
        ["density", "format", "bytes/weight", "us/layer", "x dense", "x csr", "delta8 fillers"],
        rows,
        notes,
    )
    append_notes(md, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
