"""Threshold search: zero every weight, bias and initial state with |v| <= c, for the largest c
that keeps every output sign right on fresh sequences (Primozic 2023)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._checks import sub_seed
from ..nn import BonsaiRNN
from ._grow import finetune
from ._tasks import Task, get_task
from ._validate import Score, score

#: Clip thresholds tried, from large to small (the post's ladder, ending in 0: no clipping).
THRESHOLDS: tuple[float, ...] = (
    0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.075, 0.05, 0.04, 0.03, 0.025, 0.02,
    0.015, 0.01, 0.0075, 0.005, 0.0025, 0.001, 0.0005, 0.0001, 0.0,
)  # fmt: skip


#: A candidate at least this accurate (fraction of output bits) is close enough to fine-tune.
CLOSE = 0.97


def clip(model: BonsaiRNN, threshold: float) -> BonsaiRNN:
    """A copy of ``model`` with every parameter entry of ``|v| <= threshold`` set to exactly 0.

    Example:
        >>> net = clip(BonsaiRNN(1, 1, cells=[(2, 2)], seed=0), 10.0)
        >>> sum(int(p.count_nonzero()) for p in net.parameters())
        0
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.masked_fill_(p.abs() <= threshold, 0.0)
    return out


def _checker(
    task: Task, sequences: int, length: int, seed: int, confirm_sequences: int
) -> Callable[[BonsaiRNN], Score]:
    """The search's check: every sign right on ``sequences`` fresh sequences, then (if so) on
    ``confirm_sequences`` others; the score returned is the last one computed."""
    if isinstance(confirm_sequences, bool) or confirm_sequences < 0:
        raise ValueError(f"confirm_sequences must be an int >= 0, got {confirm_sequences!r}")
    confirm_seed = sub_seed(seed, "confirm")

    def check(net: BonsaiRNN) -> Score:
        found = score(net, task, sequences, length, seed=seed, stop_at_first_error=True)
        if found.perfect and confirm_sequences:
            return score(
                net, task, confirm_sequences, length, seed=confirm_seed, stop_at_first_error=True
            )
        return found

    return check


@dataclass(frozen=True)
class ThresholdResult:
    """The pruned network, its threshold, and whether it is perfect on the check sequences."""

    model: BonsaiRNN
    threshold: float
    perfect: bool


def threshold_search(
    model: BonsaiRNN,
    task: str | Task,
    sequences: int = 5_000,
    length: int = 40,
    thresholds: Sequence[float] = THRESHOLDS,
    seed: int = 0,
    finetune_steps: int = 0,
    max_finetunes: int = 3,
    finetune_lr: float = 0.002,
    finetune_length: int = 20,
    confirm_sequences: int = 50_000,
) -> ThresholdResult:
    """Clip at the largest threshold whose network gets every output sign right.

    Tries ``thresholds`` from large to small; each candidate is checked on the same ``sequences``
    fresh sequences of ``length`` steps. A candidate that passes is confirmed on
    ``confirm_sequences`` other fresh sequences before it is kept: an error that hits one
    sequence in 10,000 passes a 5,000-sequence check about 60% of the time and then fails a
    50,000-sequence validation; when the confirmation fails, the search goes on to the next
    smaller threshold. With ``finetune_steps``, a candidate that is close
    (at least 97% of output bits right) but not perfect is fine-tuned with its zeros frozen
    (:func:`finetune`, at most ``max_finetunes`` times) and checked again. If nothing is
    perfect, the unclipped network is returned with ``perfect=False``.

    Args:
        model: a trained :class:`sprig.nn.BonsaiRNN`.
        task: its task (name or :class:`Task`).
        sequences: how many check sequences (default 5,000).
        length: their length.
        thresholds: candidates (sorted large to small here).
        seed: seed of the check sequences.
        finetune_steps: steps of fine-tuning for a close candidate (0: none).
        max_finetunes: at most this many candidates are fine-tuned.
        finetune_lr: Adam learning rate of the fine-tuning.
        finetune_length: sequence length of the fine-tuning batches.
        confirm_sequences: fresh sequences (of ``length``, other than the check's) a passing
            candidate must also get right (0: no confirmation, the post's plain search).

    Returns:
        A :class:`ThresholdResult`.

    Example:
        >>> net = BonsaiRNN(1, 1, cells=[(1, 1)], seed=0)  # untrained: no threshold works
        >>> threshold_search(net, "delay-1", sequences=20, confirm_sequences=20).perfect
        False
    """
    task = get_task(task)
    check = _checker(task, sequences, length, seed, confirm_sequences)

    # (only without fine-tuning: with it, an erring network may still be repaired, and this
    # check of up to 55,000 sequences was a quarter of a search run's time, for nothing)
    if not finetune_steps and not check(model).perfect:
        # the trained network itself errs and nothing will retrain it: no threshold can help
        return ThresholdResult(copy.deepcopy(model), 0.0, False)
    budget = max_finetunes
    for c in sorted({float(t) for t in thresholds}, reverse=True):
        pruned = clip(model, c)
        found = check(pruned)
        if found.perfect:
            return ThresholdResult(pruned, c, True)
        if finetune_steps and budget > 0 and found.accuracy >= CLOSE:
            budget -= 1
            tuned = finetune(
                pruned,
                task,
                steps=finetune_steps,
                lr=finetune_lr,
                length=finetune_length,
                seed=sub_seed(seed, c),
            )
            if check(tuned).perfect:
                return ThresholdResult(tuned, c, True)
    return ThresholdResult(copy.deepcopy(model), 0.0, False)


#: Quantisation steps tried, from coarse to fine.
QUANTA: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001)


def quantize(model: BonsaiRNN, step: float) -> BonsaiRNN:
    """A copy of ``model`` with every parameter entry rounded to the nearest multiple of ``step``.

    Example:
        >>> net = quantize(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0), 0.5)
        >>> bool(all(((p * 2) == (p * 2).round()).all() for p in net.parameters()))
        True
    """
    if not step > 0:
        raise ValueError(f"quantisation step must be > 0, got {step!r}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.copy_(torch.round(p / step) * step)
    return out


def quantize_search(
    model: BonsaiRNN,
    task: str | Task,
    sequences: int = 5_000,
    length: int = 40,
    quanta: Sequence[float] = QUANTA,
    seed: int = 0,
    confirm_sequences: int = 50_000,
) -> ThresholdResult:
    """Round to the coarsest step in ``quanta`` that keeps every output sign right.

    The same search as :func:`threshold_search`, over rounding steps instead of clip
    thresholds (``ThresholdResult.threshold`` holds the step; 0.0 when none works, with the
    model unchanged). Rounding also zeroes entries below half a step. A step that passes is
    confirmed on ``confirm_sequences`` other fresh sequences, as in :func:`threshold_search`.
    """
    task = get_task(task)
    check = _checker(task, sequences, length, seed, confirm_sequences)
    for q in sorted({float(v) for v in quanta if v > 0}, reverse=True):
        rounded = quantize(model, q)
        if check(rounded).perfect:
            return ThresholdResult(rounded, q, True)
    return ThresholdResult(copy.deepcopy(model), 0.0, False)
