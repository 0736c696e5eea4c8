import copy
import json

import pytest
import torch
from torch import nn

from sprig.data import course_task
from sprig.lottery import LotteryConfig, LotteryResult, find_tickets
from sprig.masks import get_mask
from sprig.training import TrainConfig

DATA = course_task(n_train=256, n_test=128)


def make(seed):
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 2))


def weight_masks(net):
    return {q: get_mask(net[int(q[0])], "weight") for q in ("0.weight", "2.weight")}


@pytest.mark.parametrize("k", [0, 7])
def test_imp_rewinds_survivors_and_controls(k):
    seen = {}

    def inspect(seed, rnd, arm, net):
        if arm == "dense":
            seen["init"] = copy.deepcopy(net.state_dict())
            calls = []

            def snap(module, args):  # state before the (k+1)-th training step
                if module.training:
                    calls.append(1)
                    if len(calls) == k + 1:
                        seen["rewind"] = copy.deepcopy(module.state_dict())

            net.register_forward_pre_hook(snap)
        else:
            seen[(rnd, arm)] = (copy.deepcopy(net.state_dict()), weight_masks(net))

    cfg = LotteryConfig(
        rounds=2, rate=0.5, rewind=k, seeds=(3,), train=TrainConfig(steps=30, lr=1e-2)
    )
    res = find_tickets(make, DATA, cfg, before_train=inspect)
    target = seen["rewind"] if k else seen["init"]
    if k:
        assert not torch.equal(seen["rewind"]["0.weight"], seen["init"]["0.weight"])
    for rnd in (1, 2):
        state, masks = seen[(rnd, "ticket")]
        for q, m in masks.items():
            assert torch.equal(state[q][m], target[q][m])  # survivors = saved values
            assert bool((state[q][~m] == 0).all())
        assert torch.equal(state["0.bias"], target["0.bias"])
        # reinit: same masks, other values
        r_state, r_masks = seen[(rnd, "reinit")]
        assert all(torch.equal(r_masks[q], masks[q]) for q in masks)
        assert not torch.equal(r_state["0.weight"], state["0.weight"])
        # random: same per-layer counts, other masks, same rewound values
        p_state, p_masks = seen[(rnd, "random")]
        for q in masks:
            assert int(p_masks[q].sum()) == int(masks[q].sum())
            assert torch.equal(p_state[q][p_masks[q]], target[q][p_masks[q]])
        assert not torch.equal(p_masks["0.weight"], masks["0.weight"])
    # round 2's mask lies within round 1's (pruning never revives)
    m1, m2 = seen[(1, "ticket")][1], seen[(2, "ticket")][1]
    assert all(not bool((m2[q] & ~m1[q]).any()) for q in m1)
    total = 20 * 16 + 16 * 2
    assert [r["density"] for r in res.table()] == pytest.approx(
        [1.0, round(0.5 * total) / total, round(0.25 * total) / total]
    )


def test_result_json_roundtrip_and_summary(tmp_path):
    cfg = LotteryConfig(
        rounds=1, rate=0.2, seeds=(0, 1), controls=("random",), train=TrainConfig(steps=20)
    )
    lines = []
    res = find_tickets(make, DATA, cfg, on_round=lines.append)
    assert [(r.seed, r.round) for r in lines] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert res.arms() == ["ticket", "random"]
    path = res.save(tmp_path / "lottery.json")
    back = LotteryResult.load(path)
    assert back.to_dict() == json.loads(path.read_text()) == res.to_dict()
    tab = back.table()
    assert tab[1]["ticket"] == pytest.approx(
        sum(r.accuracy["ticket"] for r in res.rounds if r.round == 1) / 2
    )
    assert set(back.series()) == {"ticket", "random"}
    assert back.matching_density(tolerance=1.0) == tab[-1]["density"]
    assert back.matching_density(tolerance=-1.0) == 1.0
    # lowest within tolerance vs stop at the first round that is not
    fake = LotteryResult.from_dict(back.to_dict())
    fake.rounds = [
        type(back.rounds[0])(0, r, 0.5**r, {"ticket": acc})
        for r, acc in enumerate([0.80, 0.795, 0.70, 0.80, 0.60])
    ]
    assert fake.matching_density(tolerance=0.01) == 0.125
    assert fake.matching_density(tolerance=0.01, contiguous=True) == 0.5


def test_bad_config():
    with pytest.raises(ValueError, match=r"rewind iteration 500 is outside training.*< 100"):
        LotteryConfig(rewind=500, train=TrainConfig(steps=100))
    with pytest.raises(ValueError, match="rate must be in"):
        LotteryConfig(rate=1.5)
    with pytest.raises(ValueError, match="unknown scope 'net'"):
        LotteryConfig(scope="net")
    with pytest.raises(ValueError, match="unknown controls"):
        LotteryConfig(controls=("shuffle",))
    with pytest.raises(ValueError, match="rounds"):
        LotteryConfig(rounds=0)

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = nn.Parameter(torch.ones(2))

        def forward(self, x):
            return x * self.g

    no_reset = LotteryConfig(rounds=1, train=TrainConfig(steps=2))
    with pytest.raises(ValueError, match=r"cannot re-initialise 2 \(Scale.*reset_parameters"):
        find_tickets(lambda s: nn.Sequential(nn.Linear(20, 2), nn.ReLU(), Scale()), DATA, no_reset)


def test_old_import_path_still_works():
    # the experiment moved from sprig.prune to sprig.lottery; users' imports keep working
    import sprig
    import sprig.prune

    assert sprig.prune.find_tickets is find_tickets is sprig.find_tickets
    assert sprig.prune.LotteryConfig is LotteryConfig is sprig.LotteryConfig
    from sprig.prune import ARMS
    from sprig.prune import LotteryResult as Old

    assert Old is LotteryResult and ARMS == ("ticket", "reinit", "random")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sprig.prune.nothing  # noqa: B018
