"""CompressedConv1x1: a masked 1x1 ``Conv1d``/``Conv2d`` reduced to its nonzeros.

A 1x1 convolution (groups 1) is a linear map over channels applied at every position:
``y[:, :, p] = W x[:, :, p] + b`` with ``W`` of shape ``(out, in)``. So it is stored and run as
a :class:`CompressedLinear` over the positions, which the kernel dispatcher sees as a batch of
``B * H * W`` rows and serves with the CSR or dense product from its measured break-even table.
Stride subsamples the input first; zero padding pads it (the border then holds the bias).

k x k kernels, grouped and depthwise convolutions, Conv3d and non-zero padding modes stay
masked-dense; ``compress`` names each in its ``LeftAloneWarning``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..masks import apply_mask, get_mask, mask_pattern
from ..nn import sprig_module
from ._api import CompressedModule, Uncompressible, register_compressor
from ._linear import CompressedLinear, compress_linear

_CONVS: dict[int, type[nn.Conv1d] | type[nn.Conv2d]] = {1: nn.Conv1d, 2: nn.Conv2d}


@sprig_module("CompressedConv1x1")
class CompressedConv1x1(CompressedModule):
    """An inference 1x1 convolution that stores only its nonzeros (CSR over channels).

    Made by ``sprig.compress(model)`` from a masked ``nn.Conv1d``/``nn.Conv2d`` with a 1x1
    kernel and groups 1; ``sprig.decompress`` gives back the masked convolution.

    Args:
        dims: 1 (``Conv1d``) or 2 (``Conv2d``).
        stride, padding: per spatial dimension, as the convolution's.
        linear: the :class:`CompressedLinear` config of the ``(out, in)`` channel map.

    Shapes:
        input ``(B, in, *spatial)`` or ``(in, *spatial)`` -> ``(B, out, *spatial_out)``.

    Example:
        >>> import sprig
        >>> conv = sprig.sparsify(nn.Conv2d(64, 32, 1), density=0.1)
        >>> fast = sprig.compress(conv)
        >>> type(fast).__name__, fast(torch.randn(1, 64, 8, 8)).shape
        ('CompressedConv1x1', torch.Size([1, 32, 8, 8]))
    """

    def __init__(
        self,
        dims: int,
        stride: list[int],
        padding: list[int],
        linear: dict[str, Any],
    ) -> None:
        super().__init__()
        if dims not in _CONVS:
            raise ValueError(f"dims must be 1 or 2, got {dims!r}")
        if len(stride) != dims or len(padding) != dims:
            raise ValueError(f"stride and padding need {dims} values, got {stride}, {padding}")
        if min(stride) < 1 or min(padding) < 0:
            raise ValueError(f"need stride >= 1 and padding >= 0, got {stride}, {padding}")
        self.dims = dims
        self.stride, self.padding = [int(s) for s in stride], [int(p) for p in padding]
        self.linear = CompressedLinear(**linear)

    def config(self) -> dict[str, Any]:
        return {
            "dims": self.dims,
            "stride": self.stride,
            "padding": self.padding,
            "linear": self.linear.config(),
        }

    def forward(self, x: Tensor) -> Tensor:
        d, n_in = self.dims, self.linear.in_features
        if x.dim() not in (d + 1, d + 2) or x.shape[-d - 1] != n_in:
            raise ValueError(
                f"CompressedConv1x1 ({d}-D, {n_in} input channels) got input of shape "
                f"{tuple(x.shape)}; pass (B, {n_in}, *{d} spatial sizes)"
            )
        if any(self.padding):
            # F.pad takes the last dimension first: (left, right) per spatial dimension
            x = F.pad(x, [p for p in reversed(self.padding) for _ in (0, 1)])
        if any(s > 1 for s in self.stride):
            index: tuple[Any, ...] = (Ellipsis, *(slice(None, None, s) for s in self.stride))
            x = x[index]
        y = self.linear(x.movedim(-d - 1, -1))  # (*, *spatial, out): positions are rows
        return y.movedim(-1, -d - 1)

    def decompress_module(self) -> nn.Module:
        """The masked-dense convolution: weight, bias, mask and pattern label."""
        lin = self.linear.decompress_module()
        assert isinstance(lin, nn.Linear)
        mask = get_mask(lin, "weight")
        assert mask is not None
        shape = (self.linear.out_features, self.linear.in_features) + (1,) * self.dims
        geometry: dict[str, Any] = {"stride": tuple(self.stride), "padding": tuple(self.padding)}
        conv: nn.Conv1d | nn.Conv2d = _CONVS[self.dims](
            self.linear.in_features,
            self.linear.out_features,
            1,
            bias=lin.bias is not None,
            **geometry,
        ).to(device=lin.weight.device, dtype=lin.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(lin.weight.reshape(shape))
            if lin.bias is not None and conv.bias is not None:
                conv.bias.copy_(lin.bias)
        pattern = mask_pattern(lin, "weight") or "custom"
        apply_mask(conv, "weight", mask.reshape(shape), pattern=pattern)
        return conv

    def extra_repr(self) -> str:
        return f"dims={self.dims}, stride={self.stride}, padding={self.padding}"


def compress_conv(module: nn.Module, backend: str = "auto", **others: Any) -> CompressedConv1x1:
    """A :class:`CompressedConv1x1` for a masked 1x1 ``Conv1d``/``Conv2d`` (groups 1).

    Raises:
        Uncompressible: any other convolution (``compress`` leaves it masked-dense, named).
    """
    assert isinstance(module, (nn.Conv1d, nn.Conv2d))
    kind, dims = type(module).__name__, len(module.kernel_size)
    if module.groups != 1:
        raise Uncompressible(
            f"{kind} with groups={module.groups}: grouped and depthwise convolutions stay "
            "masked-dense"
        )
    if any(k != 1 for k in module.kernel_size):
        raise Uncompressible(
            f"{kind} with kernel {tuple(module.kernel_size)}: only 1x1 convolutions have a "
            "compressed form so far; it runs masked-dense"
        )
    if module.padding_mode != "zeros":
        raise Uncompressible(f"{kind} with padding_mode={module.padding_mode!r} stays masked-dense")
    mask = get_mask(module, "weight")
    if mask is None:
        raise ValueError(f"{kind} has no sprig mask on its weight")
    # 'same' and 'valid' are both no padding for a 1x1 kernel
    padding = [0] * dims if isinstance(module.padding, str) else list(module.padding)
    weight = module.weight.detach()
    out_ch, in_ch = weight.shape[0], weight.shape[1]
    twin = nn.Linear(in_ch, out_ch, bias=module.bias is not None)
    twin = twin.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        twin.weight.copy_(weight.reshape(out_ch, in_ch))
        if module.bias is not None and twin.bias is not None:
            twin.bias.copy_(module.bias.detach())
    pattern = mask_pattern(module, "weight") or "custom"
    apply_mask(twin, "weight", mask.reshape(out_ch, in_ch), pattern=pattern)
    lin = compress_linear(twin, backend, **others)
    out = CompressedConv1x1(dims, list(module.stride), padding, lin.config()).to(weight.device)
    out.linear.load_state_dict(lin.state_dict())
    return out


for _conv in _CONVS.values():
    register_compressor(_conv)(compress_conv)
