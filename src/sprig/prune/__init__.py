"""Pruning: pruners (scores -> masks), schedules, regularizers, lottery tickets."""

from ._regularizers import L1, BonsaiRegularizer

__all__ = ["L1", "BonsaiRegularizer"]
