"""predict_sparse: ``model.predict`` for sparse inputs that stay sparse into the model.

On the torch backend Keras's ``fit``/``predict``/``evaluate`` densify a scipy.sparse input one
batch at a time before the model sees it, and fail on torch sparse tensors. This helper feeds
the model row chunks as torch sparse CSR tensors, so a :class:`SparseDense` first layer
multiplies them sparse. Models with several inputs (a recommender's user and item features)
get each input's chunk; a generator of batches is run batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int
from .._words import plural
from ..kernels import is_sparse_input
from ._backend import require_torch_backend
from ._sparse_inputs import as_torch_sparse, row_chunks


def _features(x: Any) -> int:
    return int(x.shape[-1])


def _expected_widths(model: Any) -> list[int | None]:
    """The feature count of each of the model's inputs, None where unknown (not built)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # a layer, or a model not built yet
        return []
    return [None if t.shape[-1] is None else int(t.shape[-1]) for t in inputs or []]


def _prepare(x: Any) -> Tensor | np.ndarray:
    if is_sparse_input(x):
        return as_torch_sparse(x, dtype=torch.float32)
    arr = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x)
    if arr.ndim < 2:
        raise ValueError(f"inputs must be (rows, features), got shape {arr.shape}")
    return arr


def _chunks(x: Tensor | np.ndarray, size: int) -> Iterator[Any]:
    if isinstance(x, Tensor) and x.layout == torch.sparse_csr:
        return row_chunks(x, size)
    return (torch.from_numpy(np.ascontiguousarray(x[i : i + size])) for i in range(0, len(x), size))


def _call(model: Any, batch: Any) -> np.ndarray:
    try:
        y = model(batch, training=False)
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
        shapes = [tuple(b.shape) for b in (batch if isinstance(batch, list) else [batch])]
        raise RuntimeError(
            f"{type(model).__name__} could not take sparse chunks of shape {shapes}: its "
            f"first layer must accept torch sparse tensors (sprig.keras.SparseDense does); "
            f"or pass x.toarray() chunks to model.predict. Original error: {err}"
        ) from err
    return y.detach().cpu().numpy()


def predict_sparse(model: Any, x: Any, chunk_size: int = 4096) -> np.ndarray:
    """Run ``model`` for inference on a sparse input, ``chunk_size`` rows at a time.

    Args:
        model: a Keras model (or layer) whose first layer takes torch sparse tensors, such as
            a :class:`SparseDense`.
        x: scipy.sparse matrix or torch sparse COO/CSR tensor ``(rows, features)``; for a
            model with several inputs, a list (or dict by input name) of such matrices or
            dense arrays with the same rows; or an iterable (a generator) of such batches,
            each run whole.
        chunk_size: rows per model call; bounds the memory of every intermediate to
            ``chunk_size`` rows.

    Returns:
        numpy array ``(rows, *output)``, the same as ``model.predict(x.toarray())``.

    Example:
        >>> import keras, scipy.sparse as sp
        >>> from sprig.keras import SparseDense
        >>> model = keras.Sequential([keras.Input((50,)), SparseDense(3, seed=0)])
        >>> x = sp.random(10, 50, density=0.1, format="csr", dtype="float32", random_state=0)
        >>> predict_sparse(model, x, chunk_size=4).shape
        (10, 3)
    """
    require_torch_backend("sprig.keras.predict_sparse")
    check_int(chunk_size, "chunk_size", 1, " (rows per chunk)")
    if isinstance(x, Mapping):
        names = [t.name for t in getattr(model, "inputs", None) or []]
        missing = [n for n in names if n not in x]
        if missing or not names:
            raise ValueError(
                f"predict_sparse got inputs by name {sorted(x)}, but the model's inputs are "
                f"{names}; give one entry per model input"
            )
        x = [x[n] for n in names]
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        parts = [_prepare(p) for p in x]
    elif is_sparse_input(x):
        parts = [as_torch_sparse(x, dtype=torch.float32)]
    elif isinstance(x, Iterable) and not isinstance(x, (np.ndarray, Tensor)):
        outs = [predict_sparse(model, batch, chunk_size) for batch in x]  # a generator
        if not outs:
            raise ValueError("predict_sparse got an iterable of batches that yielded none")
        return np.concatenate(outs)
    else:
        raise TypeError(
            f"predict_sparse takes a scipy.sparse matrix or a torch sparse tensor (or a list "
            f"of inputs, or a generator of batches), got {type(x).__name__}; use "
            "model.predict for dense inputs"
        )
    widths = _expected_widths(model)
    if widths and len(widths) != len(parts):
        raise ValueError(
            f"the model takes {plural(len(widths), 'input')}, got {len(parts)}: pass one "
            "sparse matrix per model input, in the model's input order"
        )
    for i, (part, want) in enumerate(zip(parts, widths)):
        if want is not None and _features(part) != want:
            which = f"input {i}" if len(parts) > 1 else "x"
            raise ValueError(
                f"{which} has {_features(part)} features (shape {tuple(part.shape)}) but the "
                f"model expects {want}; pass a (rows, {want}) matrix"
            )
    rows = {int(p.shape[0]) for p in parts}
    if len(rows) != 1:
        raise ValueError(f"the inputs must have the same number of rows, got {sorted(rows)}")
    if rows == {0}:
        raise ValueError(f"predict_sparse got an input with no rows, shape {tuple(parts[0].shape)}")
    outs = []
    with torch.no_grad():
        for chunk in zip(*(_chunks(p, chunk_size) for p in parts)):
            outs.append(_call(model, list(chunk) if len(parts) > 1 else chunk[0]))
    return np.concatenate(outs)
