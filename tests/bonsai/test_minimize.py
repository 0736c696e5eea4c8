"""Greedy pruning past the clip threshold: graph folding and edge removal, model pruning."""

import pytest
import torch

from sprig.bonsai import Edge, Graph, Node, StepTask, extract_graph, minimize, score
from sprig.bonsai._minimize import prune_weights

from .conftest import delay1_net


def _right(g, task="delay-1", n=300):
    return score(g.evaluate, task, n, 30, seed=7).perfect


def test_minimize_removes_an_edge_the_task_does_not_need():
    net = delay1_net()
    with torch.no_grad():
        net.cells[0].kernel_out[0, 0] = 0.05  # x_t -> y_t: small, useless for a delay
    g = extract_graph(net, task="delay-1")
    assert _right(g) and g.counts()["edges"] == 3
    m = minimize(g, "delay-1", sequences=200, confirm_sequences=200)
    assert m.counts() == {"neurons": 2, "states": 1, "edges": 2}
    assert _right(m)
    assert m.meta["minimized"]["from"] == g.counts()
    assert g.counts()["edges"] == 3  # the input graph is left as it was


def test_minimize_folds_a_neuron_that_passes_an_input_on():
    # in0 -> p = ameo(3 x) (= x for x = +-1) -> r (feeds the state) ; out reads the state
    nodes = [
        Node("in0", "input", index=0),
        Node("s0", "state", initial=-1.0, source="r"),
        Node("p", "neuron", activation="ameo"),
        Node("r", "neuron", activation="identity"),
        Node("out", "neuron", activation="identity", output=0),
    ]
    edges = [Edge("in0", "p", 3.0), Edge("p", "r", 2.0), Edge("s0", "out", 1.0)]
    g = Graph(1, 1, "ameo", {}, nodes, edges, {"task": "delay-1"})
    assert _right(g)
    m = minimize(g, "delay-1", sequences=200, confirm_sequences=200)
    assert [n.id for n in m.nodes if n.kind == "neuron"] == ["r", "out"]
    assert Edge("in0", "r", 2.0) in m.edges  # ameo(3 x) = x on +-1: the weight carries over
    assert _right(m)


def test_minimize_leaves_a_wrong_graph_alone():
    g = extract_graph(delay1_net(), task="delay-1")
    assert minimize(g, "loop", sequences=50, confirm_sequences=0).counts() == g.counts()
    with pytest.raises(ValueError, match="confirm_sequences"):
        minimize(g, "delay-1", confirm_sequences=-1)


def test_prune_weights_zeroes_what_the_network_does_not_need():
    net = delay1_net()
    with torch.no_grad():
        net.cells[0].kernel_rec[1, 0] = 0.04  # s -> r: small and useless
        net.cells[0].kernel_out[0, 0] = 0.06  # x -> y: small and useless
    pruned = prune_weights(net, "delay-1", sequences=200, confirm_sequences=200, finetune_steps=0)
    k_out, k_rec = pruned.cells[0].kernel_out.detach(), pruned.cells[0].kernel_rec.detach()
    assert float(k_rec[1, 0]) == 0.0 and float(k_out[0, 0]) == 0.0
    assert float(k_out[1, 0]) == 3.0 and float(k_rec[0, 0]) == 3.0
    assert score(pruned, "delay-1", 300, 30, seed=3).perfect
    assert float(net.cells[0].kernel_out.detach()[0, 0]) == pytest.approx(0.06)  # a copy was pruned


def test_minimize_replaces_a_constant_state_by_its_value():
    # s1 holds 1.0 for ever (r1 = s1), and out = s0 + 1.2 s1 - 1.2: dropping the edge alone
    # breaks the output, moving 1.2 * 1.0 into out's bias does not
    nodes = [
        Node("in0", "input", index=0),
        Node("s0", "state", initial=-1.0, source="r0"),
        Node("s1", "state", initial=1.0, source="r1"),
        Node("r0", "neuron", activation="identity"),
        Node("r1", "neuron", activation="identity"),
        Node("out", "neuron", bias=-1.2, activation="identity", output=0),
    ]
    edges = [Edge("in0", "r0", 1.0), Edge("s1", "r1", 1.0), Edge("s0", "out", 1.0)]
    edges.append(Edge("s1", "out", 1.2))
    g = Graph(1, 1, "ameo", {}, nodes, edges, {"task": "delay-1"})
    assert _right(g) and not _right(Graph(1, 1, "ameo", {}, nodes, edges[:3]))
    m = minimize(g, "delay-1", sequences=200, confirm_sequences=200)
    assert m.counts() == {"neurons": 2, "states": 1, "edges": 2}
    assert m.node("out").bias == pytest.approx(0.0)
    assert _right(m)


def test_recheck_keeps_no_removal_on_the_sequences_it_was_picked_on():
    # y[n] = x[n-1] with x = +1 rare: each of delay1_net's two weights is needed only when a
    # +1 comes, so a check of 5 sequences often has none and passes its removal. The seeds are
    # ones where that happens: without recheck the removal is kept and the result is wrong.
    # With it, the removal fails the new sequences; at prune_weights' second seed the new
    # sequences have no +1 either, the removal is kept, and the next recheck, which finds a
    # +1, undoes it (without that rollback the result was wrong there too).
    task = StepTask("rare-delay", 1, 1, lambda s, x: (x, s), -torch.ones(1), p_one=0.004)
    net = delay1_net()
    assert score(net, task, 2_000, 40, seed=1).perfect
    kw = {"sequences": 5, "confirm_sequences": 0}
    for seed in (10, 2):
        lucky = prune_weights(net, task, finetune_steps=0, seed=seed, **kw)
        assert not score(lucky, task, 2_000, 40, seed=1).perfect
        checked = prune_weights(net, task, finetune_steps=0, seed=seed, recheck=True, **kw)
        assert score(checked, task, 2_000, 40, seed=1).perfect
    g = extract_graph(net, task="rare-delay")
    assert not score(minimize(g, task, seed=2, **kw).evaluate, task, 2_000, 40, seed=1).perfect
    kept = minimize(g, task, seed=2, recheck=True, **kw)
    assert kept.counts() == g.counts()
    assert score(kept.evaluate, task, 2_000, 40, seed=1).perfect
