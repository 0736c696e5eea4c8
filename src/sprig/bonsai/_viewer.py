"""The viewer page: one self-contained HTML file that steps a bonsai graph through time.

Positions come from igraph's Sugiyama layered layout (:func:`drawing`: edge labels are layout
vertices, so edges keep off them; the graph of one step flows from inputs and states down to
outputs); the page itself
(``templates/viewer.html``) draws, evaluates and animates in plain inline JavaScript, with no
network access, so it works opened from disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .._words import plural
from ..io import write_text_atomic
from ._export import graph_to_dict
from ._fsm import FSMError, StateMachine, extract_fsm, task_machine
from ._graph import Graph, Node
from ._tasks import TASKS, Task, get_task


def parse_inputs(text: str, in_features: int) -> list[list[float]]:
    """Parse an input string: one token per time step, ``in_features`` characters each,
    ``1``/``+`` for +1 and ``0``/``-`` for -1; tokens are separated by spaces or commas.

    Example:
        >>> parse_inputs("1 0 0 1", 1)
        [[1.0], [-1.0], [-1.0], [1.0]]
        >>> parse_inputs("101,011", 3)
        [[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]]
    """
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ValueError('the input has no time steps; give e.g. --input "1 0 0 1"')
    steps = []
    for i, tok in enumerate(tokens):
        bad = sorted({c for c in tok if c not in "01+-"})
        if bad or len(tok) != in_features:
            why = f"symbols {bad} are not 0/1" if bad else f"it has {plural(len(tok), 'character')}"
            example = " ".join(["1" * in_features, "0" * in_features])
            raise ValueError(
                f"input step {i + 1} is {tok!r}: {why}; each step needs {in_features} "
                f'character(s) of 0/1 (1 = +1, 0 = -1), e.g. "{example}"'
            )
        steps.append([1.0 if c in "1+" else -1.0 for c in tok])
    return steps


#: Drawing units (SVG pixels at zoom 1) shared with the page: node half-size, the height of a
#: weight label (12 px monospace, centred on its point).
NODE_RADIUS = 20.0
LABEL_HEIGHT = 16.0
#: Pixels per unit of the layout's horizontal gap (nodes and labels at least this far apart
#: centre to centre: a weight label of up to 7 characters fits beside a node) and between
#: layers (two nodes' heights plus a gap the edges cross in).
COLUMN = 62.0
ROW = 84.0


def _layered(graph: Graph) -> tuple[list[tuple[float, float]], list[list[list[float]]]]:
    """igraph's Sugiyama layout of the graph of one step with one vertex per edge label: the
    label is a vertex of its own, as in Graphviz's dot, so the layered layout keeps other
    edges and nodes off it. State feedback (neuron to state, one step later) is laid out as
    an edge from the state to its neuron, so the graph stays acyclic with states above.
    Returns every vertex's position (nodes first, then one label per edge) in layout units and
    the layout's control points of each edge's two halves (source to label, label to target),
    then of each state's feedback."""
    import igraph

    ids = [n.id for n in graph.nodes]
    index = {nid: i for i, nid in enumerate(ids)}
    n, m = len(ids), len(graph.edges)
    halves = []
    for k, e in enumerate(graph.edges):
        halves += [(index[e.src], n + k), (n + k, index[e.dst])]
    halves += [(index[nd.id], index[nd.source or ""]) for nd in _states(graph)]
    g = igraph.Graph(n=n + m, edges=halves, directed=True)
    lay = g.layout_sugiyama(hgap=1, vgap=1)
    coords = [(float(c[0]), float(c[1])) for c in lay.coords[: n + m]]
    routing = [[[float(v) for v in pt] for pt in r] for r in lay.edge_routing]
    return coords, routing


def _states(graph: Graph) -> list[Node]:
    return [nd for nd in graph.nodes if nd.kind == "state" and nd.source is not None]


