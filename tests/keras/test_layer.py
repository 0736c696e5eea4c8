"""sprig.keras.SparseDense: training through model.fit, exact zeros, .keras round trip, kernels."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed (pip install 'sprig[keras]')", allow_module_level=True)

import sprig.keras as sk  # noqa: E402  (selects the torch backend before keras is imported)
from sprig.data import moons  # noqa: E402
from sprig.keras import SparseDense  # noqa: E402

import keras  # noqa: E402  isort: skip

# Keras 3.15 itself warns on numpy 2.4 (Variable.__array__ without copy=); not sprig's warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def arr(t) -> np.ndarray:
    """A Keras variable's or a tensor's values as a numpy array (from any device)."""
    return (t.value if hasattr(t, "value") else t).detach().cpu().numpy()


def reference(layer: SparseDense, x: np.ndarray) -> np.ndarray:
    """The layer's output by plain numpy: x @ (kernel * mask) + bias, in float64."""
    k = arr(layer.kernel).astype(np.float64) * arr(layer.kernel_mask)
    y = x.astype(np.float64) @ k
    if layer.bias is not None:
        y = y + arr(layer.bias)
    return y


def pruned_values(layer: SparseDense) -> np.ndarray:
    return arr(layer.kernel)[~arr(layer.kernel_mask)]


@pytest.mark.slow
def test_fit_on_moons_keeps_zeros_saves_and_reloads(tmp_path):
    data = moons(n_samples=300, noise=0.1, seed=0)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(32, activation="relu"),
            SparseDense(32, density=0.1, activation="relu", seed=1),
            SparseDense(1, density=0.5, activation="sigmoid", seed=2),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    sparse = model.layers[1]
    before = arr(sparse.kernel).copy()
    model.predict(x, verbose=0)  # builds the CSR caches, which fit must invalidate
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    # predict (cached CSR kernels) agrees with the eager autograd path (masked dense kernels)
    np.testing.assert_allclose(model.predict(x, verbose=0), arr(model(x)), rtol=1e-5, atol=1e-5)
    acc = float(((model.predict(x, verbose=0)[:, 0] > 0.5) == y).mean())
    assert acc > 0.9
    for layer in model.layers[1:]:
        assert np.count_nonzero(pruned_values(layer)) == 0  # exactly zero after Adam
    assert not np.array_equal(arr(sparse.kernel), before)  # it did train
    assert int(arr(sparse.kernel_mask).sum()) == round(0.1 * 32 * 32)

    path = tmp_path / "moons.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[1], SparseDense)
    for a, b in zip(model.layers[1:], loaded.layers[1:]):
        assert np.array_equal(arr(a.kernel_mask), arr(b.kernel_mask))
        assert np.array_equal(arr(a.kernel), arr(b.kernel))
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_functional_api_and_config_round_trip():
    inp = keras.Input((12,))
    out = SparseDense(4, density=None, pattern="2:4", activation="relu", seed=3)(inp)
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).standard_normal((16, 12)).astype("float32")
    model.fit(x, np.ones((16, 4), "float32"), epochs=1, verbose=0)
    layer = model.layers[1]
    mask = arr(layer.kernel_mask)
    # 2:4 along the inputs: every 4 consecutive inputs of each output keep exactly 2
    assert (mask.T.reshape(4, 3, 4).sum(-1) == 2).all()
    clone = SparseDense.from_config(layer.get_config())
    clone.build((None, 12))
    assert np.array_equal(arr(clone.kernel_mask), mask)  # the stored seed rebuilds the same mask
    assert clone.density == 0.5 and clone.pattern == "2:4"


