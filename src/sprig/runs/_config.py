"""An experiment's config: typed dataclasses read from TOML, checked before anything runs."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._registry import Registry
from ..training import OPTIMIZERS, check_optimizer_settings
from ._registries import (
    DATASETS,
    LR_SCHEDULES,
    METHOD_INPUTS,
    MODEL_INPUTS,
    MODELS,
    RUN_METHODS,
    SCHEDULE_INPUTS,
)
from ._typed import ConfigError, bind_options, build_dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _choose(registry: Registry[Callable[..., Any]], name: str, where: str) -> Callable[..., Any]:
    try:
        return registry.get(name)
    except ValueError as err:
        raise ConfigError(f"key '{where}.name': {err}") from None


def _check_section(
    registry: Registry[Callable[..., Any]],
    name: str,
    options: dict[str, Any],
    where: str,
    provided: Collection[str],
) -> None:
    typed = bind_options(_choose(registry, name, where), options, where, provided)
    options.clear()
    options.update(typed)


@dataclass
class DataConfig:
    """``[data]``: a dataset by name (``moons``, ``course_task``, ``mnist1d``) and its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_section(DATASETS, self.name, self.options, "data", ())


@dataclass
class ModelConfig:
    """``[model]``: a model by name (``mlp``) and its options (``hidden``, ``densities``...)."""

    name: str = "mlp"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_section(MODELS, self.name, self.options, "model", MODEL_INPUTS)


@dataclass
class MethodConfig:
    """``[method]``: the sparsity method by name (``static``, ``dense``...) and its options."""

    name: str = "static"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_section(RUN_METHODS, self.name, self.options, "method", METHOD_INPUTS)


@dataclass
class ScheduleConfig:
    """``[schedule]``: the learning-rate schedule (``constant``, ``linear``, ``cosine``)."""

    name: str = "constant"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_section(LR_SCHEDULES, self.name, self.options, "schedule", SCHEDULE_INPUTS)


@dataclass
class OptimizerConfig:
    """``[optimizer]``: ``sgd``, ``adam`` or ``adamw``, with its learning rate and decay."""

    name: str = "adam"
    lr: float = 0.01
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _choose(OPTIMIZERS, self.name, "optimizer")
        check_optimizer_settings(
            self.lr,
            self.momentum,
            self.weight_decay,
            label=lambda key: f"key 'optimizer.{key}'",
            error=ConfigError,
        )
        if self.momentum and self.name != "sgd":
            raise ConfigError(f"key 'optimizer.momentum' applies to sgd, not {self.name!r}")


@dataclass
class RunConfig:
    """A whole experiment: what to train, how, for how long, and how often to look and save.

    Read one with :func:`load_config`; the TOML file has the top-level keys below and one
    table per section (``[data]``, ``[model]``, ``[method]``, ``[optimizer]``, ``[schedule]``).

    Args:
        data: the dataset (required).
        model: the model (default: a 16-16 MLP).
        method: the sparsity method (default: static masks).
        optimizer: the optimizer (default: Adam, lr 0.01).
        schedule: the learning-rate schedule (default: constant).
        steps: training steps.
        seed: seeds the weights, masks, batch order and the method's generator.
        batch_size: samples per step; leave it out for full-batch training.
        eval_every: evaluate every this many steps (and at the start and the end).
        checkpoint_every: checkpoint every this many steps (and at the start and the end).
        keep_checkpoints: how many of the newest checkpoints to keep.
        plots: draw the pictures at the end (curves, masks, nonzeros, boundary, topology).
        name: a label for the run.
    """

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps: int = 1000
    seed: int = 0
    batch_size: int | None = None
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    plots: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        for key in ("steps", "eval_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key '{key}' must be >= 1, got {getattr(self, key)}")
        if self.seed < 0:
            raise ConfigError(f"key 'seed' must be >= 0, got {self.seed}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(
                f"key 'batch_size' must be >= 1, got {self.batch_size}; leave it out for full batch"
            )


def config_from_dict(table: Mapping[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from a parsed TOML table; raises :class:`ConfigError`."""
    config: RunConfig = build_dataclass(RunConfig, table)
    return config


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and check an experiment config file.

    Raises:
        ConfigError: one line naming the file and the problem (a missing file, bad TOML, an
            unknown key, a wrong type or value).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.toml"
        >>> _ = p.write_text('steps = 10\\n[data]\\nname = "moons"\\n[model]\\nhidden = [8]\\n')
        >>> load_config(p).model.options
        {'hidden': [8]}
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    try:
        return config_from_dict(table)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The config as the flat tables a TOML file holds (options merged into their section)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if hasattr(value, "__dataclass_fields__"):
            section = {g.name: getattr(value, g.name) for g in fields(value) if g.name != "options"}
            section.update(getattr(value, "options", {}))
            out[f.name] = section
        elif value is not None:
            out[f.name] = value
    # lists and tuples compare (and hash) alike
    result: dict[str, Any] = json.loads(json.dumps(out))
    return result


def config_hash(config: RunConfig) -> str:
    """A stable fingerprint of what the config means (not of its comments or key order)."""
    blob = json.dumps(config_dict(config), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def config_diff(a: RunConfig, b: RunConfig) -> str | None:
    """The first key where two configs differ, as ``key (A vs B)``; None when equal."""
    da, db = config_dict(a), config_dict(b)

    def walk(x: Any, y: Any, key: str) -> str | None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                found = walk(x.get(k, "(unset)"), y.get(k, "(unset)"), f"{key}.{k}" if key else k)
                if found:
                    return found
            return None
        return None if x == y else f"'{key}' ({json.dumps(x)} vs {json.dumps(y)})"

    return walk(da, db, "")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def config_toml(config: RunConfig) -> str:
    """The config as TOML text that :func:`load_config` reads back to an equal config."""
    top, sections = [], []
    for key, value in config_dict(config).items():
        if isinstance(value, dict):
            sections.append(f"\n[{key}]")
            sections += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        else:
            top.append(f"{key} = {_toml_value(value)}")
    return "\n".join(top + sections) + "\n"
