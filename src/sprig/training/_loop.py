"""A small supervised training loop shared by experiments (lottery tickets, DST, runs).

It is a convenience, not a framework: every sprig feature also works in a user's own loop.
Extension happens through :class:`Callback` objects (a pruning schedule, a mask updater).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._callback import Callback
from .._registry import Registry
from ..data import Split
from ..masks import dense_gradients

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.add("sgd", torch.optim.SGD)
OPTIMIZERS.add("adam", torch.optim.Adam)
OPTIMIZERS.add("adamw", torch.optim.AdamW)


def check_optimizer_settings(
    lr: float,
    momentum: float,
    weight_decay: float,
    *,
    label: Callable[[str], str] = str,
    error: type[Exception] = ValueError,
) -> None:
    """The one check of optimizer settings, for :class:`TrainConfig` and a run's
    ``[optimizer]`` table (``label`` names a key as the caller's user wrote it).

    A learning rate of inf ran to the end with garbage results, so both bounds are checked.
    """
    if not 0 < lr < float("inf"):
        raise error(f"{label('lr')} must be a finite number > 0, got {lr}")
    for key, value in (("momentum", momentum), ("weight_decay", weight_decay)):
        if not 0 <= value < float("inf"):
            raise error(f"{label(key)} must be a finite number >= 0, got {value}")


@dataclass
class TrainConfig:
    """How to train: optimizer, steps, batch size (None: full batch), seed for batch order."""

    steps: int = 1000
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int | None = 128
    seed: int = 0
    eval_every: int = 0  # 0: evaluate only at the end

    def __post_init__(self) -> None:
        OPTIMIZERS.get(self.optimizer)
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        check_optimizer_settings(self.lr, self.momentum, self.weight_decay)
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (full batch), got {self.batch_size}")


def make_optimizer(
    params: Sequence[nn.Parameter] | object, config: TrainConfig
) -> torch.optim.Optimizer:
    kwargs: dict[str, object] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        kwargs["momentum"] = config.momentum
    return OPTIMIZERS.get(config.optimizer)(params, **kwargs)


@dataclass
class History:
    """Per-step training loss and the evaluations made, as (step, accuracy)."""

    loss: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)

    @property
    def final_accuracy(self) -> float:
        return self.evals[-1][1] if self.evals else float("nan")


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Classification accuracy; a single output column is read as a sign (labels 0/1)."""
    was_training = model.training
    model.eval()
    out = model(x)
    model.train(was_training)
    pred = (out[:, 0] > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
    return float((pred == y).float().mean())


def classification_loss(out: Tensor, y: Tensor) -> Tensor:
    if out.shape[-1] == 1:  # one logit: binary cross entropy on labels 0/1
        return nn.functional.binary_cross_entropy_with_logits(out[:, 0], y.float())
    return nn.functional.cross_entropy(out, y)


def sample_batch(
    data: Split, batch_size: int | None, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """A training batch drawn with replacement, or the whole training set (None or >= its size)."""
    n = data.x_train.shape[0]
    if batch_size is None or batch_size >= n:
        return data.x_train, data.y_train
    idx = torch.randint(0, n, (batch_size,), generator=gen)
    return data.x_train[idx], data.y_train[idx]


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    xb: Tensor,
    yb: Tensor,
    step: int,
    callbacks: Sequence[Callback] = (),
    loss_fn: Callable[[Tensor, Tensor], Tensor] = classification_loss,
    extra_loss: Callable[[nn.Module], Tensor] | None = None,
) -> Tensor:
    """One optimizer step with the callbacks' hooks (dense gradients where one asks for them);
    the one step that :func:`train_classifier` and ``sprig run`` both take.

    Returns:
        the loss, detached.
    """
    optimizer.zero_grad(set_to_none=True)
    dense = any(cb.needs_dense_grad(step) for cb in callbacks)
    with dense_gradients(model) if dense else contextlib.nullcontext():
        loss = loss_fn(model(xb), yb)
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        loss.backward()
    for cb in callbacks:
        cb.after_backward(step, model, optimizer)
    optimizer.step()
    for cb in callbacks:
        cb.after_step(step, model, optimizer)
    return loss.detach()


def train_classifier(
    model: nn.Module,
    data: Split,
    config: TrainConfig,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    callbacks: Sequence[Callback] = (),
    loss_fn: Callable[[Tensor, Tensor], Tensor] = classification_loss,
    extra_loss: Callable[[nn.Module], Tensor] | None = None,
) -> History:
    """Train ``model`` on ``data.x_train``/``y_train``; evaluate on the test split.

    Args:
        model: any classifier; outputs ``(N, classes)`` or ``(N, 1)`` for binary.
        data: a :class:`~sprig.data.Split`.
        config: steps, optimizer, batch size, seed.
        optimizer: use this optimizer instead of building one from ``config``.
        callbacks: pruning schedules, mask updaters, loggers.
        loss_fn: loss on (outputs, labels).
        extra_loss: a regularizer on the model added to the loss.

    Returns:
        the :class:`History` (losses and evaluations; the last one at the end).
    """
    opt = optimizer if optimizer is not None else make_optimizer(model.parameters(), config)
    gen = torch.Generator().manual_seed(config.seed)
    hist = History()
    model.train()
    for cb in callbacks:
        cb.before_training(config.steps)
    for step in range(config.steps):
        xb, yb = sample_batch(data, config.batch_size, gen)
        loss = train_step(model, opt, xb, yb, step, callbacks, loss_fn, extra_loss)
        hist.loss.append(float(loss))
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            hist.evals.append((step + 1, accuracy(model, data.x_test, data.y_test)))
    if data.x_test.shape[0]:
        hist.evals.append((config.steps, accuracy(model, data.x_test, data.y_test)))
    return hist
