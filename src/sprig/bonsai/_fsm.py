"""A bonsai graph as a finite-state machine: the measure the differentiable-FSM line of work
uses for success, the minimal number of states.

The graph's states are real numbers, but a perfect bonsai network usually visits only a few
state vectors. :func:`extract_fsm` runs the graph one step at a time from its initial state
under every combination of input bits, collects the distinct state vectors (codes, equal when
they agree within ``tolerance``), builds the Mealy machine (next state and output sign per
state and input), minimises it with Moore's partition refinement, and checks it against the
graph on random sequences. Where the state values never settle into finitely many codes (a
counter the task keeps in range but the graph does not, or values that drift), it raises
:class:`FSMError` instead of giving a wrong table.

Symbols: an input combination is one integer whose bit ``k`` is 1 when input ``k`` is +1
(``0`` is all inputs -1); outputs are coded the same way from the output signs (> 0 is +1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._checks import check_int
from .._words import plural
from ._graph import Graph
from ._tasks import Task, get_task

Stepper = Callable[[dict[str, Tensor], Tensor], dict[str, Tensor]]

#: At most this many inputs: the search tries all 2**in input combinations from every state.
MAX_INPUTS = 12


class FSMError(ValueError):
    """The graph's state values do not settle into a finite machine within the bound."""


