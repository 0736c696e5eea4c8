"""Start-up: how long the first compressed call takes in a new process.

Each row is a fresh Python process that imports sprig, compresses a 256-wide LSTM (density 0.1,
20 steps, batch 1: the compiled time-inner loop) and a 1024x1024 linear layer (density 0.1,
batch 1: the compiled mat-vec), and times the first and second call of each, LSTM first (so
numba's import lands in the LSTM's first call). The
compiled kernels are cached on disk by numba (``cache=True`` in ``sprig.kernels._compiled``);
the first process runs with an empty cache folder (the first run ever: compiles and saves), the
later ones with that folder filled. A last process imports numba alone: that import is part
of the first compressed call, since sprig imports numba only when a kernel first runs.

python benchmarks/bench_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import append_notes, write_table

CHILD = r"""
import json, time, warnings
t0 = time.perf_counter()
import torch, sprig
t_import = time.perf_counter() - t0
warnings.simplefilter("ignore")
torch.manual_seed(0)
lstm = sprig.compress(sprig.SparseRNN(256, 256, density=0.1, cell="lstm", seed=0)).eval()
lin = sprig.compress(sprig.SparseLinear(1024, 1024, density=0.1, seed=0)).eval()
x, xl = torch.randn(20, 1, 256), torch.randn(1, 1024)  # LSTM: (T, B, I), batch 1
out = {"import_sprig_s": t_import}
with torch.no_grad():
    for name, layer, inp in (("lstm", lstm, x), ("linear", lin, xl)):
        for call in ("first", "second"):
            t = time.perf_counter()
            layer(inp)
            out[f"{name}_{call}_ms"] = 1e3 * (time.perf_counter() - t)
print(json.dumps(out))
"""

NUMBA_ONLY = r"""
import json, time
t = time.perf_counter()
import numba
print(json.dumps({"import_numba_s": time.perf_counter() - t}))
"""


def child(code: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="processes with a filled cache")
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for i in range(1 + args.runs):
            r = child(CHILD, cache)
            label = "first run ever (empty cache)" if i == 0 else f"new process {i} (cached)"
            rows.append(
                [
                    label,
                    r["import_sprig_s"],
                    r["lstm_first_ms"],
                    r["lstm_second_ms"],
                    r["linear_first_ms"],
                    r["linear_second_ms"],
                ]
            )
        numba_s = [child(NUMBA_ONLY, cache)["import_numba_s"] for _ in range(args.runs)]
    notes = {
        "import_numba_alone_s": [round(s, 3) for s in numba_s],
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    md = write_table(
        "startup",
        [
            "process",
            "import sprig s",
            "LSTM 1st call ms",
            "LSTM 2nd ms",
            "linear 1st call ms",
            "linear 2nd ms",
        ],
        rows,
        notes,
    )
    append_notes(md, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
