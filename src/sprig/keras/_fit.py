"""fit_sparse: ``model.fit`` for sparse inputs that stay sparse all the way into the model.

On the torch backend ``model.fit`` densifies a scipy.sparse input one batch at a time (a
(256, 200000) batch is 200 MB of mostly zeros and a dense product with the kernel). This loop
keeps each batch a torch sparse CSR tensor, so a :class:`SparseDense` first layer multiplies
only the nonzeros (``nnz(batch) * units`` multiply-adds, forward and for the kernel's
gradient), and otherwise does what ``fit`` does: the compiled loss, metrics and optimizer
(through the model's own ``train_step``/``test_step``), epochs, shuffling, validation data and
Keras callbacks (``EarlyStopping``, ``ModelCheckpoint``, ``History``...).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import scipy.sparse as sp
import torch

from .._checks import check_int
from ..kernels import is_sparse_input
from ._backend import require_torch_backend
from ._sparse_inputs import as_torch_sparse


def _rows(x: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of a scipy or torch sparse matrix, as a torch sparse CSR (not densified)."""
    if sp.issparse(x):
        return as_torch_sparse(x[index], dtype=torch.float32)
    return as_torch_sparse(x.index_select(0, torch.from_numpy(index)), dtype=torch.float32)


def _batches(x: Any, y: np.ndarray, batch_size: int, order: np.ndarray) -> Any:
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield _rows(x, index), torch.from_numpy(y[index])


def _check_data(x: Any, y: Any, what: str) -> np.ndarray:
    if not is_sparse_input(x):
        raise TypeError(
            f"{what}: fit_sparse takes a scipy.sparse matrix or a torch sparse tensor, got "
            f"{type(x).__name__}; use model.fit for dense arrays"
        )
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr:
        x = x.to_sparse_coo()  # index_select needs COO
    y_arr = np.asarray(y)
    if y_arr.shape[0] != x.shape[0]:
        raise ValueError(f"{what}: x has {x.shape[0]} rows but y has {y_arr.shape[0]}")
    return y_arr


def fit_sparse(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int = 32,
    epochs: int = 1,
    validation_data: tuple[Any, Any] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    verbose: int = 0,
) -> keras.callbacks.History:
    """Train a compiled Keras model on a sparse input without densifying any batch.

    Args:
        model: a compiled model whose first layer takes torch sparse tensors (a
            :class:`SparseDense`); one input.
        x: scipy.sparse matrix or torch sparse COO/CSR tensor ``(rows, features)``.
        y: targets, ``(rows, ...)`` (numpy or anything ``np.asarray`` takes).
        batch_size, epochs, shuffle, callbacks, verbose: as ``model.fit``.
        validation_data: ``(x_val, y_val)`` with a sparse ``x_val``; its loss and metrics
            are logged as ``val_*`` after every epoch.
        seed: seed of the shuffling.

    Returns:
        the ``History`` callback, as ``model.fit`` returns it.

    Example:
        >>> import keras, numpy as np, scipy.sparse as sp
        >>> from sprig.keras import SparseDense, fit_sparse
        >>> model = keras.Sequential([keras.Input((1000,)), SparseDense(2, density=0.1, seed=0)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> x = sp.random(64, 1000, density=0.01, format="csr", random_state=0, dtype="float32")
        >>> history = fit_sparse(model, x, np.zeros((64, 2), "float32"), epochs=2)
        >>> len(history.history["loss"])
        2
    """
    require_torch_backend("fit_sparse")
    check_int(batch_size, "batch_size", 1)
    check_int(epochs, "epochs", 1)
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise ValueError("fit_sparse trains a compiled model: call model.compile(...) first")
    y_arr = _check_data(x, y, "training data")
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr:
        x = x.to_sparse_coo()
    val = None
    if validation_data is not None:
        vx, vy = validation_data
        vy_arr = _check_data(vx, vy, "validation_data")
        if isinstance(vx, torch.Tensor) and vx.layout == torch.sparse_csr:
            vx = vx.to_sparse_coo()
        val = (vx, vy_arr)
    steps = -(-x.shape[0] // batch_size)
    cbs = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )
    rng = np.random.default_rng(seed)
    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, Any] = {}
    for epoch in range(epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        order = rng.permutation(x.shape[0]) if shuffle else np.arange(x.shape[0])
        for step, batch in enumerate(_batches(x, y_arr, batch_size, order)):
            cbs.on_train_batch_begin(step)
            logs = model.train_step(batch)
            cbs.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        logs = {k: float(v) for k, v in logs.items()}
        if val is not None:
            model.reset_metrics()
            for batch in _batches(val[0], val[1], batch_size, np.arange(val[0].shape[0])):
                val_logs = model.test_step(batch)
            logs.update({f"val_{k}": float(v) for k, v in val_logs.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    history: keras.callbacks.History = model.history
    return history
