"""Compiling a finite-state machine into a bonsai network: :func:`extract_fsm` the other way.

Greedy pruning keeps the encoding the grown network happened to learn. On switcher, the mode
counter stays spread over 7-12 states that all read each other, and greedy pruning stopped at
67-91 edges (``benchmarks/results/bonsai.md``), while the minimal machine has 4 states. Small
networks do not learn the task by gradient descent (none of 24 runs of cells (4, 2) to (8, 4)
did, with or without the regularizer), and gradient descent on the machine's own table did not
find exact counter neurons either (0 of 30 starts). :func:`compile_machine` builds the network
from the minimal machine instead, the classic construction of automata in recurrent networks
(Omlin and Giles 1996), with the smallest neurons it can find:

* **states**: the machine's states get codes of ``k = ceil(log2 S)`` bits of +-1 (the initial
  state all -1). Each bit is one state neuron, found by exhaustive search over its inputs (fewest
  first) and a grid of weights and biases, such that plain Ameo gives exactly the next code bit
  for every state and input. Exact codes: the network runs the machine for any length without
  drift. Code assignments are tried in turn (the one whose neurons have the fewest inputs is
  kept), and one more bit when no assignment works.
* **outputs**: output neurons and the final linear layer are trained by gradient descent on the
  (state code, input) table, from several starts at once; the fewest neurons that get every
  output sign right with a margin are kept.

The activation is plain Ameo (``"ameo"``): its flat tails make an exact +-1 reachable by any
pre-activation beyond +-3, where the leaky variants reach +-1 only at single points.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from .._checks import check_int
from ..nn import BonsaiCell, BonsaiRNN
from ..nn._ameo import ameo
from ._fsm import StateMachine, _check_machine, sym_to_inputs

#: Weights a compiled state neuron may use: +-0.5 to +-4 in steps of 0.5 (every pre-activation
#: is then a multiple of 0.5, computed exactly in floating point).
WEIGHTS: tuple[float, ...] = tuple(v / 2 for v in range(-8, 9) if v)
#: Biases a compiled state neuron may use: -4 to 4 in steps of 0.5.
BIASES: tuple[float, ...] = tuple(v / 2 for v in range(-8, 9))


class CompileError(ValueError):
    """No network within the search's bounds computes the machine."""


def _exact(z: Tensor, target: Tensor) -> Tensor:
    """Where plain Ameo of ``z`` (..., rows) is exactly ``target`` (rows,) of +-1, per row set."""
    plus = (z == -1.0) | (z >= 3.0)  # ameo = +1 exactly
    minus = (z == 1.0) | (z <= -3.0)  # ameo = -1 exactly
    return torch.where(target > 0, plus, minus).all(-1)


def state_neuron(
    inputs: Tensor, target: Tensor, max_fan_in: int = 4
) -> tuple[tuple[int, ...], tuple[float, ...], float] | None:
    """The ameo neuron with the fewest inputs whose output is exactly ``target`` on every row.

    Args:
        inputs: ``(rows, n)`` of +-1.
        target: ``(rows,)`` of +-1.
        max_fan_in: the most inputs tried.

    Returns:
        ``(input indices, weights, bias)``, weights and bias from :data:`WEIGHTS` and
        :data:`BIASES`; None when no neuron with at most ``max_fan_in`` inputs fits.

    Example (XOR of two inputs):
        >>> x = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
        >>> state_neuron(x, torch.tensor([-1.0, 1.0, 1.0, -1.0]))[0]
        (0, 1)
    """
    if inputs.dim() != 2 or target.shape != (inputs.shape[0],):
        raise ValueError(
            f"state_neuron takes inputs (rows, n) and a target (rows,), got shapes "
            f"{tuple(inputs.shape)} and {tuple(target.shape)}"
        )
    for what, t in (("inputs", inputs), ("target", target)):
        if bool(((t != 1) & (t != -1)).any()):
            raise ValueError(f"state_neuron: every value of {what} must be -1 or +1")
    check_int(max_fan_in, "max_fan_in", 0)
    inputs, target = inputs.double(), target.double()
    grid = torch.tensor(WEIGHTS, dtype=torch.float64)
    biases = torch.tensor(BIASES, dtype=torch.float64)
    n = inputs.shape[1]
    for fan in range(min(max_fan_in, n) + 1):
        weights = (  # (16**fan, fan)
            torch.cartesian_prod(*[grid] * fan).reshape(-1, fan)
            if fan
            else torch.zeros(1, 0, dtype=torch.float64)
        )
        for sub in itertools.combinations(range(n), fan):
            # rows that agree on these inputs must want the same bit (else no neuron on them
            # can fit: the common case, rejected before any candidate is tried); the distinct
            # patterns, at most 2**fan, are all the candidates are checked on
            if fan:
                keys, where = torch.unique(inputs[:, list(sub)], dim=0, return_inverse=True)
            else:  # no inputs: one pattern, the constant neuron
                keys = inputs.new_zeros(1, 0)
                where = torch.zeros(len(inputs), dtype=torch.long)
            hi = torch.full((len(keys),), -2.0, dtype=torch.float64)
            lo = torch.full((len(keys),), 2.0, dtype=torch.float64)
            hi = hi.scatter_reduce(0, where, target, "amax")
            if not torch.equal(hi, lo.scatter_reduce(0, where, target, "amin")):
                continue
            z = weights @ keys.T  # (candidates, patterns)
            for b in biases:
                ok = _exact(z + b, hi)
                if bool(ok.any()):
                    i = int(ok.nonzero()[0])
                    return sub, tuple(float(w) for w in weights[i]), float(b)
    return None


