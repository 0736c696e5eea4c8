import json
from collections.abc import Iterator

import pytest
import torch
from typer.testing import CliRunner

from sprig.cli import app


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()  # the commands set their own thread count
    yield
    torch.set_num_threads(before)


def test_help_has_examples():
    for cmd in ("lottery", "sparse-vs-dense"):
        result = CliRunner().invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.slow
def test_lottery_writes_json_table_and_plot(tmp_path):
    args = ["lottery", "--rounds", "1", "--rate", "0.5", "--seeds", "0", "--steps", "20"]
    result = CliRunner().invoke(
        app, [*args, "--hidden", "8", "--samples", "200", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "round  1 density 0.5000" in result.output
    data = json.loads((tmp_path / "lottery.json").read_text())
    assert [r["round"] for r in data["rounds"]] == [0, 1]
    assert set(data["rounds"][1]["accuracy"]) == {"ticket", "reinit", "random"}
    assert "| round | density |" in (tmp_path / "lottery.md").read_text()
    assert (tmp_path / "lottery.png").read_bytes()[:4] == b"\x89PNG"


def test_sparse_vs_dense_table(tmp_path):
    args = ["sparse-vs-dense", "--densities", "1,0.1", "--seeds", "0", "--steps", "5"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sparse_vs_dense.json").read_text())
    assert [r["density"] for r in data["rows"]] == [1.0, 0.1]
    assert data["rows"][1]["weights"] == 128 + 13
    assert "| 0.10 | 141 |" in (tmp_path / "sparse_vs_dense.md").read_text()
    # the course notebook's loss curves, one line per density
    assert (tmp_path / "sparse_vs_dense_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,message",
    [
        (["lottery", "--seeds", "a,b"], "--seeds must be integers"),
        (["lottery", "--rewind", "50", "--steps", "10"], "rewind iteration 50 is outside"),
        (["lottery", "--scope", "net"], "unknown scope 'net'"),
        (["sparse-vs-dense", "--densities", "1,2"], "must be in (0, 1]"),
    ],
)
def test_bad_options_fail_before_work(tmp_path, args, message):
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert message in str(result.exception)
