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


def test_outgoing_weights_group_the_kernels_by_what_they_read():
    net = BonsaiRNN(2, 1, cells=[(3, 4), (2, 1)], seed=0)
    groups = net.outgoing_weights()
    c0, c1 = net.cells
    # cell 0: rows read in0, in1, then its states s0..s3; cell 1: rows read y0.0..y0.2 and its
    # state; the final layer's rows read y1.0, y1.1
    assert [tuple(g.shape) for g in groups] == [(6, 7), (4, 3), (2, 1)]
    torch.testing.assert_close(groups[0][2 + 1, :3], c0.kernel_out[2 + 1])  # read from s0.1
    torch.testing.assert_close(groups[0][2 + 1, 3:], c0.kernel_rec[2 + 1])
    torch.testing.assert_close(groups[2][1, 0], net.final.weight[0, 1])  # read from y1.1
    sum(g.sum() for g in groups).backward()  # the gradient reaches the parameters
    assert all(float(p.grad.abs().sum()) > 0 for p in net.regularized_weights())
