import copy

import numpy as np
import pytest
import torch
from scipy.sparse import random as sparse_random
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import sprig
from sprig.compress import CompressedRNN


def _states(h):
    return h if isinstance(h, tuple) else (h,)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


MODELS = [
    lambda: sprig.SparseRNN(5, 9, 2, cell="rnn", density=0.3, seed=0),
    lambda: sprig.SparseRNN(5, 9, 1, cell="rnn", nonlinearity="relu", density=0.3, seed=0),
    lambda: sprig.SparseRNN(5, 9, 2, cell="rnn", nonlinearity="elu", density=0.3, seed=0),
    lambda: sprig.SparseRNN(5, 9, 2, cell="gru", density={"r": 0.2, "z": 0.5, "n": 1.0}),
    lambda: sprig.SparseRNN(5, 9, 2, cell="lstm", density=0.3, batch_first=True, seed=0),
    lambda: sprig.sparsify(nn.RNN(5, 9, 2, nonlinearity="relu"), density=0.3),
    lambda: sprig.sparsify(nn.GRU(5, 9, 2, batch_first=True), density=0.3),
    lambda: sprig.sparsify(nn.LSTM(5, 9, 2), density=0.3, include=["weight_hh_*"]),
]


@pytest.mark.parametrize("make", MODELS)
def test_compressed_equals_masked_dense(make, tmp_path):
    model = make()
    small = sprig.compress(model)
    assert isinstance(small, CompressedRNN)
    bf = model.batch_first
    x = torch.randn(3, 6, 5) if bf else torch.randn(6, 3, 5)
    lengths = [6, 1, 4]
    hx = torch.randn(model.num_layers, 3, 9)
    hx = (hx, torch.randn_like(hx)) if model.mode == "LSTM" else hx
    packed = pack_padded_sequence(x, torch.tensor(lengths), bf, enforce_sorted=False)
    with torch.no_grad():
        for args in ((x,), (x, hx), (x[0],)):
            a, ha = small(*args)
            b, hb = model(*args)
            _close(a, b)
            for p, q in zip(_states(ha), _states(hb)):
                _close(p, q)
        a, ha = small(packed, hx)
        b, hb = model(packed, hx)
        _close(pad_packed_sequence(a, bf)[0], pad_packed_sequence(b, bf)[0])
        for p, q in zip(_states(ha), _states(hb)):
            _close(p, q)
        if isinstance(model, sprig.SparseRNN):
            _close(small(x, lengths=lengths)[0], model(x, lengths=lengths)[0])
        # save/load: CSR arrays are plain buffers, the config rebuilds the module
        back = sprig.load(sprig.save(small, tmp_path / "small.safetensors"))
        _close(back(x)[0], small(x)[0])
        # decompress gives back the masked-dense twin with the same masks
        twin = sprig.decompress(small)
        assert type(twin) is type(model)
        _close(twin(x)[0], model(x)[0])
        for mp in sprig.masked_parameters(model):
            assert torch.equal(getattr(twin, mp.name + "_mask"), mp.mask)


def test_compressed_is_inference_only():
    small = sprig.compress(sprig.SparseRNN(3, 4, density=0.5))
    x = torch.randn(2, 1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="inference-only"):
        small(x)
    with torch.no_grad():
        assert small(x)[0].shape == (2, 1, 4)
    assert not list(small.parameters())


def test_bidirectional_is_refused_clearly():
    model = sprig.sparsify(nn.GRU(3, 4, bidirectional=True), density=0.5)
    with pytest.raises(NotImplementedError, match="bidirectional=True"):
        sprig.compress(model)