def drawing(graph: Graph) -> dict[str, Any]:
    """Where the page draws everything, in SVG pixels: node centres, each edge's route and
    its weight label's centre.

    Positions come from :func:`_layered` (igraph's Sugiyama layout with the edge labels as
    vertices). Every vertex, node or label, sits in a horizontal band of its layer
    (``NODE_RADIUS`` above and below the layer's line); a route leaves its source at the
    bottom, enters its label at the top and leaves it at the bottom, enters its target at the
    top, and crosses each layer it passes (at the layout's control point) vertically. So the
    slanted pieces all lie between bands, where nothing is drawn, and the vertical ones run at
    their own vertex's x, a layout gap (``COLUMN``) from any other vertex: no edge crosses a
    node or a label.

    Returns:
        ``{"node_radius": r, "positions": {id: [x, y]}, "edges": [{"route": [[x, y], ...],
        "split": k, "label": [x, y]}]}``, edges in ``graph.edges`` order; a route's first
        ``k`` points run from the source's bottom to its label's top edge, the others from the
        label's bottom edge to the target's top; ``"feedback": [{"state": id, "route": ...}]``
        runs from each state's bottom to its source neuron's top (the page points it at the
        state).
    """
    coords, routing = _layered(graph)
    n, r, h = len(graph.nodes), NODE_RADIUS, LABEL_HEIGHT / 2
    index = {nd.id: i for i, nd in enumerate(graph.nodes)}

    def at(pt: Sequence[float], dy: float = 0.0) -> list[float]:
        return [pt[0] * COLUMN, pt[1] * ROW + dy]

    def through(points: list[list[float]]) -> list[list[float]]:
        return [q for pt in points for q in (at(pt, -r), at(pt, r))]

    edges = []
    for k, e in enumerate(graph.edges):
        label = coords[n + k]
        first = [
            at(coords[index[e.src]], r),
            *through(routing[2 * k]),
            at(label, -r),
            at(label, -h),
        ]
        second = [
            at(label, h),
            at(label, r),
            *through(routing[2 * k + 1]),
            at(coords[index[e.dst]], -r),
        ]
        edges.append({"route": first + second, "split": len(first), "label": at(label)})
    feedback = [
        {
            "state": nd.id,
            "route": [
                at(coords[index[nd.id]], r),
                *through(routing[2 * len(graph.edges) + j]),
                at(coords[index[nd.source or ""]], -r),
            ],
        }
        for j, nd in enumerate(_states(graph))
    ]
    return {
        "node_radius": r,
        "positions": {nd.id: at(coords[i]) for i, nd in enumerate(graph.nodes)},
        "edges": edges,
        "feedback": feedback,
    }


def layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Node positions ``{id: (x, y)}`` in the page's pixels (y grows with the layer), from
    :func:`drawing`."""
    return {k: (v[0], v[1]) for k, v in drawing(graph)["positions"].items()}


def _template() -> str:
    return (resources.files("sprig.bonsai") / "templates" / "viewer.html").read_text()


def _targets_machine(graph: Graph, task: Task | None) -> dict[str, Any] | None:
    """The task's targets as a machine for the page (edited inputs get their targets from it):
    from ``task`` when it is the graph's, else from the registry by the graph's task name;
    None when neither is known or the task's targets cannot be computed (a sampled task
    without a step function)."""
    name = graph.meta.get("task")
    if task is None or (name is not None and name != task.name):
        task = TASKS.get(name)() if isinstance(name, str) and name in TASKS else None
    if task is None or (task.in_features, task.out_features) != (
        graph.in_features,
        graph.out_features,
    ):
        return None
    machine = task_machine(task)
    return None if machine is None else machine.to_dict()


def _view(
    graph: Graph,
    inputs: list[list[float]] | None,
    targets: list[list[float]] | None,
    task: Task | None = None,
) -> dict[str, Any]:
    """One graph's entry in the page: the graph with its state machine, positions, inputs and
    its task's targets machine."""
    if inputs is None:
        gen = torch.Generator().manual_seed(0)
        bits = torch.randint(0, 2, (16, graph.in_features), generator=gen) * 2.0 - 1.0
        inputs = bits.tolist()
    for i, step in enumerate(inputs):
        if len(step) != graph.in_features or any(v not in (-1.0, 1.0) for v in step):
            raise ValueError(
                f"input step {i + 1} is {step}: each step needs {graph.in_features} values of +-1"
            )
    if targets is not None and (
        len(targets) != len(inputs)
        or any(
            len(y) != graph.out_features or any(v not in (-1.0, 1.0) for v in y) for y in targets
        )
    ):
        raise ValueError(
            f"targets must hold one list of {graph.out_features} values of +-1 per input step "
            f"({len(inputs)} steps)"
        )
    try:
        machine: StateMachine | FSMError = extract_fsm(graph)
    except FSMError as err:
        machine = err
    counts = graph.counts()
    name = (
        f"{graph.meta.get('task', 'graph')} ({plural(counts['neurons'], 'neuron')}, "
        f"{plural(counts['states'], 'state')}, {plural(counts['edges'], 'edge')})"
    )
    return {
        "name": name,
        "graph": graph_to_dict(graph, machine),
        "drawing": drawing(graph),
        "inputs": inputs,
        "targets": targets,
        "task_machine": _targets_machine(graph, task),
    }


def render_html(
    graph: Graph | Sequence[Graph],
    inputs: list[list[float]] | None = None,
    title: str = "",
    targets: list[list[float]] | None = None,
    task: str | Task | None = None,
) -> str:
    """The viewer page for ``graph`` (a string of HTML): the graph, its state machine, the
    outputs against the targets and a logic analyzer of every node over time.

    Args:
        graph: the graph to show, or several (the page then has a picker).
        inputs: the input sequence, one list of ``in_features`` +-1 values per step (default:
            16 random steps, seed 0); with several graphs, used by those of its width.
        title: the page's title (default: the task name in ``graph.meta``).
        targets: the task's expected outputs for ``inputs``, one list of ``out_features`` +-1
            values per step (first graph only; shown beside the decoded outputs).
        task: the graphs' task (default: the built-in task named in each graph's ``meta``):
            the page carries its targets as a machine (:func:`task_machine`), so an edited
            input gets its targets too; where they cannot be computed the page says "target
            unknown".

    Example:
        >>> from sprig.nn import BonsaiRNN
        >>> from sprig.bonsai import extract_graph
        >>> render_html(extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0)))[:15]
        '<!DOCTYPE html>'
    """
    graphs = [graph] if isinstance(graph, Graph) else list(graph)
    if not graphs:
        raise ValueError("render_html needs at least one graph")
    width = graphs[0].in_features
    resolved = None if task is None else get_task(task)
    views = [
        _view(
            g,
            inputs if g.in_features == width else None,
            targets if i == 0 else None,
            resolved,
        )
        for i, g in enumerate(graphs)
    ]
    title = title or (
        "bonsai: " + views[0]["name"] if len(views) == 1 else f"bonsai: {len(views)} graphs"
    )
    # "</" inside a script element would end it early; JSON allows "<\/" for it
    payload = json.dumps({"views": views}).replace("</", "<\\/")
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _template().replace("__SPRIG_TITLE__", safe_title).replace("__SPRIG_DATA__", payload)


def write_html(
    graph: Graph | Sequence[Graph],
    path: str | os.PathLike[str],
    inputs: list[list[float]] | None = None,
    title: str = "",
    targets: list[list[float]] | None = None,
    task: str | Task | None = None,
) -> Path:
    """Write the viewer page for ``graph`` to ``path`` (atomic); see :func:`render_html`."""
    return write_text_atomic(path, render_html(graph, inputs, title, targets, task))
