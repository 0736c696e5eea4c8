import pytest

from sprig.plots import plot_accuracy_vs_density


def test_writes_png(tmp_path):
    series = {"ticket": [(1.0, 0.9), (0.3, 0.91), (0.05, 0.88)], "random": [(1.0, 0.9), (0.3, 0.7)]}
    path = plot_accuracy_vs_density(
        series, tmp_path / "acc.png", title="t", spread={"ticket": [0.0, 0.01, 0.02]}, reference=0.9
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["acc.png"]  # no temporary files left


@pytest.mark.parametrize(
    "series,spread,message",
    [
        ({}, None, "series is empty"),
        ({"a": []}, None, "has no points"),
        ({"a": [(0.0, 0.5)]}, None, "outside \\(0, 1\\]"),
        ({"a": [(1.0, 0.5)]}, {"a": [0.1, 0.2]}, "2 values for 1 points"),
    ],
)
def test_bad_input(tmp_path, series, spread, message):
    with pytest.raises(ValueError, match=message):
        plot_accuracy_vs_density(series, tmp_path / "x.png", spread=spread)
    assert not (tmp_path / "x.png").exists()
