"""Hugging Face Conv1D (GPT-2's transposed linear): masked, pruned and summarised like Linear."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

import sprig
from sprig.masks import LeftAloneWarning, is_transposed_linear
from sprig.prune import StructuredPruner, prune


def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(
        n_layer=2, n_embd=32, n_head=4, vocab_size=64, n_positions=16, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


def _conv1d_names(model: torch.nn.Module) -> set[str]:
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, Conv1D)}


def test_gpt2_every_conv1d_is_masked_at_the_global_density():
    model = gpt2()
    with pytest.warns(LeftAloneWarning, match=r"transformer\.wpe\.weight: Embedding"):
        sprig.sparsify(model, density=0.3, distribution="uniform")
    masked = {mp.qualname for mp in sprig.masked_parameters(model)}
    assert _conv1d_names(model) <= masked  # before: only lm_head was masked
    assert len(_conv1d_names(model)) == 8
    assert sprig.density(model) == pytest.approx(0.3, abs=1e-4)
    rows = {r.tensor: r for r in sprig.summary(model).rows}
    assert rows["transformer.h.0.mlp.c_fc.weight"].shape == (32, 128)  # shown as stored
    assert rows["transformer.h.0.mlp.c_fc.weight"].density == pytest.approx(0.3, abs=1e-3)


def test_nm_groups_run_along_conv1d_inputs():
    layer = Conv1D(nf=12, nx=8)  # weight (8 inputs, 12 outputs)
    sprig.sparsify(layer, pattern="2:4")
    groups = layer.weight_mask.t().reshape(12, 2, 4).sum(-1)  # (out, in/4)
    assert bool((groups == 2).all())
    # 6 inputs: an N:M of 4 cannot tile them, however many outputs there are (12 would do)
    with pytest.raises(ValueError, match="6 inputs"):
        sprig.sparsify(Conv1D(nf=12, nx=6), pattern="2:4")


def test_row_pruning_keeps_whole_output_neurons_of_conv1d():
    layer = Conv1D(nf=10, nx=6)
    StructuredPruner(axis="row").prune(layer, 0.4)
    kept_outputs = layer.weight_mask.all(dim=0)  # a Conv1D output is a column of its weight
    assert int(kept_outputs.sum()) == 4
    assert torch.equal(layer.weight_mask.any(dim=0), kept_outputs)


def test_magnitude_pruning_reaches_conv1d_and_names_what_it_left():
    model = gpt2()
    with pytest.warns(LeftAloneWarning, match=r"(?s)magnitude pruning left 1 .*wpe"):
        prune(model, 0.5)
    for name in _conv1d_names(model):
        w = model.get_parameter(name)
        assert int(w.count_nonzero()) == w.numel() // 2


def test_conv1d_with_an_unexpected_layout_is_refused_unchanged():
    model = torch.nn.Sequential(Conv1D(nf=4, nx=6), torch.nn.Linear(4, 4))
    model[0].weight = torch.nn.Parameter(torch.randn(4, 6))  # (out, in): not Conv1D's layout
    with pytest.raises(ValueError, match=r"layout .* exclude it"):
        sprig.sparsify(model, density=0.5)
    assert not sprig.masks.is_sparse(model)  # nothing half-changed
    sprig.sparsify(model, density=0.5, exclude=["0"])  # the fix the message names
    assert {mp.qualname for mp in sprig.masked_parameters(model)} == {"1.weight"}
    assert not is_transposed_linear(torch.nn.Linear(2, 2))
