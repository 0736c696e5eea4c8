"""The registries' documented way of adding a sparsity method works as written."""

import pytest

import sprig
from sprig.runs import RUN_METHODS, config_from_dict, run_experiment


def test_the_documented_method_example_runs(tmp_path, monkeypatch):
    def my_set(model, steps, seed, every=100):  # as in runs/_registries.py's docstring
        return sprig.SET(model, t_end=steps, every=every, seed=seed)

    monkeypatch.setitem(RUN_METHODS._items, "my_set", my_set)
    cfg = config_from_dict(
        {
            "steps": 12,
            "plots": False,
            "data": {"name": "moons", "n_samples": 60},
            "model": {"hidden": [8], "densities": [1.0, 0.5]},
            "method": {"name": "my_set", "every": 4},
        }
    )
    result = run_experiment(cfg, tmp_path / "run")
    assert result.step == 12


def test_fraction_options_take_their_new_and_old_names():
    # run options that say "when" are fractions of the run (``*_fraction``); the library's
    # start/t_end are steps. Configs written with the old names start/end still work.
    net = sprig.SparseMLP([4, 8, 2], densities=[1.0, 0.5], seed=0)
    rigl = RUN_METHODS.get("rigl")
    assert rigl(net, steps=100, seed=0, every=10, end_fraction=0.5).config.t_end == 50
    assert rigl(net, steps=100, seed=0, every=10, end=0.5).config.t_end == 50
    assert rigl(net, steps=100, seed=0, every=10).config.t_end == 75
    with pytest.raises(ValueError, match="sets both end_fraction=0.5 and end=0.5.*keep only"):
        rigl(net, steps=100, seed=0, every=10, end_fraction=0.5, end=0.5)
    with pytest.raises(ValueError, match=r"end_fraction .* in \(0, 1\]; got 2"):
        rigl(net, steps=100, seed=0, every=10, end_fraction=2)
    gradual = RUN_METHODS.get("gradual")
    new = gradual(steps=100, seed=0, every=10, start_fraction=0.2, end_fraction=0.6).schedule
    old = gradual(steps=100, seed=0, every=10, start=0.2, end=0.6).schedule
    assert (new.start, new.end) == (old.start, old.end) == (20, 60)
    with pytest.raises(ValueError, match="0 <= start_fraction < end_fraction <= 1"):
        gradual(steps=100, seed=0, every=10, start_fraction=0.8, end_fraction=0.6)
