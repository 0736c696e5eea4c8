import math

import pytest
import torch

from sprig.prune import L1, BonsaiRegularizer


def test_bonsai_formula_and_defaults():
    reg = BonsaiRegularizer()
    assert (reg.intensity, reg.threshold, reg.steepness, reg.l1) == (0.1, 0.1, 100.0, 0.001)
    x = torch.tensor([-0.5, -0.1, 0.0, 0.05, 0.3], dtype=torch.float64)
    t, s = 0.1, 100.0
    expected = sum(
        0.1 * (math.tanh((abs(v) - t) * s) - math.tanh(-t * s)) + 0.001 * abs(v) for v in x.tolist()
    ) / len(x)
    assert float(reg([x])) == pytest.approx(expected, rel=1e-12)
    assert float(reg.per_element(torch.zeros(1, dtype=torch.float64))) == pytest.approx(0.0)


def test_gradcheck():
    x = (torch.rand(7, dtype=torch.float64) - 0.5).requires_grad_()
    reg = BonsaiRegularizer(intensity=0.05, threshold=0.025, steepness=10, l1=0.001)
    assert torch.autograd.gradcheck(lambda v: reg([v]), (x,))
    assert torch.autograd.gradcheck(lambda v: L1(0.3)([v, v * 2]), (x,))


def test_bad_input():
    with pytest.raises(ValueError, match="steepness must be >= 0"):
        BonsaiRegularizer(steepness=-1)
    with pytest.raises(ValueError, match="strength"):
        L1(float("nan"))
