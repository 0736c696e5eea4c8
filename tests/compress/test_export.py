"""Compressed models refuse torch.jit.trace and torch.export instead of tracing a constant."""

import warnings

import pytest
import torch

import sprig

MESSAGE = r"cannot see into .* sprig\.decompress\(model\)"


def _compressed():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        sprig.SparseLinear(64, 32, density=0.2, seed=0), torch.nn.ReLU(),
        sprig.SparseLinear(32, 8, density=0.2, seed=1),
    )  # fmt: skip
    return net, sprig.compress(net).eval()


def test_jit_trace_is_refused_for_linear_and_rnn():
    _, comp = _compressed()
    with pytest.raises(RuntimeError, match=MESSAGE):
        torch.jit.trace(comp, torch.randn(1, 64))
    rnn = sprig.compress(sprig.SparseRNN(8, 16, density=0.3, cell="lstm", seed=0)).eval()
    with pytest.raises(RuntimeError, match=MESSAGE):  # it used to return trace-time outputs
        torch.jit.trace(rnn, torch.randn(1, 5, 8), check_trace=False)


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_is_refused(strict):
    _, comp = _compressed()
    with pytest.raises(Exception, match=MESSAGE):
        torch.export.export(comp, (torch.randn(1, 64),), strict=strict)


def test_the_decompressed_twin_traces_correctly_and_eager_still_runs():
    net, comp = _compressed()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(sprig.decompress(comp).eval(), torch.randn(1, 64))
    x = torch.randn(3, 64)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), net(x))
        torch.testing.assert_close(comp(x), net(x))  # the guard costs eager nothing