@dataclass(frozen=True)
class StateMachine:
    """A minimal Mealy machine equal to a bonsai graph (by output sign), from :func:`extract_fsm`.

    Attributes:
        in_features: input bits per step.
        out_features: output bits per step.
        transitions: ``transitions[state][symbol]``: the next state (``2**in`` symbols).
        outputs: ``outputs[state][symbol]``: the output symbol (bit ``k``: output ``k`` is +1).
        raw_states: distinct state codes reached before minimisation.
        codes: for each state, the graph's state values (by ``state_ids``) of one code in it.
        state_ids: the graph's state node ids, the order of ``codes``.
        tolerance: the grid the codes were rounded to.

    State 0 is the initial state; states are numbered in breadth-first order from it.
    """

    in_features: int
    out_features: int
    transitions: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]
    raw_states: int
    codes: tuple[tuple[float, ...], ...]
    state_ids: tuple[str, ...]
    tolerance: float

    @property
    def num_states(self) -> int:
        """Number of states of the minimal machine."""
        return len(self.transitions)

    def _symbols(self, x: Tensor | Sequence[Sequence[float]]) -> tuple[Tensor, bool]:
        x = torch.as_tensor(x, dtype=torch.float64)
        batched = x.dim() == 3
        if x.dim() not in (2, 3) or x.shape[-1] != self.in_features:
            raise ValueError(
                f"the machine takes inputs (T, {self.in_features}) or (B, T, "
                f"{self.in_features}) of +-1 values, got shape {tuple(x.shape)}"
            )
        bad = (x != 1) & (x != -1)
        if bool(bad.any()):
            raise ValueError(
                f"machine inputs must be -1 or +1, got {x[bad].flatten()[0].item()!r} "
                "(map 0/1 bits with 2 * bit - 1)"
            )
        weights = 2 ** torch.arange(self.in_features)
        sym = ((x > 0).long() * weights).sum(-1)  # (B, T)
        return (sym if batched else sym[None]), batched

    def walk(self, x: Tensor | Sequence[Sequence[float]]) -> Tensor:
        """The state at each step (before it reads that step's input): ``x (T, in)`` ->
        ``(T,)`` ints (or ``(B, T, in)`` -> ``(B, T)``)."""
        sym, batched = self._symbols(x)
        walked = self._walk(sym)
        return walked if batched else walked[0]

    def _walk(self, sym: Tensor) -> Tensor:
        table = torch.tensor(self.transitions, dtype=torch.long)  # (S, symbols)
        state = torch.zeros(sym.shape[0], dtype=torch.long)
        seen = []
        for t in range(sym.shape[1]):
            seen.append(state)
            state = table[state, sym[:, t]]
        return torch.stack(seen, 1) if seen else torch.zeros(sym.shape[0], 0, dtype=torch.long)

    def run(self, x: Tensor | Sequence[Sequence[float]]) -> Tensor:
        """The machine's outputs: ``x (T, in)`` of +-1 -> ``(T, out)`` of +-1 (float32), the
        tasks' layout; a batch ``(B, T, in)`` gives ``(B, T, out)``.

        Example:
            >>> from sprig.bonsai import Graph, Node, Edge
            >>> g = Graph(1, 1, "ameo", {}, [Node("in0", "input", index=0),
            ...     Node("s", "state", initial=-1.0, source="y"),
            ...     Node("y", "neuron", 0.0, "identity", output=0)], [Edge("in0", "y", 1.0)])
            >>> extract_fsm(g).run([[1.0], [-1.0]]).tolist()
            [[1.0], [-1.0]]
        """
        sym, batched = self._symbols(x)
        y = self._run(sym)
        return y if batched else y[0]

    def _run(self, sym: Tensor) -> Tensor:
        """Input symbols ``(B, T)`` -> outputs ``(B, T, out)`` of +-1."""
        states = self._walk(sym)  # (B, T)
        out_table = torch.tensor(self.outputs, dtype=torch.long)
        out_sym = out_table[states, sym]  # (B, T)
        bits = (out_sym[..., None] >> torch.arange(self.out_features)) & 1  # (B, T, out)
        return bits.float() * 2 - 1

    def to_dot(self) -> str:
        """Graphviz DOT text: states as circles (``q0`` the initial one), one arrow per pair of
        states labelled ``input/output`` bits (input 0 first; 1 = +1, 0 = -1).

        Example:
            >>> from sprig.bonsai import Graph, Node, Edge
            >>> g = Graph(1, 1, "ameo", {}, [Node("in0", "input", index=0),
            ...     Node("y", "neuron", 0.0, "identity", output=0)], [Edge("in0", "y", 1.0)])
            >>> print(extract_fsm(g).to_dot())  # doctest: +NORMALIZE_WHITESPACE
            digraph fsm {
              rankdir=LR;
              start [shape=point];
              start -> q0;
              q0 [shape=circle];
              q0 -> q0 [label="0/0, 1/1"];
            }
            <BLANKLINE>
        """
        lines = ["digraph fsm {", "  rankdir=LR;", "  start [shape=point];", "  start -> q0;"]
        lines += [f"  q{s} [shape=circle];" for s in range(self.num_states)]
        for s, row in enumerate(self.transitions):
            labels: dict[int, list[str]] = {}
            for a, nxt in enumerate(row):
                label = (
                    f"{_bits(a, self.in_features)}/{_bits(self.outputs[s][a], self.out_features)}"
                )
                labels.setdefault(nxt, []).append(label)
            for nxt, ls in labels.items():
                lines.append(f'  q{s} -> q{nxt} [label="{", ".join(ls)}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (in the graph's JSON export, under ``state_machine``)."""
        return {
            "num_states": self.num_states,
            "raw_states": self.raw_states,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "initial": 0,
            "symbols": "bit k of a symbol is input (or output) k: 1 = +1, 0 = -1",
            "transitions": [list(r) for r in self.transitions],
            "outputs": [list(r) for r in self.outputs],
            "state_ids": list(self.state_ids),
            "tolerance": self.tolerance,
            "codes": [list(c) for c in self.codes],
        }


def _bits(symbol: int, width: int) -> str:
    return "".join(str((symbol >> k) & 1) for k in range(width))


def sym_to_inputs(sym: Tensor, width: int) -> Tensor:
    """Input symbols ``(...)`` -> their +-1 bits ``(..., width)`` (bit k is input k)."""
    return ((sym[..., None] >> torch.arange(width)) & 1).to(torch.float64) * 2 - 1


def _minimise(transitions: list[list[int]], outputs: list[list[int]]) -> tuple[list[int], int]:
    """Moore's partition refinement: the block of each state (blocks numbered breadth-first
    from state 0's) and the number of blocks. States start split by their output rows and are
    split again by their successors' blocks until nothing changes."""
    n = len(transitions)

    def renumber(keys: list[Any]) -> list[int]:
        ids: dict[Any, int] = {}
        return [ids.setdefault(k, len(ids)) for k in keys]

    block = renumber([tuple(row) for row in outputs])
    count = len(set(block))
    while True:
        refined = renumber([(block[s], tuple(block[t] for t in transitions[s])) for s in range(n)])
        new_count = len(set(refined))
        block = refined
        if new_count == count:
            break
        count = new_count
    # breadth-first numbering from the initial state, so state 0 is the initial one
    order: dict[int, int] = {block[0]: 0}
    queue = [0]
    while queue:
        s = queue.pop(0)
        for t in transitions[s]:
            if block[t] not in order:
                order[block[t]] = len(order)
                queue.append(t)
    return [order[b] for b in block], count


