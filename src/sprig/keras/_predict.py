"""predict_sparse: ``model.predict`` for sparse inputs that stay sparse into the model.

On the torch backend Keras's ``fit``/``predict``/``evaluate`` densify a scipy.sparse input one
batch at a time before the model sees it, and fail on torch sparse tensors. This helper feeds
the model row chunks as torch sparse CSR tensors, so a :class:`SparseDense` first layer
multiplies them sparse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._backend import require_torch_backend
from ._sparse_inputs import as_torch_sparse, is_sparse_input, row_chunks


def predict_sparse(model: Any, x: Any, chunk_size: int = 4096) -> np.ndarray:
    """Run ``model`` for inference on a sparse input, ``chunk_size`` rows at a time.

    Args:
        model: a Keras model (or layer) whose first layer takes torch sparse tensors, such as
            a :class:`SparseDense`.
        x: scipy.sparse matrix or torch sparse COO/CSR tensor ``(rows, features)``.
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
    if not is_sparse_input(x):
        raise TypeError(
            f"predict_sparse takes a scipy.sparse matrix or a torch sparse tensor, got "
            f"{type(x).__name__}; use model.predict for dense inputs"
        )
    csr = as_torch_sparse(x, dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for chunk in row_chunks(csr, chunk_size):
            try:
                y = model(chunk, training=False)
            except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
                raise RuntimeError(
                    f"{type(model).__name__} could not take a sparse chunk of shape "
                    f"{tuple(chunk.shape)}: its first layer must accept torch sparse tensors "
                    f"(sprig.keras.SparseDense does); or pass x.toarray() chunks to "
                    f"model.predict. Original error: {err}"
                ) from err
            outs.append(y.detach().cpu().numpy())
    if not outs:
        raise ValueError(f"predict_sparse got an input with no rows, shape {tuple(csr.shape)}")
    return np.concatenate(outs)
