"""A sparsely connected Keras 3 layer on sparse inputs, with chunked inference, using sprig.

The question "How can I implement a sparsely connected layer in Keras without performance
degradation?" wants three things: sparse weights, sparse inputs, and chunked processing of
inputs too large to convert at once. With sprig:

  - ``sprig.keras.SparseDense(units, density=0.05)`` keeps 5% of the kernel; ``model.fit``
    trains it and pruned weights stay exactly zero;
  - a scipy.sparse input trains through ``model.fit`` (Keras densifies one batch at a time);
  - ``predict_sparse(model, x, chunk_size)`` runs inference ``chunk_size`` rows at a time with
    the input kept sparse into the layer; the model saves to ``.keras`` and reloads.

The data: bag-of-words "documents" (rows of a scipy CSR matrix over a 3000-word vocabulary);
each class uses its own 100 topic words more often.

    python examples/keras_sparse_layer.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sprig.keras import SparseDense, predict_sparse

import keras  # isort: skip  (after sprig.keras, which selects Keras's torch backend)


def documents(
    n: int, vocab: int = 3000, words: int = 20, topic: int = 100, seed: int = 0
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n`` bag-of-words rows (CSR, float32 counts) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cols = rng.integers(0, vocab, (n, words))
    # a quarter of each document's words come from its class's topic words
    on_topic = rng.random((n, words)) < 0.25
    cols[on_topic] = (y[:, None] * topic + rng.integers(0, topic, (n, words)))[on_topic]
    rows = np.repeat(np.arange(n), words)
    x = sp.csr_matrix((np.ones(n * words, np.float32), (rows, cols.ravel())), (n, vocab))
    x.sum_duplicates()
    return x, y


def main(n_train: int = 2000, n_test: int = 1000, epochs: int = 4, chunk_size: int = 256) -> float:
    x, y = documents(n_train + n_test)
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            SparseDense(64, density=0.05, activation="relu", seed=0, chunk_size=chunk_size),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)

    layer = model.layers[0]
    kernel, mask = layer.kernel.value.detach().cpu().numpy(), layer.kernel_mask.value.cpu().numpy()
    assert not kernel[~mask].any(), "pruned weights must stay exactly zero"

    # inference on the sparse test set, chunk_size rows at a time, never densified whole
    prob = predict_sparse(model, x_test, chunk_size=chunk_size)[:, 0]
    acc = float(((prob > 0.5) == y_test).mean())

    path = Path(tempfile.mkdtemp()) / "bow.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(predict_sparse(loaded, x_test, chunk_size), prob[:, None])
    print(
        f"kernel {kernel.shape}, density {mask.mean():.3f}; test inputs {x_test.shape} with "
        f"{x_test.nnz} nonzeros; test accuracy {acc:.3f}; reloaded from {path}"
    )
    return acc


if __name__ == "__main__":
    main()