#: Tolerances tried. A trained graph's states are seldom exact codes: the interpolated Ameo's
#: curved pieces leave each visit of a state a little off (a parity graph grown by the search
#: visited state values all over [-0.90, -0.65] for one of its 2 states), so its codes only
#: settle at a coarser grid; the check on random sequences rejects a grid so coarse that it
#: merges states the graph tells apart.
TOLERANCES: tuple[float, ...] = (1e-6, 1e-3, 0.01, 0.05, 0.1, 0.2)


def extract_fsm(
    graph: Graph,
    max_states: int = 1000,
    tolerance: float | Sequence[float] = TOLERANCES,
    check_sequences: int = 1000,
    check_length: int = 40,
    seed: int = 0,
) -> StateMachine:
    """The minimal finite-state machine (Mealy) that equals ``graph`` by output sign.

    Enumerates the state vectors reachable from the initial state under every input
    combination (codes equal when they round to the same multiple of the tolerance), builds
    the Mealy machine, minimises it (Moore's partition refinement) and checks it against the
    graph on random sequences. Every tolerance is tried; among the machines with at most
    ``max_states`` codes that pass the check, the one with the fewest states is kept (the
    finest tolerance on ties).

    Args:
        graph: a bonsai :class:`Graph`.
        max_states: the bound on distinct state codes per tolerance.
        tolerance: one tolerance, or several (default :data:`TOLERANCES`).
        check_sequences: random sequences (every input +-1 with probability 1/2) on which the
            machine must give the graph's output signs (0: no check).
        check_length: their length.
        seed: seed of the check sequences.

    Returns:
        A :class:`StateMachine`; ``num_states`` is the minimal number of states.

    Raises:
        FSMError: at every tolerance, the state values took more than ``max_states`` codes (or
            grew without bound), or the machine differed from the graph on a check sequence.

    Example (parity of the +1 inputs, one XOR neuron ``ameo(-x - s - 1)`` fed back):
        >>> from sprig.bonsai import Graph, Node, Edge
        >>> g = Graph(1, 1, "ameo", {}, [Node("in0", "input", index=0),
        ...     Node("s", "state", initial=-1.0, source="p"),
        ...     Node("p", "neuron", -1.0, "ameo", output=0)],
        ...     [Edge("in0", "p", -1.0), Edge("s", "p", -1.0)])
        >>> extract_fsm(g).num_states
        2
    """
    check_int(max_states, "max_states", 1)
    tolerances = [tolerance] if isinstance(tolerance, (int, float)) else list(tolerance)
    if not tolerances or not all(t > 0 for t in tolerances):
        raise ValueError(f"tolerances must be > 0, at least one, got {tolerance!r}")
    if graph.in_features > MAX_INPUTS:
        raise FSMError(
            f"the graph has {graph.in_features} inputs: {2**graph.in_features} input "
            f"combinations per state is too many to enumerate (at most {MAX_INPUTS} inputs)"
        )
    x = None
    if check_sequences:
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(check_sequences, check_length, graph.in_features, generator=gen)
        x = torch.where(u < 0.5, 1.0, -1.0)  # (B, T, in)
        want = graph.evaluate(x) > 0
        # the same symbols for every tolerance's machine
        sym = (((x > 0).long()) * 2 ** torch.arange(graph.in_features)).sum(-1)  # (B, T)
    step = graph.stepper()  # built once: it sets up the activation's tables
    failures = []
    passed: list[StateMachine] = []
    for tol in tolerances:
        try:
            machine = _enumerate(graph, step, max_states, float(tol))
        except FSMError as err:
            failures.append(f"tolerance {tol:g}: {err}")
            continue
        if x is not None:
            wrong = (machine._run(sym) > 0) != want  # (B, T, out)
            if bool(wrong.any()):
                b, t, _ = (int(v) for v in wrong.nonzero()[0])
                failures.append(
                    f"tolerance {tol:g}: {plural(machine.num_states, 'state')}, wrong on random "
                    f"sequence {b} at step {t}"
                )
                continue
        passed.append(machine)
    if passed:
        # every passing machine equals the graph on the check; the smallest is the answer
        # (a three-ones graph gave 63 states at 0.01, where slowly settling values left chains
        # of codes, and 4, its task's minimum, at 0.05 to 0.2); the finer grid on ties
        return min(passed, key=lambda m: m.num_states)
    raise FSMError(
        "the graph's state values do not settle into a finite machine: "
        + "; ".join(failures)
        + ". A graph that counts further than its task needs (a counter the task keeps in "
        "range) has no finite machine under every input; raise max_states or give other "
        "tolerances if you expect a larger machine"
    )