def test_constraint_remasks_after_any_optimizer_step():
    keras.utils.set_random_seed(0)
    layer = SparseDense(6, density=0.3, seed=0, kernel_constraint=keras.constraints.MaxNorm(0.5))
    model = keras.Sequential([keras.Input((5,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    layer.kernel.assign(np.ones((5, 6), "float32"))  # pruned entries made nonzero by hand
    assert np.count_nonzero(pruned_values(layer)) > 0
    model.train_on_batch(np.ones((4, 5), "float32"), np.zeros((4, 6), "float32"))
    assert np.count_nonzero(pruned_values(layer)) == 0
    norms = np.sqrt((arr(layer.kernel) ** 2).sum(axis=0))
    assert (norms <= 0.5 + 1e-6).all()  # the user's constraint still applies


@pytest.mark.parametrize("inference", ["auto", "csr", "dense"])
@pytest.mark.parametrize(
    ("n_in", "units", "density", "pattern", "shape"),
    [
        (7, 5, 0.3, "unstructured", (1, 7)),  # batch 1, odd sizes
        (16, 9, 1.0, "unstructured", (3, 16)),  # density 1
        (10, 6, 0.5, "row", (4, 10)),  # whole output units pruned: output = bias
        (8, 3, None, "2:4", (2, 5, 8)),  # (*, in) inputs
        (33, 17, 0.05, "block:4x4", (13, 33)),
    ],
)
def test_forward_matches_reference(inference, n_in, units, density, pattern, shape):
    layer = SparseDense(units, density=density, pattern=pattern, seed=1, inference=inference)
    layer.build((None, n_in))
    layer.bias.assign(np.linspace(-1, 1, units).astype("float32"))
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    want = reference(layer, x)
    train = arr(layer(x, training=True))  # autograd path
    with torch.no_grad():
        infer = arr(layer(x))  # inference path (CSR where the kernel says so)
    np.testing.assert_allclose(train, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(infer, want, rtol=1e-5, atol=1e-5)


def test_inference_cache_follows_weight_changes(monkeypatch):
    layer = SparseDense(8, density=0.2, seed=0, inference="csr")
    layer.build((None, 20))
    x = np.random.default_rng(2).standard_normal((3, 20)).astype("float32")
    built = []
    real = sk._layer.to_csr
    monkeypatch.setattr(sk._layer, "to_csr", lambda *a: built.append(1) or real(*a))
    with torch.no_grad():
        first = arr(layer(x))
        assert np.array_equal(arr(layer(x)), first)
        assert len(built) == 1  # cached
        layer.kernel.assign(arr(layer.kernel) * 2)
        np.testing.assert_allclose(arr(layer(x)), reference(layer, x), rtol=1e-5, atol=1e-5)
        assert len(built) == 2  # rebuilt after assign
        layer.set_weights([w * 0 for w in layer.get_weights()[:1]] + layer.get_weights()[1:])
        np.testing.assert_allclose(arr(layer(x)), reference(layer, x), atol=1e-6)
        assert len(built) == 3


@pytest.mark.slow
def test_missing_backend_says_to_use_torch():
    code = "import sprig.keras"
    env = {**os.environ, "KERAS_BACKEND": "no_such_backend"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "set KERAS_BACKEND=torch" in out.stderr or "set KERAS_BACKEND=torch" in out.stdout


def test_backend_other_than_torch_is_refused(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=torch"):
        SparseDense(4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"units": 0}, ValueError, "units must be a positive int"),
        ({"units": 4, "density": 0.0}, ValueError, r"density must be in \(0, 1\]"),
        ({"units": 4, "density": 1.5}, ValueError, "sparsity 0.9 is density 0.1"),
        ({"units": 4, "density": None}, ValueError, "needs a density"),
        ({"units": 4, "pattern": "diagonal"}, ValueError, "valid patterns are"),
        ({"units": 4, "pattern": "2:4", "density": 0.1}, ValueError, "fixes density at 0.5"),
        ({"units": 4, "inference": "fast"}, ValueError, "valid names are: auto, csr, dense"),
        ({"units": 4, "chunk_size": 0}, ValueError, "chunk_size must be a positive int"),
        ({"units": 4, "seed": 1.5}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SparseDense(**kwargs)


def test_bad_build_shapes():
    with pytest.raises(ValueError, match="multiple of 4"):
        SparseDense(4, density=None, pattern="2:4").build((None, 6))
    with pytest.raises(ValueError, match="known input size"):
        SparseDense(4).build((None, None))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_with_csr_inference():
    # Keras's torch backend puts variables on CUDA when it is available
    layer = SparseDense(32, density=0.05, seed=0, inference="csr")
    layer.build((None, 64))
    assert layer.kernel.value.device.type == "cuda"
    x = np.random.default_rng(0).standard_normal((5, 64)).astype("float32")
    with torch.no_grad():
        np.testing.assert_allclose(arr(layer(x)), reference(layer, x), atol=1e-4)


def test_sprig_summary_and_density_count_sparse_dense_kernels():
    import sprig

    model = keras.Sequential(
        [keras.Input((50,)), SparseDense(8, density=0.1, seed=0), SparseDense(2, density=0.5)]
    )
    table = sprig.summary(model)
    assert [(r.shape, r.nnz) for r in table.rows] == [((50, 8), 40), ((8, 2), 8)]
    assert sprig.density(model) == pytest.approx(48 / 416)


def test_param_count_leaves_the_mask_out(tmp_path, capsys):
    model = keras.Sequential([keras.Input((50,)), SparseDense(3, density=0.1, seed=0)])
    assert model.layers[0].count_params() == 50 * 3 + 3  # as keras.layers.Dense(3)
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 153" in out and "Non-trainable params: 0" in out
    # the mask is still state: a .keras file restores it
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(arr(back.layers[0].kernel_mask), arr(model.layers[0].kernel_mask))


def test_compressed_dense_summary_counts_values_and_bias(capsys):
    from sprig.keras import CompressedDense

    model = keras.Sequential([keras.Input((100,)), CompressedDense(4, density=0.05, seed=0)])
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 24" in out and "Non-trainable params: 0" in out  # 20 values + bias
