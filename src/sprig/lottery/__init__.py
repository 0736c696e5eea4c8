"""Lottery tickets, the experiment: iterative magnitude pruning with rewinding against its
controls, trained round after round (Frankle & Carbin 2019; Frankle et al. 2020).

The outer ring, beside :mod:`sprig.runs`: it needs data, a training loop and file output, so
the library core never imports it. The mechanics it calls (:func:`sprig.prune.rewind`,
:func:`sprig.prune.imp_masks`, :func:`sprig.prune.random_masks_like`) stay in
:mod:`sprig.prune` for people who train in their own loop.
"""

from ._tickets import ARMS, LotteryConfig, LotteryResult, LotteryRound, find_tickets

__all__ = ["ARMS", "LotteryConfig", "LotteryResult", "LotteryRound", "find_tickets"]
