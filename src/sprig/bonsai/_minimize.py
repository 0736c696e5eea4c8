"""Pruning a bonsai graph to a minimal one, edge by edge, checked on fresh sequences.

The clip threshold (:func:`threshold_search`) removes every weight below one magnitude at once;
it stops at the first threshold that breaks the network, so weights above it that the task does
not need are kept, and so is a neuron that only passes one value on. :func:`minimize` goes on
from the clipped graph, greedily:

* **pass-through folding**: a neuron with one incoming edge computes ``act(w * v + b)`` of one
  source ``v``; when that is an affine function ``a * v + c`` of the values ``v`` takes (always,
  for an input: it is +-1, and two points fit a line), the neuron is removed and each of its
  consumers reads ``v`` with weight ``u * a`` and adds ``u * c`` to its bias;
* **edge removal**: each edge is tried, smallest weight first (a node's outgoing edges all at
  once first, so a whole neuron or state can go), dropped, else replaced by its source's mean
  value (observed on fresh sequences) in its target's bias, for a source that barely varies
  (a state that settles to a fixed point whatever the input); dead-code elimination and
  constant folding follow.

A change is kept only when the graph still gets every output sign right on ``sequences`` fresh
sequences and then on ``confirm_sequences`` other fresh ones (a removal that errs once in
10,000 sequences passes the first check about half the time: on a switcher graph, greedy
removal checked on 5,000 sequences alone ended 10 edges smaller and wrong on the 50,000). The
counts stay those of :meth:`sprig.bonsai.Graph.counts`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch

from .._checks import sub_seed
from ..nn import BonsaiCell, BonsaiRNN
from ..nn._ameo import AMEO_CLASSES
from ._graph import Edge, Graph, Node, _dead_code_elimination, _fold_constants
from ._grow import finetune
from ._tasks import Task, get_task
from ._threshold import _checker
from ._validate import score

#: Largest misfit of a line through a neuron's observed (input, output) pairs for the neuron to
#: count as affine (values are float64; a curved segment misses by far more).
AFFINE_TOLERANCE = 1e-9


def _rebuild(graph: Graph, nodes: list[Node], edges: list[Edge]) -> Graph:
    """``graph`` with new nodes and edges, after dead-code elimination and constant folding."""
    nodes, edges = _dead_code_elimination(nodes, edges)
    nodes, edges = _fold_constants(nodes, edges, graph.activation, graph.activation_params)
    nodes, edges = _dead_code_elimination(nodes, edges)
    return Graph(
        graph.in_features,
        graph.out_features,
        graph.activation,
        dict(graph.activation_params),
        nodes,
        edges,
        dict(graph.meta),
    )


def _without(graph: Graph, drop: set[Edge], means: dict[str, float] | None = None) -> Graph:
    """``graph`` without the edges ``drop``; with ``means`` (node id -> its mean value), each
    dropped edge's target adds ``weight * mean`` of its source to its bias instead (a source
    that barely varies is a constant to its consumers)."""
    nodes = graph.nodes
    if means is not None:
        nodes = [Node(**vars(n)) for n in graph.nodes]
        by_id = {n.id: n for n in nodes}
        for e in drop:
            by_id[e.dst].bias += e.weight * means[e.src]
    return _rebuild(graph, nodes, [e for e in graph.edges if e not in drop])


def _fold_pass_through(graph: Graph, node_id: str, values: torch.Tensor) -> Graph | None:
    """``graph`` without neuron ``node_id`` (one incoming edge), its consumers reading its source
    directly; None when the neuron is not affine on ``values``, its source's observed values."""
    (inc,) = [e for e in graph.edges if e.dst == node_id]
    node = graph.node(node_id)
    v = values.unique()
    if v.numel() < 2:
        return None  # one value: constant folding's case, or never observed
    z = inc.weight * v + node.bias
    act = AMEO_CLASSES[graph.activation](**graph.activation_params)
    f = z if node.activation == "identity" else act(z)
    a = float((f[-1] - f[0]) / (v[-1] - v[0]))
    c = float(f[0] - a * v[0])
    if float((a * v + c - f).abs().max()) > AFFINE_TOLERANCE * max(1.0, float(f.abs().max())):
        return None
    nodes = [Node(**vars(n)) for n in graph.nodes if n.id != node_id]
    by_id = {n.id: n for n in nodes}
    weights: dict[tuple[str, str], float] = {}
    for e in graph.edges:
        if e.dst == node_id:
            continue
        if e.src == node_id:
            by_id[e.dst].bias += e.weight * c
            key, w = (inc.src, e.dst), e.weight * a
        else:
            key, w = (e.src, e.dst), e.weight
        weights[key] = weights.get(key, 0.0) + w
    edges = [Edge(s, d, w) for (s, d), w in weights.items() if w != 0.0]
    return _rebuild(graph, nodes, edges)


