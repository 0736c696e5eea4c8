"""Experiments from config files: ``sprig run experiment.toml``. The outer ring: the library
core never imports this.

A run folder holds the config, per-step metrics (JSON lines), checkpoints, the final model and
plots; a stopped run continues exactly with :func:`resume_run` (``sprig run --resume``).
New sparsity methods plug in by name: ``RUN_METHODS.add("my_set", my_set)`` (see
``_registries``).
"""

import warnings
from typing import Any

from ._config import (
    DataConfig,
    MethodConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    config_dict,
    config_from_dict,
    config_hash,
    config_toml,
    load_config,
)
from ._experiment import Experiment, build
from ._folder import RunError, RunFolder
from ._registries import (
    DATASETS,
    LR_SCHEDULES,
    METHOD_INPUTS,
    MODEL_INPUTS,
    MODELS,
    RUN_METHODS,
    SCHEDULE_INPUTS,
)
from ._runner import RunResult, default_out, resume_run, run_experiment
from ._typed import ConfigError

__all__ = [
    "DATASETS",
    "RUN_METHODS",
    "METHOD_INPUTS",
    "MODELS",
    "MODEL_INPUTS",
    "LR_SCHEDULES",
    "SCHEDULE_INPUTS",
    "ConfigError",
    "DataConfig",
    "Experiment",
    "MethodConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "RunError",
    "RunFolder",
    "RunResult",
    "ScheduleConfig",
    "build",
    "config_dict",
    "config_from_dict",
    "config_hash",
    "config_toml",
    "default_out",
    "load_config",
    "resume_run",
    "run_experiment",
]

# the names before they were told apart from sprig.dst.METHODS and sprig.prune.SCHEDULES:
# still served, with a DeprecationWarning naming the new one
_RENAMED = {"METHODS": "RUN_METHODS", "SCHEDULES": "LR_SCHEDULES"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"sprig.runs.{name} is now sprig.runs.{new} (sprig.dst.METHODS and "
            f"sprig.prune.SCHEDULES are other registries); use {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'sprig.runs' has no attribute {name!r}")
