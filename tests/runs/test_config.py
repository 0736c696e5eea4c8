from __future__ import annotations

from pathlib import Path

import pytest

from sprig.runs import (
    METHODS,
    ConfigError,
    RunConfig,
    config_from_dict,
    config_hash,
    config_toml,
    load_config,
)
from sprig.runs._config import config_diff

from . import _methods  # noqa: F401  (registers "swap_one", a Callback class, by one line)

EXAMPLES = Path(__file__).parents[2] / "examples"

BASE = {"steps": 10, "data": {"name": "moons", "n_samples": 50}}


def _with(**sections):
    table = {**BASE}
    for key, value in sections.items():
        table[key] = {**table.get(key, {}), **value} if isinstance(value, dict) else value
    return table


def test_defaults_and_types():
    cfg = config_from_dict(_with(model={"hidden": [8, 8], "densities": [1, 0.5, 0.5]}))
    assert isinstance(cfg, RunConfig)
    assert cfg.model.options == {"hidden": [8, 8], "densities": [1.0, 0.5, 0.5]}
    assert cfg.method.name == "static" and cfg.optimizer.name == "adam"
    assert cfg.batch_size is None and cfg.data.options == {"n_samples": 50}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**BASE, "stepz": 3}, r"unknown key 'stepz'; valid keys: .*steps"),
        (
            _with(model={"hiden": [8]}),
            r"unknown key 'model.hiden'; valid keys in \[model\]:.*hidden",
        ),
        (_with(optimizer={"learning_rate": 1}), r"unknown key 'optimizer.learning_rate'.*lr"),
        ({**BASE, "steps": "ten"}, r"key 'steps' must be int, got 'ten' \(str\)"),
        ({**BASE, "steps": 1.5}, r"key 'steps' must be int, got 1.5 \(float\)"),
        ({**BASE, "seed": True}, r"key 'seed' must be int, got True \(bool\)"),
        (_with(model={"hidden": [8, "x"]}), r"key 'model.hidden\[1\]' must be int, got 'x'"),
        (
            _with(model={"densities": "half"}),
            r"key 'model.densities' must be float or list of float, got 'half'",
        ),
        (_with(optimizer={"lr": "fast"}), r"key 'optimizer.lr' must be float"),
        (_with(data={"noise": [1]}), r"key 'data.noise' must be float"),
        ({"steps": 3}, r"missing key 'data'"),
        ({**BASE, "data": {"n_samples": 5}}, r"missing key 'data.name'"),
        ({**BASE, "data": {"name": "cifar"}}, r"unknown dataset 'cifar'; valid names are: .*moons"),
        (_with(method={"name": "magic"}), r"unknown sparsity method 'magic'.*static"),
        (_with(method={"every": 3}), r"unknown key 'method.every'"),
        (_with(method={"name": "swap_one", "every": "x"}), r"key 'method.every' must be int"),
        (_with(method={"name": "swap_one", "model": 1}), r"'method.model' is set by the run"),
        (_with(model={"seed": 1}), r"'model.seed' is set by the run"),
        (_with(schedule={"name": "linear", "final": 0}), r"unknown key 'schedule.final'"),
        ({**BASE, "steps": 0}, r"key 'steps' must be >= 1"),
        ({**BASE, "batch_size": 0}, r"key 'batch_size' must be >= 1"),
        (_with(optimizer={"lr": -1}), r"key 'optimizer.lr' must be a finite number > 0"),
        (_with(optimizer={"lr": float("inf")}), r"key 'optimizer.lr' must be a finite number"),
        (
            _with(optimizer={"name": "sgd", "momentum": -1.0}),
            r"key 'optimizer.momentum' must be a finite number >= 0",
        ),
        (_with(optimizer={"momentum": 0.9}), r"momentum' applies to sgd"),
        ({**BASE, "model": 3}, r"key 'model' must be table"),
    ],
)
def test_bad_configs_name_the_key_and_type(table, message):
    with pytest.raises(ConfigError, match=message) as err:
        config_from_dict(table)
    assert "\n" not in str(err.value)


def test_a_registered_callback_takes_its_options_from_the_config():
    assert METHODS.get("swap_one").__name__ == "SwapOne"
    cfg = config_from_dict(_with(method={"name": "swap_one", "every": 3, "delay": 0}))
    assert cfg.method.options == {"every": 3, "delay": 0.0}


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no config file at"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = \n")
    with pytest.raises(ConfigError, match=r"bad.toml is not valid TOML"):
        load_config(bad)
    bad.write_text('steps = "x"\n[data]\nname = "moons"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: key 'steps' must be int"):
        load_config(bad)


def test_toml_round_trip_and_fingerprint(tmp_path):
    cfg = config_from_dict(
        _with(
            model={"hidden": [8], "densities": 0.5, "activation": "tanh"},
            method={"name": "swap_one", "every": 4},
            schedule={"name": "cosine", "final_factor": 0.1},
            batch_size=16,
        )
    )
    path = tmp_path / "c.toml"
    path.write_text("# a comment\n" + config_toml(cfg))
    again = load_config(path)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert config_diff(cfg, again) is None
    changed = config_from_dict({**BASE, "steps": 11})
    assert config_diff(config_from_dict(BASE), changed) == "'steps' (10 vs 11)"
    assert config_hash(changed) != config_hash(config_from_dict(BASE))


@pytest.mark.slow
def test_the_library_core_never_imports_the_outer_ring():
    import subprocess
    import sys

    code = (
        "import sys, sprig, sprig.io, sprig.training, sprig.masks, sprig.nn\n"
        "outer = [m for m in ('sprig.runs', 'sprig.plots', 'sprig.cli', 'matplotlib')"
        " if m in sys.modules]\n"
        "assert not outer, outer\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_config_is_valid(path):
    # every method's example config passes the checks a run makes before it starts
    config = load_config(path)
    assert config.method.name in METHODS
