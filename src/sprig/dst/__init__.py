"""Dynamic sparse training: mask updaters that drop and grow connections during training."""

from ._base import DECAYS, INITS, DSTConfig, Layer, MaskUpdater, UpdateStats, reset_optimizer_state
from ._methods import METHODS, SET, SNFS, DeepR, RigL, make_updater

__all__ = [
    "DECAYS",
    "INITS",
    "METHODS",
    "SET",
    "SNFS",
    "DSTConfig",
    "DeepR",
    "Layer",
    "MaskUpdater",
    "RigL",
    "UpdateStats",
    "make_updater",
    "reset_optimizer_state",
]
