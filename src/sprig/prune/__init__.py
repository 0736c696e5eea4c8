"""Pruning: pruners (scores -> masks), one-shot pruning with calibration data (Wanda,
SparseGPT, OWL), schedules, regularizers, lottery-ticket mechanics (rewind, IMP masks).

The lottery-ticket experiment itself (:func:`find_tickets` and its config and result) lives in
the outer ring, :mod:`sprig.lottery`; its names stay importable from here, loaded on first use so
that importing ``sprig.prune`` never imports the outer ring.
"""

from typing import Any

from ._calibration import calibration_batches
from ._lottery import check_reinit, imp_masks, random_masks_like, rewind
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
from ._regularizers import L1, BonsaiRegularizer, GroupLasso
from ._schedules import SCHEDULES, GradualPruning, OneShot, Polynomial, Schedule
from ._sparsegpt import sparsegpt

__all__ = [
    "LAYER_DENSITIES",
    "L1",
    "PRUNERS",
    "SCHEDULES",
    "SCOPES",
    "BlockPruner",
    "BonsaiRegularizer",
    "GroupLasso",
    "CalibratedPruner",
    "GradualPruning",
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
    "check_reinit",
    "imp_masks",
    "make_pruner",
    "prune",
    "random_masks_like",
    "rewind",
    "sparsegpt",
]

# the lottery experiment moved to sprig.lottery (it needs data, a training loop and file output);
# these names stay importable from sprig.prune, imported lazily so the core never loads it
_MOVED_TO_LOTTERY = ("ARMS", "LotteryConfig", "LotteryResult", "LotteryRound", "find_tickets")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_LOTTERY:
        from ..lottery import _tickets

        return getattr(_tickets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
