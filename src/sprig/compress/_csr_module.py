"""CSRModule: the one home of what compressed layers with a single CSR weight share.

:class:`~sprig.compress.CompressedLinear` and :class:`~sprig.compress.CompressedConv` both keep
one weight as CSR over a 2-D view (``(out, in)``; a convolution's ``(out, in * kh * kw)``): row
pointers ``crow`` and column indices ``col`` as buffers, the nonzeros as the trainable parameter
``values`` ``(nnz,)``. What follows from that lives here, once:

* derived forms (a validated check, kernels, a dense copy, flat positions) cached per state of
  the buffers: a cache entry is valid while the very tensors it was made from are in place and
  unchanged (their version counters), so ``.to()``, ``load_state_dict`` and in-place edits all
  invalidate it;
* the dispatcher's plan per call shape, dropped when the values are replaced (new dtype or
  device);
* the :class:`sprig.masks.CompressedWeight` protocol that mask updaters and pruners use:
  sorted flat positions, :meth:`CSRModule.rewire` (kept values and their per-entry optimizer
  state move with the structure), :meth:`CSRModule.resize_nonzeros`, and dense-gradient capture
  (each layer records what its own dense gradient needs, ``dense_grad_rows``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..kernels import check_csr_parts
from ..kernels._dispatch import Plan, dispatch_version
from ._api import CompressedModule, retire

T = TypeVar("T")

_MAX_PLANS = 64  # plans kept per layer (one per call shape); many shapes: start over


class CSRModule(CompressedModule):
    """Base of compressed layers whose one weight is CSR over the 2-D view ``weight_shape()``.

    A subclass calls :meth:`_setup_csr` in its ``__init__`` and gives :meth:`weight_shape`,
    :meth:`_choose` (the dispatcher's plan for a call shape) and :meth:`dense_grad_rows`.
    """

    crow: Tensor
    col: Tensor
    values: Tensor
    bias: Tensor | None

    def _setup_csr(
        self,
        rows: int,
        nnz: int,
        values_dtype: torch.dtype,
        row_dtype: torch.dtype,
        col_dtype: torch.dtype,
        bias: int | None,
    ) -> None:
        """Register the buffers and parameters (zeros) and empty caches; ``bias``: its length."""
        self.nnz = nnz
        self.register_buffer("crow", torch.zeros(rows + 1, dtype=row_dtype))
        self.register_buffer("col", torch.zeros(nnz, dtype=col_dtype))
        # the nonzeros are the trainable parameter: optimizer state is nonzero-sized
        self.values = nn.Parameter(torch.zeros(nnz, dtype=values_dtype))
        self.register_parameter(
            "bias", None if bias is None else nn.Parameter(torch.zeros(bias, dtype=values_dtype))
        )
        # name -> (key of the tensors it was made from, what was made)
        self._cache: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self._plans: dict[tuple[Any, ...], Plan] = {}  # dispatcher's choice per call shape
        # the values the plans were made for (a weak reference: a Parameter assigned to a
        # module attribute would register as a second parameter)
        self._plans_for: weakref.ref[Tensor] | None = None
        self._capture = False  # inside sprig.masks.dense_gradients
        self._grad_record: list[Any] = []  # what dense_grad_rows needs, one entry per pass

    # ---- what subclasses give ---------------------------------------------------------------
    def weight_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the 2-D view the CSR arrays and flat positions index."""
        raise NotImplementedError

    def _choose(self, shape_key: Any, values: Tensor) -> Plan:
        """The dispatcher's plan for calls of this shape (``shape_key`` as given to _plan)."""
        raise NotImplementedError

    def dense_grad_rows(self, start: int, stop: int) -> Tensor | None:
        """Rows ``start:stop`` of the dense gradient of the recorded passes, or None."""
        raise NotImplementedError

    # ---- cached derived forms -----------------------------------------------------------------
    def _cached(self, name: str, make: Callable[[], T], with_values: bool = True) -> T:
        """``make()``, kept until ``crow``, ``col`` (and, ``with_values``, ``values``) are
        replaced or changed in place; the buffers are validated once before the first make."""
        if torch.compiler.is_compiling():
            # eager under torch.compile: Dynamo would trace the cache's Python (version checks,
            # dict look-ups, the one-time validation), break the graph on each .item() and
            # recompile per cache name until its limit. Not a decorator: torch.compiler.disable
            # costs about 0.9 us per call, 2% of a batch-1 forward of a compressed MLP
            return _cached_eager(self, name, make, with_values)
        # _buffers, not self.crow: nn.Module's __getattr__ is slow per name, and forwards of
        # tens of microseconds run this (rows module-getattr and dense-path-trim of
        # benchmarks/results/design_measurements.md)
        b = self._buffers
        c, k = b["crow"], b["col"]
        v = self._parameters["values"] if with_values else None
        assert c is not None and k is not None
        hit = self._cache.get(name)
        if hit is not None:
            key = hit[0]
            if (
                key[0] is c
                and key[1] is k
                and key[2] is v
                and key[3] == c._version
                and key[4] == k._version
                and (v is None or key[5] == v._version)
            ):
                made: T = hit[1]
                return made
        if name != "checked":
            self._cached("checked", self._check)
        made = make()
        key = (c, k, v, c._version, k._version, None if v is None else v._version)
        self._cache[name] = (key, made)
        return made

    def _check(self) -> None:
        """Validate the CSR buffers (raises naming the layer; through :meth:`_cached`)."""
        col = self.col.to(torch.int32) if self.col.dtype == torch.uint16 else self.col
        shape = self.weight_shape()
        check_csr_parts(self.crow, col, self.values.detach(), shape, type(self).__name__)

    def active_flat(self) -> Tensor:
        """Sorted int64 flat positions ``(nnz,)`` of the stored weights in the row-major dense
        weight (the same in the 2-D view and in a convolution's ``(out, in, *kernel)``)."""

        def make() -> Tensor:
            counts = self.crow[1:].long() - self.crow[:-1].long()
            rows = torch.repeat_interleave(torch.arange(self.crow.numel() - 1), counts.cpu())
            return rows.to(self.col.device) * self.weight_shape()[1] + self.col.long()

        return self._cached("flat", make, with_values=False)

    def scatter(self, values: Tensor) -> Tensor:
        """``values`` at their positions in a flat dense weight ``(rows * cols,)``, zeros
        elsewhere; differentiable in ``values`` (what a dense training step multiplies by)."""
        rows, cols = self.weight_shape()
        return values.new_zeros(rows * cols).index_put((self.active_flat(),), values)

    def drop_dense(self) -> None:
        """Free the dense copy kept for the dense path."""
        self._cache.pop("dense", None)

    def _plan(self, shape_key: Any, v: Tensor) -> Plan:
        """The plan for calls of ``shape_key``: chosen once per shape, backend and dispatch
        table, and again after the values were replaced (``.to()``, load: dtype or device)."""
        made_for = self._plans_for
        if made_for is None or made_for() is not v:
            self._plans.clear()
            self._plans_for = weakref.ref(v)
        key = (shape_key, self.backend, dispatch_version())
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = self._choose(shape_key, v)
        return plan

    def _invalidate(self) -> None:
        """Forget every derived form (after the structure changed)."""
        self._cache.clear()
        self._plans.clear()

    # ---- CompressedWeight protocol (sprig.masks): what mask updaters and pruners use ----------
    def nonzero_values(self) -> nn.Parameter:
        v = self._parameters["values"]
        assert isinstance(v, nn.Parameter)
        return v

    def set_dense_capture(self, on: bool) -> None:
        if on:
            self._grad_record.clear()
        self._capture = on

    def _forget_record_on_backward(self, y: Tensor) -> None:
        """A backward outside the capture block drops the record: the dense gradient it gives
        is no longer the latest, and a mask update must raise rather than use it."""
        if self._grad_record and y.requires_grad:
            y.register_hook(lambda gy: self._grad_record.clear())

    def resize_nonzeros(self, nnz: int) -> None:
        if nnz != self.nnz:
            self.col = self.col.new_zeros(nnz)
            v = self.nonzero_values()
            retire(v, "resized")  # an optimizer built on the old values must be told
            self.values = nn.Parameter(v.new_zeros(nnz), requires_grad=v.requires_grad)
            self.nnz = nnz
            self._invalidate()

    @torch.no_grad()
    def rewire(self, flat: Tensor, values: Tensor, optimizer: torch.optim.Optimizer | None) -> None:
        """Store ``values`` at sorted flat positions ``flat`` (see ``sprig.masks``'s protocol)."""
        rows, cols = self.weight_shape()
        flat = flat.to(device=self.crow.device, dtype=torch.int64)
        if flat.dim() != 1 or values.shape != flat.shape:
            raise ValueError(
                f"rewire needs 1-D positions and values of one length, got {tuple(flat.shape)} "
                f"and {tuple(values.shape)}"
            )
        if flat.numel() and (
            int(flat[0]) < 0 or int(flat[-1]) >= rows * cols or bool((flat[1:] <= flat[:-1]).any())
        ):
            raise ValueError(f"rewire positions must be sorted, unique and in [0, {rows * cols})")
        old = self.active_flat()
        param = self.nonzero_values()
        # where each new position was before (-1: new connection)
        at = torch.searchsorted(old, flat).clamp_(max=max(old.numel() - 1, 0))
        kept = (old[at] == flat) if old.numel() else torch.zeros_like(flat, dtype=torch.bool)
        src = at[kept]

        def moved(t: Tensor, fill: Tensor | None) -> Tensor:
            out = torch.zeros(flat.shape, dtype=t.dtype, device=t.device)
            if fill is not None:
                out.copy_(fill)
            out[kept] = t[src]
            return out

        new_values = moved(param.detach(), values.to(param))
        state = {} if optimizer is None else optimizer.state.get(param, {})
        new_state = {
            k: moved(t, None)
            for k, t in state.items()
            if isinstance(t, Tensor) and t.shape == param.shape and t.dim() == 1
        }
        row = torch.div(flat, cols, rounding_mode="floor")
        crow = torch.zeros(rows + 1, dtype=torch.int64, device=flat.device)
        crow[1:] = torch.bincount(row, minlength=rows).cumsum(0)
        # everything is computed: now change the module (nothing above touched it)
        if flat.numel() == param.numel():
            param.copy_(new_values)  # same tensor: optimizers keep pointing at it
            for k, t in new_state.items():
                state[k].copy_(t)
        else:
            # a new size needs a new parameter (autograd keeps a leaf's shape); the optimizer
            # given takes it in place of the old one, with the moved state
            new_param = nn.Parameter(new_values, requires_grad=param.requires_grad)
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["params"] = [new_param if p is param else p for p in group["params"]]
                if param in optimizer.state:
                    old_state = optimizer.state.pop(param)
                    old_state.update(new_state)
                    optimizer.state[new_param] = old_state
            retire(param, "resized")
            self.values = new_param
        self.crow = crow.to(self.crow.dtype)
        self.col = (flat - row * cols).to(self.col.dtype)
        self.nnz = int(flat.numel())
        self._invalidate()


#: :meth:`CSRModule._cached` run eagerly, outside a torch.compile graph (inside it,
#: ``torch.compiler.is_compiling()`` is False again, so the cache's own body runs)
_cached_eager = torch.compiler.disable(CSRModule._cached)
