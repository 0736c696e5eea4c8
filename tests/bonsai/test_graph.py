import json

import pytest
import torch

from sprig import SprigFileError
from sprig.bonsai import (
    extract_graph,
    get_task,
    graph_from_dict,
    graph_to_dict,
    load_graph,
    save_graph,
    score,
    to_dot,
    to_python,
)

from .conftest import random_pruned_net


def test_hand_built_delay1(delay1, delay1_graph):
    g = delay1_graph
    assert g.counts() == {"neurons": 2, "states": 1, "edges": 2}
    assert score(g.evaluate, "delay-1", sequences=500).perfect
    assert score(delay1, "delay-1", sequences=500).perfect


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("simplify", [False, True])
def test_graph_equals_pruned_network(seed, simplify):
    net = random_pruned_net(seed)
    g = extract_graph(net, simplify=simplify)
    x = torch.randint(0, 2, (16, 12, 3), generator=torch.Generator().manual_seed(seed)) * 2.0 - 1
    want = net(x.double()).detach()
    # float64 both; the sums run in another order, and the zig-zag dynamics carry rounding on
    torch.testing.assert_close(g.evaluate(x), want, atol=1e-9, rtol=1e-9)
    # dead-code elimination: every edge feeds a live node; no zero weights
    ids = {n.id for n in g.nodes}
    assert all(e.src in ids and e.dst in ids and e.weight != 0 for e in g.edges)


def test_dead_code_elimination_through_time():
    net = random_pruned_net(0)
    with torch.no_grad():
        net.cells[1].kernel_out.zero_()  # cell 1's outputs no longer read anything
    g = extract_graph(net, simplify=False)
    ids = {n.id for n in g.nodes}
    # nothing of cell 0 is needed any more (only biases reach the outputs)
    assert not any(i.startswith(("y0.", "r0.", "s0.")) for i in ids)
    assert {f"in{i}" for i in range(3)} <= ids  # inputs stay (they are the interface)


