import math

import pytest
import torch

from sprig.prune import L1, BonsaiRegularizer, GroupLasso


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


def test_bonsai_gradient_matches_formula():
    # away from x = 0, where |x| has no derivative
    x = torch.tensor([-0.4, -0.12, -0.09, 0.03, 0.1001, 0.2, 0.7], dtype=torch.float64)
    x.requires_grad_()
    reg = BonsaiRegularizer()
    reg([x]).backward()
    t, s, i_t, i_l1 = 0.1, 100.0, 0.1, 0.001
    xs = x.detach()
    sech2 = 1 - torch.tanh((xs.abs() - t) * s) ** 2
    expected = (i_t * s * sech2 + i_l1) * xs.sign() / xs.numel()
    assert torch.allclose(x.grad, expected, rtol=1e-12, atol=0)
    # defaults, with gradcheck near the steep part of the curve
    y = (0.1 + 0.02 * (torch.rand(9, dtype=torch.float64) - 0.5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: reg([v, -v[:4]]), (y,))


def test_l1_value_and_gradcheck_on_several_tensors():
    a = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64)
    b = torch.tensor([-4.0], dtype=torch.float64)
    assert float(L1(0.1)([a, b])) == pytest.approx(0.1 * (6.5 / 4 + 4.0))
    assert float(L1()([])) == 0.0
    a.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: L1(0.7)([v, v.sum(0) * 3]), (a,))


def test_group_lasso_value_gradient_and_bad_input():
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[-2.0]], dtype=torch.float64)
    assert float(GroupLasso(0.1)([a, b])) == pytest.approx(0.1 * (6.0 / 3 + 2.0))
    assert float(GroupLasso()([])) == 0.0
    # the gradient of a row is strength * row / ||row|| / rows: the same pull on a small row
    # as on a large one (unlike L2), towards zero along the row
    x = torch.tensor([[3.0, 4.0], [0.03, 0.04]], dtype=torch.float64, requires_grad=True)
    GroupLasso(1.0)([x]).backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.3, 0.4], [0.3, 0.4]], dtype=torch.float64))
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: GroupLasso(0.7)([v, v.t()]), (y,))
    with pytest.raises(ValueError, match="2-D"):
        GroupLasso()([torch.ones(3)])
    with pytest.raises(ValueError, match="strength"):
        GroupLasso(-1.0)
