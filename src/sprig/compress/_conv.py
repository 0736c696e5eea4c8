"""Compressed convolutions: masked ``Conv1d``/``Conv2d`` (groups 1) reduced to their nonzeros.

``compress`` makes a :class:`CompressedConv` of every such convolution, 1x1 included: the
nonzeros as CSR over ``(out, in * kh * kw)``, run by the direct sparse convolution
(:class:`sprig.kernels.SparseConv`) or torch's dense one, per call, from the break-even table
``benchmarks/bench_conv.py`` measured; any stride, zero padding (``'same'``, ``'valid'``) and
dilation.

:class:`CompressedConv1x1` is what ``compress`` made of 1x1 convolutions before (a
:class:`CompressedLinear` over positions, whose dispatcher never measured convolutions and whose
dense path reshapes the input); files saved with it still load and run.

Grouped and depthwise convolutions, Conv3d and non-zero padding modes stay masked-dense;
``compress`` names each in its ``LeftAloneWarning``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import (
    SparseConv,
    check_layer_input,
    choose_conv,
    conv_padding,
    to_csr,
)
from ..kernels._dispatch import Plan, check_backend
from ..kernels._warm import compiled_ready
from ..masks import StoredWeight, apply_mask, get_mask, mask_pattern
from ..nn import sprig_module
from ._api import CompressedModule, Uncompressible, register_compressor
from ._csr_module import CSRModule
from ._linear import CompressedLinear

_CONVS: dict[int, type[nn.Conv1d] | type[nn.Conv2d]] = {1: nn.Conv1d, 2: nn.Conv2d}


@sprig_module("CompressedConv1x1")
class CompressedConv1x1(CompressedModule):
    """An inference 1x1 convolution that stores only its nonzeros (CSR over channels).

    A 1x1 convolution (groups 1) is a linear map over channels applied at every position:
    ``y[:, :, p] = W x[:, :, p] + b``, run as a :class:`CompressedLinear` over the positions.
    Stride subsamples the input first; zero padding pads it (the border then holds the bias).
    ``compress`` makes :class:`CompressedConv` now; this class loads files saved before.
    ``sprig.decompress`` gives back the masked convolution.

    Args:
        dims: 1 (``Conv1d``) or 2 (``Conv2d``).
        stride, padding: per spatial dimension, as the convolution's.
        linear: the :class:`CompressedLinear` config of the ``(out, in)`` channel map.

    Shapes:
        input ``(B, in, *spatial)`` or ``(in, *spatial)`` -> ``(B, out, *spatial_out)``.

    Example:
        >>> import sprig
        >>> lin = sprig.compress(sprig.sparsify(nn.Linear(64, 32), density=0.1))
        >>> conv = CompressedConv1x1(2, [1, 1], [0, 0], lin.config())
        >>> _ = conv.linear.load_state_dict(lin.state_dict())
        >>> conv(torch.randn(1, 64, 8, 8)).shape
        torch.Size([1, 32, 8, 8])
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
        check_layer_input(x, "CompressedConv1x1")
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