def test_constant_folding_keeps_values():
    net = random_pruned_net(3)
    with torch.no_grad():
        net.cells[0].kernel_out[:, 0] = 0.0  # y0.0 becomes the constant act(bias)
        net.cells[0].bias_out[0] = 0.7
    full, folded = extract_graph(net, simplify=False), extract_graph(net, simplify=True)
    assert "y0.0" in {n.id for n in full.nodes}
    assert "y0.0" not in {n.id for n in folded.nodes}
    x = torch.randn(4, 9, 3).sign()
    torch.testing.assert_close(folded.evaluate(x), full.evaluate(x), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize(
    "seed, activation",
    [(0, "interpolated_ameo"), (1, "interpolated_ameo"), (0, "ameo"), (0, "leaky_ameo")]
    + [(0, "soft_leaky_ameo")],
)
def test_python_export_computes_the_same(seed, activation):
    net = random_pruned_net(seed, activation)
    g = extract_graph(net)
    src = to_python(g)
    n_neurons = g.counts()["neurons"]
    lines = [ln for ln in src.splitlines() if ln.startswith("        v_") and "x[" not in ln]
    assert sum("next step" not in ln for ln in lines) == n_neurons  # one line per neuron
    scope: dict = {}
    exec(compile(src, "graph.py", "exec"), scope)
    x = torch.randn(3, 12, 3).sign()
    for b in range(3):
        got = torch.tensor(scope["run"](x[b].tolist()), dtype=torch.float64)
        torch.testing.assert_close(got, g.evaluate(x[b : b + 1])[0], atol=1e-9, rtol=1e-9)
    # 0/1 bits are the same as -1/+1
    bits = ((x[0] + 1) / 2).long().tolist()
    assert scope["run"](bits) == scope["run"](x[0].tolist())
    with pytest.raises(ValueError, match="0/1 or -1/\\+1, got 2"):
        scope["run"]([[2, 0, 1]])


def test_json_roundtrip(tmp_path):
    g = extract_graph(random_pruned_net(1), task="mine")
    path = save_graph(g, tmp_path / "graph.json")
    back = load_graph(path)
    assert back.counts() == g.counts() and back.meta["task"] == "mine"
    x = torch.randn(2, 10, 3).sign()
    torch.testing.assert_close(back.evaluate(x), g.evaluate(x), atol=0, rtol=0)


def test_dot(delay1_graph):
    dot = to_dot(delay1_graph)
    assert dot.startswith("digraph bonsai {") and dot.rstrip().endswith("}")
    assert '"r0.0" -> "s0.0" [style=dashed' in dot
    assert "shape=circle" in dot and "shape=box" in dot


def _mutate(g, fn):
    d = graph_to_dict(g)
    fn(d)
    return d


@pytest.mark.parametrize(
    "fn,match",
    [
        (lambda d: d.update(format_version=2), "v2; this sprig reads up to v1: upgrade sprig"),
        (lambda d: d.update(format="other"), "not a bonsai graph"),
        (lambda d: d.pop("nodes"), "missing or malformed field 'nodes'"),
        (lambda d: d["edges"].append(["in0", "nowhere", 1.0]), "target a neuron"),
        (lambda d: d["edges"].append(["in0", "y0.0", "x"]), "finite number"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), "duplicate node ids"),
        (lambda d: d["nodes"][1].update(kind="blob"), "kind must be"),
        (lambda d: d["activation"].update(name="relu"), "unknown activation"),
        (lambda d: [n.pop("output", None) for n in d["nodes"]], "output indices must be 0..0"),
        (lambda d: d["edges"].append(["y0.0", "y0.0", 1.0]), "cycle"),
        (
            lambda d: d["nodes"].append(
                {"id": "lost", "kind": "neuron", "bias": 0.0, "activation": "identity"}
            ),
            r"nodes \['lost'\] cannot reach any output",
        ),
        # found by fuzzing: a raw TypeError, a raw ValueError, a MemoryError
        (lambda d: d["edges"].append([["in0"], "y0.0", 1.0]), "must be node ids"),
        (lambda d: d["activation"].update(params="ab"), "malformed field"),
        (lambda d: d.update(in_features=10**18), "input indices must be 0.."),
    ],
)
def test_malformed_files_are_refused(delay1_graph, tmp_path, fn, match):
    d = _mutate(delay1_graph, fn)
    with pytest.raises(SprigFileError, match=match):
        graph_from_dict(d)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(d))
    with pytest.raises(SprigFileError, match=match):
        load_graph(path)


def test_a_long_chain_is_ordered_in_one_pass(delay1_graph):
    # neuron_order was quadratic (8,000 chained neurons: 3.5 s); listed in reverse, each neuron
    # must still come after its source
    d = graph_to_dict(delay1_graph)
    n = 20_000
    d["nodes"] = [d["nodes"][0]] + [
        {"id": f"n{i}", "kind": "neuron", "bias": 0.0, "activation": "identity"}
        for i in reversed(range(n))
    ]
    d["nodes"][1]["output"] = 0  # n{n-1}, the chain's end
    d["edges"] = [["in0", "n0", 1.0]] + [[f"n{i}", f"n{i + 1}", 1.0] for i in range(n - 1)]
    order = [node.id for node in graph_from_dict(d).neuron_order()]
    assert order == [f"n{i}" for i in range(n)]


def test_not_json(tmp_path):
    (tmp_path / "g.json").write_text("{oops")
    with pytest.raises(SprigFileError, match="not valid JSON"):
        load_graph(tmp_path / "g.json")


def test_graph_on_a_task_batch(delay1_graph):
    x, y = get_task("delay-1").batch(10, 40, torch.Generator().manual_seed(0))
    assert torch.equal(delay1_graph.evaluate(x).sign(), y.double())
