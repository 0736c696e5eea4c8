"""The computational graph left after pruning a bonsai RNN, and its exact evaluation.

Nodes are inputs, neurons (squares in the viewer) and previous-step states (circles). A neuron
computes ``act(bias + sum(weight * source))`` from inputs, states and neurons of earlier layers;
a state holds, at step t, the value its source neuron had at step t-1 (its initial value at
t = 0). Outputs are neurons marked with an output index. Dead-code elimination keeps only what
the outputs depend on through time: the sources of live neurons, and the source neuron of every
live state. Constant folding then removes neurons without inputs (their value act(bias) moves
into the biases of the neurons they feed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..nn import BonsaiCell, BonsaiRNN
from ..nn._ameo import AMEO_CLASSES


@dataclass
class Node:
    """One node of a bonsai graph.

    Attributes:
        id: unique name (``in0``, ``y0.1`` cell 0 output neuron 1, ``r0.1`` its recurrent neuron
            1, ``s0.1`` the state that neuron feeds, ``out0`` final-layer neuron 0).
        kind: ``"input"``, ``"neuron"`` or ``"state"``.
        bias: a neuron's bias.
        activation: a neuron's activation: the graph's Ameo function or ``"identity"``.
        initial: a state's value at t = 0.
        source: a state's source neuron (its value one step later).
        index: an input's index.
        output: the output index a neuron provides, if any.
    """

    id: str
    kind: str
    bias: float = 0.0
    activation: str = "identity"
    initial: float = 0.0
    source: str | None = None
    index: int | None = None
    output: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "input":
            return f"in {self.index}"
        if self.output is not None:
            return f"out {self.output}"
        return self.id


@dataclass(frozen=True)
class Edge:
    """A weighted edge: ``dst`` adds ``weight * value(src)`` within one time step."""

    src: str
    dst: str
    weight: float


@dataclass
class Graph:
    """A pruned bonsai network as a graph; :meth:`evaluate` computes the network's outputs.

    Attributes:
        in_features: input bits per step.
        out_features: output bits per step.
        activation: the Ameo-family name used by the neurons that are not ``identity``.
        activation_params: its parameters (``factor``, ``leak``).
        nodes: every node, inputs first, neurons in evaluation order.
        edges: every weighted edge (state feedback is ``Node.source``, not an edge).
        meta: free-form facts carried into exports (task, threshold, seed...).
    """

    in_features: int
    out_features: int
    activation: str
    activation_params: dict[str, float]
    nodes: list[Node]
    edges: list[Edge]
    meta: dict[str, Any] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id!r} in this graph")

    def counts(self) -> dict[str, int]:
        """Neurons, states and edges (state feedback not counted), as the post reports them."""
        return {
            "neurons": sum(n.kind == "neuron" for n in self.nodes),
            "states": sum(n.kind == "state" for n in self.nodes),
            "edges": len(self.edges),
        }

    def neuron_order(self) -> list[Node]:
        """Neurons in an order where each comes after its in-step sources (Kahn's algorithm)."""
        kinds = {n.id: n.kind for n in self.nodes}
        incoming: dict[str, set[str]] = {n.id: set() for n in self.nodes if n.kind == "neuron"}
        for e in self.edges:
            if kinds.get(e.dst) == "neuron" and kinds.get(e.src) == "neuron":
                incoming[e.dst].add(e.src)
        # layer by layer (each layer in node order), in time linear in the graph's size: a
        # loaded file may hold a long chain
        neurons = [n for n in self.nodes if n.kind == "neuron"]
        position = {n.id: i for i, n in enumerate(neurons)}
        successors: dict[str, list[str]] = {n.id: [] for n in neurons}
        for dst, sources in incoming.items():
            for src in sources:
                successors[src].append(dst)
        waiting = {i: len(sources) for i, sources in incoming.items()}
        order: list[Node] = []
        ready = [n for n in neurons if waiting[n.id] == 0]
        while ready:
            order += ready
            freed = []
            for n in ready:
                for dst in successors[n.id]:
                    waiting[dst] -= 1
                    if waiting[dst] == 0:
                        freed.append(dst)
            ready = [neurons[i] for i in sorted(position[d] for d in freed)]
        if len(order) < len(neurons):
            placed = {n.id for n in order}
            cycle = sorted(n.id for n in neurons if n.id not in placed)[:5]
            raise ValueError(
                f"the graph's neurons form a cycle within one time step (among {cycle}); "
                "recurrence must go through states"
            )
        return order

    def trace(self, x: Tensor) -> dict[str, Tensor]:
        """Every node's value at every step: ``x (B, T, in)`` -> ``{id: (B, T)}``.

        Computed in float64 (``x`` is converted), so rounding is far below the float32 network.
        """
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"graph expects input (batch, time, {self.in_features}), got {tuple(x.shape)}"
            )
        x = x.to(torch.float64)
        states = [n for n in self.nodes if n.kind == "state"]
        batch = x.shape[0]
        prev: dict[str, Tensor] = {
            s.id: torch.full((batch,), s.initial, dtype=torch.float64) for s in states
        }
        history: dict[str, list[Tensor]] = {n.id: [] for n in self.nodes}
        step = self.stepper()
        for t in range(x.shape[1]):
            val = step(prev, x[:, t])
            for n in self.nodes:
                history[n.id].append(val[n.id])
            prev = {s.id: val[s.source] for s in states if s.source is not None}
        return {k: torch.stack(v, dim=1) for k, v in history.items()}

    def stepper(self) -> Callable[[dict[str, Tensor], Tensor], dict[str, Tensor]]:
        """One time step as a function: ``step(states, x_t)`` -> every node's value.

        ``states`` maps each state id to its value ``(B,)`` (the source neurons' values one
        step earlier), ``x_t (B, in)`` holds the inputs; the result maps every node id to its
        ``(B,)`` float64 value at this step. :meth:`trace` and :func:`extract_fsm` both step
        through it, so the graph has one evaluation.
        """
        act = AMEO_CLASSES[self.activation](**self.activation_params)
        order = self.neuron_order()
        into: dict[str, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            into[e.dst].append(e)
        inputs = [n for n in self.nodes if n.kind == "input"]

        def step(states: dict[str, Tensor], x_t: Tensor) -> dict[str, Tensor]:
            x_t = x_t.to(torch.float64)
            batch = x_t.shape[0]
            val: dict[str, Tensor] = dict(states)
            for n in inputs:
                assert n.index is not None
                val[n.id] = x_t[:, n.index]
            for n in order:
                z = torch.full((batch,), n.bias, dtype=torch.float64)
                for e in into[n.id]:
                    z = z + e.weight * val[e.src]
                val[n.id] = z if n.activation == "identity" else act(z)
            return val

        return step

    def evaluate(self, x: Tensor) -> Tensor:
        """The graph's outputs: ``x (B, T, in)`` -> ``(B, T, out)`` in float64.

        Equals the pruned network's outputs (up to float rounding: the network sums in float32
        and in another order).
        """
        values = self.trace(x)
        outs = {n.output: n.id for n in self.nodes if n.output is not None}
        return torch.stack([values[outs[k]] for k in range(self.out_features)], dim=-1)


def _fold_constants(
    nodes: list[Node], edges: list[Edge], activation: str, params: dict[str, float]
) -> tuple[list[Node], list[Edge]]:
    """Fold neurons without inputs (constants act(bias)) into their consumers' biases.

    A neuron that feeds a state is kept (the state differs from the constant at t = 0 unless
    its initial value equals it, in which case the state is folded too).
    """
    act = AMEO_CLASSES[activation](**params)
    nodes = [Node(**vars(n)) for n in nodes]  # biases change: work on copies
    while True:
        by_id = {n.id: n for n in nodes}
        has_input = {e.dst for e in edges}
        consts: dict[str, float] = {}
        for n in nodes:
            if n.kind == "neuron" and n.id not in has_input and n.output is None:
                z = torch.tensor(n.bias, dtype=torch.float64)
                consts[n.id] = float(z if n.activation == "identity" else act(z))
        for n in nodes:  # a state equal to its constant source at every step is a constant
            if n.kind == "state" and n.source in consts and n.initial == consts[n.source]:
                consts[n.id] = n.initial
        feeds_state = {n.source for n in nodes if n.kind == "state" and n.id not in consts}
        folding = {k: v for k, v in consts.items() if any(e.src == k for e in edges)}
        if not folding:
            return nodes, edges
        kept: list[Edge] = []
        for e in edges:
            if e.src in folding:
                by_id[e.dst].bias += e.weight * folding[e.src]
            else:
                kept.append(e)
        edges = kept
        nodes = [n for n in nodes if n.id not in folding or n.id in feeds_state]


def _dead_code_elimination(nodes: list[Node], edges: list[Edge]) -> tuple[list[Node], list[Edge]]:
    by_id = {n.id: n for n in nodes}
    into: dict[str, list[Edge]] = {n.id: [] for n in nodes}
    for e in edges:
        into[e.dst].append(e)
    live = {n.id for n in nodes if n.output is not None or n.kind == "input"}
    work = list(live)
    while work:
        node = by_id[work.pop()]
        deps = [e.src for e in into[node.id]]
        if node.kind == "state" and node.source is not None:
            deps.append(node.source)  # a live state needs its neuron one step earlier
        for d in deps:
            if d not in live:
                live.add(d)
                work.append(d)
    return [n for n in nodes if n.id in live], [e for e in edges if e.dst in live]


def extract_graph(model: BonsaiRNN, simplify: bool = True, **meta: Any) -> Graph:
    """The graph of a (pruned) :class:`sprig.nn.BonsaiRNN`: every nonzero weight an edge, then
    dead-code elimination through time.

    Args:
        model: the network, usually clipped by :func:`threshold_search`.
        simplify: fold neurons without inputs (constants) into their consumers' biases.
        meta: facts to carry into exports (task name, threshold...).

    Returns:
        A :class:`Graph` whose :meth:`Graph.evaluate` equals ``model``'s outputs.

    Example:
        >>> net = BonsaiRNN(1, 1, cells=[(2, 1)], seed=0)
        >>> g = extract_graph(net)
        >>> g.counts()["neurons"] <= 4
        True
    """
    nodes: list[Node] = [Node(f"in{i}", "input", index=i) for i in range(model.in_features)]
    edges: list[Edge] = []
    sources = [n.id for n in nodes]
    n_cells = len(model.cells)
    act = model.activation
    for ci, cell in enumerate(model.cells):
        assert isinstance(cell, BonsaiCell)
        b_out, b_rec = cell.bias_out.detach(), cell.bias_rec.detach()
        init = cell.initial_state.detach()
        k_out = cell.kernel_out.detach().double()
        k_rec = cell.kernel_rec.detach().double()
        state_ids = [f"s{ci}.{j}" for j in range(cell.state_features)]
        rows = sources + state_ids  # the rows of c_t = concat(x_t, s_{t-1})
        last = ci == n_cells - 1 and model.final is None
        new_nodes: list[Node] = []
        for j in range(cell.out_features):
            nid = f"y{ci}.{j}"
            new_nodes.append(Node(nid, "neuron", float(b_out[j]), act, output=j if last else None))
            edges += [
                Edge(rows[r], nid, float(k_out[r, j])) for r in range(len(rows)) if k_out[r, j]
            ]
        for j in range(cell.state_features):
            nid = f"r{ci}.{j}"
            new_nodes.append(Node(nid, "neuron", float(b_rec[j]), act))
            edges += [
                Edge(rows[r], nid, float(k_rec[r, j])) for r in range(len(rows)) if k_rec[r, j]
            ]
        nodes += [
            Node(sid, "state", initial=float(init[j]), source=f"r{ci}.{j}")
            for j, sid in enumerate(state_ids)
        ]
        nodes += new_nodes
        sources = [f"y{ci}.{j}" for j in range(cell.out_features)]
    if model.final is not None:
        w = model.final.weight.detach().double()
        for k in range(model.out_features):
            nid = f"out{k}"
            nodes.append(
                Node(nid, "neuron", float(model.final.bias.detach()[k]), "identity", output=k)
            )
            edges += [Edge(sources[r], nid, float(w[k, r])) for r in range(len(sources)) if w[k, r]]
    nodes, edges = _dead_code_elimination(nodes, edges)
    if simplify:
        nodes, edges = _fold_constants(nodes, edges, act, model.activation_params)
        nodes, edges = _dead_code_elimination(nodes, edges)
    return Graph(
        model.in_features,
        model.out_features,
        act,
        dict(model.activation_params),
        nodes,
        edges,
        dict(meta),
    )
