"""Bonsai graph exports: JSON (versioned, validated on load), Graphviz DOT, and Python source.

The JSON is the graph's file format: ``sprig view`` and the viewer page read it. Loading checks
everything (format, version, node kinds, references, output indices, no cycle within a step)
and says what is wrong; it never runs code.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

from .._formats import GRAPH_FORMAT_VERSION
from .._version import __version__
from .._words import plural
from ..io import SprigFileError, write_text_atomic
from ..nn._ameo import AMEO_CLASSES, sharp_ameo_scalar, soft_ameo_scalar
from ._fsm import FSMError, StateMachine
from ._graph import Edge, Graph, Node, _dead_code_elimination

FORMAT = "sprig.bonsai.graph"


def graph_to_dict(
    graph: Graph, state_machine: StateMachine | FSMError | None = None
) -> dict[str, Any]:
    """The JSON-able form of ``graph`` (see :func:`save_graph`).

    Args:
        graph: the graph.
        state_machine: its :func:`extract_fsm` machine, stored under ``"state_machine"``, or
            the :class:`FSMError` that extraction raised (stored as ``{"error": message}``).
    """
    nodes = []
    for n in graph.nodes:
        d: dict[str, Any] = {"id": n.id, "kind": n.kind}
        if n.kind == "input":
            d["index"] = n.index
        elif n.kind == "state":
            d.update(initial=n.initial, source=n.source)
        else:
            d.update(bias=n.bias, activation=n.activation)
            if n.output is not None:
                d["output"] = n.output
        nodes.append(d)
    out: dict[str, Any] = {
        "format": FORMAT,
        "format_version": GRAPH_FORMAT_VERSION,
        "sprig_version": __version__,
        "in_features": graph.in_features,
        "out_features": graph.out_features,
        "activation": {"name": graph.activation, "params": graph.activation_params},
        "nodes": nodes,
        "edges": [[e.src, e.dst, e.weight] for e in graph.edges],
        "counts": graph.counts(),
        "meta": graph.meta,
    }
    if isinstance(state_machine, StateMachine):
        out["state_machine"] = state_machine.to_dict()
    elif state_machine is not None:
        out["state_machine"] = {"error": str(state_machine)}
    return out


def _bad(where: str, what: str) -> SprigFileError:
    return SprigFileError(f"{where}: {what}")


def _num(where: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(where, f"{what} must be a finite number, got {value!r}")
    return float(value)


def _int(where: str, value: Any, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(where, f"{what} must be an int >= {low}, got {value!r}")
    if high is not None and value > high:
        raise _bad(where, f"{what} must be at most {high}, got {value!r}")
    return value


def graph_from_dict(data: Any, where: str = "graph") -> Graph:
    """Rebuild a :class:`Graph` from :func:`graph_to_dict`'s form, checking everything."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(where, f'not a bonsai graph (expected "format": {FORMAT!r})')
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(where, f"format_version must be an int >= 1, got {version!r}")
    if version > GRAPH_FORMAT_VERSION:
        raise _bad(
            where,
            f"written by sprig {data.get('sprig_version')} in graph format v{version}; this "
            f"sprig reads up to v{GRAPH_FORMAT_VERSION}: upgrade sprig",
        )
    try:
        n_in = _int(where, data["in_features"], "in_features", 1)
        n_out = _int(where, data["out_features"], "out_features", 1)
        act = data["activation"]
        act_name, params = act["name"], dict(act.get("params", {}))
        raw_nodes, raw_edges = data["nodes"], data["edges"]
    except (KeyError, TypeError, ValueError) as err:
        raise _bad(where, f"missing or malformed field {err}") from None
    if not isinstance(act_name, str) or act_name not in AMEO_CLASSES:
        raise _bad(where, f"unknown activation {act_name!r}; valid: {sorted(AMEO_CLASSES)}")
    try:
        AMEO_CLASSES[act_name](**{k: _num(where, v, k) for k, v in params.items()})
    except (TypeError, ValueError) as err:
        raise _bad(where, f"bad activation parameters {params}: {err}") from None
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        raise _bad(where, "nodes and edges must be lists")
    nodes: list[Node] = []
    for i, d in enumerate(raw_nodes):
        at = f"node {i}"
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not d["id"]:
            raise _bad(where, f"{at} must be an object with a non-empty string id, got {d!r}")
        kind = d.get("kind")
        if kind == "input":
            nodes.append(
                Node(d["id"], kind, index=_int(where, d.get("index"), at + " index", 0, n_in - 1))
            )
        elif kind == "state":
            if not isinstance(d.get("source"), str):
                raise _bad(where, f"{at} ({d['id']}): a state needs a source neuron id")
            nodes.append(
                Node(
                    d["id"],
                    kind,
                    initial=_num(where, d.get("initial"), at + " initial"),
                    source=d["source"],
                )
            )
        elif kind == "neuron":
            a = d.get("activation")
            if a not in (act_name, "identity"):
                raise _bad(
                    where,
                    f"{at} ({d['id']}): activation must be {act_name!r} or 'identity', got {a!r}",
                )
            out = d.get("output")
            nodes.append(
                Node(
                    d["id"],
                    kind,
                    bias=_num(where, d.get("bias"), at + " bias"),
                    activation=a,
                    output=None if out is None else _int(where, out, at + " output", 0, n_out - 1),
                )
            )
        else:
            raise _bad(where, f"{at}: kind must be 'input', 'neuron' or 'state', got {kind!r}")
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise _bad(where, f"duplicate node ids {dup}")
    kinds = dict(zip(ids, (n.kind for n in nodes)))
    for n in nodes:
        if n.kind == "state" and kinds.get(n.source or "") != "neuron":
            raise _bad(where, f"state {n.id}'s source {n.source!r} is not a neuron of the graph")
    for label, attr, count in (("input", "index", n_in), ("output", "output", n_out)):
        have = sorted(getattr(n, attr) for n in nodes if getattr(n, attr) is not None)
        if len(have) != count or have != list(range(count)):  # count first: it may be huge
            raise _bad(where, f"{label} indices must be 0..{count - 1}, each once; got {have}")
    edges: list[Edge] = []
    for i, e in enumerate(raw_edges):
        if not isinstance(e, list) or len(e) != 3:
            raise _bad(where, f"edge {i} must be [source, target, weight], got {e!r}")
        src, dst, w = e
        if not isinstance(src, str) or not isinstance(dst, str):
            raise _bad(where, f"edge {i} {e!r}: source and target must be node ids (strings)")
        if kinds.get(src) is None or kinds.get(dst) != "neuron":
            raise _bad(where, f"edge {i} {e!r}: source must be a node and target a neuron")
        edges.append(Edge(src, dst, _num(where, w, f"edge {i} weight")))
    meta = data.get("meta", {})
    graph = Graph(
        n_in, n_out, act_name, params, nodes, edges, meta if isinstance(meta, dict) else {}
    )
    try:
        graph.neuron_order()
    except ValueError as err:
        raise _bad(where, str(err)) from None
    live = {n.id for n in _dead_code_elimination(nodes, edges)[0]}
    dead = [n.id for n in nodes if n.kind != "input" and n.id not in live]
    if dead:  # extract_graph never writes them: the file was edited or made by hand
        raise _bad(
            where,
            f"nodes {dead[:5]} cannot reach any output (through edges or state sources); "
            "remove them, or connect them",
        )
    return graph


