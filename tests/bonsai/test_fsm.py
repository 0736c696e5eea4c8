import json
from pathlib import Path

import pytest
import torch

from sprig.bonsai import (
    Edge,
    FSMError,
    Graph,
    Node,
    StepTask,
    counterexample,
    extract_fsm,
    extract_graph,
    get_task,
    load_graph,
    save_graph,
)


def parity_graph() -> Graph:
    """y = parity of the +1 inputs so far: one XOR neuron ameo(-x - s - 1) fed back.

    -x - s - 1 is -3 (both +1), -1 (one +1) or 1 (both -1); ameo gives -1, +1, -1.
    """
    return Graph(
        1,
        1,
        "ameo",
        {},
        [
            Node("in0", "input", index=0),
            Node("s", "state", initial=-1.0, source="p"),
            Node("p", "neuron", -1.0, "ameo", output=0),
        ],
        [Edge("in0", "p", -1.0), Edge("s", "p", -1.0)],
    )


def delay2_graph() -> Graph:
    """y[n] = x[n-2] with identity neurons: s1 holds x[n-1], s2 holds x[n-2]."""
    return Graph(
        1,
        1,
        "ameo",
        {},
        [
            Node("in0", "input", index=0),
            Node("s1", "state", initial=-1.0, source="r1"),
            Node("s2", "state", initial=-1.0, source="r2"),
            Node("r1", "neuron", 0.0, "identity"),
            Node("r2", "neuron", 0.0, "identity"),
            Node("y", "neuron", 0.0, "identity", output=0),
        ],
        [Edge("in0", "r1", 1.0), Edge("s1", "r2", 1.0), Edge("s2", "y", 1.0)],
    )


def one_to_111_graph() -> Graph:
    """1 -> 111: the last two inputs held in states, y = x + s1 + s2 + 2 (> 0 unless all -1).

    Its four state codes are (x[n-1], x[n-2]); (+1, +1) and (+1, -1) behave the same, so the
    minimal machine has 3 states (ones left to write: 2, 1, 0).
    """
    g = delay2_graph()
    g.nodes[-1] = Node("y", "neuron", 2.0, "identity", output=0)
    g.edges = [
        Edge("in0", "r1", 1.0),
        Edge("s1", "r2", 1.0),
        Edge("in0", "y", 1.0),
        Edge("s1", "y", 1.0),
        Edge("s2", "y", 1.0),
    ]
    return g


