"""Scoring by sign: a network (or graph) is right on a step when every output has the target's
sign. Validation uses fresh random sequences (the post: 50,000 of length 40)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import make_generator
from ._tasks import Task, get_task

Predict = Callable[[Tensor], Tensor]  # x (B, T, in) -> outputs (B, T, out)


@dataclass(frozen=True)
class Score:
    """How well a network does on fresh sequences, scored by sign.

    Attributes:
        accuracy: fraction of output bits with the target's sign.
        sequence_accuracy: fraction of sequences with every output bit right.
        sequences: how many sequences were scored.
        length: their length.
    """

    accuracy: float
    sequence_accuracy: float
    sequences: int
    length: int

    @property
    def perfect(self) -> bool:
        return self.sequence_accuracy == 1.0


def score(
    predict: Predict,
    task: str | Task,
    sequences: int = 50_000,
    length: int = 40,
    seed: int | torch.Generator | None = 0,
    chunk: int = 5_000,
    stop_at_first_error: bool = False,
) -> Score:
    """Score ``predict`` (a network or ``graph.evaluate``) on fresh sequences of ``task``.

    Args:
        predict: maps ``x (B, T, in)`` to outputs ``(B, T, out)``; only signs count.
        task: a registered task name or a :class:`Task`.
        sequences: how many fresh sequences (the post validates on 50,000).
        length: time steps per sequence (the post: 40).
        seed: seed or generator of the sequences.
        chunk: sequences per forward pass (memory).
        stop_at_first_error: return as soon as a chunk has an error (for searches that only
            need to know whether the network is perfect; the score then covers the chunks seen).

    Returns:
        A :class:`Score`.

    Example:
        >>> s = score(lambda x: torch.ones(x.shape), "loop", sequences=10, length=6)
        >>> round(s.accuracy, 3), s.sequence_accuracy
        (0.333, 0.0)
    """
    task = get_task(task)
    if sequences < 1 or length < 1:
        raise ValueError(f"sequences and length must be >= 1, got {sequences} and {length}")
    gen = make_generator(seed)
    right_bits = right_seqs = seen = 0
    # when the first error ends the run, start small and double: a wrong network is usually
    # caught in the first few hundred sequences
    size = min(256, chunk) if stop_at_first_error else chunk
    with torch.no_grad():
        while seen < sequences:
            n = min(size, sequences - seen)
            size = min(2 * size, chunk)
            x, y = task.batch(n, length, gen)
            ok = (predict(x) > 0) == (y > 0)  # (B, T, out)
            right_bits += int(ok.sum())
            right_seqs += int(ok.flatten(1).all(dim=1).sum())
            seen += n
            if stop_at_first_error and right_seqs < seen:
                break
    return Score(
        accuracy=right_bits / (seen * length * task.out_features),
        sequence_accuracy=right_seqs / seen,
        sequences=seen,
        length=length,
    )
