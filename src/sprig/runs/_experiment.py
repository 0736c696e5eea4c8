"""An experiment in memory: data, model, optimizer, LR schedule and method, built from a config,
and one training step of it.

:func:`build` is deterministic in the config: building twice gives the same weights, masks and
generators, which is what lets a checkpoint continue a run exactly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._checks import sub_seed
from .._words import a
from ..data import Split
from ..masks import density
from ..training import Callback, TrainConfig, accuracy, make_optimizer, sample_batch
from ..training import train_step as training_step
from ._config import RunConfig
from ._registries import DATASETS, LR_SCHEDULES, MODELS, RUN_METHODS


@dataclass
class Experiment:
    """Everything a run trains with; :meth:`states` and :meth:`generators` are what a
    checkpoint saves beside the model and optimizer."""

    config: RunConfig
    data: Split
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    callbacks: list[Callback]
    batches: torch.Generator
    method_generator: torch.Generator

    def states(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheduler": self.scheduler}
        for i, cb in enumerate(self.callbacks):
            if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict"):
                out[f"method.{i}"] = cb
        return out

    def generators(self) -> dict[str, torch.Generator]:
        return {"batches": self.batches, "method": self.method_generator}


def _call_method(fn: Any, available: dict[str, Any], options: dict[str, Any]) -> list[Callback]:
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given = {k: v for k, v in available.items() if takes_any or k in params}
    made = fn(**given, **options)
    made = [] if made is None else [made] if isinstance(made, Callback) else list(made)
    for cb in made:
        if not isinstance(cb, Callback):
            raise TypeError(
                f"sparsity method {fn!r} returned {a(type(cb).__name__)}; methods return "
                "sprig.training.Callback objects (or a list of them, or None)"
            )
    return made


def build(config: RunConfig) -> Experiment:
    """Build data, model, optimizer, schedule and method callbacks from ``config``.

    Seeds torch's global generator (weight init): the runner calls it in its own RNG scope.

    Args:
        config: the experiment.

    Returns:
        the :class:`Experiment`, ready for step 0.

    Example:
        >>> from sprig.runs import config_from_dict
        >>> exp = build(config_from_dict({"data": {"name": "moons"}, "model": {"hidden": [4]}}))
        >>> type(exp.model).__name__, type(exp.optimizer).__name__
        ('SparseMLP', 'Adam')
    """
    seed = config.seed
    data = DATASETS.get(config.data.name)(**config.data.options)
    torch.manual_seed(sub_seed(seed, "init"))
    model = MODELS.get(config.model.name)(
        n_features=data.n_features, n_classes=data.n_classes, seed=seed, **config.model.options
    )
    opt_cfg = config.optimizer
    optimizer = make_optimizer(
        model.parameters(),
        TrainConfig(
            lr=opt_cfg.lr,
            optimizer=opt_cfg.name,
            momentum=opt_cfg.momentum,
            weight_decay=opt_cfg.weight_decay,
        ),
    )
    factor = LR_SCHEDULES.get(config.schedule.name)
    sched_opts = dict(config.schedule.options)
    steps = config.steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: factor(step=s, steps=steps, **sched_opts)
    )
    method_generator = torch.Generator().manual_seed(sub_seed(seed, "method"))
    available = {
        "model": model,
        "optimizer": optimizer,
        "data": data,
        "steps": steps,
        "total_steps": steps,
        "seed": sub_seed(seed, "method"),
        "generator": method_generator,
    }
    callbacks = _call_method(
        RUN_METHODS.get(config.method.name), available, dict(config.method.options)
    )
    batches = torch.Generator().manual_seed(sub_seed(seed, "batches"))
    torch.manual_seed(sub_seed(seed, "global"))
    return Experiment(
        config, data, model, optimizer, scheduler, callbacks, batches, method_generator
    )


def train_step(parts: Experiment, step: int) -> float:
    """One optimizer step (``step`` counts from 0), as :func:`sprig.training.train_classifier`."""
    xb, yb = sample_batch(parts.data, parts.config.batch_size, parts.batches)
    loss = training_step(parts.model, parts.optimizer, xb, yb, step, parts.callbacks)
    parts.scheduler.step()
    return float(loss)


def evaluate(parts: Experiment) -> dict[str, float]:
    data, model = parts.data, parts.model
    out = {"train_accuracy": accuracy(model, data.x_train, data.y_train)}
    if data.x_test.shape[0]:
        out["test_accuracy"] = accuracy(model, data.x_test, data.y_test)
    out["density"] = density(model)
    return out