def test_bad_input_names_expected_shape():
    small = sprig.compress(sprig.SparseRNN(3, 4, 2, cell="lstm", density=0.5))
    with torch.no_grad(), pytest.raises(ValueError, match="input_size=3"):
        small(torch.randn(5, 2, 4))
    with torch.no_grad(), pytest.raises(ValueError, match=r"\(2, 2, 4\)"):
        small(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with torch.no_grad(), pytest.raises(ValueError, match=r"\[1, T=5\]"):
        small(torch.randn(5, 2, 3), lengths=[9, 1])


@pytest.mark.parametrize(
    ("part", "index", "value", "match"),
    [
        ("col", 3, 10_000, r"outside \[0, 4\)"),
        ("crow", 2, -1, "not monotone"),
        ("values", 0, float("nan"), "not finite"),
    ],
)
def test_corrupt_buffers_fail_before_the_compiled_loop(tmp_path, part, index, value, match):
    # the compiled loop does not check bounds: a corrupt saved file must fail with a clear error,
    # not read memory outside the weights
    path = tmp_path / "rnn.safetensors"
    sprig.save(sprig.compress(sprig.SparseRNN(3, 4, 2, cell="gru", density=0.5, seed=0)), path)
    small = sprig.load(path)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        small(x)  # prepares and caches layer 0
        getattr(small, f"weight_hh_l1_{part}")[index] = value
        with pytest.raises(ValueError, match=f"weight_hh_l1: .*{match}"):
            small(x)


def _article_loop(xs, h, w_ih, w_hh):
    hs = []
    for x in xs:
        h = np.tanh(w_ih.dot(x) + w_hh.dot(h))
        hs.append(h)
    return np.array(hs)


@pytest.mark.parametrize(("I", "H", "d"), [(20, 50, 0.2), (7, 33, 0.05), (1, 1, 1.0)])
def test_same_hidden_sequence_as_scipy_article_loop(I, H, d):
    rng = np.random.default_rng(I + H)
    w_ih = sparse_random(H, I, density=d, format="csr", random_state=rng)
    w_hh = sparse_random(H, H, density=d, format="csr", random_state=rng)
    xs, h0 = rng.standard_normal((12, I)), rng.standard_normal(H)
    want = _article_loop(xs, h0, w_ih, w_hh)
    rnn = CompressedRNN.from_csr(w_ih, w_hh)
    with torch.no_grad():
        out, h_n = rnn(torch.from_numpy(xs), torch.from_numpy(h0)[None])
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n[0].numpy(), want[-1], rtol=1e-12, atol=1e-12)
    # float32, as a model would run it
    rnn32 = CompressedRNN.from_csr(w_ih.astype(np.float32), w_hh.astype(np.float32))
    with torch.no_grad():
        out32, _ = rnn32(torch.from_numpy(xs).float(), torch.from_numpy(h0).float()[None])
    np.testing.assert_allclose(out32.numpy(), want, rtol=1e-5, atol=1e-5)


def test_from_csr_checks_shapes():
    w = sparse_random(6, 4, density=0.5, format="csr")
    with pytest.raises(ValueError, match=r"weight_hh of shape \(3\*H, H\)"):
        CompressedRNN.from_csr(w, sparse_random(6, 6, density=0.5), cell="gru")
    with pytest.raises(TypeError, match="scipy sparse matrix"):
        CompressedRNN.from_csr([[1.0]], w)


def test_float_and_to_change_outputs_and_config():
    small = sprig.compress(sprig.SparseRNN(4, 8, cell="gru", density=0.3, seed=0).double())
    for converted in (copy.deepcopy(small).float(), small.to(torch.float32)):
        assert converted.config()["dtype"] == "float32"
        with torch.no_grad():
            out, h = converted(torch.randn(5, 1, 4))
        assert out.dtype == h.dtype == torch.float32


def test_input_dtype_is_checked_like_sparse_rnn():
    rnn = sprig.SparseRNN(4, 8, density=0.3, seed=0)
    small = sprig.compress(rnn)
    x = torch.randn(5, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="dtype"):
        rnn(x)
    with torch.no_grad(), pytest.raises(ValueError, match=r"input dtype torch.float64.*\.to\("):
        small(x)
    with torch.no_grad(), pytest.raises(ValueError, match="h0 dtype"):
        small(x.float(), torch.zeros(1, 1, 8, dtype=torch.float64))


def test_numpy_input_is_named():
    small = sprig.compress(sprig.SparseRNN(4, 8, density=0.3, seed=0))
    with torch.no_grad(), pytest.raises(TypeError, match=r"numpy.ndarray.*torch.from_numpy"):
        small(np.ones((5, 1, 4), dtype="float32"))


def test_from_csr_refuses_integer_values_and_bad_biases():
    w_hh = sparse_random(8, 8, density=0.5, format="csr", random_state=0)
    w_int = sparse_random(8, 4, density=0.5, format="csr", dtype="int64", random_state=0)
    with pytest.raises(TypeError, match="int64.*astype"):
        CompressedRNN.from_csr(w_int, w_hh)
    w_ih = sparse_random(8, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match=r"bias_ih must have shape \(G\*H,\) = \(8,\).*\(3,\)"):
        CompressedRNN.from_csr(w_ih, w_hh, torch.zeros(3), torch.zeros(8))
