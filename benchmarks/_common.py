"""Shared helpers for sprig's benchmarks: interleaved timing and result tables (markdown + JSON)."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sprig._timing import time_blocks, time_interleaved

__all__ = [
    "RESULTS",
    "append_notes",
    "copies_for",
    "last_level_cache",
    "machine",
    "time_blocks",
    "time_interleaved",
    "write_table",
]

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }


def write_table(
    name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], extra: Mapping[str, Any]
) -> Path:
    """Write ``results/<name>.md`` and ``results/<name>.json``; return the markdown path."""
    RESULTS.mkdir(exist_ok=True)
    fmt = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in columns]
    lines = ["| " + " | ".join(fmt) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{c:.3g}" if isinstance(c, float) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    md = RESULTS / f"{name}.md"
    md.write_text(f"# {name}\n\n" + "\n".join(lines) + "\n\n" + json.dumps(machine()) + "\n")
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {"columns": list(columns), "rows": [list(r) for r in rows], **extra, **machine()},
            indent=1,
        )
    )
    return md


def append_notes(md: Path, notes: Mapping[str, Any]) -> None:
    """Add ``notes`` to a written table as a bullet list (what was measured, and how)."""
    with md.open("a") as f:
        f.write("\n" + "\n".join(f"- {k}: {v}" for k, v in notes.items()) + "\n")


def last_level_cache() -> int:
    """Bytes of the last-level cache (Linux sysfs; 32 MiB where it cannot be read)."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
        return int(text.removesuffix("K")) * 1024
    except (OSError, ValueError):
        return 32 * 2**20


def copies_for(n_out: int, n_in: int | None = None) -> int:
    """Copies of an ``n_out x n_in`` float32 layer (square by default) whose dense weights
    fill twice the last-level cache: cycling through them streams weights from memory, as a
    model's forward does, where one layer called over and over stays in the caches."""
    return max(1, math.ceil(2 * last_level_cache() / (n_out * (n_in or n_out) * 4)))
