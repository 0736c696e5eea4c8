"""A small training loop for experiments; sprig's features also work in your own loop."""

from ._loop import (
    OPTIMIZERS,
    Callback,
    History,
    TrainConfig,
    accuracy,
    check_optimizer_settings,
    classification_loss,
    make_optimizer,
    sample_batch,
    train_classifier,
    train_step,
)

__all__ = [
    "OPTIMIZERS",
    "Callback",
    "History",
    "TrainConfig",
    "accuracy",
    "check_optimizer_settings",
    "classification_loss",
    "make_optimizer",
    "sample_batch",
    "train_classifier",
    "train_step",
]