def _enumerate(graph: Graph, step: Stepper, max_states: int, tolerance: float) -> StateMachine:
    """Breadth-first enumeration of the codes at ``tolerance`` (stepping with ``step``, the
    graph's :meth:`Graph.stepper`), then minimisation."""
    states = [n for n in graph.nodes if n.kind == "state"]
    ids = [s.id for s in states]
    outs = {n.output: n.id for n in graph.nodes if n.output is not None}
    n_sym = 2**graph.in_features
    all_inputs = sym_to_inputs(torch.arange(n_sym), graph.in_features)  # (symbols, in)
    # a code is the state vector rounded to a multiple of the tolerance; values this large are
    # a counter without bound (and would overflow the rounding)
    limit = 1e9

    def code(v: Tensor) -> tuple[int, ...]:
        return tuple(int(c) for c in torch.round(v / tolerance).tolist())

    init = torch.tensor([s.initial for s in states], dtype=torch.float64)  # (k,)
    reps = [init]
    index = {code(init): 0}
    transitions: list[list[int]] = []
    outputs: list[list[int]] = []
    done = 0
    while done < len(reps):
        frontier = torch.stack(reps[done:])  # (F, k)
        f = frontier.shape[0]
        current = frontier.repeat_interleave(n_sym, 0)  # (F * symbols, k)
        val = step({sid: current[:, j] for j, sid in enumerate(ids)}, all_inputs.repeat(f, 1))
        if ids:
            nxt = torch.stack([val[s.source or ""] for s in states], -1)  # (F * symbols, k)
        else:
            nxt = torch.zeros(f * n_sym, 0, dtype=torch.float64)
        if not bool(torch.isfinite(nxt).all()) or bool((nxt.abs() > limit).any()):
            raise FSMError(f"values grow without bound (beyond {limit:g})")
        y = torch.stack([val[outs[k]] for k in range(graph.out_features)], -1) > 0
        out_sym = (y.long() * 2 ** torch.arange(graph.out_features)).sum(-1)  # (F * symbols,)
        for i in range(f):
            row, out_row = [], []
            for a in range(n_sym):
                r = i * n_sym + a
                key = code(nxt[r])
                if key not in index:
                    if len(reps) >= max_states:
                        raise FSMError(f"more than max_states={max_states} codes")
                    index[key] = len(reps)
                    reps.append(nxt[r])
                row.append(index[key])
                out_row.append(int(out_sym[r]))
            transitions.append(row)
            outputs.append(out_row)
        done += f
    block, count = _minimise(transitions, outputs)
    first: dict[int, int] = {}  # block -> its first raw state
    for s, b in enumerate(block):
        first.setdefault(b, s)
    machine = StateMachine(
        graph.in_features,
        graph.out_features,
        tuple(tuple(block[t] for t in transitions[first[b]]) for b in range(count)),
        tuple(tuple(outputs[first[b]]) for b in range(count)),
        len(reps),
        tuple(tuple(float(v) for v in reps[first[b]].tolist()) for b in range(count)),
        tuple(ids),
        tolerance,
    )
    return machine


class TaskMachine(NamedTuple):
    """A task's targets as a minimal Mealy machine (:func:`task_machine`).

    ``transitions[state][symbol]`` is the next state and ``outputs[state][symbol]`` the target
    symbol (coded as :class:`StateMachine`'s), or -1 where the target is unknown (an input the
    task never yields); state 0 is the initial state.
    """

    transitions: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "initial": 0,
            "symbols": "as the state machine's; an output of -1: target unknown",
            "transitions": [list(r) for r in self.transitions],
            "outputs": [list(r) for r in self.outputs],
        }


