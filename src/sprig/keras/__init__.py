"""Keras 3 front end: :class:`SparseDense`, a sparse Dense layer backed by sprig.

Install with ``pip install sprig[keras]``. Keras must run on its torch backend: importing this
package before ``keras`` selects it (``KERAS_BACKEND=torch``). sprig itself never imports this
package, so sprig works without Keras.

    >>> import numpy as np
    >>> from sprig.keras import SparseDense
    >>> layer = SparseDense(8, density=0.25, seed=0)
    >>> tuple(layer(np.ones((2, 16), dtype="float32")).shape)
    (2, 8)
"""

from ._backend import check_keras, select_torch_backend

select_torch_backend()
check_keras()

from ._compressed import CompressedDense  # noqa: E402
from ._fit import fit_sparse  # noqa: E402
from ._layer import INFERENCE_KERNELS, SparseDense  # noqa: E402
from ._predict import predict_sparse  # noqa: E402
from ._sparse_inputs import as_torch_sparse, row_chunks  # noqa: E402

__all__ = [
    "CompressedDense",
    "INFERENCE_KERNELS",
    "SparseDense",
    "as_torch_sparse",
    "fit_sparse",
    "predict_sparse",
    "row_chunks",
]
