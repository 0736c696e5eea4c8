"""Experiments from config files: ``sprig run experiment.toml``. The outer ring: the library
core never imports this.

A run folder holds the config, per-step metrics (JSON lines), checkpoints, the final model and
plots; a stopped run continues exactly with :func:`resume_run` (``sprig run --resume``).
New sparsity methods plug in by name: ``RUN_METHODS.add("my_set", my_set)`` (see
``_registries``).
"""

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

# the names before they were told apart from sprig.dst.METHODS and sprig.prune.SCHEDULES
METHODS = RUN_METHODS
SCHEDULES = LR_SCHEDULES
