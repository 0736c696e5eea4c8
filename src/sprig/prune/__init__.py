"""Pruning: pruners (scores -> masks), one-shot pruning with calibration data (Wanda,
SparseGPT, OWL), schedules, regularizers, lottery tickets."""

from ._calibration import calibration_batches
from ._lottery import ARMS, LotteryConfig, LotteryResult, LotteryRound, find_tickets, rewind
from ._oneshot import (
    LAYER_DENSITIES,
    CalibratedPruner,
    SparseGPTPruner,
    WandaPruner,
)
from ._pruners import (
    PRUNERS,
    SCOPES,
    BlockPruner,
    MagnitudePruner,
    NMPruner,
    Pruner,
    RandomPruner,
    StructuredPruner,
    make_pruner,
    prune,
)
from ._regularizers import L1, BonsaiRegularizer
from ._schedules import SCHEDULES, GradualPruning, OneShot, Polynomial, Schedule
from ._sparsegpt import sparsegpt

__all__ = [
    "ARMS",
    "LAYER_DENSITIES",
    "L1",
    "PRUNERS",
    "SCHEDULES",
    "SCOPES",
    "BlockPruner",
    "BonsaiRegularizer",
    "CalibratedPruner",
    "GradualPruning",
    "LotteryConfig",
    "LotteryResult",
    "LotteryRound",
    "MagnitudePruner",
    "NMPruner",
    "OneShot",
    "Polynomial",
    "Pruner",
    "RandomPruner",
    "Schedule",
    "SparseGPTPruner",
    "StructuredPruner",
    "WandaPruner",
    "calibration_batches",
    "find_tickets",
    "make_pruner",
    "prune",
    "rewind",
    "sparsegpt",
]
