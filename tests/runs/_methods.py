"""Test-only sparsity methods, registered the way other branches register theirs.

``swap_one`` is a tiny SET-like mask updater: every ``every`` steps it drops the smallest kept
weight of each masked layer and grows a random pruned position drawn from the run's method
generator. It has state (how many swaps it made), changes masks, and uses the generator, so a
resume that forgets any of them ends with different masks. ``delay`` slows each step so a test
can kill a run mid-training.

``slow_rigl`` is sprig's RigL with such a delay (for compressed layers, which ``swap_one``'s
masks do not reach).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from sprig.dst import make_updater
from sprig.masks import apply_mask, masked_parameters
from sprig.runs import RUN_METHODS as METHODS
from sprig.training import Callback


class SwapOne(Callback):
    def __init__(
        self, model: nn.Module, generator: torch.Generator, every: int = 10, delay: float = 0.0
    ) -> None:
        self.model, self.generator, self.every, self.delay = model, generator, every, delay
        self.swaps = 0

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.delay:
            time.sleep(self.delay)
        if (step + 1) % self.every:
            return
        for mp in masked_parameters(model):
            mask = mp.mask.clone()
            kept = mask.nonzero()
            pruned = (~mask).nonzero()
            if len(kept) == 0 or len(pruned) == 0:
                continue
            mags = mp.param.detach()[mask].abs()
            drop = kept[int(mags.argmin())]
            grow = pruned[int(torch.randint(len(pruned), (1,), generator=self.generator))]
            mask[tuple(drop)] = False
            mask[tuple(grow)] = True
            apply_mask(mp.module, mp.name, mask, pattern=mp.pattern)
            self.swaps += 1

    def state_dict(self) -> dict[str, Any]:
        return {"swaps": self.swaps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.swaps = int(state["swaps"])


class Delay(Callback):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        time.sleep(self.delay)


def slow_rigl(model: nn.Module, steps: int, seed: int, every: int = 7, delay: float = 0.0) -> Any:
    rigl = make_updater(
        "rigl", model, t_end=max(2 * every, int(0.75 * steps)), every=every, seed=seed
    )
    return [rigl, Delay(delay)]


if "swap_one" not in METHODS:
    METHODS.add("swap_one", SwapOne)
if "slow_rigl" not in METHODS:
    METHODS.add("slow_rigl", slow_rigl)
