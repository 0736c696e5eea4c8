"""Lottery-ticket mechanics in sprig.prune; the experiment is tested in tests/lottery."""

import pytest
import torch
from torch import nn

from sprig.masks import apply_mask, get_mask
from sprig.prune import imp_masks, random_masks_like, rewind


def make():
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 2))


def test_rewind_names_an_unknown_weight():
    with pytest.raises(ValueError, match="no prunable weight"):
        rewind(make(), {}, {"9.weight": torch.ones(2, 2, dtype=torch.bool)})


def test_imp_masks_stay_within_the_current_masks():
    torch.manual_seed(0)
    net = make()
    first = torch.rand(16, 20) < 0.5
    apply_mask(net[0], "weight", first, pattern="unstructured")
    masks = imp_masks(net, 0.25)
    assert set(masks) == {"0.weight", "2.weight"}
    assert not bool((masks["0.weight"] & ~first).any())  # a pruned weight never revives
    assert get_mask(net[0], "weight") is not None and torch.equal(get_mask(net[0], "weight"), first)


def test_random_masks_keep_per_layer_counts():
    masks = {"a": torch.rand(8, 8) < 0.3, "b": torch.rand(4, 5) < 0.6}
    rand = random_masks_like(masks, seed=1)
    assert {q: int(m.sum()) for q, m in rand.items()} == {q: int(m.sum()) for q, m in masks.items()}
    assert torch.equal(rand["a"], random_masks_like(masks, seed=1)["a"])


def test_rewind_restores_buffers_too():
    # BatchNorm's running statistics stayed at the fresh copy's values
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    for _ in range(5):
        m(torch.randn(16, 4) + 3)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    fresh = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    net = rewind(fresh, state, {"0.weight": torch.ones(8, 4, dtype=torch.bool)})
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked", "2.weight"):
        assert torch.equal(net.state_dict()[key], state[key]), key
