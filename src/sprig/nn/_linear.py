"""SparseLinear: an ``nn.Linear`` born masked."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, make_generator, reject_keywords, sub_seed
from .._registry import Registry
from .._tensor_key import TensorKey
from ..kernels import (
    CSRStructure,
    apply_rows,
    check_layer_input,
    choose,
    csr_linear,
    is_sparse_input,
    masked_csr_linear,
)
from ..kernels._dispatch import check_backend
from ..masks import apply_mask, get_mask, make_mask, parse_pattern, wants_dense_grad
from ..masks import density as measured_density
from ._base import sprig_module


class _KernelCache:
    """The CSR structure of a layer's mask (and, for inference, its values), rebuilt on change.

    Keyed on the mask's and weight's identity and version counter: in-place updates (optimizer
    steps, ``apply_mask``, ``load_state_dict``) bump the version. Writes through ``.data`` do
    not, so after such a write call ``layer.refresh()``. Copies and pickles start empty.
    """

    def __init__(self) -> None:
        self.mask_key: TensorKey | None = None
        self.structure: CSRStructure | None = None
        # the weight's dtype and device too: Module.to() swaps .data without bumping _version
        self.values_key: tuple[TensorKey, torch.dtype, torch.device] | None = None
        self.csr: Tensor | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> _KernelCache:
        return _KernelCache()

    def __reduce__(self) -> tuple[type[_KernelCache], tuple[()]]:
        return (_KernelCache, ())  # pickles (torch.save, multiprocessing) start empty

    def get_structure(self, mask: Tensor) -> CSRStructure:
        if self.structure is None or self.mask_key is None or not self.mask_key.matches(mask):
            self.structure = CSRStructure(mask)
            self.mask_key = TensorKey(mask)
            self.csr = None
        return self.structure

    def get_csr(self, structure: CSRStructure, weight: Tensor) -> Tensor:
        key = self.values_key
        if (
            self.csr is None
            or key is None
            or not key[0].matches(weight)
            or key[1:] != (weight.dtype, weight.device)
        ):
            self.csr = structure.csr(structure.values_of(weight))
            self.values_key = (TensorKey(weight), weight.dtype, weight.device)
        return self.csr


def _mask_generator(seed: int | None) -> torch.Generator:
    # a sub-seed, not the seed itself: after torch.manual_seed(s), SparseLinear(seed=s) would
    # otherwise draw its mask scores from the very stream that initialised its weights, and
    # keep the weights of one sign and size (kept std 0.0026 instead of 0.0255 at 512 inputs)
    return make_generator(None if seed is None else sub_seed(seed, "mask"))


#: how a SparseLinear stores its weight: "masked" (dense weight + mask, this module) or
#: "compressed" (nonzeros only; sprig.compress registers its builder here, so nn never
#: imports compress)
STORAGES: Registry[Callable[..., nn.Module]] = Registry("storage")


@sprig_module("SparseLinear")
class SparseLinear(nn.Linear):
    """A linear layer y = x W^T + b whose weight W keeps only a ``density`` fraction of entries.

    The weight is masked through sprig's one mask mechanism: pruned entries are exactly zero in
    every forward, get zero gradient and stay zero through optimizer steps. Being an
    ``nn.Linear``, it works wherever one does.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        density: fraction of weights kept, in (0, 1] (None for an N:M pattern).
        pattern: ``"unstructured"``, ``"row"``, ``"column"``, ``"block:4x4"``, ``"2:4"``.
        bias: whether to learn an additive bias.
        seed: seed for the random mask.
        backend: ``"auto"`` (CSR where the measured break-even table says it pays, for
            inference and for training), ``"dense"`` (masked dense ``F.linear``) or ``"csr"``.
            The CSR training path computes the weight gradient only at the mask's nonzeros,
            or the full dense one inside ``sprig.masks.dense_gradients``.
        storage: ``"masked"`` (a dense weight and a mask: this class) or ``"compressed"``
            (returns a trainable :class:`sprig.compress.CompressedLinear` holding only the
            nonzeros, built without any ``out x in`` tensor; unstructured pattern only).

    Shapes:
        input ``(*, in_features)`` -> output ``(*, out_features)``; also a 2-D torch sparse
        COO/CSR or scipy.sparse input ``(N, in_features)``, streamed ``chunk_size`` rows at a
        time when ``forward(x, chunk_size=...)`` is given.

    Example:
        >>> layer = SparseLinear(64, 32, density=0.1, seed=0)
        >>> int(layer.weight_mask.sum())
        205
        >>> layer(torch.randn(8, 64)).shape
        torch.Size([8, 32])
    """

    def __new__(cls, *args: Any, storage: str = "masked", **kwargs: Any) -> Any:
        if storage == "masked":
            return super().__new__(cls)
        # not a SparseLinear, so Python skips __init__: the builder makes the whole layer
        return STORAGES.get(storage)(*args, **kwargs)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float | None = None,
        pattern: str = "unstructured",
        bias: bool = True,
        seed: int | None = None,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        storage: str = "masked",
        **unknown: Any,
    ) -> None:
        reject_keywords("SparseLinear", unknown)
        check_int(in_features, "in_features", 1)
        check_int(out_features, "out_features", 1)
        check_backend(backend)
        spec = parse_pattern(pattern)
        mask = make_mask(
            (out_features, in_features), density, spec, generator=_mask_generator(seed)
        )
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        # the density asked for (an N:M pattern's own when None); ``density`` below is the
        # current one, read from the mask, since pruning and DST change it after construction
        self.density_config = float(mask.float().mean()) if density is None else float(density)
        self.pattern = str(spec)
        self.seed = seed
        self.backend = backend
        self._kernels = _KernelCache()
        apply_mask(self, "weight", mask, pattern=self.pattern)

    @property
    def density(self) -> float:
        """The fraction of weights kept now, read from the mask (it follows ``prune()`` and DST).

        The density the layer was built with is :attr:`density_config`.
        """
        return measured_density(self)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "density": self.density_config,
            "pattern": self.pattern,
            "bias": self.bias is not None,
            "seed": self.seed,
            "backend": self.backend,
        }

    def forward(self, input: Any, chunk_size: int | None = None) -> Tensor:
        """``input W^T + b``; sparse inputs (torch COO/CSR, scipy) and ``chunk_size`` streaming."""
        check_layer_input(input, type(self).__name__, self.in_features)
        if chunk_size is not None or is_sparse_input(input):
            w = self.weight
            return apply_rows(input, self._forward, self.in_features, w.dtype, w.device, chunk_size)
        return self._forward(input)

    def _forward(self, x: Tensor) -> Tensor:
        mask = get_mask(self, "weight")
        if self.backend == "dense" or mask is None or x.dim() == 0:
            return F.linear(x, self.weight, self.bias)
        s = self._kernels.get_structure(mask)
        w, b = self.weight, self.bias
        train = torch.is_grad_enabled() and (
            w.requires_grad or x.requires_grad or (b is not None and b.requires_grad)
        )
        batch = math.prod(x.shape[:-1])
        mode = "train" if train else "infer"
        plan = choose(s.density, s.shape, batch, w.dtype, w.device, mode, self.backend)
        if plan.kernel == "dense":
            return F.linear(x, w, b)
        if train:
            full = wants_dense_grad(self)
            return masked_csr_linear(x, w, b, s, full_grad=full, block=plan.block)
        return csr_linear(x, self._kernels.get_csr(s, w), b, block=plan.block)

    def refresh(self) -> None:
        """Forget cached CSR copies (needed only after writing the weight through ``.data``)."""
        self._kernels = _KernelCache()

    def extra_repr(self) -> str:
        return (
            # the current density (pruning and DST change it), as the ``density`` property
            f"{super().extra_repr()}, density={self.density:.4g}, pattern={self.pattern}, "
            f"backend={self.backend}"
        )


STORAGES.add("masked", SparseLinear)