def _pass_throughs(graph: Graph) -> list[str]:
    """Neurons with exactly one incoming edge that are no output and feed no state."""
    feeds_state = {n.source for n in graph.nodes if n.kind == "state"}
    fan_in: dict[str, int] = {}
    for e in graph.edges:
        fan_in[e.dst] = fan_in.get(e.dst, 0) + 1
    return [
        n.id
        for n in graph.nodes
        if n.kind == "neuron"
        and n.output is None
        and n.id not in feeds_state
        and fan_in.get(n.id, 0) == 1
    ]


def _removals(graph: Graph) -> Iterator[set[Edge]]:
    """Edge sets to try removing: each neuron's or state's outgoing edges (the least total
    outgoing |weight| first), then each edge alone (smallest |weight| first)."""
    out: dict[str, list[Edge]] = {}
    for e in graph.edges:
        out.setdefault(e.src, []).append(e)
    neurons = [n.id for n in graph.nodes if n.kind in ("neuron", "state") and n.id in out]
    for nid in sorted(neurons, key=lambda i: sum(abs(e.weight) for e in out[i])):
        if len(out[nid]) > 1:
            yield set(out[nid])
    for e in sorted(graph.edges, key=lambda e: abs(e.weight)):
        yield {e}


def minimize(
    graph: Graph,
    task: str | Task,
    sequences: int = 5_000,
    length: int = 40,
    seed: int = 0,
    confirm_sequences: int = 50_000,
    recheck: bool = False,
) -> Graph:
    """The smallest graph greedy folding and edge removal reach that stays right on fresh
    sequences (see the module's docstring).

    Args:
        graph: a graph that is right on the task (usually :func:`extract_graph` of a clipped
            network); one that is not is returned unchanged.
        task: its task (name or :class:`Task`).
        sequences: fresh sequences every kept change must get right.
        length: their length.
        seed: seed of the check sequences (the confirmation's is derived from it).
        confirm_sequences: other fresh sequences every kept change must also get right (0: no
            confirmation).
        recheck: a change that passes is kept only when it is also right on new sequences
            (as many again, another seed), which the changes after it are then checked on: a
            change is never kept on the sequences it was picked on. When the graph it was made
            from errs on the new sequences too, the changes kept since the last graph right on
            them are undone (see :func:`prune_weights`).

    Returns:
        A new :class:`Graph` (``meta["minimized"]`` records the counts before), or a copy of
        ``graph`` when nothing could be removed.

    Example:
        >>> from sprig.nn import BonsaiRNN
        >>> from sprig.bonsai import extract_graph
        >>> g = extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0))  # untrained: wrong
        >>> minimize(g, "delay-1", sequences=20, confirm_sequences=0).counts() == g.counts()
        True
    """
    task = get_task(task)
    if sequences < 1 or confirm_sequences < 0:
        raise ValueError(
            f"sequences must be >= 1 and confirm_sequences >= 0, got {sequences} and "
            f"{confirm_sequences}"
        )
    gen_seed = sub_seed(seed, "minimize")
    x, _ = task.batch(min(sequences, 1_000), length, torch.Generator().manual_seed(gen_seed))

    def right(g: Graph, rounds: int = 0) -> bool:
        seeds = (gen_seed, sub_seed(seed, "confirm"))
        if rounds:
            seeds = (sub_seed(seed, "minimize", rounds), sub_seed(seed, "confirm", rounds))
        for n, s in zip((sequences, confirm_sequences), seeds, strict=True):
            if (
                n
                and not score(g.evaluate, task, n, length, seed=s, stop_at_first_error=True).perfect
            ):
                return False
        return True

    if not right(graph):
        return copy.deepcopy(graph)
    kept = [graph]  # the graphs kept so far, the current one last
    rounds = 0  # with recheck: the index of the sequences changes are checked on

    def keep(g: Graph) -> Graph | None:
        """The graph to go on from when the change that made ``g`` is kept (``g``, or an earlier
        graph when the recheck shows that a change kept before errs), else None."""
        nonlocal rounds
        if not right(g, rounds):
            return None
        if recheck and not right(g, rounds + 1):
            if right(kept[-1], rounds + 1):
                return None  # the change errs on the new sequences
            # the graph it was made from errs there too: a change kept earlier errs where
            # the sequences it was checked on did not look; go back past it
            while len(kept) > 1 and not right(kept[-1], rounds + 1):
                kept.pop()
            rounds += 1
            return kept[-1]
        if recheck:
            rounds += 1
        kept.append(g)
        return g

    best, changed = graph, True
    while changed:
        changed = False
        trace = best.trace(x)
        for nid in _pass_throughs(best):
            (inc,) = [e for e in best.edges if e.dst == nid]
            folded = _fold_pass_through(best, nid, trace[inc.src].flatten())
            if folded is not None and (went := keep(folded)) is not None:
                best, changed = went, True
                break
        if changed:
            continue
        means = {k: float(v.mean()) for k, v in trace.items()}
        for drop in _removals(best):
            for smaller in (_without(best, drop), _without(best, drop, means)):
                if (went := keep(smaller)) is not None:
                    best, changed = went, True
                    break
            if changed:
                break
    if best is graph:
        return copy.deepcopy(graph)
    best.meta["minimized"] = {"from": graph.counts()}
    return best


