"""The viewer page: one self-contained HTML file that steps a bonsai graph through time.

Node positions come from igraph's Sugiyama layered layout (state feedback left out, so the
graph of one step is acyclic and flows from inputs and states to outputs); the page itself
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
from ._fsm import FSMError, StateMachine, extract_fsm
from ._graph import Graph


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


def layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Node positions ``{id: (x, y)}`` from igraph's Sugiyama layout (y grows with the layer)."""
    import igraph

    ids = [n.id for n in graph.nodes]
    index = {nid: i for i, nid in enumerate(ids)}
    g = igraph.Graph(
        n=len(ids), edges=[(index[e.src], index[e.dst]) for e in graph.edges], directed=True
    )
    coords = g.layout_sugiyama(hgap=1, vgap=1).coords[: len(ids)]
    return {nid: (float(c[0]), float(c[1])) for nid, c in zip(ids, coords)}


def _template() -> str:
    return (resources.files("sprig.bonsai") / "templates" / "viewer.html").read_text()


def _view(
    graph: Graph, inputs: list[list[float]] | None, targets: list[list[float]] | None
) -> dict[str, Any]:
    """One graph's entry in the page: the graph with its state machine, positions, inputs."""
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
        "positions": layout(graph),
        "inputs": inputs,
        "targets": targets,
    }


def render_html(
    graph: Graph | Sequence[Graph],
    inputs: list[list[float]] | None = None,
    title: str = "",
    targets: list[list[float]] | None = None,
) -> str:
    """The viewer page for ``graph`` (a string of HTML): the graph, its state machine, the
    outputs against the targets and a logic analyzer of every node over time.

    Args:
        graph: the graph to show, or several (the page then has a picker).
        inputs: the input sequence, one list of ``in_features`` +-1 values per step (default:
            16 random steps, seed 0); with several graphs, used by those of its width.
        title: the page's title (default: the task name in ``graph.meta``).
        targets: the task's expected outputs for ``inputs``, one list of ``out_features`` +-1
            values per step (first graph only; shown beside the decoded outputs until the
            input is edited).

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
    views = [
        _view(
            g,
            inputs if g.in_features == width else None,
            targets if i == 0 else None,
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
) -> Path:
    """Write the viewer page for ``graph`` to ``path`` (atomic); see :func:`render_html`."""
    return write_text_atomic(path, render_html(graph, inputs, title, targets))
