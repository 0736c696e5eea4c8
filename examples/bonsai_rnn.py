"""Grow a bonsai network: train a tiny sparse RNN on "replace 1 -> 111", prune it to a handful
of neurons, print the graph as Python, and write the interactive viewer page.

    python examples/bonsai_rnn.py            # the full recipe (about 30 s on 2 cores)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sprig.bonsai import grow_bonsai, parse_inputs, preset_config, to_python, write_html


def main(
    steps: int = 1000,
    check_sequences: int = 5_000,
    validation_sequences: int = 50_000,
    out: Path | None = None,
) -> float:
    config = preset_config("1to111", steps=steps, seed=0)  # one cell: 1 output, 3 states
    result = grow_bonsai(
        "1to111",
        config,
        check_sequences=check_sequences,
        validation_sequences=validation_sequences,
    )
    counts = result.graph.counts()
    print(f"clip threshold {result.threshold:g}; graph {counts}")
    print(f"validation accuracy {result.score.accuracy:.4%} in {result.seconds:.1f} s")
    print(to_python(result.graph))
    folder = out or Path(tempfile.mkdtemp())
    page = write_html(result.graph, folder / "graph.html", parse_inputs("1 0 0 0 1 1 0 0 0 0", 1))
    print(f"open {page} in a browser and press step")
    return result.score.accuracy


if __name__ == "__main__":
    main()
