"""CompressedDense: a Keras 3 sparse Dense layer that stores and trains only its nonzeros.

:class:`SparseDense` keeps a dense kernel and a mask, so its optimizer state, its gradient and
its ``.keras`` file are as large as ``Dense``'s. This layer keeps what sprig's compressed torch
layers keep: the nonzero weights as one trainable ``(nnz,)`` variable and their positions as
two int32 index variables (CSR of the ``(units, in)`` weight), with forward and backward
through sprig's CSR kernels (:func:`sprig.kernels.csr_linear_train` for dense inputs,
:func:`sprig.kernels.sparse_input_linear` for scipy/torch sparse ones, never densified). Keras
optimizers then update ``nnz`` numbers, and the saved file holds ``nnz`` values and indices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import scipy.sparse as sp
import torch
from torch import Tensor

from .._checks import check_density, check_int, make_generator
from .._tensor_key import TensorKey
from ..kernels import CSRStructure, csr_linear_train, is_sparse_input, sparse_input_linear
from ..masks import StoredWeight, count_for, sample_positions
from ._backend import require_torch_backend
from ._sparse_inputs import as_torch_sparse


@keras.saving.register_keras_serializable(package="sprig")
class CompressedDense(keras.layers.Layer):
    """``y = activation(x W^T + b)`` with only ``density`` of ``W`` stored and trained.

    Connections sit at uniformly random positions (unstructured); the kept weights start with
    Glorot-uniform's bound for the full layer, ``sqrt(6 / (in + units))``, the statistics
    ``Dense`` and :class:`SparseDense` give them. Train it with ``model.fit`` (dense inputs)
    or :func:`sprig.keras.fit_sparse` (sparse inputs). Needs Keras's torch backend, CPU.

    Args:
        units: output size.
        density: fraction of the ``in x units`` connections kept, in (0, 1].
        activation: a Keras activation, None for linear.
        use_bias: whether to learn an additive bias.
        seed: seed of the positions and initial values (None draws one, kept in the config).
        **kwargs: Keras layer arguments (``name``, ...).

    Shapes:
        input ``(batch, in)`` dense, or scipy.sparse / torch sparse ``(batch, in)`` ->
        ``(batch, units)``.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((1000,)), CompressedDense(8, 0.05, seed=0)])
        >>> [(w.name, tuple(w.shape)) for w in model.layers[0].weights]
        [('values', (400,)), ('bias', (8,))]
    """

    def __init__(
        self,
        units: int,
        density: float = 0.1,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        require_torch_backend("sprig.keras.CompressedDense")
        check_int(units, "units", 1, " (the output size)")
        self.density = check_density(density)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (), generator=make_generator(None)))
        check_int(seed, "seed", hint=" or None", error=TypeError)
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.seed = seed
        self._structure: tuple[TensorKey, CSRStructure] | None = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(
                f"CompressedDense needs a known input size (last dimension), got shape "
                f"{tuple(input_shape)}; give keras.Input a full feature shape"
            )
        gen = make_generator(self.seed)
        numel = in_dim * self.units
        flat = sample_positions(numel, count_for(self.density, numel), gen)  # (units, in) order
        bound = math.sqrt(6.0 / (in_dim + self.units))  # glorot_uniform of the full layer
        values = torch.empty(flat.numel()).uniform_(-bound, bound, generator=gen)
        row = torch.div(flat, in_dim, rounding_mode="floor")
        crow = torch.zeros(self.units + 1, dtype=torch.int64)
        crow[1:] = torch.bincount(row, minlength=self.units).cumsum(0)
        self.values = self.add_weight(name="values", shape=(flat.numel(),), initializer="zeros")
        self.crow = self.add_weight(
            name="crow", shape=(self.units + 1,), initializer="zeros", dtype="int32",
            trainable=False,
        )  # fmt: skip
        self.col = self.add_weight(
            name="col", shape=(flat.numel(),), initializer="zeros", dtype="int32",
            trainable=False,
        )  # fmt: skip
        self.values.assign(values.numpy())
        self.crow.assign(crow.to(torch.int32).numpy())
        self.col.assign((flat - row * in_dim).to(torch.int32).numpy())
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: in_dim})

    def structure(self) -> CSRStructure:
        """Where the weights sit, with the transpose the backward uses (rebuilt on change)."""
        c, k = self.crow.value, self.col.value
        if self._structure is None or not self._structure[0].matches(c, k):
            shape = (self.units, int(self.input_spec.axes[-1]))
            self._structure = (TensorKey(c, k), CSRStructure.from_csr(c.long(), k.long(), shape))
        return self._structure[1]

    @property
    def weights(self) -> list[Any]:
        """Values and bias. The index variables ``crow``/``col`` are layer state (in
        ``variables``, so ``.keras`` files save them), not weights: ``model.summary()`` and
        ``count_params()`` count what ``Dense`` would count for the kept connections."""
        index = {id(getattr(self, n, None)) for n in ("crow", "col")}
        return [w for w in super().weights if id(w) not in index]

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        shape = (int(self.input_spec.axes[-1]), self.units)
        return [StoredWeight("kernel", shape, int(self.values.shape[0]), "unstructured")]

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if sp.issparse(inputs):  # Keras's __call__ rejects scipy; a torch CSR passes through
            inputs = as_torch_sparse(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        values: Tensor = self.values.value
        bias = None if self.bias is None else self.bias.value
        s = self.structure()
        if is_sparse_input(inputs):
            y = sparse_input_linear(inputs, values, s, bias)
        else:
            y = csr_linear_train(inputs, values, s, bias)
        return self.activation(y)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "units": self.units,
                "density": self.density,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "seed": self.seed,
            }
        )
        return config
