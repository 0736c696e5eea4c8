"""compress/decompress of masked 1x1 convolutions; other convolutions stay dense, named."""

import pytest
import torch
from torch import nn

import sprig
from sprig.compress import CompressedConv1x1
from sprig.masks import LeftAloneWarning


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(24, 40, 1), (1, 24, 9, 7)),
        (nn.Conv2d(24, 40, 1, stride=2, padding=1), (3, 24, 9, 7)),
        (nn.Conv2d(24, 40, (1, 1), stride=(1, 3), bias=False, padding="valid"), (2, 24, 5, 8)),
        (nn.Conv1d(24, 40, 1, stride=3, padding=2), (2, 24, 11)),
        (nn.Conv1d(24, 40, 1), (24, 11)),  # unbatched
    ],
)
def test_1x1_outputs_equal_masked_dense(conv, shape):
    torch.manual_seed(0)
    if conv.bias is not None:
        nn.init.normal_(conv.bias)
    sprig.sparsify(conv, density=0.1)
    comp = sprig.compress(conv)
    assert isinstance(comp, CompressedConv1x1)
    assert comp.linear.values.numel() == int(conv.weight_mask.sum())  # nonzeros only
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(comp(x), conv(x), rtol=1e-5, atol=1e-5)
        back = sprig.decompress(comp)
        assert type(back) is type(conv) and back.stride == conv.stride
        assert torch.equal(back.weight_mask, conv.weight_mask)
        torch.testing.assert_close(back(x), conv(x))


def test_in_a_network_with_save_load(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 4, 1, stride=2))
    sprig.sparsify(net, density=0.3)
    comp = sprig.compress(net)
    x = torch.randn(2, 8, 6, 6)
    sprig.save(comp[2], tmp_path / "c.safetensors")
    again = sprig.load(tmp_path / "c.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(comp(x), net(x), rtol=1e-5, atol=1e-5)
        h = net[1](net[0](x))
        torch.testing.assert_close(again(h), net[2](h), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="8 input channels"):
        comp[0](torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize(
    ("conv", "why"),
    [
        (nn.Conv2d(8, 8, 3), r"Conv2d with kernel \(3, 3\): only 1x1"),
        (nn.Conv2d(8, 8, 1, groups=2), "groups=2: grouped and depthwise"),
        (nn.Conv2d(8, 8, 1, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
        (nn.Conv3d(8, 8, 1), "no compressed form for Conv3d"),
    ],
)
def test_other_convolutions_stay_masked_dense_and_are_named(conv, why):
    net = nn.Sequential(conv, nn.Flatten())
    sprig.sparsify(net, density=0.5)
    with pytest.warns(LeftAloneWarning, match=rf"0\.weight: .*{why}"):
        comp = sprig.compress(net)
    assert type(comp[0]) is type(conv) and sprig.masks.get_mask(comp[0], "weight") is not None
