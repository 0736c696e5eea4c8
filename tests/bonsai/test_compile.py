import functools

import pytest
import torch

from sprig.bonsai import (
    CompileError,
    GrowConfig,
    StateMachine,
    compile_machine,
    counterexample,
    extract_fsm,
    extract_graph,
    get_task,
    grow_once,
    score,
    state_neuron,
    task_machine,
)
from sprig.nn import BonsaiRNN
from sprig.nn._ameo import ameo

from .conftest import delay1_net
from .test_fsm import parity_graph, three_ones_task


def machine_of(task) -> StateMachine:
    """The task's own minimal machine as a StateMachine (an unknown output read as symbol 0)."""
    tm = task_machine(task)
    assert tm is not None
    outputs = tuple(tuple(max(o, 0) for o in row) for row in tm.outputs)
    n = len(tm.transitions)
    return StateMachine(
        task.in_features, task.out_features, tm.transitions, outputs, n, ((0.0,),) * n, ("s",),
        0.01,
    )  # fmt: skip


def brute_force_fits(inputs, target, fan_in):
    """Slow reference: every input subset of ``fan_in``, every weight vector and bias on the
    grid, ameo itself (not the search's regions of exact +-1) compared with the target."""
    import itertools

    grid = [v / 2 for v in range(-8, 9) if v]
    products = list(itertools.product(grid, repeat=fan_in))  # [()] for no inputs
    weights = torch.tensor(products, dtype=torch.float64).reshape(len(products), fan_in)
    for sub in itertools.combinations(range(inputs.shape[1]), fan_in):
        z = weights @ inputs[:, list(sub)].double().T  # (candidates, rows)
        for b in [v / 2 for v in range(-8, 9)]:
            if bool((ameo(z + b) == target.double()).all(1).any()):
                return True
    return False


def test_state_neuron_is_exact_and_smallest():
    x = torch.tensor([[a, b, c] for a in (-1.0, 1.0) for b in (-1.0, 1.0) for c in (-1.0, 1.0)])
    gen = torch.Generator().manual_seed(0)
    targets = [torch.where(torch.rand(8, generator=gen) < 0.5, -1.0, 1.0) for _ in range(5)]
    # and one that no neuron fits (found by enumerating the 256 functions)
    targets.append(torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0]))
    for target in targets:
        found = state_neuron(x, target)
        if found is None:
            assert not any(brute_force_fits(x, target, f) for f in range(4))
            continue
        sub, weights, bias = found
        z = x[:, list(sub)].double() @ torch.tensor(weights, dtype=torch.float64) + bias
        assert torch.equal(ameo(z), target.double())  # exactly +-1, not only the sign
        assert not any(brute_force_fits(x, target, f) for f in range(len(sub)))


def test_state_neuron_none_within_the_fan_in():
    x = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    xor = torch.tensor([-1.0, 1.0, 1.0, -1.0])
    assert state_neuron(x, xor, max_fan_in=1) is None
    assert state_neuron(x, xor, max_fan_in=2) is not None


@functools.cache
def compiled(name: str) -> tuple:
    """A task, its machine and the network compiled from it (each compiled once per session)."""
    task = three_ones_task() if name == "three-ones" else get_task(name)
    machine = machine_of(task)
    return task, machine, compile_machine(machine)


@pytest.mark.parametrize("name", ["switcher", "delay-2", "1to111", "three-ones"])
def test_compiled_network_runs_the_machine(name):
    task, machine, net = compiled(name)
    assert net.cells[0].state_features == max(0, (machine.num_states - 1).bit_length())
    x, y = task.batch(2000, 60, torch.Generator().manual_seed(3))  # longer than grown on
    with torch.no_grad():
        out = net(x)
    assert torch.equal(torch.where(out > 0, 1.0, -1.0), machine.run(x).float())
    assert torch.equal(torch.where(out > 0, 1.0, -1.0), y)
    # the states hold exact codes: the graph of the network is a 2**bits-code machine
    assert extract_fsm(extract_graph(net)).num_states == machine.num_states


def test_switcher_compiles_to_a_two_bit_mode():
    task, _, net = compiled("switcher")
    g = extract_graph(net)
    c = g.counts()
    # 2 state neurons of 3 inputs (change, both mode bits), 2 output neurons of at most 5
    # inputs, the final layer: at most 6 + 10 + 2 edges
    assert (c["neurons"], c["states"]) == (5, 2) and c["edges"] <= 18
    assert score(g.evaluate, task, 5000, 40, seed=9).perfect
    assert counterexample(extract_fsm(g), task) is None  # right on every sequence, exactly


