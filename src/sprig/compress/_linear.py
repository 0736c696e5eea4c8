"""CompressedLinear: a linear layer that stores, runs and trains only its nonzeros (CSR).

The structure is two plain buffers (``crow``, ``col``) and the nonzeros are the trainable
parameter ``values`` ``(nnz,)``, so the module saves and loads with ``sprig.save``/``sprig.load``
(safetensors holds no sparse tensors) and any torch optimizer keeps nonzero-sized state.
Training runs :func:`sprig.kernels.csr_linear_train` (the values' gradient only at the
nonzeros); mask updaters and pruners change the structure through :meth:`rewire`. Column indices
are 16-bit when the layer has at most 65,536 inputs (6 bytes per nonzero instead of 8), which
the batch-1 kernel (:class:`sprig.kernels.MatVec`, where ``sprig.kernels.matvec_serves``) reads
directly; larger batches and the other layers run MKL's CSR product, which needs int32
indices: that copy is made, validated and cached on first use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_density, check_int, make_generator
from ..kernels import (
    CSRStructure,
    MatVec,
    apply_rows,
    check_csr_parts,
    check_layer_input,
    choose,
    csr_from_parts,
    csr_linear,
    csr_linear_train,
    csr_to_dense,
    is_sparse_input,
    matvec_serves,
    sparse_input_linear,
    to_csr,
)
from ..kernels._dispatch import Plan, check_backend
from ..kernels._linear import check_linear_args
from ..kernels._warm import compiled_ready
from ..masks import (
    StoredWeight,
    apply_mask,
    count_for,
    get_mask,
    mask_pattern,
    sample_positions,
)
from ..nn import MODULES, STORAGES, module_config, sprig_module
from ._api import register_compressor
from ._csr_module import CSRModule

_DTYPES = {"float16", "bfloat16", "float32", "float64"}
_INDEX_DTYPES = ("uint16", "int32", "int64")


@sprig_module("CompressedLinear")
class CompressedLinear(CSRModule):
    """A linear layer that stores only its nonzeros, trains them, and runs CSR or dense per call.

    Made by ``sprig.compress(model)`` or ``SparseLinear(..., storage="compressed")``;
    ``sprig.decompress`` gives back the masked-dense layer. A call that wants gradients trains
    through the CSR kernels (dense only with ``backend="dense"``). An inference call asks the
    dispatcher (``sprig.kernels.choose``) for CSR (with batch blocking) or
    dense from the layer's density, shape, batch, dtype and device; the dense path keeps a
    dense copy of the weight for as long as it is used (``drop_dense()`` frees it).

    Args:
        in_features, out_features: sizes.
        nnz: number of stored weights.
        bias: whether the layer has a bias.
        dtype: dtype name of the values (``"float32"``).
        index_dtype: of the column indices: ``"uint16"`` (at most 65,536 inputs; fewest
            bytes), ``"int32"`` or ``"int64"`` (huge layers). Row pointers are int32 unless
            this is int64.
        backend: ``"auto"`` (the dispatcher), ``"csr"`` or ``"dense"``.
        source: how to rebuild the masked-dense layer (set by ``compress``).

    Shapes:
        input ``(*, in_features)`` dense, or ``(N, in_features)`` torch sparse COO/CSR or
        scipy.sparse (``forward(x, chunk_size=...)`` streams it) -> ``(*, out_features)``.

    Example:
        >>> import sprig
        >>> layer = sprig.compress(sprig.SparseLinear(64, 32, density=0.1, seed=0))
        >>> layer.values.numel(), layer.col.dtype
        (205, torch.uint16)
        >>> layer(torch.randn(8, 64)).shape
        torch.Size([8, 32])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        nnz: int,
        bias: bool = True,
        dtype: str = "float32",
        index_dtype: str = "int32",
        backend: str = "auto",
        source: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_backend(backend)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if index_dtype not in _INDEX_DTYPES:
            raise ValueError(f"index_dtype must be one of {_INDEX_DTYPES}, got {index_dtype!r}")
        if index_dtype == "uint16" and in_features > 2**16:
            raise ValueError(
                f"uint16 column indices hold at most 65536 inputs, got in_features="
                f"{in_features}; use index_dtype='int32'"
            )
        if min(in_features, out_features) < 1 or not 0 <= nnz <= in_features * out_features:
            raise ValueError(
                f"need in/out features >= 1 and 0 <= nnz <= in*out, got in={in_features}, "
                f"out={out_features}, nnz={nnz}"
            )
        vdt, idt = getattr(torch, dtype), getattr(torch, index_dtype)
        rdt = torch.int64 if index_dtype == "int64" else torch.int32
        self.in_features, self.out_features = in_features, out_features
        self.index_dtype, self.backend = index_dtype, backend
        self.source = source or {"class": "Linear", "pattern": "custom"}
        self._setup_csr(out_features, nnz, vdt, rdt, idt, out_features if bias else None)

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        shape = (self.out_features, self.in_features)
        pattern = self.source.get("pattern") or "custom"
        return [StoredWeight("weight", shape, self.values.numel(), pattern)]

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "nnz": self.nnz,
            "bias": self.bias is not None,
            "dtype": self.dtype_name,
            "index_dtype": self.index_dtype,
            "backend": self.backend,
            "source": self.source,
        }

    def weight_csr(self) -> Tensor:
        """The weight as a CSR tensor ``(out, in)`` (validated once per change of the buffers)."""

        def make() -> Tensor:
            col = self.col.to(torch.int32) if self.col.dtype == torch.uint16 else self.col
            return csr_from_parts(self.crow, col, self.values.detach(), self.weight_shape())

        return self._cached("csr", make)

    def matvec(self) -> MatVec:
        """The batch-1 CPU kernel over the buffers (validated once per change of the buffers)."""

        def make() -> MatVec:
            # MatVec reads the 16-bit buffers: an int32 copy made for MKL while numba warmed
            # up (kernels._warm) is not needed at batch 1 any more (rebuilt if a batch needs it)
            self._cache.pop("csr", None)
            return MatVec(  # validated by _cached
                self.crow, self.col, self.values.detach(), self.in_features, validate=False
            )

        return self._cached("matvec", make)

    def dense_weight(self) -> Tensor:
        """The masked-dense weight ``(out, in)`` (cached while the dense path is in use)."""
        return self._cached("dense", lambda: self.weight_csr().to_dense())

    def forward(self, input: Any, chunk_size: int | None = None) -> Tensor:
        """``input W^T + b`` through the kernel the dispatcher picks for this call."""
        if chunk_size is None and type(input) is Tensor and input.layout == torch.strided:
            return self._forward(input)
        check_layer_input(input, "CompressedLinear")
        v = self.nonzero_values()
        b = self.bias
        trains = v.requires_grad or (b is not None and b.requires_grad)
        if chunk_size is None and is_sparse_input(input) and torch.is_grad_enabled() and trains:
            # training on sparse data: forward and gradient over the nonzeros of both
            return sparse_input_linear(input, v, self.structure(), b)
        if chunk_size is not None or is_sparse_input(input):
            return apply_rows(input, self._forward, self.in_features, v.dtype, v.device, chunk_size)
        return self._forward(input)

    def _forward(self, x: Tensor) -> Tensor:
        # the dense path runs layers of tens-of-microseconds calls: every microsecond of Python
        # here shows in the dispatched-vs-dense ratio (row dense-path-trim of
        # benchmarks/results/design_measurements.md), hence _parameters lookups and a
        # per-layer plan cache
        params = self._parameters
        v, bias = params["values"], params["bias"]
        assert v is not None
        if torch.is_grad_enabled() and (
            v.requires_grad or x.requires_grad or (bias is not None and bias.requires_grad)
        ):
            return self._forward_train(x, v, bias)
        if bias is not None and bias.requires_grad:
            bias = bias.detach()  # type: ignore[assignment]  # no gradient wanted: an array
        if x.dim() == 0 or x.shape[-1] != self.in_features or x.dtype != v.dtype:
            check_linear_args(x, self.weight_csr(), bias, "CompressedLinear")  # raises
        batch = x.numel() // self.in_features
        plan = self._plan(batch, v)
        if plan.kernel == "dense":
            return F.linear(x, self.dense_weight(), bias)
        if batch == 1 and matvec_serves(self.nnz) and _matvec_fits(x, v):
            y = self.matvec()(x.reshape(self.in_features), bias)
            return y.reshape(*x.shape[:-1], self.out_features)
        return csr_linear(x, self.weight_csr(), bias, block=plan.block)

    # ---- training ---------------------------------------------------------------------------
    def structure(self) -> CSRStructure:
        """The CSR structure (with its transpose) that training runs on, rebuilt when the index
        buffers change (validated then: a hand-edited file fails here, naming the fix)."""

        def make() -> CSRStructure:
            col = self.col.to(torch.int32) if self.col.dtype == torch.uint16 else self.col
            return CSRStructure.from_csr(self.crow, col, self.weight_shape())

        return self._cached("structure", make, with_values=False)

    def _forward_train(self, x: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
        """The differentiable forward: gradients of the values only at the nonzeros."""
        if x.dim() == 0 or x.shape[-1] != self.in_features or x.dtype != v.dtype:
            check_linear_args(x, self.weight_csr(), bias, "CompressedLinear")  # raises
        _check_finite(v)
        s = self.structure()
        batch = x.numel() // self.in_features
        # CSR unless told "dense": the train table measures masked layers, whose CSR step also
        # gathers values and scatters a dense gradient; a compressed layer does neither, and
        # a dense step would allocate the out x in weight its storage exists to avoid
        # (benchmarks/results/training.md measures both)
        backend = "csr" if self.backend == "auto" else self.backend
        plan = choose(s.density, s.shape, batch, v.dtype, v.device, "train", backend)
        if plan.kernel == "dense":
            # a dense weight built from the values, differentiable in them
            y = F.linear(x, self.scatter(v).view(s.shape), bias)
        else:
            y = csr_linear_train(x, v, s, bias, block=plan.block)
        if self._capture:
            x2 = x.detach().reshape(-1, self.in_features)
            y.register_hook(lambda gy: self._record(gy, x2))
        else:
            self._forget_record_on_backward(y)
        return y

    def _record(self, gy: Tensor, x2: Tensor) -> None:
        self._grad_record.append((gy.detach().reshape(-1, self.out_features), x2))

    # CompressedWeight protocol (sprig.masks; the rest in CSRModule)
    def weight_shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    def active_flat(self) -> Tensor:
        return self.structure().flat  # the training structure holds them already

    def dense_grad_rows(self, start: int, stop: int) -> Tensor | None:
        """Rows of ``dW = sum over recorded passes of dy^T x``: ``(stop - start, in)``."""
        record: list[tuple[Tensor, Tensor]] = self._grad_record  # (dy, x) of each pass
        if not record:
            return None
        # several passes (gradient accumulation): one product over their rows together
        gy = record[0][0] if len(record) == 1 else torch.cat([g for g, _ in record])
        x = record[0][1] if len(record) == 1 else torch.cat([x for _, x in record])
        return gy[:, start:stop].t() @ x

    def _choose(self, batch: int, v: Tensor) -> Plan:
        shape = (self.out_features, self.in_features)
        return choose(self.density, shape, batch, v.dtype, v.device, "infer", self.backend)

    def decompress_module(self) -> nn.Module:
        """The masked-dense twin: the original layer class, weight, mask and pattern label."""
        weight, mask = csr_to_dense(self.weight_csr())
        src = self.source
        cls_name = src.get("class", "Linear")
        has_bias = self.bias is not None
        if cls_name != "Linear" and cls_name in MODULES:
            layer = MODULES.get(cls_name)(**src["config"])
        else:
            layer = nn.Linear(self.in_features, self.out_features, bias=has_bias)
        layer = layer.to(device=weight.device, dtype=weight.dtype)
        assert isinstance(layer, nn.Linear)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if has_bias and layer.bias is not None:
                layer.bias.copy_(self.bias)  # type: ignore[arg-type]
        apply_mask(layer, "weight", mask, pattern=src.get("pattern", "custom"))
        return layer

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"nnz={self.nnz}, density={self.density:.3g}, backend={self.backend}"
        )


