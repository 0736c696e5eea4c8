"""compress/decompress of Hugging Face Conv1D (GPT-2): outputs, layout, round trips."""

import torch
from transformers.pytorch_utils import Conv1D

import sprig
from sprig.compress import CompressedConv1D
from tests.masks.test_layouts import gpt2


def test_gpt2_compressed_matches_masked_dense_and_decompresses_to_conv1d():
    model = gpt2()
    sprig.sparsify(model, pattern="2:4")
    comp = sprig.compress(model)
    blocks = comp.transformer.h
    assert all(isinstance(b.attn.c_attn, CompressedConv1D) for b in blocks)
    assert all(isinstance(b.mlp.c_proj, CompressedConv1D) for b in blocks)
    assert blocks[0].mlp.c_fc.values.numel() == 32 * 128 // 2  # nonzeros only
    x = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        ref = model(x).logits
        torch.testing.assert_close(comp(x).logits, ref, rtol=1e-5, atol=1e-5)
        back = sprig.decompress(comp)
        layer = back.transformer.h[1].mlp.c_fc
        assert type(layer) is Conv1D
        assert torch.equal(layer.weight_mask, model.transformer.h[1].mlp.c_fc.weight_mask)
        torch.testing.assert_close(back(x).logits, ref, rtol=1e-5, atol=1e-5)


def test_batch_one_and_save_load(tmp_path):
    layer = Conv1D(nf=40, nx=24)
    torch.nn.init.normal_(layer.bias)
    sprig.sparsify(layer, density=0.2)
    comp = sprig.compress(layer)
    x = torch.randn(1, 24)
    with torch.no_grad():
        ref = x @ layer.weight + layer.bias
        torch.testing.assert_close(comp(x), ref)
        sprig.save(comp, tmp_path / "c.safetensors")
        again = sprig.load(tmp_path / "c.safetensors")
        assert type(again) is CompressedConv1D
        torch.testing.assert_close(again(x), ref)
        back = sprig.decompress(again)
        assert type(back) is Conv1D
        torch.testing.assert_close(back(x), ref)