def test_compile_from_a_graph():
    machine = extract_fsm(parity_graph())
    net = compile_machine(machine)
    x = torch.where(
        torch.rand(100, 30, 1, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0
    )
    with torch.no_grad():
        assert torch.equal((net(x) > 0).float() * 2 - 1, machine.run(x).float())


def test_a_counter_needs_more_than_the_bound():
    machine = machine_of(get_task("parentheses"))  # 10 states: 4-bit codes of a counter
    with pytest.raises(CompileError, match="raise max_fan_in"):
        compile_machine(machine, max_fan_in=1, max_assignments=2)


@pytest.mark.parametrize(
    "kwargs", [{"max_fan_in": 0}, {"starts": True}, {"steps": 1.5}, {"max_assignments": -1}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        compile_machine(machine_of(get_task("delay-1")), **kwargs)


def chain_delay1() -> BonsaiRNN:
    """delay-1 grown the long way: the state copies x, then two cells copy it on (4 edges)."""
    net = BonsaiRNN(1, 1, cells=[(1, 1), (1, 0), (1, 0)], activation="ameo", seed=0)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.cells[0].kernel_out.copy_(torch.tensor([[0.0], [3.0]]))  # rows: x_t, s_{t-1}
        net.cells[0].kernel_rec.copy_(torch.tensor([[3.0], [0.0]]))
        net.cells[0].initial_state.fill_(-1.0)
        net.cells[1].kernel_out.fill_(3.0)
        net.cells[2].kernel_out.fill_(3.0)
    return net


def grown_as(monkeypatch, net):
    """grow_once's training replaced by ``net``; returns the list of compile_machine calls."""
    import sprig.bonsai._pipeline as pipeline

    monkeypatch.setattr(pipeline, "grow", lambda *a, **k: (net, [0.0]))
    calls = []
    real = pipeline.compile_machine

    def spy(machine, **kwargs):
        calls.append(machine.num_states)
        return real(machine, **kwargs)

    monkeypatch.setattr(pipeline, "compile_machine", spy)
    return calls


def test_grow_once_keeps_a_grown_graph_as_small_as_the_compiled_one(monkeypatch):
    calls = grown_as(monkeypatch, delay1_net())
    config = GrowConfig(cells=[(1, 1)], steps=1, compile_machine=True)
    r = grow_once("delay-1", config, check_sequences=200, validation_sequences=500)
    assert calls == [2]  # the grown graph's 2-state machine was compiled
    assert r.score.perfect and "grown" not in r.graph.meta
    assert "not fewer than 2" in r.graph.meta["compile_machine"]  # why, not silently
    assert r.graph.counts()["edges"] == 2  # the hand-built delay-1 (2 edges) is kept


def test_grow_once_replaces_a_bigger_grown_graph(monkeypatch):
    calls = grown_as(monkeypatch, chain_delay1())
    config = GrowConfig(cells=[(1, 1)], steps=1, compile_machine=True)
    r = grow_once("delay-1", config, check_sequences=200, validation_sequences=500)
    assert calls == [2]
    # without prune_finetunes the grown graph is not minimised; the compiled one always is
    assert r.graph.meta["grown"] == {"neurons": 4, "states": 1, "edges": 4}
    assert r.graph.counts()["edges"] < 4 and r.graph.meta["exact_check"] == "passed"
    assert r.score.perfect and r.pruned.activation == "ameo"
    off = grow_once("delay-1", GrowConfig(cells=[(1, 1)], steps=1), 200, 500)
    assert off.graph.counts()["edges"] == 4  # without compile_machine: the grown graph


def test_a_minimised_grown_graph_competes_on_equal_terms(monkeypatch):
    calls = grown_as(monkeypatch, chain_delay1())
    config = GrowConfig(cells=[(1, 1)], steps=1, compile_machine=True, prune_finetunes=1)
    r = grow_once("delay-1", config, check_sequences=200, validation_sequences=500)
    assert calls == [2]
    # minimize folds the copies away: 2 edges, which the compiled graph does not beat
    assert "grown" not in r.graph.meta and r.graph.counts()["edges"] == 2


def test_compile_machine_must_be_a_bool():
    with pytest.raises(TypeError, match="compile_machine must be True or False"):
        GrowConfig(compile_machine="yes")


def test_a_graph_instead_of_its_machine_is_named():
    from .test_fsm import parity_graph

    for call in (compile_machine, lambda g: counterexample(g, "delay-1")):
        with pytest.raises(TypeError, match=r"got Graph \(a graph: call extract_fsm"):
            call(parity_graph())


@pytest.mark.parametrize(
    "inputs, target, match",
    [
        (torch.ones(4, 2), torch.ones(3), "shapes"),
        (torch.ones(4), torch.ones(4), "shapes"),
        (torch.zeros(4, 2), torch.ones(4), "inputs must be -1 or \\+1"),
        (torch.ones(4, 2), torch.full((4,), 0.5), "target must be -1 or \\+1"),
    ],
)
def test_state_neuron_bad_input(inputs, target, match):
    with pytest.raises(ValueError, match=match):
        state_neuron(inputs, target)
