import pytest
import torch

from sprig.bonsai import extract_graph
from sprig.nn import BonsaiRNN


def delay1_net() -> BonsaiRNN:
    """A hand-built perfect y[n] = x[n-1]: Ameo(+-3) = +-1, so s_t = x_t and y_t = s_{t-1}."""
    net = BonsaiRNN(1, 1, cells=[(1, 1)], activation="ameo", seed=0)
    cell = net.cells[0]
    with torch.no_grad():
        cell.kernel_out.copy_(torch.tensor([[0.0], [3.0]]))  # rows: x_t, s_{t-1}
        cell.kernel_rec.copy_(torch.tensor([[3.0], [0.0]]))
        cell.bias_out.zero_()
        cell.bias_rec.zero_()
        cell.initial_state.fill_(-1.0)
    return net


@pytest.fixture
def delay1():
    return delay1_net()


@pytest.fixture
def delay1_graph():
    return extract_graph(delay1_net(), task="delay-1")


def random_pruned_net(seed: int, activation: str = "interpolated_ameo") -> BonsaiRNN:
    """An untrained two-cell network with random biases/initial states, 40% of it zeroed."""
    gen = torch.Generator().manual_seed(seed)
    net = BonsaiRNN(3, 2, cells=[(4, 3), (3, 2)], seed=seed, activation=activation).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            p.masked_fill_(torch.rand(p.shape, generator=gen) < 0.4, 0.0)
    return net
