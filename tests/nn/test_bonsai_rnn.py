import pytest
import torch

import sprig
from sprig.nn import BonsaiCell, BonsaiRNN


def test_forward_matches_step_by_step():
    net = BonsaiRNN(3, 2, cells=[(4, 3), (2, 5)], seed=1).double()
    with torch.no_grad():
        for cell in net.cells:
            cell.initial_state.normal_()
            cell.bias_out.normal_()
    x = torch.randn(5, 7, 3, dtype=torch.float64).sign()
    y = net(x)
    assert y.shape == (5, 7, 2)
    assert net.final is None  # last cell already has 2 outputs
    states = [c.initial_state.expand(5, -1) for c in net.cells]
    outs = []
    for t in range(7):
        h = x[:, t]
        for i, cell in enumerate(net.cells):
            h, states[i] = cell.step(h, states[i])
        outs.append(h)
    torch.testing.assert_close(y, torch.stack(outs, 1))


def test_final_layer_when_widths_differ_and_no_state():
    net = BonsaiRNN(1, 1, cells=[(3, 0)], seed=0)
    assert net.final is not None
    assert net(torch.ones(2, 4, 1)).shape == (2, 4, 1)
    names = {id(t) for t in net.regularized_weights()}
    assert id(net.final.weight) in names and id(net.final.bias) not in names
    assert len(net.regularized_weights()) == 3


def test_save_load_roundtrip(tmp_path):
    net = BonsaiRNN(2, 1, cells=[(4, 4)], activation="leaky_ameo", activation_params={"leak": 0.2})
    with torch.no_grad():
        net.cells[0].initial_state.fill_(0.5)
    path = sprig.save(net, tmp_path / "b.safetensors")
    back = sprig.load(path)
    assert isinstance(back, BonsaiRNN) and back.config() == net.config()
    x = torch.randn(3, 6, 2).sign()
    torch.testing.assert_close(back(x), net(x))


def test_bad_input():
    with pytest.raises(ValueError, match="Ameo-family"):
        BonsaiCell(1, 1, 1, activation="relu")
    with pytest.raises(ValueError, match="pairs"):
        BonsaiRNN(1, 1, cells=[(1, 2, 3)])
    with pytest.raises(ValueError, match="final layer"):
        BonsaiRNN(1, 2, cells=[(3, 1)], final_layer=False)
    with pytest.raises(ValueError, match=r"\(batch, time, 2\)"):
        BonsaiRNN(2, 1)(torch.ones(4, 2))
