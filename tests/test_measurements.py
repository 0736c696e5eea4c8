"""Timings live in benchmarks/results/, and the source names the row it relies on (issue 17)."""

import re
from pathlib import Path

import sprig

SRC = Path(sprig.__file__).parent
TABLE = SRC.parents[1] / "benchmarks" / "results" / "design_measurements.md"


def test_every_design_measurement_is_named_where_it_is_relied_on():
    rows = [line.split("|")[1:-1] for line in TABLE.read_text().splitlines() if line[:2] == "| "]
    rows = [[cell.strip() for cell in row] for row in rows[2:] if row[0].strip() != "---"]
    assert len(rows) > 10
    for row in rows:
        ident, where = row[0], row[-1]
        path = re.search(r"`([\w/]+\.py)`", where)
        assert path, f"row {ident} names no source file"
        assert ident in (SRC / path.group(1)).read_text(), f"{path.group(1)} does not name {ident}"
