"""sprig's warnings point at the user's line, whichever sprig path raised them."""

import warnings

import pytest
import torch
from torch import nn

import sprig
from sprig.masks import LeftAloneWarning
from sprig.prune import make_pruner, prune


def with_embedding() -> nn.Module:
    return nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 4))


def caught(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return seen


@pytest.mark.parametrize(
    "call",
    [
        lambda: sprig.sparsify(with_embedding(), density=0.5),
        lambda: prune(with_embedding(), 0.5),  # two sprig frames more than the pruner
        lambda: make_pruner("magnitude").prune(with_embedding(), 0.5),
    ],
    ids=["sparsify", "prune", "pruner"],
)
def test_left_alone_warning_points_at_the_caller(call):
    seen = [w for w in caught(call) if w.category is LeftAloneWarning]
    assert len(seen) == 1
    assert seen[0].filename == __file__  # this test, not a module inside sprig


def test_other_warnings_point_at_the_caller():
    net = nn.Sequential(nn.Linear(4, 2))
    seen = caught(lambda: sprig.compress(net))  # no masks: nothing to compress
    assert [w.filename for w in seen if "nothing to compress" in str(w.message)] == [__file__]
    small = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 1))
    torch.nn.init.constant_(small[1].weight, 1e-3)  # global pruning empties the last layer
    seen = caught(lambda: prune(small, 0.5, scope="global"))
    assert [w.filename for w in seen if "left no weights" in str(w.message)] == [__file__]
