"""Direct sparse convolution on the CPU: each output channel sums its nonzeros' shifted planes.

A ``Conv1d``/``Conv2d`` weight ``(out, in, *kernel)`` is stored as CSR over ``(out, in * kh * kw)``
("CSR over patches": a column is one ``(c, ky, kx)`` tap). For an input padded once, tap
``(c, ky, kx)`` of output channel ``o`` adds ``w * x[c, oy*s + ky*d, ox*s + kx*d]`` to every
output position; with stride 1 that is the input plane shifted by a fixed offset, so the
compiled loop (``_compiled.sparse_conv``) adds ``w * x[off + i]`` over one contiguous run of
positions ``i = oy * Wp + ox`` ("wide" rows over the input's row pitch; the ``Wp - Wo`` extra
columns are discarded), which vectorizes. A stride ``s > 1`` becomes stride 1 by splitting the
padded input into its ``s x s`` polyphase planes (``x[c, s*i + py, s*j + px]``): tap ``ky`` then
reads phase ``(ky*d) % s`` shifted by ``(ky*d) // s``. Dilation only changes the offsets.

This is the direct sparse convolution of Park et al., "Faster CNNs with Direct Sparse
Convolutions and Guided Pruning" (ICLR 2017), whose "virtual padding" is the wide rows here.

Work is ``nnz * positions`` multiply-adds against the dense ``out * in * kh * kw * positions``;
``benchmarks/bench_conv.py`` measures it against torch's convolution (oneDNN) and writes the
break-even densities the dispatcher reads (``_conv_breakeven``). The slow reference beside it,
:func:`sparse_conv_reference`, scatters the nonzeros into a dense weight and calls torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._csr import check_csr_parts
from ._threads import MIN_NNZ_PER_THREAD, row_parts, run_parts

# output positions per row tile (whole rows, at least one): every output channel runs over one
# tile before the next, so the stretch of each input plane the tile reads stays in L2 for all
# of them (ResNet's 56x56 planes at 224x224 inputs are one tile of 3248)
TILE_POSITIONS = 4096

# flat inputs up to this many floats take int32 offsets (int64 past it)
INT32_OFFSETS = 2**31 - 1

Pairs = list[tuple[int, int]]


class _Plan(NamedTuple):
    """What one input size needs: output and phase-plane sizes, offsets, thread cuts, pads."""

    ho: int
    wo: int
    hq: int
    wq: int
    off: Any  # (nnz,) int32 or int64: each nonzero's start in the flat input
    bounds: Any  # output-channel cuts, one part per thread
    pads: list[int]  # F.pad's (left, right, top, bottom)


def conv_padding(
    padding: str | int | Sequence[int], kernel: Sequence[int], dilation: Sequence[int]
) -> Pairs:
    """``(before, after)`` zero padding per spatial dimension, as torch pads.

    ``'same'`` pads ``d * (k - 1)`` in all, the smaller half before (torch's rule for even
    kernels); ``'valid'`` pads nothing.

    Example:
        >>> conv_padding("same", (4, 3), (1, 2))
        [(1, 2), (2, 2)]
    """
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [(t // 2, t - t // 2) for t in total]
    if isinstance(padding, str):
        raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
    pads = [padding] * len(kernel) if isinstance(padding, int) else list(padding)
    if len(pads) != len(kernel) or min(pads) < 0:
        raise ValueError(f"need {len(kernel)} paddings >= 0, got {padding!r}")
    return [(int(p), int(p)) for p in pads]


def _pad_args(padding: Pairs) -> list[int]:
    # F.pad takes the last dimension first
    return [p for pair in reversed(padding) for p in pair]


def sparse_conv_reference(
    x: Tensor,
    crow: Tensor,
    col: Tensor,
    values: Tensor,
    weight_shape: Sequence[int],
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
) -> Tensor:
    """The slow, obviously-correct sparse convolution: the nonzeros scattered into a dense
    weight ``weight_shape = (out, in, *kernel)``, ``x`` zero-padded, torch's convolution."""
    out_ch = weight_shape[0]
    rows = torch.repeat_interleave(torch.arange(out_ch), (crow[1:] - crow[:-1]).long())
    w = torch.zeros(out_ch, int(np.prod(weight_shape[1:])), dtype=values.dtype)
    w[rows, col.long()] = values
    conv = F.conv1d if len(weight_shape) == 3 else F.conv2d
    xp = F.pad(x, _pad_args(padding))
    return conv(xp, w.reshape(*weight_shape), bias, stride=tuple(stride), dilation=tuple(dilation))


