"""SparseDense: a Keras 3 Dense layer whose kernel keeps only a ``density`` fraction of entries.

How the sparsity is kept (one mask, like sprig's torch masks): the mask is a non-trainable
bool Keras variable ``kernel_mask`` beside the kernel. Every forward uses
``where(mask, kernel, 0)``, so pruned entries take no part in the output and get exactly zero
gradient; the kernel's Keras constraint re-applies the mask after every optimizer step, so the
stored pruned entries stay exactly zero whatever the optimizer does with a zero gradient. The
mask is layer state, not a weight: it is in the layer's ``variables``, so the ``.keras``
format saves and restores it with the kernel, but not in its ``weights``, so
``model.summary()`` counts the parameters ``Dense`` would.

At inference (``training`` false and no autograd, which is how ``model.predict`` and
``model.evaluate`` run) the layer multiplies with a cached CSR copy of the kernel through
``sprig.kernels.csr_linear`` when the inference kernel says it pays; the cache is rebuilt when
the kernel or mask changes (torch's in-place version counter moves on every optimizer step,
``assign`` and weight load).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import scipy.sparse as sp
import torch
from keras import ops
from torch import Tensor

from .._checks import check_density, check_int, make_generator
from .._registry import Registry
from .._tensor_key import TensorKey
from ..kernels import csr_linear, is_sparse_input, to_csr
from ..masks import StoredWeight, make_mask, parse_pattern
from ._backend import require_torch_backend
from ._sparse_inputs import as_torch_sparse, row_chunks

# Density at or below which "auto" multiplies with the CSR kernel at inference, measured for
# this layer against Keras's masked dense matmul (benchmarks/bench_keras.py; the table is
# benchmarks/results/keras_breakeven.md). sprig.kernels' dispatch table is measured for
# compressed layers against nn.Linear, per size and batch; moving this layer onto it would
# change which kernel it runs, so it waits for a measurement of this layer against that table.
CSR_MAX_DENSITY = 0.1

# name -> (layer) -> whether inference with dense inputs uses the CSR kernel
INFERENCE_KERNELS: Registry[Callable[[SparseDense], bool]] = Registry("inference kernel")
INFERENCE_KERNELS.add("auto", lambda layer: layer.density <= CSR_MAX_DENSITY)
INFERENCE_KERNELS.add("csr", lambda layer: True)
INFERENCE_KERNELS.add("dense", lambda layer: False)

_CSR_DTYPES = (torch.float32, torch.float64)


@dataclass
class _InferenceCache:
    """Kernel copies for inference, valid while kernel and mask tensors are unchanged."""

    key: TensorKey  # of the kernel and mask tensors
    csr: Tensor | None = None  # (units, in) CSR, for dense inputs
    masked: Tensor | None = None  # (in, units) dense kernel * mask, for sparse inputs


def _check_units(units: Any) -> int:
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"units must be a positive int (the output size), got {units!r}")
    return int(units)


@keras.saving.register_keras_serializable(package="sprig")
class SparseDense(keras.layers.Layer):
    """A Dense layer ``y = activation(x @ (kernel * mask) + bias)`` with a sparse kernel.

    The mask comes from sprig's patterns (:func:`sprig.masks.make_mask`) on the ``(units, in)``
    weight, the same layout as sprig's torch layers (so ``"2:4"`` groups run along the inputs),
    and is stored transposed beside Keras's ``(in, units)`` kernel. Train it with ``model.fit``;
    pruned weights stay exactly zero. It needs Keras's torch backend.

    Sparse inputs: a scipy.sparse matrix or a torch sparse COO/CSR tensor of shape
    ``(rows, in)`` is multiplied ``chunk_size`` rows at a time without densifying the whole
    input (each chunk uses the cheaper of sparse-input x kernel and densified-chunk x CSR
    kernel). Call the layer on them directly. A model whose first layer it is takes torch
    sparse tensors, but Keras's ``Model`` refuses a scipy matrix as an input: convert it with
    :func:`sprig.keras.as_torch_sparse` or run :func:`sprig.keras.predict_sparse`. Keras's
    ``fit``/``predict`` cannot feed sparse inputs on the torch backend.

    Args:
        units: output size.
        density: fraction of kernel entries kept, in (0, 1]; None for an ``"N:M"`` pattern.
        pattern: ``"unstructured"``, ``"row"``, ``"column"``, ``"block:4x4"``, ``"2:4"``.
        activation: a Keras activation (name or callable), None for linear.
        use_bias: whether to learn an additive bias.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in ``keras.layers.Dense``; the kernel is masked
            after initialization and after a constraint.
        seed: seed of the random mask (Keras's own seeding covers the weight initializers).
            None draws one, stored in the config so a rebuilt layer gets the same mask.
        chunk_size: rows per chunk for sparse inputs (bounds the memory of densified chunks).
        inference: ``"auto"`` (CSR when density <= ``CSR_MAX_DENSITY``), ``"csr"`` or
            ``"dense"``: the kernel used at inference for dense inputs.
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Shapes:
        input ``(*, in)`` dense, or ``(rows, in)`` sparse -> output ``(*, units)`` dense.

    Reference: the question "How can I implement a sparsely connected layer in Keras without
    performance degradation?" (sparse kernel, sparse inputs, chunked processing).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((16,)), SparseDense(4, density=0.25, seed=0)])
        >>> layer = model.layers[0]
        >>> int(layer.kernel_mask.value.sum()), tuple(layer.kernel.shape)
        (16, (16, 4))
        >>> import scipy.sparse as sp
        >>> from sprig.keras import as_torch_sparse
        >>> x = sp.random(5, 16, density=0.2, format="csr", dtype="float32", random_state=0)
        >>> tuple(layer(x).shape), tuple(model(as_torch_sparse(x)).shape)
        ((5, 4), (5, 4))
    """

    density: float

    def __init__(
        self,
        units: int,
        density: float | None = 0.1,
        pattern: str = "unstructured",
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        seed: int | None = None,
        chunk_size: int = 4096,
        inference: str = "auto",
        **kwargs: Any,
    ) -> None:
        self._cache: _InferenceCache | None = None
        require_torch_backend("sprig.keras.SparseDense")
        units = _check_units(units)
        spec = parse_pattern(pattern)
        fixed = spec.fixed_density
        if fixed is None:
            if density is None:
                raise ValueError(f"pattern {spec} needs a density in (0, 1], e.g. density=0.1")
            density = check_density(density)
        elif density is not None and abs(check_density(density) - fixed) > 1e-9:
            raise ValueError(
                f"pattern {spec} fixes density at {fixed:g}, but density={density!r} was given; "
                "pass density=None (or the matching value)"
            )
        INFERENCE_KERNELS.get(inference)  # unknown name -> ValueError listing the valid ones
        check_int(chunk_size, "chunk_size", 1, " (rows per chunk)")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (), generator=make_generator(None)))
        else:
            check_int(seed, "seed", hint=" or None", error=TypeError)
        super().__init__(activity_regularizer=kwargs.pop("activity_regularizer", None), **kwargs)
        self.units = units
        self.density = float(fixed if fixed is not None else density)  # type: ignore[arg-type]
        self.pattern = str(spec)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = seed
        self.chunk_size = chunk_size
        self.inference = inference
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    # ----------------------------------------------------------------- weights
    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(
                f"SparseDense needs a known input size (last dimension), got shape "
                f"{tuple(input_shape)}; give keras.Input a full feature shape"
            )
        mask = make_mask((self.units, in_dim), self.density, self.pattern, generator=self.seed)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(in_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self._masked_constraint,
        )
        self.kernel_mask = self.add_weight(
            name="kernel_mask", shape=(in_dim, self.units), initializer="zeros", dtype="bool",
            trainable=False,
        )  # fmt: skip
        self.kernel_mask.assign(mask.t().numpy())
        self.kernel.assign(ops.where(self.kernel_mask, self.kernel, 0))
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: in_dim})

    @property
    def weights(self) -> list[Any]:
        """Kernel and bias, as ``keras.layers.Dense`` has them. The bool mask is layer state
        like a seed generator's: it stays in ``variables`` (so ``.keras`` files save it and
        the torch backend tracks it) but is not a weight, so ``model.summary()``,
        ``count_params()`` and ``get_weights()`` leave it out."""
        mask = getattr(self, "kernel_mask", None)
        return [w for w in super().weights if w is not mask]

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        mask = self.kernel_mask.value
        return [StoredWeight("kernel", tuple(mask.shape), int(mask.sum()), self.pattern)]

    def _masked_constraint(self, kernel: Any) -> Any:
        # Keras applies a variable's constraint after each optimizer step. Re-masking there
        # keeps stored pruned entries at exactly zero whatever the optimizer does with a zero
        # gradient, and after a user constraint (e.g. max_norm).
        if self.kernel_constraint is not None:
            kernel = self.kernel_constraint(kernel)
        return ops.where(self.kernel_mask, kernel, 0)

    def masked_kernel(self) -> Any:
        """The kernel with pruned entries zeroed, ``(in, units)`` (differentiable)."""
        return ops.where(self.kernel_mask, self.kernel, 0)

    # ----------------------------------------------------------------- forward
    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        # Keras's __call__ rejects scipy matrices; a torch CSR tensor sharing their arrays
        # passes through to call() untouched.
        if sp.issparse(inputs):
            inputs = as_torch_sparse(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        grad = bool(training) or torch.is_grad_enabled()
        if is_sparse_input(inputs):
            y = self._sparse_forward(inputs, grad)
        elif not grad and self._csr_fits(inputs):
            y = csr_linear(inputs, self._csr_kernel(), self._bias_tensor())
        else:
            # at inference the masked kernel is cached, not re-masked every call
            kernel = self._masked_kernel_inference() if not grad else self.masked_kernel()
            y = ops.matmul(inputs, kernel)
            if self.bias is not None:
                y = ops.add(y, self.bias)
        return self.activation(y)

    def _csr_fits(self, x: Tensor) -> bool:
        kernel = self.kernel.value
        return (
            INFERENCE_KERNELS.get(self.inference)(self)
            and isinstance(x, Tensor)
            and x.dtype in _CSR_DTYPES
            and x.dtype == kernel.dtype
            and x.device == kernel.device
        )

    def _bias_tensor(self) -> Tensor | None:
        return None if self.bias is None else self.bias.value

    def _inference_cache(self) -> _InferenceCache:
        kernel, mask = self.kernel.value, self.kernel_mask.value
        cache = self._cache
        if cache is None or not cache.key.matches(kernel, mask):
            cache = _InferenceCache(TensorKey(kernel, mask))
            self._cache = cache
        return cache

    def _csr_kernel(self) -> Tensor:
        """The masked kernel as CSR ``(units, in)``, cached until kernel or mask change."""
        cache = self._inference_cache()
        if cache.csr is None:
            with torch.no_grad():
                cache.csr = to_csr(self.kernel.value.detach().t(), self.kernel_mask.value.t())
        return cache.csr

    def _masked_kernel_inference(self) -> Tensor:
        """``where(mask, kernel, 0)`` ``(in, units)`` without autograd, cached like the CSR."""
        cache = self._inference_cache()
        if cache.masked is None:
            with torch.no_grad():
                cache.masked = torch.where(self.kernel_mask.value, self.kernel.value.detach(), 0)
        return cache.masked

    def _sparse_forward(self, inputs: Tensor, grad: bool) -> Tensor:
        kernel = self.kernel.value
        x = as_torch_sparse(inputs, dtype=kernel.dtype)
        if x.shape[1] != kernel.shape[0]:
            raise ValueError(
                f"sparse input has {x.shape[1]} features but the layer was built for "
                f"{kernel.shape[0]}; pass inputs of shape (rows, {kernel.shape[0]})"
            )
        bias = self._bias_tensor()
        weight = self.masked_kernel() if grad else self._masked_kernel_inference()
        csr = None
        if not grad and INFERENCE_KERNELS.get(self.inference)(self):
            csr = self._csr_kernel()
        outs = []
        for chunk in row_chunks(x, self.chunk_size):
            chunk = chunk.to(kernel.device)
            # sparse chunk x dense kernel costs nnz(chunk) * units multiply-adds; a densified
            # chunk x CSR kernel costs rows * nnz(kernel): take the cheaper (inference only)
            if csr is not None and chunk.shape[0] * csr.values().numel() < (
                chunk.values().numel() * self.units
            ):
                y = csr_linear(chunk.to_dense(), csr, bias)  # (rows, units)
            else:
                y = torch.sparse.mm(chunk, weight)  # (rows, units)
                if bias is not None:
                    y = y + bias
            outs.append(y)
        if not outs:
            return torch.zeros(0, self.units, dtype=kernel.dtype, device=kernel.device)
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.units)

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            units=self.units,
            density=self.density,
            pattern=self.pattern,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
            kernel_constraint=keras.constraints.serialize(self.kernel_constraint),
            bias_constraint=keras.constraints.serialize(self.bias_constraint),
            seed=self.seed,
            chunk_size=self.chunk_size,
            inference=self.inference,
        )
        return config