@sprig_module("CompressedConv")
class CompressedConv(CSRModule):
    """A k x k convolution that stores, runs and trains only its nonzeros.

    Made by ``sprig.compress(model)`` from a masked ``nn.Conv1d``/``nn.Conv2d`` (groups 1, zero
    padding); ``sprig.decompress`` gives back the masked convolution. The nonzeros are the
    trainable parameter ``values`` ``(nnz,)``; the structure is CSR over ``(out, in * kh * kw)``
    in two buffers (``crow``, ``col``: column ``c * kh * kw + ky * kw + kx``). An inference call
    (no gradient wanted) asks the dispatcher (:func:`sprig.kernels.choose_conv`) for the direct
    sparse kernel (:class:`sprig.kernels.SparseConv`, CPU float32/float64) or torch's dense
    convolution over a dense copy of the weight (kept while used; ``drop_dense()`` frees it). A
    call that wants gradients scatters the values into a dense weight inside autograd and runs
    torch's convolution: the values' gradient is the masked-dense one at the nonzeros.
    Mask updaters (RigL, SET, DeepR) and pruners rewire it in place through the
    :class:`sprig.masks.CompressedWeight` protocol (:class:`CSRModule`): RigL grows by the
    gradient of that dense weight, recorded on the steps that ask for it, so it makes the
    choices it makes on the masked convolution.

    Args:
        dims: 1 (``Conv1d``) or 2 (``Conv2d``).
        in_channels, out_channels: channels.
        kernel_size, stride, dilation: per spatial dimension.
        padding: per spatial dimension, or ``"same"``/``"valid"`` (as the convolution's).
        nnz: number of stored weights.
        bias: whether the convolution has a bias.
        dtype: dtype name of the values.
        backend: ``"auto"`` (the dispatcher), ``"csr"`` (the sparse kernel) or ``"dense"``.
        source: the masked convolution's pattern label (set by ``compress``).

    Shapes:
        input ``(B, in, *spatial)`` or ``(in, *spatial)`` -> ``(B, out, *spatial_out)``.

    Example:
        >>> import sprig
        >>> conv = sprig.sparsify(nn.Conv2d(16, 32, 3, padding=1), density=0.1)
        >>> fast = sprig.compress(conv)
        >>> type(fast).__name__, fast.values.numel(), fast(torch.randn(1, 16, 8, 8)).shape
        ('CompressedConv', 461, torch.Size([1, 32, 8, 8]))
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: list[int],
        stride: list[int],
        padding: str | list[int],
        dilation: list[int],
        nnz: int,
        bias: bool = True,
        dtype: str = "float32",
        backend: str = "auto",
        source: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_backend(backend)
        if dims not in _CONVS:
            raise ValueError(f"dims must be 1 or 2, got {dims!r}")
        for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if len(v) != dims or min(v) < 1:
                raise ValueError(f"{name} needs {dims} values >= 1, got {v!r}")
        taps = int(torch.tensor(kernel_size).prod())
        if min(in_channels, out_channels) < 1 or not 0 <= nnz <= out_channels * in_channels * taps:
            raise ValueError(
                f"need channels >= 1 and 0 <= nnz <= out*in*taps, got in={in_channels}, "
                f"out={out_channels}, kernel={kernel_size}, nnz={nnz}"
            )
        self.pads = conv_padding(padding, kernel_size, dilation)  # raises on bad padding
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride 1 (as torch), got {stride}")
        self.dims, self.in_channels, self.out_channels = dims, in_channels, out_channels
        self.kernel_size = [int(k) for k in kernel_size]
        self.stride, self.dilation = [int(s) for s in stride], [int(d) for d in dilation]
        self.padding = padding if isinstance(padding, str) else [int(p) for p in padding]
        self.backend = backend
        self.source = source or {"pattern": "custom"}
        self.taps = taps
        vdt = getattr(torch, dtype)
        self._setup_csr(
            out_channels, nnz, vdt, torch.int32, torch.int32, out_channels if bias else None
        )

    @property
    def dense_shape(self) -> tuple[int, ...]:
        """The shape of the convolution's weight: ``(out, in, *kernel)``."""
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def weight_shape(self) -> tuple[int, int]:
        """``(out, in * kh * kw)``: the 2-D view of the CSR (a row-major flat position is the
        same in both shapes)."""
        return (self.out_channels, self.in_channels * self.taps)

    @property
    def density(self) -> float:
        return self.nnz / (self.out_channels * self.in_channels * self.taps)

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        pattern = self.source.get("pattern") or "custom"
        return [StoredWeight("weight", self.dense_shape, self.values.numel(), pattern)]

    def config(self) -> dict[str, Any]:
        return {
            "dims": self.dims,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "nnz": self.nnz,
            "bias": self.bias is not None,
            "dtype": self.dtype_name,
            "backend": self.backend,
            "source": self.source,
        }

    # ---- derived forms, cached by CSRModule until the buffers or values change -------------
    def kernel(self) -> SparseConv:
        """The direct sparse convolution over the buffers (validated once per change)."""

        def make() -> SparseConv:
            return SparseConv(
                self.crow, self.col, self.values.detach(), self.dense_shape,
                self.stride, self.pads, self.dilation, validate=False,
            )  # fmt: skip

        return self._cached("kernel", make)

    def dense_weight(self) -> Tensor:
        """The masked-dense weight ``(out, in, *kernel)`` (cached while the dense path is used)."""
        shape = self.dense_shape
        return self._cached("dense", lambda: self.scatter(self.values.detach()).view(shape))

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        check_layer_input(x, "CompressedConv")
        d, n_in = self.dims, self.in_channels
        if x.dim() not in (d + 1, d + 2) or x.shape[-d - 1] != n_in:
            raise ValueError(
                f"CompressedConv ({d}-D, {n_in} input channels) got input of shape "
                f"{tuple(x.shape)}; pass (B, {n_in}, *{d} spatial sizes)"
            )
        spatial = tuple(x.shape[-d:])
        reach = [dl * (k - 1) + 1 for k, dl in zip(self.kernel_size, self.dilation)]
        if any(n + sum(p) < r for n, p, r in zip(spatial, self.pads, reach)):
            # one message on every path (torch's own error on the dense one)
            raise ValueError(
                f"CompressedConv: input of spatial size {spatial} is smaller than the dilated "
                f"kernel {tuple(reach)} after padding {self.pads}"
            )
        unbatched = x.dim() == d + 1
        if unbatched:
            x = x.unsqueeze(0)
        params = self._parameters
        v, bias = params["values"], params["bias"]
        assert v is not None
        if x.dtype != v.dtype:
            raise TypeError(
                f"CompressedConv: input dtype {x.dtype} differs from weight dtype {v.dtype}; "
                f"convert one (x.to({v.dtype}))"
            )
        if torch.is_grad_enabled() and (
            v.requires_grad or x.requires_grad or (bias is not None and bias.requires_grad)
        ):
            # a dense weight built from the values, differentiable in them: the values'
            # gradient is the masked-dense one at the nonzeros, and the dense weight's own
            # gradient is the dense gradient RigL grows by (recorded under dense_gradients;
            # a sparse backward here would have to keep this path on capture steps)
            w = self.scatter(v).view(self.dense_shape)
            if self._capture and w.requires_grad:
                w.register_hook(self._record)
            y = self._dense(x, w, bias)
            if not self._capture:
                self._forget_record_on_backward(y)
        else:
            if bias is not None and bias.requires_grad:
                bias = bias.detach()  # type: ignore[assignment]
            plan = self._plan(tuple(x.shape[2:]), v)
            if plan.kernel == "csr" and _kernel_fits(x, v) and x.shape[0] > 0:
                if compiled_ready():
                    y = self.kernel()(x, bias)
                else:  # numba warming up (kernels._warm): a dense weight that is not kept
                    y = self._dense(x, self.scatter(v.detach()).view(self.dense_shape), bias)
            else:
                y = self._dense(x, self.dense_weight(), bias)
        return y.squeeze(0) if unbatched else y

    def _dense(self, x: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
        conv = F.conv1d if self.dims == 1 else F.conv2d
        if all(a == b for a, b in self.pads):
            pad: Any = tuple(a for a, _ in self.pads)
        else:  # 'same' with an even kernel: more padding after than before
            x, pad = F.pad(x, [p for pair in reversed(self.pads) for p in pair]), 0
        return conv(x, w, bias, stride=self.stride, padding=pad, dilation=self.dilation)

    def _choose(self, spatial: tuple[int, ...], v: Tensor) -> Plan:
        positions = 1
        for n, k, s, dl, (a, b) in zip(
            spatial, self.kernel_size, self.stride, self.dilation, self.pads
        ):
            positions *= max(0, (n + a + b - dl * (k - 1) - 1) // s + 1)
        channels = (self.out_channels, self.in_channels)
        return choose_conv(
            self.density, channels, positions, self.taps, v.dtype, v.device, self.backend
        )

    # ---- CompressedWeight protocol (sprig.masks; the rest in CSRModule) ----------------------
    def _record(self, grad: Tensor) -> None:
        # the passes of one capture block sum (gradient accumulation), as a masked weight's
        # dense gradient does
        g = grad.detach().reshape(self.weight_shape())
        if self._grad_record:
            self._grad_record[0] += g
        else:
            self._grad_record.append(g.clone())

    def dense_grad_rows(self, start: int, stop: int) -> Tensor | None:
        """Rows of the dense weight gradient of the recorded passes: ``(stop - start, in * kh *
        kw)``, the gradient of the full ``(out, in, *kernel)`` weight that each training step's
        dense convolution computes anyway."""
        if not self._grad_record:
            return None
        g: Tensor = self._grad_record[0]
        return g[start:stop]

    def decompress_module(self) -> nn.Module:
        """The masked-dense convolution: weight, bias, mask and pattern label."""
        weight = self.dense_weight().clone()
        mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
        mask[self.active_flat()] = True
        self.drop_dense()
        geometry: dict[str, Any] = {
            "stride": tuple(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else tuple(self.padding),
            "dilation": tuple(self.dilation),
        }
        conv: nn.Conv1d | nn.Conv2d = _CONVS[self.dims](
            self.in_channels,
            self.out_channels,
            tuple(self.kernel_size),  # type: ignore[arg-type]
            bias=self.bias is not None,
            **geometry,
        ).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        apply_mask(
            conv, "weight", mask.view(weight.shape), pattern=self.source.get("pattern") or "custom"
        )
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"nnz={self.nnz}, density={self.density:.3g}, backend={self.backend}"
        )


def _kernel_fits(x: Tensor, values: Tensor) -> bool:
    """Whether :class:`SparseConv` serves this call: CPU float32/float64."""
    return values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64)


def compress_conv(module: nn.Module, backend: str = "auto", **_others: Any) -> CompressedConv:
    """A :class:`CompressedConv` for a masked ``Conv1d``/``Conv2d`` with groups 1 and zero
    padding (any kernel size, stride, padding and dilation).

    Options meant for other converters (``compress`` passes all options to all) are ignored.

    Raises:
        Uncompressible: any other convolution (``compress`` leaves it masked-dense, named).
    """
    assert isinstance(module, (nn.Conv1d, nn.Conv2d))
    kind = type(module).__name__
    if module.groups != 1:
        raise Uncompressible(
            f"{kind} with groups={module.groups}: grouped and depthwise convolutions stay "
            "masked-dense"
        )
    if module.padding_mode != "zeros":
        raise Uncompressible(f"{kind} with padding_mode={module.padding_mode!r} stays masked-dense")
    mask = get_mask(module, "weight")
    if mask is None:
        raise ValueError(f"{kind} has no sprig mask on its weight")
    check_backend(backend)
    weight = module.weight.detach()
    out_ch = weight.shape[0]
    csr = to_csr(weight.reshape(out_ch, -1), mask.reshape(out_ch, -1))
    padding = module.padding if isinstance(module.padding, str) else list(module.padding)
    out = CompressedConv(
        len(module.kernel_size),
        module.in_channels,
        out_ch,
        list(module.kernel_size),
        list(module.stride),
        padding,
        list(module.dilation),
        int(csr.values().numel()),
        bias=module.bias is not None,
        dtype=str(weight.dtype).removeprefix("torch."),
        backend=backend,
        source={"pattern": mask_pattern(module, "weight") or "custom"},
    ).to(weight.device)
    with torch.no_grad():
        out.crow.copy_(csr.crow_indices())
        out.col.copy_(csr.col_indices())
        out.values.copy_(csr.values())
        if module.bias is not None and out.bias is not None:
            out.bias.copy_(module.bias.detach())
    out._check()
    return out


for _conv in _CONVS.values():
    register_compressor(_conv)(compress_conv)