Slot = tuple[str, tuple[int, ...]]  # a parameter's name in the model, an entry's index


def _outgoing(model: BonsaiRNN) -> dict[str, list[Slot]]:
    """Each neuron's outgoing weights (the entries that read its value), by graph node id."""
    out: dict[str, list[Slot]] = {}
    cells = [c for c in model.cells if isinstance(c, BonsaiCell)]
    n_cells = len(cells)
    for ci, cell in enumerate(cells):
        width = model.in_features if ci == 0 else cells[ci - 1].out_features
        for j in range(cell.state_features):  # r_j feeds state s_j: row width + j here
            out[f"r{ci}.{j}"] = [
                (f"cells.{ci}.{k}", (width + j, c))
                for k, cols in (
                    ("kernel_out", cell.out_features),
                    ("kernel_rec", cell.state_features),
                )
                for c in range(cols)
            ]
        for j in range(cell.out_features):  # y_j feeds the next cell, or the final layer
            if ci + 1 < n_cells:
                nxt = cells[ci + 1]
                out[f"y{ci}.{j}"] = [
                    (f"cells.{ci + 1}.{k}", (j, c))
                    for k, cols in (
                        ("kernel_out", nxt.out_features),
                        ("kernel_rec", nxt.state_features),
                    )
                    for c in range(cols)
                ]
            elif model.final is not None:
                out[f"y{ci}.{j}"] = [("final.weight", (k, j)) for k in range(model.out_features)]
    return out


