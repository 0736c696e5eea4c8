import pytest
import torch
from torch import nn

import sprig
from sprig.masks import is_sparse


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(3, 8, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 6, 32),
        nn.ReLU(),
        nn.Linear(32, 4),
    )


@pytest.mark.parametrize("dist", ["uniform", "er", "erk"])
def test_global_density_exact(dist):
    net = _net()
    sprig.sparsify(net, density=0.2, distribution=dist, seed=0)
    total = sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight"))
    kept = sum(int(mp.mask.sum()) for mp in sprig.masked_parameters(net))
    assert kept == round(0.2 * total)
    assert sprig.density(net) == pytest.approx(kept / total)


def test_include_exclude():
    net = _net()
    sprig.sparsify(net, density=0.5, include=["3.*", "5"], distribution="uniform")
    assert {mp.qualname for mp in sprig.masked_parameters(net)} == {"3.weight", "5.weight"}
    net = _net()
    sprig.sparsify(net, density=0.5, exclude=["0"], distribution="uniform")
    assert {mp.qualname for mp in sprig.masked_parameters(net)} == {"3.weight", "5.weight"}


def test_seed_reproducible_and_resparsify_clean():
    a, b = _net(), _net()
    sprig.sparsify(a, density=0.3, seed=7)
    sprig.sparsify(b, density=0.3, seed=7)
    assert all(
        torch.equal(x.mask, y.mask)
        for x, y in zip(sprig.masked_parameters(a), sprig.masked_parameters(b))
    )
    sprig.sparsify(a, density=0.1, seed=8)
    assert sprig.density(a) == pytest.approx(0.1, abs=1e-3)
    assert sum(1 for k in a.state_dict() if k.endswith("_mask")) == 3


def test_nm_and_structured():
    net = nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 4))
    sprig.sparsify(net, pattern="2:4")
    assert sprig.density(net) == pytest.approx(0.5)
    assert {mp.pattern for mp in sprig.masked_parameters(net)} == {"2:4"}
    net = nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 4))
    sprig.sparsify(net, density=0.5, pattern="row", distribution="uniform")
    w = net[0].weight_mask
    assert bool((w.all(1) == w.any(1)).all())


def test_nm_misfit_leaves_model_unchanged():
    net = nn.Sequential(nn.Linear(16, 8), nn.Linear(6, 4))
    with pytest.raises(ValueError, match=r"1.weight: .*\(4, 6\)"):
        sprig.sparsify(net, pattern="2:4")
    assert not is_sparse(net)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"density": 0.0}, r"\(0, 1\]"),
        ({"density": 2}, r"\(0, 1\]"),
        ({"density": 0.5, "distribution": "zipf"}, "valid names are"),
        ({"density": 0.5, "pattern": "triangle"}, "valid patterns"),
        ({"density": 0.5, "include": ["nothing*"]}, "nothing to sparsify"),
        ({}, "needs a density"),
    ],
)
def test_bad_input(kwargs, match):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises((ValueError, TypeError), match=match):
        sprig.sparsify(net, **kwargs)
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_summary_and_bake():
    net = _net()
    sprig.sparsify(net, density=0.25, distribution="uniform")
    table = sprig.summary(net)
    assert [r.tensor for r in table.rows] == ["0.weight", "3.weight", "5.weight"]
    assert table.density == pytest.approx(0.25, abs=0.01)
    text = str(table)
    assert "unstructured" in text and "3.weight" in text and "32x48" in text
    sprig.bake(net)
    assert not is_sparse(net)
    assert sprig.density(net) == pytest.approx(table.density)  # zeros stay baked


def test_summary_and_density_count_compressed_layers():
    mlp = sprig.SparseMLP([8, 16, 2], densities=[0.5, 0.25], seed=0)
    rnn = sprig.SparseRNN(4, 8, cell="gru", density=0.3, seed=0)
    for model in (mlp, rnn):
        masked = sprig.summary(model)
        small = sprig.summary(sprig.compress(model))
        assert [(r.tensor, r.shape, r.nnz) for r in small.rows] == [
            (r.tensor, r.shape, r.nnz) for r in masked.rows
        ]
        assert small.nnz == masked.nnz > 0
        assert sprig.density(sprig.compress(model)) == pytest.approx(sprig.density(model))
