"""A small training loop for experiments; sprig's features also work in your own loop."""

from ._loop import (
    OPTIMIZERS,
    Callback,
    History,
    TrainConfig,
    accuracy,
    classification_loss,
    make_optimizer,
    train_classifier,
)

__all__ = [
    "OPTIMIZERS",
    "Callback",
    "History",
    "TrainConfig",
    "accuracy",
    "classification_loss",
    "make_optimizer",
    "train_classifier",
]