def prune_weights(
    model: BonsaiRNN,
    task: str | Task,
    sequences: int = 5_000,
    length: int = 40,
    seed: int = 0,
    confirm_sequences: int = 50_000,
    finetune_steps: int = 200,
    max_finetunes: int = 20,
    finetune_length: int | None = None,
    recheck: bool = False,
) -> BonsaiRNN:
    """Greedy pruning of a perfect (clipped) network with fine-tuning: whole neurons first (all
    their outgoing weights, the least total magnitude first), then single weights (smallest
    first) are zeroed; a removal is kept when the network is still perfect on ``sequences``
    and ``confirm_sequences`` fresh sequences, directly or after ``finetune_steps`` of
    :func:`finetune` (zeros frozen). A removal that fails is not tried again. Stops when every
    candidate was tried or after ``max_finetunes`` fine-tunings (a count, not a time: the
    result is the same on any machine). Checks run on sequences of ``length`` (the validation's),
    fine-tuning on ``finetune_length`` (the length the network was grown on; None: ``length``).

    The clip threshold stops at the first magnitude that breaks the network; a weight above it
    (or a neuron) that the others can make up for, once they are fine-tuned, is only found
    by trying it.

    With ``recheck``, a removal that passes is kept only when the network is also perfect on
    new sequences (``sequences`` and ``confirm_sequences`` of another seed), and the removals
    after it are checked on those. Many removals tried on the same sequences select the ones
    whose rare errors happen to miss them (a switcher network pruned so erred once in 50,000
    validation sequences); checked on sequences it was not picked on, such a removal is
    caught, and each later set of sequences checks every removal kept before it again: when
    the network a removal was made from errs on the new sequences too, the removals kept since
    the last network right on them are undone.

    Returns:
        The pruned copy (``model`` itself when it is not perfect to begin with).
    """
    task = get_task(task)
    check = _checker(task, sequences, length, sub_seed(seed, "prune"), confirm_sequences)
    if not check(model).perfect:
        return model
    rounds = 0  # removals kept: with recheck, the index of the sequences checked on
    finetunes = 0
    best = model
    tried: set[tuple[Slot, ...]] = set()
    # with recheck: (network, candidates tried) before each kept removal, to go back to
    history: list[tuple[BonsaiRNN, set[tuple[Slot, ...]]]] = []

    def candidates(net: BonsaiRNN) -> list[tuple[Slot, ...]]:
        params = {n: p.detach() for n, p in net.named_parameters()}
        alive = {
            (n, i)
            for n, p in params.items()
            if "kernel" in n or n == "final.weight"
            for i in map(tuple, p.detach().nonzero().tolist())
        }
        groups = []
        for slots in _outgoing(net).values():
            live = tuple(s for s in slots if s in alive)
            if len(live) > 1:
                groups.append((sum(abs(float(params[n][i])) for n, i in live), live))
        singles = sorted(((abs(float(params[n][i])), ((n, i),)) for n, i in alive))
        return [g for _, g in sorted(groups)] + [s for _, s in singles]

    changed = True
    while changed:
        changed = False
        for cand in candidates(best):
            if cand in tried:
                continue
            tried.add(cand)
            trial = copy.deepcopy(best)
            params = dict(trial.named_parameters())
            with torch.no_grad():
                for n, i in cand:
                    params[n][i] = 0.0
            if not check(trial).perfect:
                if not finetune_steps or finetunes >= max_finetunes:
                    continue
                finetunes += 1
                trial = finetune(
                    trial,
                    task,
                    steps=finetune_steps,
                    length=length if finetune_length is None else finetune_length,
                    seed=sub_seed(seed, repr(cand)),
                )
                if not check(trial).perfect:
                    continue
            if recheck:
                fresh = _checker(
                    task, sequences, length, sub_seed(seed, "prune", rounds + 1), confirm_sequences
                )
                if not fresh(trial).perfect:
                    if fresh(best).perfect:
                        continue  # the removal errs on the new sequences
                    # the network it was made from errs there too: a removal kept earlier
                    # errs where the sequences it was checked on did not look; go back to the
                    # last network right on the new sequences, that removal not tried again
                    while history and not fresh(best).perfect:
                        best, tried = history.pop()
                    check, rounds, changed = fresh, rounds + 1, True
                    break
                check, rounds = fresh, rounds + 1
                history.append((best, set(tried)))
            best, changed = trial, True
            break
    return best
