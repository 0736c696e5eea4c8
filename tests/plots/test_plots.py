from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import sprig
from sprig.data import moons
from sprig.masks import make_mask, parse_pattern
from sprig.plots import (
    alive_units,
    plot_decision_boundary,
    plot_masks,
    plot_nnz,
    plot_topology,
    plot_training_curves,
)


def _check_png(path: Path) -> np.ndarray:
    """The file is a PNG that decodes, and it is not blank."""
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.load()
        pixels = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10, "the picture is (nearly) one colour"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 8
    assert not list(path.parent.glob(".*.tmp")), "a temporary file was left behind"
    return pixels


@pytest.fixture
def mlp() -> sprig.SparseMLP:
    return sprig.SparseMLP([2, 16, 16, 2], densities=[1.0, 0.1, 0.2], seed=0)


def test_mask_heatmaps_of_a_model(tmp_path, mlp):
    path = plot_masks(mlp, tmp_path / "masks.png", title="masks")
    assert path == tmp_path / "masks.png"
    _check_png(path)


def test_mask_heatmaps_show_the_patterns(tmp_path):
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    masks = {
        p: make_mask((32, 32), d, parse_pattern(p), generator=gen())
        for p, d in [("unstructured", 0.3), ("row", 0.3), ("block:4x4", 0.3)]
    }
    images = {}
    for name, mask in masks.items():
        images[name] = _check_png(plot_masks({name: mask}, tmp_path / f"{name[:5]}.png"))
    # different patterns, different pictures
    assert not np.array_equal(images["unstructured"], images["row"])
    assert not np.array_equal(images["row"], images["block:4x4"])


def test_large_masks_are_pooled(tmp_path):
    big = sprig.SparseMLP([300, 700, 3], densities=[0.05, 0.5])
    _check_png(plot_masks(big, tmp_path / "big.png", max_side=64))


def test_masks_of_an_unmasked_model_show_nonzeros(tmp_path):
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Conv1d(8, 4, 3))
    _check_png(plot_masks(net, tmp_path / "dense.png"))


def test_nnz_bar_chart(tmp_path, mlp):
    _check_png(plot_nnz(mlp, tmp_path / "nnz.png"))


def test_training_curves_from_records_and_file(tmp_path):
    recs = [{"step": 0, "train_accuracy": 0.5, "density": 1.0}]
    recs += [{"step": s, "loss": 1.0 / s, "lr": 0.1} for s in range(1, 50)]
    recs += [{"step": s, "test_accuracy": 1 - 1 / s, "density": 1 - s / 100} for s in (10, 30, 49)]
    _check_png(plot_training_curves(recs, tmp_path / "curves.png"))
    lines = [__import__("json").dumps(r) for r in recs]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5')  # torn last line
    _check_png(plot_training_curves(tmp_path / "metrics.jsonl", tmp_path / "from_file.png"))


def test_training_curves_need_something_to_draw(tmp_path):
    with pytest.raises(ValueError, match="no curves"):
        plot_training_curves([{"step": 1, "lr": 0.1}], tmp_path / "c.png")


def test_decision_boundary_side_by_side(tmp_path, mlp):
    data = moons(n_samples=60, seed=0)
    one_logit = sprig.SparseMLP([2, 8, 1], densities=0.5)
    path = plot_decision_boundary(
        {"static": mlp, "one logit": one_logit}, data.x_train, data.y_train, tmp_path / "b.png"
    )
    _check_png(path)


def test_decision_boundary_needs_2d_inputs(tmp_path):
    model = sprig.SparseMLP([3, 4, 2], densities=1.0)
    with pytest.raises(ValueError, match=r"2-D inputs.*\(10, 3\)"):
        plot_decision_boundary(model, torch.zeros(10, 3), torch.zeros(10), tmp_path / "b.png")
    assert not list(tmp_path.iterdir())


def test_topology_greys_dead_units(tmp_path, mlp):
    _check_png(plot_topology(mlp, tmp_path / "topology.png"))


def test_topology_needs_a_chain_of_linear_layers(tmp_path):
    with pytest.raises(ValueError, match="chains of linear layers"):
        plot_topology(nn.Sequential(nn.Conv1d(2, 2, 3)), tmp_path / "t.png")
    with pytest.raises(ValueError, match="max_units"):
        plot_topology(sprig.SparseMLP([2, 100, 1], densities=1.0), tmp_path / "t.png")


def test_alive_units_follow_paths_from_inputs_to_outputs():
    # unit 1 of the hidden layer has an input but no way out; unit 2 a way out but no input
    first = torch.tensor([[1, 1], [0, 1], [0, 0]], dtype=torch.bool)  # (3 hidden, 2 inputs)
    second = torch.tensor([[1, 0, 1]], dtype=torch.bool)  # (1 output, 3 hidden)
    alive = alive_units([first, second])
    assert [a.tolist() for a in alive] == [[True, True], [True, False, False], [True]]
    # an output nothing reaches is dead too
    alive = alive_units([torch.zeros(2, 2, dtype=torch.bool)])
    assert [a.tolist() for a in alive] == [[False, False], [False, False]]


def test_plot_paths_are_checked(tmp_path, mlp):
    with pytest.raises(ValueError, match=r"\.png"):
        plot_nnz(mlp, tmp_path / "nnz.jpeg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_nnz(mlp, tmp_path / "missing" / "nnz.png")


def test_svg_output(tmp_path, mlp):
    path = plot_nnz(mlp, tmp_path / "nnz.svg")
    assert path.read_text().lstrip().startswith("<?xml")


def test_decision_boundary_of_a_float64_model(tmp_path):
    data = moons(n_samples=40)
    mlp = sprig.SparseMLP([2, 8, 2], densities=0.5, seed=0).double()
    _check_png(plot_decision_boundary(mlp, data.x_train, data.y_train, tmp_path / "b.png"))


def test_mask_panels_name_the_layer_and_pattern(tmp_path, monkeypatch):
    import matplotlib.axes

    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_title",
        lambda self, label, *a, **k: (titles.append(label), real(self, label, *a, **k))[1],
    )
    net = sprig.sparsify(
        nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), density=0.5, pattern="row"
    )
    plot_masks(net, tmp_path / "m.png")
    assert titles[0].startswith("0.weight (Linear, row)  8x8")
    assert titles[1].startswith("2.weight (Linear, row)  2x8")