def parity_task() -> StepTask:
    def step(odd: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        odd = odd * torch.where(x > 0, -1.0, 1.0)
        return odd, odd

    return StepTask("parity", 1, 1, step, -torch.ones(1))


def three_ones_task() -> StepTask:
    def step(count: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = (count + (x > 0).float()).clamp(max=3)
        return count, torch.where(count >= 3, 1.0, -1.0)

    return StepTask("three-ones", 1, 1, step, torch.zeros(1))


@pytest.mark.parametrize(
    "make, task, states, raw",
    [
        (parity_graph, parity_task(), 2, 2),
        (delay2_graph, get_task("delay-2"), 4, 4),
        (one_to_111_graph, get_task("1to111"), 3, 4),
    ],
)
def test_expected_state_counts(make, task, states, raw):
    fsm = extract_fsm(make())
    assert fsm.num_states == states
    assert fsm.raw_states == raw
    # the machine does the task, not only what the graph does
    x, y = task.batch(500, 40, torch.Generator().manual_seed(1))
    assert torch.equal(fsm.run(x), y)
    assert torch.equal(fsm.run(x[0]), y[0])  # (T, in) -> (T, out)


def test_one_to_111_table():
    fsm = extract_fsm(one_to_111_graph())
    # state 0: nothing left to write; input 1 writes +1 and leaves two more ones
    assert fsm.transitions[0] == (0, 1) and fsm.outputs[0] == (0, 1)
    two, one = fsm.transitions[0][1], fsm.transitions[fsm.transitions[0][1]][0]
    assert fsm.outputs[two] == (1, 1) and fsm.outputs[one] == (1, 1)
    assert fsm.transitions[one][0] == 0 and fsm.transitions[two][0] == one


def test_trained_network_graph(delay1):
    graph = extract_graph(delay1)
    fsm = extract_fsm(graph)
    assert fsm.num_states == 2
    x, y = get_task("delay-1").batch(200, 30, torch.Generator().manual_seed(0))
    assert torch.equal(fsm.run(x), y)


def test_graph_without_states_is_one_state():
    g = Graph(
        2,
        1,
        "ameo",
        {},
        [
            Node("in0", "input", index=0),
            Node("in1", "input", index=1),
            Node("y", "neuron", -1.0, "ameo", output=0),  # XOR of the two inputs
        ],
        [Edge("in0", "y", -1.0), Edge("in1", "y", -1.0)],
    )
    fsm = extract_fsm(g)
    assert fsm.num_states == 1
    assert fsm.outputs[0] == (0, 1, 1, 0)  # symbols 00, 10, 01, 11 (input 0 is bit 0)


def test_walk_gives_the_states():
    fsm = extract_fsm(parity_graph())
    assert fsm.walk([[1.0], [1.0], [-1.0], [1.0]]).tolist() == [0, 1, 0, 0]


def test_counter_raises_instead_of_a_wrong_table():
    # s' = s + x counts without bound under every input: no finite machine
    g = Graph(
        1,
        1,
        "ameo",
        {},
        [
            Node("in0", "input", index=0),
            Node("s", "state", initial=0.0, source="c"),
            Node("c", "neuron", 0.0, "identity", output=0),
        ],
        [Edge("in0", "c", 1.0), Edge("s", "c", 1.0)],
    )
    with pytest.raises(FSMError, match="more than max_states=50"):
        extract_fsm(g, max_states=50)


def test_values_that_drift_raise():
    # s' = (s + x) / 2 remembers ever more inputs at finer scales
    g = parity_graph()
    g.nodes[2] = Node("p", "neuron", 0.0, "identity", output=0)
    g.edges = [Edge("in0", "p", 0.5), Edge("s", "p", 0.5)]
    with pytest.raises(FSMError, match="do not settle.*tolerance 1e-06: more than max_states"):
        extract_fsm(g, max_states=200, tolerance=1e-6)


def grown_parity_graph() -> Graph:
    """The parity graph the automatic search grew (cells 2x2, seed 0): 3 neurons, 1 state, 5
    edges, perfect on 50,000 sequences, whose state visits a spread of values per state."""
    act = "interpolated_ameo"
    return Graph(
        1,
        1,
        act,
        {"factor": 0.5, "leak": 0.1},
        [
            Node("in0", "input", index=0),
            Node("s0.0", "state", initial=0.0, source="r0.0"),
            Node("y0.0", "neuron", 1.313481330871582, act),
            Node("r0.0", "neuron", 0.7062023282051086, act),
            Node("out0", "neuron", 0.0, "identity", output=0),
        ],
        [
            Edge("in0", "y0.0", 0.999479353427887),
            Edge("s0.0", "y0.0", -1.2217457294464111),
            Edge("in0", "r0.0", -1.2534663677215576),
            Edge("s0.0", "r0.0", 0.8597021102905273),
            Edge("y0.0", "out0", 1.1057568788528442),
        ],
    )


def test_the_smallest_passing_machine_is_kept():
    # a three-ones graph grown by the automatic search (cells 3x3, seed 1; 5/3/15, 100% on
    # 50,000 sequences): at tolerance 0.01 its slowly settling values give 63 states that
    # pass the check; 0.05 gives its task's minimal 4
    g = load_graph(Path(__file__).parent / "data" / "three_ones_grown.json")
    assert extract_fsm(g, tolerance=0.01).num_states == 63
    fsm = extract_fsm(g)
    assert fsm.num_states == 4 and fsm.tolerance >= 0.05
    x, y = three_ones_task().batch(1000, 40, torch.Generator().manual_seed(2))
    assert torch.equal(fsm.run(x), y)


def test_a_grown_graph_needs_a_coarser_grid():
    g = grown_parity_graph()
    with pytest.raises(FSMError, match="more than max_states"):
        extract_fsm(g, tolerance=1e-6)
    fsm = extract_fsm(g)
    assert fsm.num_states == 2 and fsm.tolerance > 1e-6
    x, y = parity_task().batch(2000, 40, torch.Generator().manual_seed(3))
    assert torch.equal(fsm.run(x), y)


def test_a_too_coarse_tolerance_is_caught_by_the_check():
    with pytest.raises(FSMError, match="tolerance 5: 1 state, wrong on random sequence 0"):
        extract_fsm(delay2_graph(), tolerance=5.0)


def test_bad_arguments():
    fsm = extract_fsm(parity_graph())
    with pytest.raises(ValueError, match="must be -1 or \\+1, got 0.0"):
        fsm.run([[0.0]])
    with pytest.raises(ValueError, match="shape"):
        fsm.run(torch.ones(3, 2))
    with pytest.raises(ValueError, match="max_states"):
        extract_fsm(parity_graph(), max_states=0)


def test_dot():
    dot = extract_fsm(one_to_111_graph()).to_dot()
    assert dot.startswith("digraph fsm {")
    assert dot.count("[shape=circle]") == 3
    assert 'q0 -> q1 [label="1/1"];' in dot


def test_json_export(tmp_path):
    g = one_to_111_graph()
    path = save_graph(g, tmp_path / "g.json", extract_fsm(g))
    data = json.loads(path.read_text())
    assert data["state_machine"]["num_states"] == 3
    assert data["state_machine"]["transitions"][0] == [0, 1]
    assert load_graph(path).counts() == g.counts()  # loading ignores the machine
    err = FSMError("no machine")
    data = json.loads(save_graph(g, tmp_path / "h.json", err).read_text())
    assert data["state_machine"] == {"error": "no machine"}


def task_targets(task, x):
    """The task's step function run on one sequence ``x (T, in)``: its targets ``(T, out)``."""
    state, ys = task.initial_state.float()[None], []
    for x_t in x:
        state, y = task.step(state, x_t[None])
        ys.append(y[0])
    return torch.stack(ys)


def test_counterexample_none_when_the_machines_agree():
    assert counterexample(extract_fsm(parity_graph()), parity_task()) is None
    assert counterexample(extract_fsm(delay2_graph()), "delay-2") is None
    assert counterexample(extract_fsm(one_to_111_graph()), "1to111") is None


@pytest.mark.parametrize("graph, task", [(delay2_graph, "delay-1"), (parity_graph, "1to111")])
def test_counterexample_is_shortest_and_real(graph, task):
    machine, task = extract_fsm(graph()), get_task(task)
    x = counterexample(machine, task)
    assert x is not None
    assert not torch.equal(machine.run(x)[-1], task_targets(task, x)[-1])  # differs at the end
    assert torch.equal(machine.run(x)[:-1], task_targets(task, x)[:-1])  # and not before
    # no shorter input differs: every input of length < len(x) agrees
    import itertools

    for n in range(1, len(x)):
        for bits in itertools.product([-1.0, 1.0], repeat=n * task.in_features):
            short = torch.tensor(bits).reshape(n, task.in_features)
            assert torch.equal(machine.run(short), task_targets(task, short))


def test_counterexample_bad_input():
    with pytest.raises(ValueError, match="inputs"):
        counterexample(extract_fsm(parity_graph()), "switcher")


def test_counterexample_skips_what_the_task_never_yields():
    # parentheses' machine marks inputs it never yields (a ")" at depth 0) as unknown: a
    # machine may do anything there, and after them
    from sprig.bonsai import StateMachine, task_machine

    tm = task_machine("parentheses")
    unknown = sum(o < 0 for row in tm.outputs for o in row)
    assert unknown > 0
    n = len(tm.transitions)
    for fill in (0, 1):
        outputs = tuple(tuple(fill if o < 0 else o for o in row) for row in tm.outputs)
        m = StateMachine(1, 1, tm.transitions, outputs, n, ((0.0,),) * n, ("s",), 0.01)
        assert counterexample(m, "parentheses") is None
    # a known output changed is found
    bad = [list(row) for row in tm.outputs]
    bad[0][0] = 1 - bad[0][0]
    m = StateMachine(1, 1, tm.transitions, tuple(map(tuple, bad)), n, ((0.0,),) * n, ("s",), 0.01)
    assert counterexample(m, "parentheses").tolist() == [[-1.0]]