def save_graph(
    graph: Graph,
    path: str | os.PathLike[str],
    state_machine: StateMachine | FSMError | None = None,
) -> Path:
    """Write ``graph`` as JSON (atomic). Read it back with :func:`load_graph`.

    ``state_machine`` (its :func:`extract_fsm` result or error) is written beside it; loading
    ignores it (the machine follows from the graph).

    Example:
        >>> import tempfile, torch
        >>> from sprig.nn import BonsaiRNN
        >>> from sprig.bonsai import extract_graph
        >>> g = extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0))
        >>> path = save_graph(g, tempfile.mkdtemp() + "/graph.json")
        >>> load_graph(path).counts() == g.counts()
        True
    """
    return write_text_atomic(path, json.dumps(graph_to_dict(graph, state_machine), indent=1) + "\n")


def load_graph(path: str | os.PathLike[str]) -> Graph:
    """Read a graph written by :func:`save_graph`; a malformed or newer file raises
    :class:`sprig.SprigFileError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no graph file at {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SprigFileError(
            f"{path} is not valid JSON ({err}); is it a bonsai graph.json?"
        ) from None
    return graph_from_dict(data, where=str(path))


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text: neurons as boxes, states as circles, dashed edges into states.

    Example:
        >>> from sprig.nn import BonsaiRNN
        >>> from sprig.bonsai import extract_graph
        >>> to_dot(extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0))).splitlines()[0]
        'digraph bonsai {'
    """
    lines = ["digraph bonsai {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for n in graph.nodes:
        if n.kind == "input":
            attrs = f'shape=plaintext, label="{n.label}"'
        elif n.kind == "state":
            attrs = f'shape=circle, label="{n.id}\\ninit {_fmt(n.initial)}"'
        else:
            head = f"{n.label}\\n" if n.output is not None else f"{n.id}\\n"
            attrs = f'shape=box, label="{head}b {_fmt(n.bias)}"'
        lines.append(f'  "{n.id}" [{attrs}];')
    for e in graph.edges:
        lines.append(f'  "{e.src}" -> "{e.dst}" [label="{_fmt(e.weight)}"];')
    for n in graph.nodes:
        if n.kind == "state":
            lines.append(f'  "{n.source}" -> "{n.id}" [style=dashed, constraint=false];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _act_source(name: str) -> str:
    """Standalone source of the activation: sprig's own scalar twins, copied by inspect."""
    helpers = [inspect.getsource(f) for f in (sharp_ameo_scalar, soft_ameo_scalar)]
    act = (
        "def act(v):\n"
        f'    """{name}: FACTOR * sharp + (1 - FACTOR) * soft (sprig.nn.ameo_scalar)."""\n'
        "    sharp, soft = sharp_ameo_scalar(v, LEAK), soft_ameo_scalar(v, LEAK)\n"
        "    return FACTOR * sharp + (1.0 - FACTOR) * soft\n"
    )
    return "\n\n".join([*helpers, act])


def _var(node_id: str) -> str:
    return "v_" + "".join(c if c.isalnum() else "_" for c in node_id)


def to_python(graph: Graph) -> str:
    """Readable Python source computing the graph's outputs, one line per neuron.

    The source defines ``act(v)`` and ``run(inputs)``: ``inputs`` is a list of time steps, each
    a list of ``in_features`` bits, 0/1 or -1/+1 (0 means -1); it returns one list of
    ``out_features`` values per step (their signs are the answer). It needs nothing but
    Python, and runs as a script: ``python graph.py 1 0 0 1`` (one token of ``in_features``
    0/1 characters per step) prints each step's output bits and values.

    Example:
        >>> from sprig.nn import BonsaiRNN
        >>> from sprig.bonsai import extract_graph
        >>> src = to_python(extract_graph(BonsaiRNN(1, 1, cells=[(1, 1)], seed=0)))
        >>> scope = {}
        >>> exec(src, scope)
        >>> len(scope["run"]([[1.0], [-1.0]]))
        2
    """
    # every Ameo variant is factor * sharp + (1 - factor) * soft with one leak: the module
    # knows its own (sprig.nn's defaults fill what the graph's params leave out)
    act = AMEO_CLASSES[graph.activation](**graph.activation_params)
    factor, leak = float(act.factor), float(act.leak)
    counts = graph.counts()
    lines = [
        f'"""A bonsai network as plain Python (sprig {__version__}): '
        f"{plural(counts['neurons'], 'neuron')}, {plural(counts['states'], 'state')}, "
        f"{plural(counts['edges'], 'edge')}.",
        "",
        f"Task: {graph.meta.get('task', '?')}. run(inputs) takes a list of time steps, each a "
        f"list of {graph.in_features} bits, 0/1 or -1/+1 (0 means -1);",
        f"it returns, per step, the list of {graph.out_features} outputs (their signs are the "
        "answer).",
        "",
        f"As a script: python graph.py {'1' * graph.in_features} {'0' * graph.in_features}"
        " (one token per step, one 0/1 per input).",
        '"""',
        "",
        "import sys",
        "",
        f"FACTOR = {float(factor)!r}",
        f"LEAK = {float(leak)!r}",
        "",
        "",
        _act_source(graph.activation),
        "",
        _BIT,
        "",
        "def run(inputs):",
    ]
    states = [n for n in graph.nodes if n.kind == "state"]
    for s in states:
        lines.append(f"    {_var(s.id)} = {s.initial!r}  # initial state")
    lines += ["    outputs = []", "    for x in inputs:"]
    for n in graph.nodes:
        if n.kind == "input":
            lines.append(f"        {_var(n.id)} = bit(x[{n.index}])")
    into: dict[str, list[Edge]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        into[e.dst].append(e)
    for n in graph.neuron_order():
        terms = [f"{e.weight!r} * {_var(e.src)}" for e in into[n.id]]
        if n.bias or not terms:
            terms.append(repr(n.bias))
        expr = " + ".join(terms)
        if n.activation != "identity":
            expr = f"act({expr})"
        lines.append(f"        {_var(n.id)} = {expr}")
    if states:
        lhs = ", ".join(_var(s.id) for s in states)
        rhs = ", ".join(_var(s.source or "") for s in states)
        lines.append(f"        {lhs} = {rhs}  # next step's states")
    outs = {n.output: n.id for n in graph.nodes if n.output is not None}
    lines.append(
        "        outputs.append(["
        + ", ".join(_var(outs[k]) for k in range(graph.out_features))
        + "])"
    )
    lines.append("    return outputs")
    lines += ["", "", *_SCRIPT.format(width=graph.in_features).splitlines()]
    return "\n".join(lines) + "\n"


# the generated file's helpers: 0/1 or +-1 inputs, and a command line
_BIT = '''def bit(v):
    """An input bit as -1/+1: 1 and +1 are +1; 0 and -1 are -1."""
    if v in (1, True):
        return 1.0
    if v in (0, -1, False):
        return -1.0
    raise ValueError(f"an input must be 0/1 or -1/+1, got {v!r}")
'''

_SCRIPT = """if __name__ == "__main__":
    steps = []
    for tok in sys.argv[1:]:
        if len(tok) != {width} or set(tok) - set("01"):
            sys.exit(f"input step {{tok!r}}: give {width} character(s) of 0/1 per step")
        steps.append([int(c) for c in tok])
    if not steps:
        sys.exit("usage: python " + sys.argv[0] + " STEP...  (each STEP {width} chars of 0/1)")
    for t, (tok, out) in enumerate(zip(sys.argv[1:], run(steps))):
        bits = "".join("1" if v > 0 else "0" for v in out)
        print(t, tok, "->", bits, " ".join(f"{{v:+.3f}}" for v in out))
"""
