"""Sparse inputs (scipy.sparse, torch sparse) through SparseDense and predict_sparse equal dense."""

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp
import torch

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed (pip install 'sprig[keras]')", allow_module_level=True)

from sprig.keras import SparseDense, as_torch_sparse, predict_sparse, row_chunks  # noqa: E402

import keras  # noqa: E402  isort: skip

# Keras 3.15 itself warns on numpy 2.4 (Variable.__array__ without copy=); not sprig's warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def arr(t) -> np.ndarray:
    """A Keras variable's or a tensor's values as a numpy array (from any device)."""
    return (t.value if hasattr(t, "value") else t).detach().cpu().numpy()


def sparse_x(rows: int, cols: int, density: float, seed: int = 0) -> sp.csr_matrix:
    x = sp.random(rows, cols, density=density, format="csr", dtype=np.float32, random_state=seed)
    x = x.tolil()
    x[rows // 2, :] = 0  # an empty row
    return x.tocsr()


def formats(x: sp.csr_matrix) -> dict[str, object]:
    dense = torch.from_numpy(x.toarray())
    return {
        "scipy csr": x,
        "scipy coo": x.tocoo(),
        "scipy csc": x.tocsc(),
        "scipy float64": x.astype(np.float64),
        "torch coo": dense.to_sparse(),
        "torch csr": dense.to_sparse_csr(),
    }


@pytest.mark.parametrize("inference", ["csr", "dense"])
@pytest.mark.parametrize("chunk_size", [3, 7, 1000])
@pytest.mark.parametrize("x_density", [0.0, 0.02, 0.6])
def test_sparse_inputs_equal_dense(inference, chunk_size, x_density):
    layer = SparseDense(9, density=0.2, seed=0, chunk_size=chunk_size, inference=inference)
    layer.build((None, 40))
    layer.bias.assign(np.arange(9, dtype="float32"))
    x = sparse_x(23, 40, x_density)
    with torch.no_grad():
        want = arr(layer(x.toarray()))
        for name, xx in formats(x).items():
            got = layer(xx)
            assert got.layout == torch.strided and tuple(got.shape) == (23, 9), name
            np.testing.assert_allclose(arr(got), want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_sparse_input_gradients_equal_dense():
    layer = SparseDense(5, density=0.3, seed=0, chunk_size=4)
    layer.build((None, 12))
    x = sparse_x(10, 12, 0.3)
    grads = []
    for xx in (x.toarray(), x):
        layer.kernel.value.grad = None
        layer(xx, training=True).square().sum().backward()
        grads.append(layer.kernel.value.grad.clone())
    torch.testing.assert_close(grads[1], grads[0])
    assert (grads[1][~layer.kernel_mask.value] == 0).all()


def test_predict_sparse_equals_predict_on_dense():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((30,)), SparseDense(16, density=0.1, activation="relu", seed=0),
         keras.layers.Dense(3)]
    )  # fmt: skip
    x = sparse_x(50, 30, 0.1)
    want = model.predict(x.toarray(), verbose=0)
    for xx in formats(x).values():
        np.testing.assert_allclose(predict_sparse(model, xx, chunk_size=8), want, atol=1e-5)


def test_fit_with_scipy_inputs_is_densified_per_batch_by_keras():
    # Keras (torch backend) slices a scipy input into dense batches for fit: it works, and the
    # layer sees dense (batch, features) tensors, never the whole input densified.
    seen = []

    class Spy(SparseDense):
        def call(self, inputs, training=None):
            seen.append((inputs.layout, tuple(inputs.shape)))
            return super().call(inputs, training)

    model = keras.Sequential([keras.Input((30,)), Spy(2, density=0.2, seed=0)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(sparse_x(40, 30, 0.1), np.zeros((40, 2), "float32"), batch_size=20, verbose=0)
    assert seen and all(s == (torch.strided, (20, 30)) for s in seen)


def test_row_chunks_cover_rows_in_order():
    x = as_torch_sparse(sparse_x(11, 6, 0.5))
    chunks = list(row_chunks(x, 4))
    assert [c.shape[0] for c in chunks] == [4, 4, 3]
    torch.testing.assert_close(torch.cat([c.to_dense() for c in chunks]), x.to_dense())


def test_bad_sparse_inputs():
    layer = SparseDense(3, density=0.5, seed=0)
    layer.build((None, 8))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 8"):
        layer(sp.random(4, 9, density=0.5, format="csr", dtype=np.float32))
    with pytest.raises(ValueError, match="must be 2-D"):
        layer(torch.zeros(2, 3, 8).to_sparse())
    with pytest.raises(TypeError, match="use model.predict for dense inputs"):
        predict_sparse(keras.Sequential([keras.Input((8,)), layer]), np.zeros((2, 8)))
    with pytest.raises(TypeError, match="expected a scipy.sparse matrix"):
        as_torch_sparse(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        list(row_chunks(as_torch_sparse(sp.eye(3, format="csr")), 0))
    with pytest.raises(ValueError, match="no rows"):
        predict_sparse(keras.Sequential([keras.Input((8,)), layer]), sp.csr_matrix((0, 8)))
    dense_first = keras.Sequential([keras.Input((8,)), keras.layers.Normalization(axis=None)])
    with pytest.raises(RuntimeError, match="first layer must accept torch sparse tensors"):
        predict_sparse(dense_first, sp.eye(4, 8, format="csr", dtype=np.float32))


def test_predict_sparse_names_a_width_mismatch():
    model = keras.Sequential([keras.Input((50,)), SparseDense(3, seed=0)])
    with pytest.raises(ValueError, match=r"x has 40 features .* the model expects 50"):
        predict_sparse(model, sparse_x(10, 40, 0.1))


def test_predict_sparse_takes_several_inputs_and_generators():
    users, items = keras.Input((30,), name="user"), keras.Input((20,), name="item")
    a, b = SparseDense(4, seed=0)(users), SparseDense(4, seed=1)(items)
    model = keras.Model([users, items], keras.layers.Add()([a, b]))
    xu, xi = sparse_x(12, 30, 0.2, seed=0), sparse_x(12, 20, 0.2, seed=1)
    want = arr(model([torch.from_numpy(xu.toarray()), torch.from_numpy(xi.toarray())]))
    np.testing.assert_allclose(predict_sparse(model, [xu, xi], chunk_size=5), want, atol=1e-5)
    by_name = {"item": xi, "user": xu}
    np.testing.assert_allclose(predict_sparse(model, by_name, chunk_size=5), want, atol=1e-5)
    one = keras.Sequential([keras.Input((30,)), SparseDense(3, seed=0)])
    batches = (xu[i : i + 4] for i in range(0, 12, 4))
    np.testing.assert_allclose(
        predict_sparse(one, batches), predict_sparse(one, xu, chunk_size=7), atol=1e-6
    )