def _assignments(states: int, bits: int, limit: int) -> list[Tensor]:
    """Up to ``limit`` code tables ``(states, bits)`` of distinct +-1 codes, state 0 all -1."""
    codes = [torch.tensor(c) for c in itertools.product([-1.0, 1.0], repeat=bits)]
    tables = []
    for rest in itertools.permutations(codes[1:], states - 1):
        tables.append(torch.stack([codes[0], *rest]) if bits else torch.zeros(states, 0))
        if len(tables) >= limit:
            break
    return tables


def _table_rows(machine: StateMachine, code: Tensor) -> Tensor:
    """Every (state, input symbol) pair as a row ``concat(input bits, state code)``, state by
    state: ``(states * symbols, in + bits)``, the layout of ``concat(x_t, s_{t-1})``."""
    n_sym = 2**machine.in_features
    x = sym_to_inputs(torch.arange(n_sym), machine.in_features).to(code.dtype)
    return torch.cat([torch.cat([x, c.expand(n_sym, -1)], 1) for c in code])


def _state_part(
    machine: StateMachine, max_fan_in: int, max_assignments: int
) -> tuple[Tensor, list[tuple[tuple[int, ...], tuple[float, ...], float]]]:
    """The code table and one exact neuron per code bit, fewest inputs in total."""
    nxt = torch.tensor(machine.transitions).reshape(-1)  # (states * symbols,): the row order
    lowest = max(0, math.ceil(math.log2(machine.num_states)))
    for bits in (lowest, lowest + 1):
        best: tuple[int, Tensor, list] | None = None
        for code in _assignments(machine.num_states, bits, max_assignments):
            rows = _table_rows(machine, code.double())
            neurons = []
            for bit in range(bits):
                found = state_neuron(rows, code[nxt, bit], max_fan_in)
                if found is None:
                    break
                neurons.append(found)
            else:
                fan = sum(len(f[0]) for f in neurons)
                if best is None or fan < best[0]:
                    best = (fan, code, neurons)
        if best is not None:
            return best[1], best[2]
    raise CompileError(
        f"no code assignment of {lowest} or {lowest + 1} bits has state neurons of at most "
        f"{max_fan_in} inputs for this {machine.num_states}-state machine (tried up to "
        f"{max_assignments} assignments each); raise max_fan_in or max_assignments"
    )