def _matvec_fits(x: Tensor, values: Tensor) -> bool:
    """Whether :class:`MatVec` serves this call: CPU, float32/64, no gradient wanted for ``x``,
    and numba warmed up (else MKL's ``mv``, see ``sprig.kernels._warm``)."""
    return (
        values.device.type == "cpu"
        and values.dtype in (torch.float32, torch.float64)
        and not (x.requires_grad and torch.is_grad_enabled())
        and compiled_ready()
    )


@register_compressor(nn.Linear)
def compress_linear(module: nn.Module, backend: str = "auto", **_others: Any) -> CompressedLinear:
    """A :class:`CompressedLinear` holding the nonzeros a masked ``nn.Linear`` keeps.

    Options meant for other converters (``compress`` passes all options to all) are ignored.
    """
    assert isinstance(module, nn.Linear)
    check_backend(backend)
    mask = get_mask(module, "weight")
    if mask is None:
        raise ValueError(f"{type(module).__name__} has no sprig mask on its weight")
    weight = module.weight.detach()
    csr = to_csr(weight, mask)
    shape = (module.out_features, module.in_features)
    index_dtype = str(csr.crow_indices().dtype).removeprefix("torch.")
    if weight.device.type == "cpu" and module.in_features <= 2**16 and index_dtype == "int32":
        index_dtype = "uint16"  # the batch-1 kernel's fewest bytes per nonzero
    what = f"{type(module).__name__}({module.in_features}, {module.out_features})"
    check_csr_parts(csr.crow_indices(), csr.col_indices(), csr.values(), shape, what)
    cfg = module_config(module)
    source: dict[str, Any] = {
        "class": "Linear" if cfg is None else cfg["class"],
        "pattern": mask_pattern(module, "weight") or "custom",
    }
    if cfg is not None:
        source["config"] = cfg["config"]
    out = CompressedLinear(
        module.in_features,
        module.out_features,
        int(csr.values().numel()),
        bias=module.bias is not None,
        dtype=str(weight.dtype).removeprefix("torch."),
        index_dtype=index_dtype,
        backend=backend,
        source=source,
    ).to(weight.device)
    with torch.no_grad():
        out.crow.copy_(csr.crow_indices())
        out.col.copy_(csr.col_indices())
        out.values.copy_(csr.values())
        if module.bias is not None and out.bias is not None:
            out.bias.copy_(module.bias.detach())
    return out


