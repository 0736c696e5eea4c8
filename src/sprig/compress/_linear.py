"""CompressedLinear: a masked ``nn.Linear`` (or SparseLinear) reduced to its nonzeros (CSR).

The three CSR arrays are plain buffers (``crow``, ``col``, ``values``), so the module saves and
loads with ``sprig.save``/``sprig.load`` (safetensors holds no sparse tensors). Column indices
are 16-bit when the layer has at most 65,536 inputs (6 bytes per nonzero instead of 8), which
the batch-1 kernel (:class:`sprig.kernels.MatVec`, layers of ``MATVEC_MIN_NNZ`` nonzeros or
more) reads directly; larger batches and small layers run MKL's CSR product, which needs int32
indices: that copy is made, validated and cached on first use.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import (
    MATVEC_MIN_NNZ,
    MatVec,
    apply_rows,
    check_csr_parts,
    choose,
    csr_from_parts,
    csr_linear,
    csr_to_dense,
    is_sparse_input,
    to_csr,
)
from ..kernels._dispatch import Plan, check_backend, dispatch_version
from ..kernels._linear import check_linear_args
from ..masks import apply_mask, get_mask, mask_pattern
from ..nn import MODULES, module_config, sprig_module
from ._api import CompressedModule, register_compressor

_DTYPES = {"float16", "bfloat16", "float32", "float64"}
_INDEX_DTYPES = ("uint16", "int32", "int64")


@sprig_module("CompressedLinear")
class CompressedLinear(CompressedModule):
    """An inference linear layer that stores only its nonzeros and runs CSR or dense per call.

    Made by ``sprig.compress(model)``; ``sprig.decompress`` gives back the masked-dense layer.
    Each call asks the dispatcher (``sprig.kernels.choose``) for CSR (with batch blocking) or
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

    crow: Tensor
    col: Tensor
    values: Tensor
    bias: Tensor | None

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
        self.in_features, self.out_features, self.nnz = in_features, out_features, nnz
        self.dtype_name, self.index_dtype, self.backend = dtype, index_dtype, backend
        self.source = source or {"class": "Linear", "pattern": "custom"}
        self.register_buffer("crow", torch.zeros(out_features + 1, dtype=rdt))
        self.register_buffer("col", torch.zeros(nnz, dtype=idt))
        self.register_buffer("values", torch.zeros(nnz, dtype=vdt))
        self.register_buffer("bias", torch.zeros(out_features, dtype=vdt) if bias else None)
        self._cache: dict[str, Any] = {}
        self._plans: dict[tuple[Any, ...], Plan] = {}  # dispatcher's choice per call shape
        self._plans_for: Tensor | None = None  # the values buffer the plans were made for

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    def stored_weights(self) -> list[tuple[str, tuple[int, int], int, str]]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        shape = (self.out_features, self.in_features)
        return [("weight", shape, self.values.numel(), self.source.get("pattern") or "custom")]

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

    def __deepcopy__(self, memo: dict[int, Any]) -> CompressedLinear:
        new = CompressedLinear(**copy.deepcopy(self.config(), memo))
        new.load_state_dict(self.state_dict())
        new.train(self.training)
        return new

    def _key(self) -> tuple[Any, ...]:
        # the buffers themselves (a cache entry keeps them alive) and their version counters
        b = self._buffers  # not self.crow...: nn.Module's __getattr__ costs ~0.3 us a name
        c, k, v = b["crow"], b["col"], b["values"]
        return (c, k, v, c._version, k._version, v._version)  # type: ignore[union-attr]

    def _valid(self, name: str) -> bool:
        key = self._cache.get(name + "_key")
        if key is None:
            return False
        b = self._buffers
        c, k, v = b["crow"], b["col"], b["values"]
        assert c is not None and k is not None and v is not None
        return (
            key[0] is c
            and key[1] is k
            and key[2] is v
            and key[3:] == (c._version, k._version, v._version)
        )

    def _check(self) -> None:
        """Validate the CSR buffers (once per change of them)."""
        if not self._valid("checked"):
            col = self.col.to(torch.int32) if self.col.dtype == torch.uint16 else self.col
            shape = (self.out_features, self.in_features)
            check_csr_parts(self.crow, col, self.values, shape, "CompressedLinear")
            self._cache["checked_key"] = self._key()

    def weight_csr(self) -> Tensor:
        """The weight as a CSR tensor ``(out, in)`` (validated once per change of the buffers)."""
        if not self._valid("csr"):
            self._check()
            shape = (self.out_features, self.in_features)
            col = self.col.to(torch.int32) if self.col.dtype == torch.uint16 else self.col
            self._cache["csr"] = csr_from_parts(self.crow, col, self.values, shape)
            self._cache["csr_key"] = self._key()
        csr: Tensor = self._cache["csr"]
        return csr

    def matvec(self) -> MatVec:
        """The batch-1 CPU kernel over the buffers (validated once per change of the buffers)."""
        if not self._valid("matvec"):
            self._check()
            self._cache["matvec"] = MatVec(  # validated by _check
                self.crow, self.col, self.values, self.in_features, validate=False
            )
            self._cache["matvec_key"] = self._key()
        mv: MatVec = self._cache["matvec"]
        return mv

    def dense_weight(self) -> Tensor:
        """The masked-dense weight ``(out, in)`` (cached while the dense path is in use)."""
        if not self._valid("dense"):
            self._cache["dense"] = self.weight_csr().to_dense()
            self._cache["dense_key"] = self._key()
        dense: Tensor = self._cache["dense"]
        return dense

    def drop_dense(self) -> None:
        """Free the dense copy kept for the dense path."""
        self._cache.pop("dense", None)
        self._cache.pop("dense_key", None)

    def forward(self, input: Any, chunk_size: int | None = None) -> Tensor:
        """``input W^T + b`` through the kernel the dispatcher picks for this call."""
        if chunk_size is None and type(input) is Tensor and input.layout == torch.strided:
            return self._forward(input)
        if chunk_size is not None or is_sparse_input(input):
            v = self.values
            return apply_rows(input, self._forward, self.in_features, v.dtype, v.device, chunk_size)
        return self._forward(input)

    def _forward(self, x: Tensor) -> Tensor:
        # the dense path runs layers that are 0.05 ms calls: every microsecond of Python here
        # shows in the dispatched-vs-dense ratio (measured 1.35x at N=1024, B=1 before
        # this path was trimmed), hence _buffers lookups and a per-layer plan cache
        bufs = self._buffers
        v, bias = bufs["values"], bufs["bias"]
        assert v is not None
        if x.dim() == 0 or x.shape[-1] != self.in_features or x.dtype != v.dtype:
            check_linear_args(x, self.weight_csr(), bias, "CompressedLinear")  # raises
        batch = x.numel() // self.in_features
        plan = self._plan(batch, v)
        if plan.kernel == "dense":
            return F.linear(x, self.dense_weight(), bias)
        if batch == 1 and self.nnz >= MATVEC_MIN_NNZ and _matvec_fits(x, v):
            y = self.matvec()(x.reshape(self.in_features), bias)
            return y.reshape(*x.shape[:-1], self.out_features)
        return csr_linear(x, self.weight_csr(), bias, block=plan.block)

    def _plan(self, batch: int, v: Tensor) -> Plan:
        if self._plans_for is not v:  # new values buffer (.to(), load): maybe a new dtype/device
            self._plans.clear()
            self._plans_for = v
        key = (batch, self.backend, dispatch_version())
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 64:  # many batch sizes: keep the cache small
                self._plans.clear()
            shape = (self.out_features, self.in_features)
            plan = choose(self.density, shape, batch, v.dtype, v.device, "infer", self.backend)
            self._plans[key] = plan
        return plan

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
    """Whether :class:`MatVec` serves this call: CPU, float32/64, no gradient wanted for ``x``."""
    return (
        values.device.type == "cpu"
        and values.dtype in (torch.float32, torch.float64)
        and not (x.requires_grad and torch.is_grad_enabled())
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
