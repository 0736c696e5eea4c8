"""Dead-unit stripping: remove hidden neurons that cannot affect an MLP's output.

A hidden neuron with no outgoing connection never reaches the output: it is removed. A hidden
neuron with no incoming connection outputs the constant ``act(bias)``: its effect is folded into
the next layer's bias (``b_next += W_next[:, j] * act(b_j)``) and it is removed. Removing one
neuron can leave another without connections, so the passes repeat until nothing changes.
Inputs and outputs are kept, so the stripped network is a drop-in replacement.

The RigL-on-micrograd article stripped its 2-16-16-1 RigL net to 2-10-4-1 this way.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..masks import apply_mask, get_mask, mask_pattern
from ..nn import SparseLinear, SparseMLP, make_activation

# Activations that act on each entry alone (so a neuron's output depends on its own input only).
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Identity,
)


@dataclass(frozen=True)
class StripResult:
    """A stripped network and what stripping removed.

    Attributes:
        model: the smaller network (same inputs, same outputs).
        sizes_before: widths from input to output before, e.g. ``(2, 16, 16, 1)``.
        sizes_after: widths after, e.g. ``(2, 10, 4, 1)``.
        weights_before: stored weight entries (connections) before.
        weights_after: connections after (equal unless a neuron had only one side connected).
        params_before: all parameters (weight matrices and biases, dense count) before.
        params_after: all parameters after.
    """

    model: nn.Module
    sizes_before: tuple[int, ...]
    sizes_after: tuple[int, ...]
    weights_before: int
    weights_after: int
    params_before: int
    params_after: int

    def __str__(self) -> str:
        before = "-".join(map(str, self.sizes_before))
        after = "-".join(map(str, self.sizes_after))
        return (
            f"{before} -> {after}, connections {self.weights_before} -> {self.weights_after}, "
            f"parameters {self.params_before} -> {self.params_after}"
        )


@dataclass
class _Layer:
    weight: Tensor  # (out, in), zero where not connected
    conn: Tensor  # (out, in) bool: connections (mask, or nonzero weights when unmasked)
    bias: Tensor | None  # (out,)
    masked: bool
    pattern: str


def _act_fn(acts: Sequence[nn.Module]) -> nn.Module:
    return nn.Sequential(*acts) if acts else nn.Identity()


def _strip_layers(layers: list[_Layer], acts: Sequence[Sequence[nn.Module]]) -> list[_Layer]:
    """Strip hidden neurons in place of copies; ``acts[i]`` follows ``layers[i]``."""
    changed = True
    while changed:
        changed = False
        for i in range(len(layers) - 1):
            cur, nxt = layers[i], layers[i + 1]
            has_in = cur.conn.any(dim=1)  # (out_i,)
            has_out = nxt.conn.any(dim=0)  # (out_i,)
            keep = has_in & has_out
            if bool(keep.all()):
                continue
            const = ~has_in & has_out
            if bool(const.any()):
                # neuron j outputs act(b_j) whatever the input: fold it into the next bias
                b = cur.bias if cur.bias is not None else torch.zeros(cur.weight.shape[0])
                with torch.no_grad():
                    value = _act_fn(acts[i])(b.detach()[None, :].double())[0]  # (out_i,)
                    folded = (nxt.weight.double()[:, const] * value[const]).sum(dim=1)
                if bool((folded != 0).any()):
                    base = nxt.bias if nxt.bias is not None else torch.zeros_like(folded)
                    nxt.bias = (base.double() + folded).to(nxt.weight.dtype)
            cur.weight, cur.conn = cur.weight[keep], cur.conn[keep]
            cur.bias = None if cur.bias is None else cur.bias[keep]
            nxt.weight, nxt.conn = nxt.weight[:, keep], nxt.conn[:, keep]
            changed = True
    return layers


def _read(linear: nn.Linear) -> _Layer:
    mask = get_mask(linear, "weight")
    w = linear.weight.detach().clone()
    conn = mask.clone() if mask is not None else w != 0
    b = None if linear.bias is None else linear.bias.detach().clone()
    pattern = (mask_pattern(linear, "weight") or "custom") if mask is not None else "dense"
    return _Layer(w * conn, conn, b, mask is not None, pattern)


def _write(linear: nn.Linear, layer: _Layer) -> None:
    with torch.no_grad():
        linear.weight.copy_(layer.weight)
        if linear.bias is not None:
            if layer.bias is not None:
                linear.bias.copy_(layer.bias)
            else:
                linear.bias.zero_()
    if layer.masked:
        apply_mask(linear, "weight", layer.conn, pattern=layer.pattern)


def _sizes(layers: list[_Layer]) -> tuple[int, ...]:
    return (int(layers[0].weight.shape[1]), *(int(la.weight.shape[0]) for la in layers))


def _counts(layers: list[_Layer]) -> tuple[int, int]:
    conns = sum(int(la.conn.sum()) for la in layers)
    params = sum(la.weight.numel() + (0 if la.bias is None else la.bias.numel()) for la in layers)
    return conns, params


def _pad(layers: list[_Layer]) -> None:
    # a hidden layer with no neuron left: keep one silent neuron (no connections, zero bias);
    # the network's output is then constant, carried by the later biases
    for i, la in enumerate(layers[:-1]):
        if la.weight.shape[0] == 0:
            n_in, nxt = la.weight.shape[1], layers[i + 1]
            la.weight = torch.zeros(1, n_in, dtype=la.weight.dtype)
            la.conn = torch.zeros(1, n_in, dtype=torch.bool)
            la.bias = None if la.bias is None else torch.zeros(1, dtype=la.weight.dtype)
            nxt.weight = torch.zeros(nxt.weight.shape[0], 1, dtype=nxt.weight.dtype)
            nxt.conn = torch.zeros(nxt.weight.shape[0], 1, dtype=torch.bool)


def _strip_mlp(mlp: SparseMLP) -> tuple[nn.Module, list[_Layer], list[_Layer]]:
    linears = [la for la in mlp.layers if isinstance(la, nn.Linear)]
    before = [_read(la) for la in linears]
    act = make_activation(mlp.activation)
    after = _strip_layers(copy.deepcopy(before), [[act] for _ in before])
    _pad(after)
    needs_bias = mlp.bias or any(la.bias is not None for la in after)
    sizes = list(_sizes(after))
    densities = [max(float(la.conn.float().mean()), 1.0 / la.conn.numel()) for la in after]
    out = SparseMLP(sizes, densities=1.0, activation=mlp.activation, bias=needs_bias)
    out = out.to(after[0].weight.dtype)
    out.densities = densities
    out.pattern, out.seed = mlp.pattern, mlp.seed
    for linear, la in zip(out.layers, after):
        assert isinstance(linear, SparseLinear)
        la.masked = True
        _write(linear, la)
        linear.density_config = float(la.conn.float().mean())
    ref = next(mlp.parameters())
    return out.to(device=ref.device, dtype=ref.dtype), before, after


def _strip_sequential(seq: nn.Sequential) -> tuple[nn.Module, list[_Layer], list[_Layer]]:
    mods = list(seq)
    if not mods or not isinstance(mods[0], nn.Linear):
        raise ValueError(
            "sprig.strip needs an nn.Sequential that starts with nn.Linear, got "
            f"{[type(m).__name__ for m in mods[:3]]}"
        )
    linears: list[nn.Linear] = []
    acts: list[list[nn.Module]] = []
    for m in mods:
        if isinstance(m, nn.Linear):
            linears.append(m)
            acts.append([])
        elif isinstance(m, _ELEMENTWISE):
            acts[-1].append(m)
        else:
            allowed = ", ".join(sorted(c.__name__ for c in _ELEMENTWISE))
            raise ValueError(
                f"sprig.strip handles nn.Linear and elementwise activations ({allowed}); "
                f"{type(m).__name__} is neither"
            )
    before = [_read(la) for la in linears]
    after = _strip_layers(copy.deepcopy(before), acts)
    _pad(after)
    new: list[nn.Module] = []
    for old, la, act in zip(linears, after, acts):
        out_f, in_f = la.weight.shape
        lin = nn.Linear(in_f, out_f, bias=la.bias is not None, dtype=old.weight.dtype)
        _write(lin, la)
        new.append(lin.to(old.weight.device))
        new.extend(copy.deepcopy(a) for a in act)
    return nn.Sequential(*new), before, after


def strip(model: nn.Module) -> StripResult:
    """Remove the hidden neurons of an MLP that have no incoming or no outgoing connection.

    Neurons without inputs output a constant, which is folded into the next layer's bias, so
    the stripped network computes the same function (up to float rounding of that fold).
    ``model`` is not changed.

    Args:
        model: a :class:`sprig.SparseMLP`, or an ``nn.Sequential`` of ``nn.Linear`` layers
            (masked or not; unmasked zeros count as missing connections) and elementwise
            activations.

    Returns:
        a :class:`StripResult` with the smaller ``model`` and before/after sizes.

    Example:
        >>> import sprig
        >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> with torch.no_grad():
        ...     net[2].weight[0, :2] = 0.0   # hidden neurons 0 and 1 feed nothing
        >>> res = sprig.strip(net)
        >>> res.sizes_after
        (2, 2, 1)
        >>> x = torch.randn(5, 2)
        >>> bool(torch.allclose(res.model(x), net(x)))
        True
    """
    if isinstance(model, SparseMLP):
        new, before, after = _strip_mlp(model)
    elif isinstance(model, nn.Sequential):
        new, before, after = _strip_sequential(model)
    else:
        raise TypeError(
            "sprig.strip handles sprig.SparseMLP and nn.Sequential MLPs, "
            f"got {type(model).__name__}"
        )
    new.train(model.training)
    wb, pb = _counts(before)
    wa, pa = _counts(after)
    return StripResult(new, _sizes(before), _sizes(after), wb, wa, pb, pa)
