"""sprig.keras.fit_sparse: fit-style training on sparse inputs that are never densified."""

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp
import torch

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed (pip install 'sprig[keras]')", allow_module_level=True)

from sprig.keras import SparseDense, fit_sparse  # noqa: E402

import keras  # noqa: E402  isort: skip

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _data(rows=1200, features=3000):
    x = sp.random(rows, features, density=0.003, format="csr", random_state=0, dtype="float32")
    w = np.random.default_rng(0).normal(size=features)
    return x, (x @ w > 0).astype("int64")


def _model(features=3000, first=None):
    keras.utils.set_random_seed(0)
    first = first or SparseDense(32, density=0.1, seed=0, activation="relu")
    model = keras.Sequential([keras.Input((features,)), first, keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_fit_sparse_learns_with_validation_and_callbacks(monkeypatch):
    x, y = _data()

    def no_dense(*args, **kwargs):
        raise AssertionError("a batch was densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", no_dense)
    monkeypatch.setattr(torch.Tensor, "to_dense", no_dense)
    seen = []
    log = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    model = _model()
    history = fit_sparse(
        model,
        x[:1000],
        y[:1000],
        batch_size=50,
        epochs=6,
        validation_data=(x[1000:], y[1000:]),
        callbacks=[log],
    )
    h = history.history
    assert seen == list(range(6)) and set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert h["loss"][-1] < 0.8 * h["loss"][0] and h["accuracy"][-1] > 0.9
    kernel = model.layers[0].kernel.value.detach()
    mask = model.layers[0].kernel_mask.value
    assert bool((kernel[~mask] == 0).all())  # pruned weights stay exactly zero


def test_fit_sparse_early_stopping_stops():
    x, y = _data()
    model = _model()
    stop = keras.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=0)
    history = fit_sparse(model, x, y, batch_size=100, epochs=20, callbacks=[stop])
    assert len(history.history["loss"]) == 2  # the first epoch sets the bar, the second fails it


def test_fit_sparse_bad_input_is_named():
    x, y = _data()
    model = _model()
    with pytest.raises(TypeError, match="model.fit for dense"):
        fit_sparse(model, x.toarray(), y)
    with pytest.raises(ValueError, match="1200 rows but y has 10"):
        fit_sparse(model, x, y[:10])
    raw = keras.Sequential([keras.Input((3000,)), SparseDense(2, density=0.1, seed=0)])
    with pytest.raises(ValueError, match="compile"):
        fit_sparse(raw, x, y)


def _compressed_model():
    from sprig.keras import CompressedDense

    return _model(first=CompressedDense(32, density=0.1, seed=0, activation="relu"))


def test_compressed_dense_stores_trains_and_saves_only_nonzeros(tmp_path):
    x, y = _data()
    model = _compressed_model()
    layer = model.layers[0]
    assert tuple(layer.values.shape) == (9600,)  # 0.1 of 3000 x 32, nothing dense-sized
    history = fit_sparse(model, x[:1000], y[:1000], batch_size=50, epochs=6)
    assert history.history["accuracy"][-1] > 0.9
    # equal to the same weights as a dense product, and trainable by model.fit on dense input
    kernel = torch.zeros(32, 3000)
    s = layer.structure()
    kernel.view(-1)[s.flat] = layer.values.value.detach()
    xd = x[:64].toarray()
    want = torch.relu(torch.from_numpy(xd) @ kernel.t() + layer.bias.value.detach())
    got = layer(torch.from_numpy(xd))
    torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-5)
    model.fit(xd, y[:64], epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    back = keras.models.load_model(path)
    np.testing.assert_allclose(back.predict(xd, verbose=0), model.predict(xd, verbose=0), 1e-5)
    dense = keras.Sequential([keras.Input((3000,)), keras.layers.Dense(32), keras.layers.Dense(2)])
    dense.compile(optimizer="adam", loss=model.loss)
    dense.fit(xd, y[:64], epochs=1, verbose=0)  # both files then hold Adam's moments
    dense.save(tmp_path / "d.keras")
    assert path.stat().st_size < 0.25 * (tmp_path / "d.keras").stat().st_size


def test_compressed_dense_bad_arguments():
    from sprig.keras import CompressedDense

    with pytest.raises(ValueError, match="density"):
        CompressedDense(4, density=0)
    with pytest.raises(ValueError, match="units"):
        CompressedDense(0)