def task_machine(task: str | Task, max_states: int = 1024) -> TaskMachine | None:
    """The targets of ``task`` for any input, as a minimal Mealy machine, from its step
    function (every :class:`StepTask`; a :class:`SampledTask` given ``step``).

    The task's hidden states reachable from its initial state under every input combination
    are enumerated (exact values) and the machine is minimised. None when the task has no step
    function, has more than :data:`MAX_INPUTS` inputs, or reaches more than ``max_states``
    hidden states: its targets for an input it did not sample are then unknown.

    Example:
        >>> m = task_machine("delay-1")
        >>> len(m.transitions), m.outputs[0]
        (2, (0, 0))
    """
    task = get_task(task)
    if task.step is None or task.in_features > MAX_INPUTS:
        return None
    n_sym = 2**task.in_features
    all_inputs = sym_to_inputs(torch.arange(n_sym), task.in_features).float()  # (symbols, in)
    init = task.initial_state.float()
    reps = [init]
    index = {tuple(init.tolist()): 0}
    transitions: list[list[int]] = []
    outputs: list[list[int]] = []
    while len(transitions) < len(reps):
        s = len(transitions)
        nxt, y = task.step(reps[s].expand(n_sym, -1).clone(), all_inputs)  # (symbols, k/out)
        row, out_row = [], []
        for a in range(n_sym):
            key = tuple(nxt[a].tolist())
            if key not in index:
                if len(reps) >= max_states:
                    return None
                index[key] = len(reps)
                reps.append(nxt[a])
            row.append(index[key])
            known = bool((y[a] != 0).all())
            out_row.append(
                int(((y[a] > 0).long() * 2 ** torch.arange(task.out_features)).sum())
                if known
                else -1
            )
        transitions.append(row)
        outputs.append(out_row)
    block, count = _minimise(transitions, outputs)
    first: dict[int, int] = {}
    for s, b in enumerate(block):
        first.setdefault(b, s)
    return TaskMachine(
        tuple(tuple(block[t] for t in transitions[first[b]]) for b in range(count)),
        tuple(tuple(outputs[first[b]]) for b in range(count)),
    )


def _check_machine(machine: object, what: str) -> None:
    """A TypeError naming the fix unless ``machine`` is a :class:`StateMachine`."""
    if not isinstance(machine, StateMachine):
        hint = " (a graph: call extract_fsm(graph) first)" if isinstance(machine, Graph) else ""
        raise TypeError(
            f"{what} takes the StateMachine that extract_fsm returns, got "
            f"{type(machine).__name__}{hint}"
        )


def counterexample(machine: StateMachine, task: str | Task) -> Tensor | None:
    """The shortest input on which ``machine`` and ``task``'s own machine
    (:func:`task_machine`) give a different output, or None when there is none: the machine is
    then right on *every* input sequence of any length (where the task's target is known), not
    only on the ones sampled. So is the graph it came from when the graph's states take exact
    codes (a compiled graph, :func:`sprig.bonsai.compile_machine`); a grown graph's codes are
    merged within a tolerance and checked on samples (:func:`extract_fsm`), so drift the
    samples miss stays possible.

    A breadth-first search over pairs of states from the two initial states: each pair is
    visited once, so this is exact and takes at most ``states x task states x 2**in`` steps.

    Raises:
        ValueError: the task has no step function (or too many states), or other widths.

    Example:
        >>> from sprig.bonsai import Graph, Node, Edge
        >>> g = Graph(1, 1, "ameo", {}, [Node("in0", "input", index=0),
        ...     Node("s", "state", initial=-1.0, source="y"),
        ...     Node("y", "neuron", 0.0, "identity", output=0)], [Edge("in0", "y", 1.0)])
        >>> counterexample(extract_fsm(g), "delay-1").tolist()  # y[n] = x[n], not x[n-1]
        [[1.0]]
    """
    _check_machine(machine, "counterexample")
    task = get_task(task)
    if (machine.in_features, machine.out_features) != (task.in_features, task.out_features):
        raise ValueError(
            f"the machine has {machine.in_features} inputs and {machine.out_features} outputs, "
            f"task {task.name!r} {task.in_features} and {task.out_features}"
        )
    theirs = task_machine(task)
    if theirs is None:
        raise ValueError(
            f"task {task.name!r} has no machine to compare with: no step function, more than "
            f"{MAX_INPUTS} inputs, or too many states; give a StepTask, or a SampledTask its step"
        )
    n_sym = 2**task.in_features
    parent: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {(0, 0): None}
    queue = [(0, 0)]
    for pair in queue:  # the queue grows while it is read: breadth first
        a, b = pair
        for sym in range(n_sym):
            want = theirs.outputs[b][sym]
            if want >= 0 and machine.outputs[a][sym] != want:
                symbols = [sym]
                at: tuple[int, int] = pair
                while parent[at] is not None:
                    at, s = parent[at]  # type: ignore[misc]
                    symbols.append(s)
                return sym_to_inputs(torch.tensor(symbols[::-1]), task.in_features).float()
            if want < 0:
                continue  # an input the task never yields here: what follows is unknown
            nxt = (machine.transitions[a][sym], theirs.transitions[b][sym])
            if nxt not in parent:
                parent[nxt] = (pair, sym)
                queue.append(nxt)
    return None
