"""Tasks a user might bring, for ``bench_bonsai.py`` and ``sprig bonsai user_tasks:NAME``.

None of them is a built-in, so no preset applies: the automatic search grows them. Their
minimal Mealy machines have 2, 3 and 4 states.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sprig.bonsai import StepTask


def _sign(b: Tensor) -> Tensor:
    return torch.where(b, 1.0, -1.0)


def _parity(count: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    count = (count + (x > 0).float()) % 2
    return count, _sign(count == 1)


def _mod3(count: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    count = (count + (x > 0).float()) % 3
    return count, _sign(count == 0)


def _three_ones(count: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    count = (count + (x > 0).float()).clamp(max=3)
    return count, _sign(count >= 3)


#: +1 while an odd number of the inputs so far were +1 (2 states).
PARITY = StepTask("parity", 1, 1, _parity, torch.zeros(1))
#: +1 while the number of +1 inputs so far is a multiple of 3 (3 states).
MOD3 = StepTask("mod3", 1, 1, _mod3, torch.zeros(1))
#: +1 once at least three inputs were +1 (4 states: 0, 1, 2, 3 or more ones).
THREE_ONES = StepTask("three-ones", 1, 1, _three_ones, torch.zeros(1))
