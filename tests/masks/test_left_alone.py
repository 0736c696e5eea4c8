"""Nothing skipped silently: weights sprig cannot mask are named once and listed by summary."""

import warnings

import pytest
import torch
from torch import nn

import sprig
from sprig.masks import LeftAloneWarning


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 20)
        self.head.weight = self.emb.weight  # tied, as language models do

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        return self.head(self.norm(self.attn(h, h, h)[0]))


def test_sparsify_warns_once_naming_each_weight_and_why():
    model = Tagger()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        sprig.sparsify(model, density=0.5)
    ours = [w for w in seen if issubclass(w.category, LeftAloneWarning)]
    assert len(ours) == 1
    text = str(ours[0].message)
    assert "attn.in_proj_weight: sprig does not know how MultiheadAttention" in text
    # the embedding is the head's weight, which is masked: not left alone; norms are not weights
    assert "emb.weight" not in text and "norm" not in text
    assert "attn.out_proj.weight" in {mp.qualname for mp in sprig.masked_parameters(model)}


def test_include_or_exclude_silences_what_the_user_chose():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeftAloneWarning)
        sprig.sparsify(Tagger(), density=0.5, include=["head"])
        sprig.sparsify(Tagger(), density=0.5, exclude=["attn"])
    with pytest.warns(LeftAloneWarning, match="weight"):
        sprig.sparsify(nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 2)), density=0.5)


def test_summary_lists_unmaskable_weights_at_density_one():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    with pytest.warns(LeftAloneWarning):
        sprig.sparsify(model, density=0.5)
    table = sprig.summary(model)
    rows = {r.tensor: r for r in table.rows}
    assert rows["0.weight"].density == 1.0 and rows["0.weight"].pattern == "not maskable"
    assert rows["1.weight"].nnz == 6
    assert table.nnz == 40 + 6 and table.numel == 40 + 12
    assert "not maskable" in str(table)


def test_compress_names_masked_layers_it_keeps_dense():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    sprig.sparsify(net, density=0.3)
    with pytest.warns(LeftAloneWarning, match=r"0\.weight: Conv2d with groups=2"):
        comp = sprig.compress(net)
    assert isinstance(comp[2], sprig.CompressedLinear)
    x = torch.randn(1, 2, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(comp(x), net(x))
