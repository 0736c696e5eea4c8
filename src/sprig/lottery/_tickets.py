"""The lottery-ticket experiment: iterative magnitude pruning (IMP) with rewinding, and its
two controls, trained round after round.

Frankle & Carbin 2019, "The Lottery Ticket Hypothesis"; rewinding to iteration k from Frankle
et al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (OpenLTH's recipe).

One run, for each seed:

1. build the model (``make_model(seed)``) and train it densely for ``train.steps`` steps,
   keeping its weights at iteration ``rewind`` (``rewind=0``: the initial weights);
2. for each round r = 1..R: magnitude-prune the last *ticket*'s trained weights within its mask
   to density ``(1 - rate)^r``, then train three networks at that density for
   ``train.steps - rewind`` steps and record their test accuracy:

   * **ticket**: the new mask, survivors rewound to their values at iteration ``rewind``;
   * **reinit**: the same mask, weights freshly re-initialised (``reset_parameters`` under a new
     seed): does the ticket need its initial values?
   * **random**: a random mask with the ticket's per-layer counts, weights rewound like the
     ticket's: does the ticket need its mask?

Every training run starts a fresh optimizer. Round 0 is the dense network (one accuracy, shared
by all three series).

The mechanics it calls stay in :mod:`sprig.prune` (see the package docstring).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._callback import Callback
from .._checks import check_int, sub_seed
from ..data import Split
from ..io import write_text_atomic
from ..masks import density as model_density
from ..prune import SCOPES, check_reinit, imp_masks, random_masks_like, rewind
from ..training import TrainConfig, train_classifier

ARMS = ("ticket", "reinit", "random")


@dataclass
class LotteryConfig:
    """How to look for lottery tickets.

    Args:
        rounds: R, pruning rounds after the dense run (>= 1).
        rate: fraction of the remaining weights pruned each round, in (0, 1); round r has
            density ``(1 - rate)^r``.
        rewind: k, the iteration the survivors rewind to (0: the initial weights); must be
            below ``train.steps``.
        scope: ``"global"`` (one magnitude ranking over all layers, OpenLTH's default) or
            ``"layer"`` (every layer to the same density).
        controls: which controls to train besides the ticket: ``"reinit"``, ``"random"``.
        seeds: one full run per seed (model init, batch order, random masks).
        train: the training recipe of every run.
    """

    rounds: int = 8
    rate: float = 0.3
    rewind: int = 0
    scope: str = "global"
    controls: tuple[str, ...] = ("reinit", "random")
    seeds: tuple[int, ...] = (0,)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_int(self.rounds, "rounds", 1)
        if not 0.0 < self.rate < 1.0:
            raise ValueError(
                f"rate must be in (0, 1) (the fraction of remaining weights pruned per round), "
                f"got {self.rate!r}; e.g. rate=0.2"
            )
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; valid scopes are: {', '.join(SCOPES)}")
        if self.rewind < 0 or self.rewind >= self.train.steps:
            raise ValueError(
                f"rewind iteration {self.rewind} is outside training (train.steps = "
                f"{self.train.steps}); choose 0 <= rewind < {self.train.steps}"
            )
        self.controls = tuple(self.controls)
        bad = [c for c in self.controls if c not in ARMS[1:]]
        if bad:
            raise ValueError(f"unknown controls {bad}; valid controls are: reinit, random")
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed, e.g. seeds=(0, 1, 2)")

    def densities(self) -> list[float]:
        """Target density of each round, round 0 (dense) first."""
        return [(1.0 - self.rate) ** r for r in range(self.rounds + 1)]


@dataclass
class LotteryRound:
    """One round of one seed: the density reached and each arm's final test accuracy."""

    seed: int
    round: int
    density: float
    accuracy: dict[str, float]


@dataclass
class LotteryResult:
    """Every round of every seed, JSON-serialisable; :meth:`table` averages over seeds."""

    config: dict[str, Any]
    rounds: list[LotteryRound]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "rounds": [asdict(r) for r in self.rounds]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON, atomically."""
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LotteryResult:
        return cls(dict(data["config"]), [LotteryRound(**r) for r in data["rounds"]])

    @classmethod
    def load(cls, path: str | Path) -> LotteryResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def arms(self) -> list[str]:
        return [a for a in ARMS if any(a in r.accuracy for r in self.rounds)]

    def table(self) -> list[dict[str, float]]:
        """Per round, averaged over seeds: ``round``, ``density`` and, per arm, mean and std."""
        out = []
        for rnd in sorted({r.round for r in self.rounds}):
            rows = [r for r in self.rounds if r.round == rnd]
            row: dict[str, float] = {
                "round": rnd,
                "density": sum(r.density for r in rows) / len(rows),
            }
            for arm in self.arms():
                accs = [r.accuracy[arm] for r in rows if arm in r.accuracy]
                mean = sum(accs) / len(accs)
                var = sum((a - mean) ** 2 for a in accs) / max(1, len(accs) - 1)
                row[arm] = mean
                row[arm + "_std"] = math.sqrt(var)
            out.append(row)
        return out

    def series(self) -> dict[str, list[tuple[float, float]]]:
        """``{arm: [(density, mean accuracy), ...]}`` for plotting."""
        tab = self.table()
        return {arm: [(r["density"], r[arm]) for r in tab] for arm in self.arms()}

    def matching_density(
        self, arm: str = "ticket", tolerance: float = 0.01, *, contiguous: bool = False
    ) -> float:
        """The lowest density at which ``arm``'s mean accuracy is within ``tolerance`` of dense.

        Args:
            arm: ``"ticket"``, ``"reinit"`` or ``"random"``.
            tolerance: accuracy (a fraction: 0.01 is one point) ``arm`` may lose.
            contiguous: only count rounds before the first one that falls further below dense
                (stricter: one noisy round stops it).

        Returns:
            a density in (0, 1] (1.0 when no pruned round is within ``tolerance``).
        """
        tab = self.table()
        dense = tab[0][arm]
        best = tab[0]["density"]
        for row in tab[1:]:
            if row[arm] >= dense - tolerance:
                best = min(best, row["density"])
            elif contiguous:
                break
        return best


class _Snapshot(Callback):
    """Keeps a copy of the model's state after optimizer step ``at`` (1-based)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.state: dict[str, Tensor] | None = None

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if step + 1 == self.at:
            self.state = copy.deepcopy(model.state_dict())


def find_tickets(
    make_model: Callable[[int], nn.Module],
    data: Split,
    config: LotteryConfig,
    *,
    on_round: Callable[[LotteryRound], None] | None = None,
    before_train: Callable[[int, int, str, nn.Module], None] | None = None,
) -> LotteryResult:
    """Run iterative magnitude pruning with rewinding, and its controls, for every seed.

    Args:
        make_model: ``seed -> freshly initialised model`` (dense; its weights are the init).
        data: train and test split (test accuracy is reported).
        config: rounds, rate, rewind, scope, controls, seeds, training recipe.
        on_round: called after each round of each seed (progress for a command line).
        before_train: called as ``(seed, round, arm, network)`` just before each network
            trains (arm ``"dense"`` for round 0); for inspection, e.g. of rewound weights.

    Returns:
        a :class:`LotteryResult` with one :class:`LotteryRound` per (seed, round).

    Example:
        >>> from sprig.data import course_task
        >>> cfg = LotteryConfig(rounds=2, rate=0.5, train=TrainConfig(steps=30, lr=1e-2))
        >>> res = find_tickets(lambda s: nn.Sequential(nn.Linear(20, 16), nn.ReLU(),
        ...                    nn.Linear(16, 2)), course_task(n_train=256, n_test=128), cfg)
        >>> [round(r["density"], 2) for r in res.table()]
        [1.0, 0.5, 0.25]
    """
    rounds: list[LotteryRound] = []
    for seed in config.seeds:
        for r in _run_seed(make_model, data, config, seed, before_train):
            rounds.append(r)
            if on_round is not None:
                on_round(r)
    cfg = asdict(config)
    cfg["controls"] = list(config.controls)
    cfg["seeds"] = list(config.seeds)
    return LotteryResult(cfg, rounds)


def _train(net: nn.Module, data: Split, config: LotteryConfig, steps: int, seed: int) -> float:
    return train_classifier(net, data, replace(config.train, steps=steps, seed=seed)).final_accuracy


def _run_seed(
    make_model: Callable[[int], nn.Module],
    data: Split,
    config: LotteryConfig,
    seed: int,
    before_train: Callable[[int, int, str, nn.Module], None] | None,
) -> Iterator[LotteryRound]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_model(seed)
    if "reinit" in config.controls:
        check_reinit(model)
    init = copy.deepcopy(model.state_dict())
    steps, k = config.train.steps, config.rewind
    snap = _Snapshot(k)
    dense = copy.deepcopy(model)
    if before_train is not None:
        before_train(seed, 0, "dense", dense)
    tc = replace(config.train, seed=sub_seed(seed, "data", 0))
    acc = train_classifier(dense, data, tc, callbacks=[snap]).final_accuracy
    rewind_state = init if k == 0 else snap.state
    assert rewind_state is not None
    arms = ("ticket", *config.controls)
    yield LotteryRound(seed, 0, model_density(dense), {a: acc for a in arms})
    trained = dense  # the network whose weights the next round prunes
    for rnd, target in enumerate(config.densities()[1:], start=1):
        # prune the last ticket's trained weights within its mask
        masks = imp_masks(trained, target, config.scope)
        nets = {"ticket": rewind(model, rewind_state, masks)}
        if "reinit" in config.controls:
            nets["reinit"] = rewind(model, rewind_state, masks, reinit_seed=sub_seed(seed, rnd))
        if "random" in config.controls:
            shuffled = random_masks_like(masks, sub_seed(seed, rnd))
            nets["random"] = rewind(model, rewind_state, shuffled)
        accs: dict[str, float] = {}
        for arm, net in nets.items():
            if before_train is not None:
                before_train(seed, rnd, arm, net)
            accs[arm] = _train(net, data, config, steps - k, sub_seed(seed, "data", rnd))
        yield LotteryRound(seed, rnd, model_density(nets["ticket"]), accs)
        trained = nets["ticket"]


__all__ = ["ARMS", "LotteryConfig", "LotteryResult", "LotteryRound", "find_tickets"]