@STORAGES.register("compressed")
def compressed_linear(
    in_features: int,
    out_features: int,
    density: float | None = None,
    pattern: str = "unstructured",
    bias: bool = True,
    seed: int | None = None,
    backend: str = "auto",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> CompressedLinear:
    """A trainable :class:`CompressedLinear` born sparse: no ``out x in`` tensor is ever made.

    ``SparseLinear(..., storage="compressed")`` calls this. The layer keeps
    ``round(density * out * in)`` connections (as the masked layer does) at uniformly random
    positions, with ``nn.Linear``'s initialisation: weights and bias uniform in
    ``(-1/sqrt(in), 1/sqrt(in))``, so the kept weights have the masked layer's statistics. The
    positions differ from a masked layer's of the same seed (that one scores every entry).

    Example:
        >>> layer = compressed_linear(4096, 4096, density=0.01, seed=0)
        >>> layer.values.shape, layer.values.requires_grad
        (torch.Size([167772]), True)
    """
    if pattern != "unstructured":
        raise ValueError(
            f"storage='compressed' builds unstructured layers, got pattern={pattern!r}; build "
            "a masked layer with that pattern and convert it with sprig.compress(...)"
        )
    d = check_density(density)
    in_features = check_int(in_features, "in_features", 1)
    out_features = check_int(out_features, "out_features", 1)
    check_backend(backend)
    gen = make_generator(seed)
    numel = in_features * out_features
    flat = sample_positions(numel, count_for(d, numel), gen)
    vdt = dtype or torch.get_default_dtype()
    bound = 1.0 / math.sqrt(in_features)  # nn.Linear's kaiming_uniform(a=sqrt(5)) bound
    values = torch.empty(flat.numel(), dtype=vdt).uniform_(-bound, bound, generator=gen)
    index_dtype = "uint16" if in_features <= 2**16 else "int32"
    if flat.numel() >= 2**31 - 1:  # row pointers past int32
        index_dtype = "int64"
    config = {
        "in_features": in_features,
        "out_features": out_features,
        "density": d,
        "pattern": pattern,
        "bias": bias,
        "seed": seed,
        "backend": backend,
    }
    layer = CompressedLinear(
        in_features,
        out_features,
        0,
        bias=bias,
        dtype=str(vdt).removeprefix("torch."),
        index_dtype=index_dtype,
        backend=backend,
        source={"class": "SparseLinear", "pattern": pattern, "config": config},
    )
    layer.rewire(flat, values, None)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.uniform_(-bound, bound, generator=gen)
    return layer.to(device) if device is not None else layer


@torch.compiler.disable  # a Python check on a value: eager under torch.compile, not traced
def _check_finite(v: Tensor) -> None:
    if not bool(torch.isfinite(v).all()):
        bad = int((~torch.isfinite(v)).sum())
        raise ValueError(
            f"CompressedLinear: {bad} of {v.numel()} values are not finite (nan/inf), "
            "usually after an optimizer step that diverged; lower the learning rate or "
            "clip gradients (torch.nn.utils.clip_grad_norm_) and restart from a checkpoint"
        )
