"""The registries' documented way of adding a sparsity method works as written."""

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