def _output_part(
    rows: Tensor,
    target: Tensor,
    max_width: int,
    starts: int,
    steps: int,
    seed: int,
    margin: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Output neurons ``W (n, w)``, ``b (w,)`` and final layer ``V (w, out)``, ``c (out,)`` with
    ``sign(ameo(rows W + b) V + c) = target`` on every row, for the fewest neurons ``w``.

    Every start trains at once (one batched Adam run): squared hinge to a margin of 1 plus a
    small L1 on the weights, so the later pruning has less to remove.
    """
    gen = torch.Generator().manual_seed(seed)
    n, out = rows.shape[1], target.shape[1]
    for width in range(1, max_width + 1):
        w = torch.randn(starts, n, width, generator=gen) * (2 / (n + width)) ** 0.5
        v = torch.randn(starts, width, out, generator=gen) * (2 / (width + out)) ** 0.5
        params = [
            p.requires_grad_()
            for p in (w, torch.zeros(starts, 1, width), v, torch.zeros(starts, 1, out))
        ]
        w, b, v, c = params
        opt = torch.optim.Adam(params, lr=0.03)
        for _ in range(steps):
            y = ameo(rows @ w + b) @ v + c  # (starts, rows, out)
            hinge = torch.relu(1.0 - y * target).square().mean((1, 2))
            loss = (hinge + 1e-3 * (w.abs().sum((1, 2)) + v.abs().sum((1, 2)))).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            y = ameo(rows @ w + b) @ v + c
            worst = (y * target).amin((1, 2))  # (starts,)
            good = worst >= margin
            if bool(good.any()):
                l1 = w.abs().sum((1, 2)) + v.abs().sum((1, 2))
                i = int(torch.where(good, l1, torch.inf).argmin())
                return w[i].detach(), b[i, 0].detach(), v[i].detach(), c[i, 0].detach()
    raise CompileError(
        f"no {max_width} output neurons or fewer got every output sign right from {starts} "
        "starts; raise max_outputs or starts"
    )


def compile_machine(
    machine: StateMachine,
    max_fan_in: int = 4,
    max_assignments: int = 24,
    max_outputs: int = 4,
    starts: int = 16,
    steps: int = 2000,
    seed: int = 0,
) -> BonsaiRNN:
    """A bonsai network that computes ``machine`` exactly, with as few neurons as found.

    Args:
        machine: a minimal machine from :func:`sprig.bonsai.extract_fsm`.
        max_fan_in: the most inputs of a state neuron (the search grows as ``16 ** fan_in``).
        max_assignments: code assignments tried per code width.
        max_outputs: the most output neurons tried.
        starts: gradient-descent starts of the output part, per width.
        steps: Adam steps of each start.
        seed: seed of those starts.

    Returns:
        A :class:`sprig.nn.BonsaiRNN` with one cell ``(outputs, code bits)``, activation
        ``"ameo"`` and a final linear layer, whose initial state is state 0's code: its output
        signs equal ``machine.run`` on every sequence.

    Raises:
        CompileError: no state neurons within ``max_fan_in`` inputs, or no output part within
            ``max_outputs`` neurons, was found.

    Example (parity of the +1 inputs: two states, one state neuron):
        >>> from sprig.bonsai import StateMachine
        >>> m = StateMachine(1, 1, ((0, 1), (1, 0)), ((0, 1), (1, 0)), 2, ((0.0,), (1.0,)),
        ...                  ("s",), 0.01)
        >>> net = compile_machine(m)
        >>> net.cells[0].state_features
        1
    """
    _check_machine(machine, "compile_machine")
    for name, value in (
        ("max_fan_in", max_fan_in),
        ("max_assignments", max_assignments),
        ("max_outputs", max_outputs),
        ("starts", starts),
        ("steps", steps),
    ):
        check_int(value, name, 1)
    code, neurons = _state_part(machine, max_fan_in, max_assignments)
    n_in, n_out, bits = machine.in_features, machine.out_features, code.shape[1]
    rows = _table_rows(machine, code.float())
    symbols = torch.tensor(machine.outputs).reshape(-1)  # (states * symbols,)
    target = sym_to_inputs(symbols, n_out).float()  # output symbols -> +-1 bits, same coding
    w, b, v, c = _output_part(rows, target, max_outputs, starts, steps, seed)
    net = BonsaiRNN(
        n_in, n_out, cells=[(w.shape[1], bits)], activation="ameo", final_layer=True, seed=seed
    )
    cell, final = net.cells[0], net.final
    assert isinstance(cell, BonsaiCell) and final is not None
    with torch.no_grad():
        cell.kernel_rec.zero_()
        for j, (sub, weights, bias) in enumerate(neurons):
            cell.kernel_rec[list(sub), j] = torch.tensor(weights)
            cell.bias_rec[j] = bias
        cell.kernel_out.copy_(w)
        cell.bias_out.copy_(b)
        final.weight.copy_(v.T)
        final.bias.copy_(c)
        cell.initial_state.copy_(code[0])
    net.eval()
    return net
