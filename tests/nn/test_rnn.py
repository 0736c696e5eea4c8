import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import sprig
from sprig.kernels import RecurrentLayer, recurrent_reference

TORCH = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _twin(s: sprig.SparseRNN, **kwargs) -> nn.RNNBase:
    cls = TORCH[s.cell]
    t = cls(s.input_size, s.hidden_size, s.num_layers, batch_first=s.batch_first, **kwargs)
    t.load_state_dict({k: v for k, v in s.state_dict().items() if not k.endswith("_mask")})
    return t


def _states(h):
    return h if isinstance(h, tuple) else (h,)


@pytest.mark.parametrize(
    ("cell", "nonlinearity"), [("rnn", "tanh"), ("rnn", "relu"), ("gru", None), ("lstm", None)]
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_density_one_matches_torch(cell, nonlinearity, batch_first):
    s = sprig.SparseRNN(
        5, 7, 2, cell=cell, nonlinearity=nonlinearity, batch_first=batch_first, seed=0
    )
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    t = _twin(s, **kwargs)
    x = torch.randn(3, 4, 5)
    L, B = 2, 3 if batch_first else 4
    hx = torch.randn(L, B, 7)
    hx = (hx, torch.randn(L, B, 7)) if cell == "lstm" else hx
    for args in ((x,), (x, hx), (x[0],)):  # default state, given state, unbatched
        a, ha = s(*args)
        b, hb = t(*args)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        for p, q in zip(_states(ha), _states(hb)):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_per_gate_densities():
    dens = {"i": 1.0, "f": 0.5, "g": 0.25, "o": 0.125}
    s = sprig.SparseRNN(16, 32, cell="lstm", density=dens, seed=3)
    for name in ("weight_ih_l0", "weight_hh_l0"):
        kept = {g: float(m.float().mean()) for g, m in s.gate_masks(name).items()}
        assert kept == pytest.approx(dens, abs=1e-9)
    gru = sprig.SparseRNN(4, 8, cell="gru", density={"r": 0.5, "z": 0.5, "n": 1.0})
    assert bool(gru.gate_masks("weight_hh_l0")["n"].all())
    assert sprig.density(gru) == pytest.approx((0.5 + 0.5 + 1.0) / 3)


@pytest.mark.parametrize("act", ["gelu", "sigmoid", "leaky_relu"])
def test_custom_activation_loop_matches_reference_and_trains_sparse(act):
    s = sprig.SparseRNN(6, 9, cell="rnn", nonlinearity=act, density=0.4, seed=1)
    x = torch.randn(5, 3, 6)
    h0 = torch.randn(1, 3, 9)
    out, h = s(x, h0)
    layer = RecurrentLayer(s.weight_ih_l0, s.weight_hh_l0, s.bias_ih_l0, s.bias_hh_l0)
    ref, h_ref, _ = recurrent_reference(x.detach(), layer, "rnn", act, h0[0])
    torch.testing.assert_close(out.detach(), ref)
    torch.testing.assert_close(h[0].detach(), h_ref)
    opt = torch.optim.Adam(s.parameters(), lr=0.1)
    out.square().sum().backward()
    opt.step()
    for name in ("weight_ih_l0", "weight_hh_l0"):
        w, m = getattr(s, name), getattr(s, name + "_mask")
        assert bool((w[~m] == 0).all()) and bool((w.grad[~m] == 0).all())


@pytest.mark.parametrize(
    ("cell", "nonlinearity"), [("rnn", "tanh"), ("rnn", "silu"), ("gru", None), ("lstm", None)]
)
def test_lengths_match_packed_and_truncated(cell, nonlinearity):
    s = sprig.SparseRNN(4, 6, 2, cell=cell, nonlinearity=nonlinearity, density=0.5, seed=2)
    x = torch.randn(5, 3, 4)
    lengths = [2, 5, 3]  # unsorted on purpose
    out, h = s(x, lengths=lengths)
    packed_out, hp = s(pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed_out, total_length=5)
    torch.testing.assert_close(out, padded)
    for b, n in enumerate(lengths):
        alone, ha = s(x[:n, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], alone)
        assert bool((out[n:, b] == 0).all())
        for p, q, r in zip(_states(h), _states(ha), _states(hp)):
            torch.testing.assert_close(p[:, b], q[:, 0])
            torch.testing.assert_close(r[:, b], q[:, 0])


def test_masked_training_stays_sparse_on_fused_path():
    s = sprig.SparseRNN(8, 16, cell="gru", density=0.2, seed=0)
    assert s._fused
    opt = torch.optim.Adam(s.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        out, _ = s(torch.randn(6, 2, 8))
        out.sum().backward()
        opt.step()
    for name in ("weight_ih_l0", "weight_hh_l0"):
        w, m = getattr(s, name), getattr(s, name + "_mask")
        assert bool((w[~m] == 0).all()) and bool((w[m] != 0).all())


class _CountVF:
    """Stands in for torch's ``_VF`` and counts calls to the fused recurrent kernels."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        fn = getattr(self.real, name)
        if name in ("rnn_tanh", "rnn_relu", "gru", "lstm"):

            def wrapped(*args, **kwargs):
                self.calls.append(name)
                return fn(*args, **kwargs)

            return wrapped
        return fn


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
def test_sparsify_torch_rnn_keeps_fused_kernel(monkeypatch, cls):
    import torch.nn.modules.rnn as rnn_mod

    counter = _CountVF(rnn_mod._VF)
    monkeypatch.setattr(rnn_mod, "_VF", counter)
    model = sprig.sparsify(cls(6, 10, num_layers=2), density=0.2, seed=0)
    sparse = sprig.SparseRNN(6, 10, cell=cls.__name__.lower(), density=0.2)
    for m in (model, sparse):
        out, _ = m(torch.randn(4, 2, 6))
        out.sum().backward()
    assert len(counter.calls) == 2
    w = model.weight_hh_l1
    assert bool((w.grad[~model.weight_hh_l1_mask] == 0).all())


def test_save_load_round_trip(tmp_path):
    s = sprig.SparseRNN(3, 5, 2, cell="lstm", density={"i": 0.5, "f": 1.0, "g": 0.5, "o": 0.5})
    path = sprig.save(s, tmp_path / "rnn.safetensors")
    back = sprig.load(path)
    assert isinstance(back, sprig.SparseRNN) and back.config() == s.config()
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(back(x)[0], s(x)[0])
    assert torch.equal(back.weight_hh_l1_mask, s.weight_hh_l1_mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell": "transformer"}, "valid names are: rnn, gru, lstm"),
        ({"nonlinearity": "swish2"}, "valid names are"),
        ({"cell": "gru", "nonlinearity": "relu"}, "applies to cell='rnn' only"),
        ({"cell": "lstm", "density": {"i": 0.1}}, r"one density per gate \['i', 'f', 'g', 'o'\]"),
        ({"density": 0.0}, r"\(0, 1\]"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sprig.SparseRNN(4, 6, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((torch.randn(2, 3, 4, 5),), {}, r"must be \(T, B, input_size\)"),
        ((torch.randn(5, 2, 3),), {}, r"3 features per step .* input_size=4"),
        ((torch.randn(5, 2, 4),), {"lengths": [5, 6]}, r"\[1, T=5\]"),
        ((torch.randn(5, 2, 4),), {"lengths": [5]}, "one length per sequence"),
        ((torch.randn(5, 2, 4), torch.zeros(1, 3, 6)), {}, r"\(1, 2, 6\), got \(1, 3, 6\)"),
    ],
)
def test_bad_forward_input(args, kwargs, match):
    s = sprig.SparseRNN(4, 6, density=0.5)
    with pytest.raises(ValueError, match=match):
        s(*args, **kwargs)


def test_bad_lstm_state():
    s = sprig.SparseRNN(4, 6, cell="lstm")
    with pytest.raises(ValueError, match=r"a pair \(h0, c0\)"):
        s(torch.randn(5, 2, 4), torch.zeros(1, 2, 6))
    with pytest.raises(ValueError, match=r"c0 must have shape .* \(1, 2, 6\)"):
        s(torch.randn(5, 2, 4), (torch.zeros(1, 2, 6), torch.zeros(2, 2, 6)))
