import pytest
import torch

from sprig.nn import (
    ACTIVATIONS,
    Ameo,
    InterpolatedAmeo,
    LeakyAmeo,
    SoftLeakyAmeo,
    ameo,
    ameo_scalar,
    interpolated_ameo,
    leaky_ameo,
    make_activation,
    soft_leaky_ameo,
)
from sprig.nn._ameo import ameo_fast

CORNERS = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
CASES = [  # (registry name, params, module, reference)
    ("ameo", {}, Ameo(), lambda x: ameo(x)),
    ("leaky_ameo", {"leak": 0.3}, LeakyAmeo(0.3), lambda x: leaky_ameo(x, 0.3)),
    ("soft_leaky_ameo", {"leak": 0.2}, SoftLeakyAmeo(0.2), lambda x: soft_leaky_ameo(x, 0.2)),
    (
        "interpolated_ameo",
        {"factor": 0.6, "leak": 0.1},
        InterpolatedAmeo(0.6, 0.1),
        lambda x: interpolated_ameo(x, 0.6, 0.1),
    ),
]


def test_ameo_pieces_exact():
    x = torch.tensor([-5.0, -3.0, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 9.0])
    want = [-1.0, -1.0, -0.5, 1.0, 0.5, 0.0, -0.5, -1.0, 0.0, 1.0, 1.0, 1.0]
    assert ameo(x).tolist() == want


def test_leaky_tails():
    x = torch.tensor([-5.0, 5.0])
    assert leaky_ameo(x, 0.25).tolist() == [-1.5, 1.5]


def test_soft_leaky_pieces():
    # u = x/2 - 1/2; pick points inside each piece and check the formula in u directly
    leak = 0.1
    for x, s in [
        (-5.0, leak * (-3.0 + 2.0)),  # u = -3
        (-2.5, 8 * (-1.75 + 2) ** 4),  # u = -1.75
        (-1.5, 1 - 8 * (-1.25 + 1) ** 4),  # u = -1.25
        (0.5, 8 * (-0.25) ** 4),  # u = -0.25
        (2.5, 1 - 8 * (0.75 - 1) ** 4),  # u = 0.75
        (5.0, 1 + leak * (2.0 - 1)),  # u = 2
    ]:
        got = float(soft_leaky_ameo(torch.tensor([x], dtype=torch.float64), leak))
        assert got == pytest.approx(2 * (s - 0.5), abs=1e-12)
    # it meets Ameo at the corners with zero slope
    c = torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    y = soft_leaky_ameo(c, 0.0)
    assert y.tolist() == [-1.0, 1.0, -1.0, 1.0]
    (g,) = torch.autograd.grad(y.sum(), c)
    assert g.abs().max() < 1e-12


@pytest.mark.parametrize("name,params,module,ref", CASES)
def test_fast_equals_reference_values_and_gradients(name, params, module, ref):
    torch.manual_seed(0)
    x = torch.cat([torch.randn(2000, dtype=torch.float64) * 3, torch.tensor(CORNERS).double()])
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1, y2 = module(x1), ref(x2)
    torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
    g = torch.randn_like(x)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    off = ~torch.isin(x, torch.tensor(CORNERS, dtype=torch.float64))  # kinks: one-sided
    torch.testing.assert_close(x1.grad[off], x2.grad[off], atol=1e-10, rtol=0)
    # float32 and odd shapes go through the same path
    z = torch.randn(3, 1, 5)
    assert module(z).shape == (3, 1, 5) and module(z).dtype == torch.float32
    assert module(torch.zeros(0)).shape == (0,)


@pytest.mark.parametrize("name,params,module,ref", CASES)
def test_gradcheck_where_smooth(name, params, module, ref):
    # points strictly inside pieces (away from every corner), in float64
    x = torch.tensor([-4.2, -2.7, -1.6, -0.4, 0.3, 1.4, 2.6, 3.7], dtype=torch.float64)
    assert torch.autograd.gradcheck(module, (x.clone().requires_grad_(True),))
    assert torch.autograd.gradcheck(ref, (x.clone().requires_grad_(True),))


@pytest.mark.parametrize("name,params,module,ref", CASES)
def test_scalar_twin_and_registry(name, params, module, ref):
    xs = torch.linspace(-6, 6, 241, dtype=torch.float64)
    want = ref(xs).tolist()
    got = [ameo_scalar(name, float(v), **params) for v in xs]
    assert got == pytest.approx(want, abs=1e-12)
    built = make_activation(name, **params)
    assert type(built) is type(module)
    assert name in ACTIVATIONS


def test_ameo_fast_modes():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(ameo_fast(x), ameo(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(ameo_fast(x, 0.0, 0.1), soft_leaky_ameo(x, 0.1), atol=1e-12, rtol=0)


def test_bad_params():
    with pytest.raises(ValueError, match="leak"):
        LeakyAmeo(-1.0)
    with pytest.raises(ValueError, match="factor"):
        InterpolatedAmeo(factor=1.5)
    with pytest.raises(ValueError, match="valid names"):
        ameo_scalar("relu", 0.0)