class SparseConv:
    """A sparse ``Conv1d``/``Conv2d`` (groups 1, zero padding) on the CPU, prepared once.

    The arrays are shared with the tensors given (no copies); they must stay unchanged while
    this object is used (:class:`sprig.compress.CompressedConv` rebuilds it when they change).

    Args:
        crow: ``(out + 1,)`` row pointers of the CSR weight ``(out, in * prod(kernel))``.
        col: ``(nnz,)`` column indices: the tap ``c * kh * kw + ky * kw + kx``.
        values: ``(nnz,)`` float32 or float64.
        weight_shape: ``(out, in, k)`` or ``(out, in, kh, kw)``.
        stride, dilation: per spatial dimension.
        padding: ``(before, after)`` per spatial dimension (:func:`conv_padding`).
        validate: check the arrays (the compiled loop checks no bounds).

    Example:
        >>> w = torch.zeros(2, 1, 3, 3); w[0, 0, 1, 1] = 2.0
        >>> from sprig.kernels import to_csr
        >>> c = to_csr(w.reshape(2, 9))
        >>> conv = SparseConv(c.crow_indices(), c.col_indices(), c.values(), (2, 1, 3, 3),
        ...                   [1, 1], [(1, 1), (1, 1)], [1, 1])
        >>> conv(torch.ones(1, 1, 4, 4))[0, :, 0, 0].tolist()
        [2.0, 0.0]
    """

    def __init__(
        self,
        crow: Tensor,
        col: Tensor,
        values: Tensor,
        weight_shape: Sequence[int],
        stride: Sequence[int],
        padding: Pairs,
        dilation: Sequence[int],
        validate: bool = True,
    ) -> None:
        if values.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"SparseConv runs float32 and float64 values, got {values.dtype}")
        if values.device.type != "cpu" or crow.device.type != "cpu" or col.device.type != "cpu":
            raise ValueError("SparseConv runs on CPU tensors; on CUDA use the dense convolution")
        dims = len(weight_shape) - 2
        if dims not in (1, 2) or not len(stride) == len(padding) == len(dilation) == dims:
            raise ValueError(
                f"SparseConv needs a 3-D or 4-D weight shape and stride, padding, dilation per "
                f"spatial dimension, got {tuple(weight_shape)}, {stride}, {padding}, {dilation}"
            )
        self.weight_shape = tuple(int(s) for s in weight_shape)
        self.out_channels, self.in_channels = self.weight_shape[:2]
        taps = int(np.prod(self.weight_shape[2:]))
        if validate:
            shape = (self.out_channels, self.in_channels * taps)
            check_csr_parts(crow, col, values, shape, "SparseConv")
        self.dims = dims
        # 1-D runs as 2-D with one row: kernel (1, k), stride (1, s)...
        pad1: Pairs = [(0, 0)]
        self._kernel = ([1] * (2 - dims)) + list(self.weight_shape[2:])
        strides = [1] * (2 - dims) + [int(s) for s in stride]
        # a dimension of kernel size 1 subsamples the padded input instead (no polyphase copy
        # of the rows or columns it never reads)
        self._sub = [s if k == 1 else 1 for k, s in zip(self._kernel, strides)]
        self._stride = [1 if k == 1 else s for k, s in zip(self._kernel, strides)]
        self._dilation = [1] * (2 - dims) + [int(d) for d in dilation]
        self._padding = pad1 * (2 - dims) + [(int(a), int(b)) for a, b in padding]
        if min(strides) < 1 or min(self._dilation) < 1 or min(min(p) for p in padding) < 0:
            raise ValueError(f"need stride, dilation >= 1 and padding >= 0, got {stride}, "
                             f"{dilation}, {padding}")  # fmt: skip
        self.nnz = values.numel()
        self.dtype = values.dtype
        self._crow = crow.detach().to(torch.int64).numpy()
        col64 = col.detach().to(torch.int64).numpy()
        kh, kw = self._kernel
        # the tap of each nonzero: (channel, row, column) of the kernel
        self._tap = (col64 // (kh * kw), (col64 // kw) % kh, col64 % kw)
        self._val = values.detach().contiguous().numpy()
        self._zeros = np.zeros(self.out_channels, dtype=self._val.dtype)
        self._plans: dict[tuple[int, ...], _Plan] = {}

    def _plan(self, h: int, w: int, batch: int, threads: int) -> _Plan:
        """Per input size: output size, phase plane size, offsets, thread cuts, paddings."""
        key = (h, w, batch, threads)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        (sy, sx), (dy, dx), (kh, kw) = self._stride, self._dilation, self._kernel
        hp = -(-(h + sum(self._padding[0])) // self._sub[0])  # after padding, subsampling
        wp = -(-(w + sum(self._padding[1])) // self._sub[1])
        ho, wo = (hp - dy * (kh - 1) - 1) // sy + 1, (wp - dx * (kw - 1) - 1) // sx + 1
        if ho < 1 or wo < 1:
            raise ValueError(
                f"SparseConv: input of spatial size {(h, w)[2 - self.dims :]} is smaller than the "
                f"dilated kernel {tuple(self._kernel)[2 - self.dims :]} after padding"
            )
        hq, wq = -(-hp // sy), -(-wp // sx)  # the polyphase planes (the input itself at stride 1)
        c, ky, kx = self._tap
        py, qy = (ky * dy) % sy, (ky * dy) // sy
        px, qx = (kx * dx) % sx, (kx * dx) // sx
        off = ((py * sx + px) * self.in_channels + c) * (hq * wq) + qy * wq + qx
        # a part must be worth waking a thread: MIN_NNZ_PER_THREAD multiply-adds
        per_nnz = batch * ho * wq
        bounds = row_parts(self._crow, threads, max(1, -(-MIN_NNZ_PER_THREAD // per_nnz)))
        pads = [self._padding[1][0], self._padding[1][1] + wq * sx - wp]
        pads += [self._padding[0][0], self._padding[0][1] + hq * sy - hp]
        from . import _compiled as nb

        # int32 offsets where the flat input allows (8 bytes a nonzero with its value, not 12:
        # in a whole network the nonzeros stream from L3 at every call)
        size = sy * sx * self.in_channels * hq * wq + nb.CONV_BLOCK
        off = np.ascontiguousarray(off, dtype=np.int32 if size <= INT32_OFFSETS else np.int64)
        plan = _Plan(ho, wo, hq, wq, off, bounds, pads)
        if len(self._plans) > 16:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _flat_input(self, x4: Tensor, hq: int, wq: int, pads: list[int]) -> Any:
        """``x4`` (B, C, H, W) zero-padded, subsampled and split into polyphase planes, flat:
        (B, sy * sx * C * hq * wq + CONV_BLOCK), the last floats zero (the compiled loop's
        blocks read up to CONV_BLOCK past the last position)."""
        from . import _compiled as nb

        batch = x4.shape[0]
        (sy, sx), (s0, s1) = self._stride, self._sub
        size = sy * sx * self.in_channels * hq * wq
        if sy == sx == 1:  # the input straight into the zeroed buffer: one copy
            # (in numpy: a few microseconds less per call than torch's indexing). Padded row
            # j * s0 is input row j * s0 - top: rows from j = ceil(top / s0) are the input's
            # rows from j * s0 - top on, every s0-th (likewise columns).
            flat = np.zeros((batch, size + nb.CONV_BLOCK), dtype=self._val.dtype)
            planes = flat[:, :size].reshape(batch, self.in_channels, hq, wq)
            j, i = -(-pads[2] // s0), -(-pads[0] // s1)
            src = x4.numpy()[:, :, j * s0 - pads[2] :: s0, i * s1 - pads[0] :: s1]
            planes[:, :, j : j + src.shape[2], i : i + src.shape[3]] = src
            return flat
        xp = F.pad(x4, pads)[..., ::s0, ::s1]  # strides > 1: polyphase planes
        buf = x4.new_empty(batch, size + nb.CONV_BLOCK)
        buf[:, size:] = 0
        # (B, C, hq, sy, wq, sx) -> (B, sy, sx, C, hq, wq)
        phases = xp.reshape(batch, self.in_channels, hq, sy, wq, sx).permute(0, 3, 5, 1, 2, 4)
        buf[:, :size].view(batch, sy, sx, self.in_channels, hq, wq).copy_(phases)
        return buf.numpy()

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """The convolution of a dense CPU input ``(B, in, *spatial)``, no gradient."""
        from . import _compiled as nb

        d = self.dims
        if (
            x.dim() != d + 2
            or x.shape[1] != self.in_channels
            or x.dtype != self.dtype
            or x.device.type != "cpu"
        ):
            raise ValueError(
                f"SparseConv: input of shape {tuple(x.shape)}, dtype {x.dtype} on {x.device} "
                f"does not fit a {self.dtype} CPU convolution with {self.in_channels} input "
                f"channels: pass (B, {self.in_channels}, *{d} spatial sizes)"
            )
        if bias is not None and tuple(bias.shape) != (self.out_channels,):
            raise ValueError(
                f"SparseConv: bias of shape {tuple(bias.shape)} does not fit "
                f"{self.out_channels} outputs: pass a ({self.out_channels},) bias or None"
            )
        batch = x.shape[0]
        x4 = x.detach().reshape(batch, self.in_channels, *([1] * (2 - d)), *x.shape[2:])
        h, w = x4.shape[2], x4.shape[3]
        ho, wo, hq, wq, off, bounds, pads = self._plan(h, w, max(batch, 1), torch.get_num_threads())
        if batch == 0:  # nothing to convolve (the plan above still checks the sizes)
            return x.new_zeros(0, self.out_channels, *((ho, wo) if d == 2 else (wo,)))
        xn = self._flat_input(x4, hq, wq, pads)
        y = torch.empty(batch, self.out_channels, ho, wo, dtype=self.dtype)
        yn = y.numpy()
        b = self._zeros if bias is None else bias.detach().to(self.dtype).contiguous().numpy()
        args = (self._crow, off, self._val, xn, b, yn, wq, max(1, TILE_POSITIONS // wq))
        run_parts(
            lambda parts: nb.sparse_conv_parallel(*args, parts),
            lambda: nb.sparse_conv(*args),
            bounds,
        )
        return y if d == 2 else y.reshape(batch, self.out_channels, wo)
