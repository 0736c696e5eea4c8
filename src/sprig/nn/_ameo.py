"""The Ameo activation family of "Growing Bonsai Networks with RNNs" (Primozic 2023).

Ameo is a zig-zag: -1, then up to +1 at x = -1, down to -1 at x = 1, up to +1 at x = 3, flat.
One neuron with it computes XOR-like functions of two +-1 inputs, which is why the bonsai
networks that use it stay so small. The soft variant replaces the corners by quartic pieces so
the gradient is continuous; the interpolated one mixes the two (the default of the bonsai cell).

Each function has three forms that the tests compare: the readable torch reference written as
in the post (``torch.where`` chains; autograd gives its gradient), the fast form the modules use
(one piecewise polynomial in x on 8 segments, value and slope from one table look-up: about 10x
fewer tensor ops, which is most of a bonsai training step), and a scalar pure-Python twin
(:func:`ameo_scalar`) used by the exported Python source of a bonsai graph.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.polynomial import Polynomial as P
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn import functional as F


def _check_params(leak: float, factor: float = 0.5) -> None:
    if not (math.isfinite(leak) and leak >= 0):
        raise ValueError(f"leak must be a finite number >= 0, got {leak!r}")
    if not (math.isfinite(factor) and 0.0 <= factor <= 1.0):
        raise ValueError(f"factor must be in [0, 1], got {factor!r}")


def leaky_ameo(x: Tensor, leak: float = 0.1) -> Tensor:
    """Leaky Ameo: -1 + (x + 3) leak for x < -3; x + 2 on [-3, -1]; -x on (-1, 1];
    x - 2 on (1, 3]; 1 + (x - 3) leak for x > 3. ``leak=0`` is plain Ameo.

    Example:
        >>> leaky_ameo(torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0]), leak=0.5).tolist()
        [-1.5, 0.0, -0.0, 0.0, 1.5]
    """
    left = -1.0 + (x + 3.0) * leak
    right = 1.0 + (x - 3.0) * leak
    return torch.where(
        x < -3.0,
        left,
        torch.where(
            x <= -1.0, x + 2.0, torch.where(x <= 1.0, -x, torch.where(x <= 3.0, x - 2.0, right))
        ),
    )


def ameo(x: Tensor) -> Tensor:
    """Ameo(x) = -1 for x < -3; x + 2 on [-3, -1]; -x on (-1, 1]; x - 2 on (1, 3]; 1 for x > 3.

    Example:
        >>> ameo(torch.tensor([-5.0, -1.0, 0.5, 3.0, 7.0])).tolist()
        [-1.0, 1.0, -0.5, 1.0, 1.0]
    """
    return leaky_ameo(x, 0.0)


def soft_leaky_ameo(x: Tensor, leak: float = 0.1) -> Tensor:
    """Soft leaky Ameo S(x) = 2 (s(u) - 0.5), u = x / 2 - 1 / 2, with s piecewise quartic:
    leak (u + 2) for u <= -2; 8 (u + 2)^4 on (-2, -1.5]; 1 - 8 (u + 1)^4 on (-1.5, -0.5];
    8 u^4 on (-0.5, 0.5]; 1 - 8 (u - 1)^4 on (0.5, 1]; 1 + leak (u - 1) for u > 1.

    It meets Ameo at its corners (S(-3) = -1, S(-1) = 1, S(1) = -1, S(3) = 1) with zero slope there.

    Example:
        >>> soft_leaky_ameo(torch.tensor([-3.0, -1.0, 1.0, 3.0])).tolist()
        [-1.0, 1.0, -1.0, 1.0]
    """
    u = x * 0.5 - 0.5
    s = torch.where(
        u <= -2.0,
        leak * (u + 2.0),
        torch.where(
            u <= -1.5,
            8.0 * (u + 2.0) ** 4,
            torch.where(
                u <= -0.5,
                1.0 - 8.0 * (u + 1.0) ** 4,
                torch.where(
                    u <= 0.5,
                    8.0 * u**4,
                    torch.where(u <= 1.0, 1.0 - 8.0 * (u - 1.0) ** 4, 1.0 + leak * (u - 1.0)),
                ),
            ),
        ),
    )
    return 2.0 * (s - 0.5)


def interpolated_ameo(x: Tensor, factor: float = 0.5, leak: float = 0.1) -> Tensor:
    """``factor * leaky_ameo(x, leak) + (1 - factor) * soft_leaky_ameo(x, leak)``.

    The sharp part uses the same leak as the soft part, as the post's code does (with
    ``leak=0`` the sharp part is plain Ameo).

    Example:
        >>> interpolated_ameo(torch.tensor([-1.0, 1.0, 3.0])).tolist()
        [1.0, -1.0, 1.0]
    """
    return factor * leaky_ameo(x, leak) + (1.0 - factor) * soft_leaky_ameo(x, leak)


def sharp_ameo_scalar(v: float, lk: float) -> float:
    """Leaky Ameo of one float (leak ``lk``; 0 gives plain Ameo)."""
    if v < -3.0:
        return -1.0 + (v + 3.0) * lk
    if v <= -1.0:
        return v + 2.0
    if v <= 1.0:
        return -v
    if v <= 3.0:
        return v - 2.0
    return 1.0 + (v - 3.0) * lk


def soft_ameo_scalar(v: float, lk: float) -> float:
    """Soft leaky Ameo of one float (leak ``lk``)."""
    u = v * 0.5 - 0.5
    if u <= -2.0:
        s = lk * (u + 2.0)
    elif u <= -1.5:
        s = 8.0 * (u + 2.0) ** 4
    elif u <= -0.5:
        s = 1.0 - 8.0 * (u + 1.0) ** 4
    elif u <= 0.5:
        s = 8.0 * u**4
    elif u <= 1.0:
        s = 1.0 - 8.0 * (u - 1.0) ** 4
    else:
        s = 1.0 + lk * (u - 1.0)
    return 2.0 * (s - 0.5)


def ameo_scalar(name: str, x: float, factor: float = 0.5, leak: float = 0.1) -> float:
    """Pure-Python twin of the torch functions above, for one float (``name`` as registered).

    Example:
        >>> ameo_scalar("ameo", 0.5)
        -0.5
    """

    if name == "ameo":
        return sharp_ameo_scalar(x, 0.0)
    if name == "leaky_ameo":
        return sharp_ameo_scalar(x, leak)
    if name == "soft_leaky_ameo":
        return soft_ameo_scalar(x, leak)
    if name == "interpolated_ameo":
        return factor * sharp_ameo_scalar(x, leak) + (1.0 - factor) * soft_ameo_scalar(x, leak)
    raise ValueError(
        f"unknown Ameo activation {name!r}; valid names are: ameo, interpolated_ameo, "
        "leaky_ameo, soft_leaky_ameo"
    )


# Segment bounds in x: every corner of Ameo (-3, -1, 1, 3) and of the soft form (u = x/2 - 1/2
# at -2, -1.5, -0.5, 0.5, 1, i.e. x = -3, -2, 0, 2, 3).
_BOUNDS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def _pieces(factor: float, leak: float) -> tuple[Tensor, Tensor]:
    """(8, 5) value and (8, 4) slope coefficients (lowest power first) of the 8 segments."""
    x = P([0.0, 1.0])
    u = 0.5 * x - 0.5
    sharp = [-1.0 + (x + 3.0) * leak, x + 2.0, x + 2.0, -x, -x, x - 2.0, x - 2.0]
    sharp.append(1.0 + (x - 3.0) * leak)
    soft_u = [leak * (u + 2.0), 8.0 * (u + 2.0) ** 4, 1.0 - 8.0 * (u + 1.0) ** 4]
    soft_u += [1.0 - 8.0 * (u + 1.0) ** 4, 8.0 * u**4, 8.0 * u**4, 1.0 - 8.0 * (u - 1.0) ** 4]
    soft_u.append(1.0 + leak * (u - 1.0))
    values = np.zeros((8, 5))
    slopes = np.zeros((8, 4))
    for i, (a, s) in enumerate(zip(sharp, soft_u)):
        f = factor * a + (1.0 - factor) * (2.0 * (s - 0.5))
        c = f.coef
        values[i, : len(c)] = c
        dc = f.deriv().coef
        slopes[i, : len(dc)] = dc
    return torch.from_numpy(values), torch.from_numpy(slopes)


class _Piecewise(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, values: Tensor, slopes: Tensor) -> Tensor:
        # segment i holds _BOUNDS[i-1] < x <= _BOUNDS[i]; the bounds are the integers -3..3,
        # so the index is ceil(x) + 3 clamped (cheaper than bucketize: design_measurements.md,
        # row ameo-index)
        idx = (torch.ceil(x) + 3.0).clamp_(0.0, 7.0).long()
        c = F.embedding(idx, values.to(x))  # (..., 5); embedding: the fastest row gather
        y = c[..., 4]
        for k in (3, 2, 1, 0):
            y = y * x + c[..., k]
        ctx.save_for_backward(x, idx, slopes)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        x, idx, slopes = ctx.saved_tensors  # type: ignore[attr-defined]
        d = F.embedding(idx, slopes.to(x))  # (..., 4)
        dy = d[..., 3]
        for k in (2, 1, 0):
            dy = dy * x + d[..., k]
        return grad * dy, None, None


def ameo_fast(x: Tensor, factor: float = 1.0, leak: float = 0.0) -> Tensor:
    """``factor * leaky_ameo(x, leak) + (1 - factor) * soft_leaky_ameo(x, leak)`` in one pass.

    ``factor=1, leak=0`` is Ameo, ``factor=1`` leaky Ameo, ``factor=0`` soft leaky Ameo.

    Example:
        >>> ameo_fast(torch.tensor([-2.0, 0.5, 2.5])).tolist()
        [0.0, -0.5, 0.5]
    """
    values, slopes = _pieces(factor, leak)
    return _Piecewise.apply(x, values, slopes)


class _FastAmeo(nn.Module):
    """Base of the modules: precomputed segment tables, applied by :class:`_Piecewise`."""

    name = ""

    def __init__(self, factor: float, leak: float) -> None:
        super().__init__()
        _check_params(leak, factor)
        self.factor, self.leak = float(factor), float(leak)
        values, slopes = _pieces(self.factor, self.leak)
        self.register_buffer("_values", values, persistent=False)
        self.register_buffer("_slopes", slopes, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return _Piecewise.apply(x, self._values, self._slopes)


class Ameo(_FastAmeo):
    """The Ameo activation as a module (see :func:`ameo`).

    Example:
        >>> Ameo()(torch.tensor([0.0, 2.0])).tolist()
        [0.0, 0.0]
    """

    name = "ameo"

    def __init__(self) -> None:
        super().__init__(1.0, 0.0)

    def params(self) -> dict[str, Any]:
        """Parameters that define the function (for exports)."""
        return {}


class LeakyAmeo(_FastAmeo):
    """Leaky Ameo as a module (see :func:`leaky_ameo`).

    Example:
        >>> LeakyAmeo(0.1)(torch.tensor([13.0])).tolist()
        [2.0]
    """

    name = "leaky_ameo"

    def __init__(self, leak: float = 0.1) -> None:
        super().__init__(1.0, leak)

    def params(self) -> dict[str, Any]:
        return {"leak": self.leak}

    def extra_repr(self) -> str:
        return f"leak={self.leak:g}"


class SoftLeakyAmeo(_FastAmeo):
    """Soft leaky Ameo as a module (see :func:`soft_leaky_ameo`).

    Example:
        >>> SoftLeakyAmeo()(torch.tensor([1.0])).tolist()
        [-1.0]
    """

    name = "soft_leaky_ameo"

    def __init__(self, leak: float = 0.1) -> None:
        super().__init__(0.0, leak)

    def params(self) -> dict[str, Any]:
        return {"leak": self.leak}

    def extra_repr(self) -> str:
        return f"leak={self.leak:g}"


class InterpolatedAmeo(_FastAmeo):
    """Interpolated Ameo as a module (see :func:`interpolated_ameo`); the bonsai default.

    Example:
        >>> InterpolatedAmeo(factor=1.0, leak=0.0)(torch.tensor([0.5])).tolist()
        [-0.5]
    """

    name = "interpolated_ameo"

    def __init__(self, factor: float = 0.5, leak: float = 0.1) -> None:
        super().__init__(factor, leak)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor, "leak": self.leak}

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}, leak={self.leak:g}"


AMEO_CLASSES: dict[str, type[_FastAmeo]] = {
    c.name: c for c in (Ameo, LeakyAmeo, SoftLeakyAmeo, InterpolatedAmeo)
}
