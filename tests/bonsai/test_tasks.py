"""Each built-in task against a plain-Python reference of its definition."""

import pytest
import torch

from sprig.bonsai import TASKS, SampledTask, StepTask, get_task


def _bits(t):
    return [[int(v > 0) for v in row] for row in t.tolist()]


def _reference(name, xs):
    """Targets (0/1) for one sequence of input bit-vectors, written as the issue states them."""
    ys = []
    if name in ("delay-1", "delay-2"):
        k = int(name[-1])
        return [[xs[t - k][0] if t >= k else 0] for t in range(len(xs))]
    if name == "loop":
        return [[int(t % 3 == 2)] for t in range(len(xs))]
    if name == "1to111":
        return [[int(any(xs[t - d][0] for d in range(3) if t - d >= 0))] for t in range(len(xs))]
    if name == "parentheses":
        depth = 0
        for (b,) in xs:
            depth += -1 if b else 1  # ')' = +1 closes, '(' = -1 opens
            assert 0 <= depth <= 8
            ys.append([int(depth == 0)])
        return ys
    if name == "switcher":
        gates = [lambda a, b: a ^ b, lambda a, b: a & b, lambda a, b: 1 - (a | b)]
        gates.append(lambda a, b: 1 - (a & b))
        mode = 0
        for change, a, b in xs:
            mode = (mode + change) % 4
            ys.append([gates[mode](a, b)])
        return ys
    raise AssertionError(name)


@pytest.mark.parametrize("name", TASKS.names())
def test_builtin_tasks_match_reference(name):
    task = get_task(name)
    x, y = task.batch(64, 30, torch.Generator().manual_seed(1))
    assert x.shape == (64, 30, task.in_features) and y.shape == (64, 30, task.out_features)
    for i in range(64):
        assert _bits(y[i]) == _reference(name, _bits(x[i]))


def test_switcher_change_probability():
    x, _ = get_task("switcher").batch(2000, 20, torch.Generator().manual_seed(0))
    p = (x > 0).float().mean(dim=(0, 1))
    assert abs(float(p[0]) - 0.3) < 0.02 and abs(float(p[1]) - 0.5) < 0.02


def test_parentheses_reaches_depth_8():
    x, _ = get_task("parentheses").batch(500, 40, torch.Generator().manual_seed(0))
    depth = torch.cumsum(-x[..., 0], dim=1)
    assert int(depth.max()) == 8 and int(depth.min()) == 0


def test_user_step_task():
    # y[n] = x[n] AND x[n-1]
    def step(prev, x):
        return x, torch.where((x > 0) & (prev > 0), 1.0, -1.0)

    task = StepTask("and-prev", 1, 1, step, -torch.ones(1))
    x, y = task.batch(8, 10, torch.Generator().manual_seed(0))
    want = torch.where((x[:, 1:] > 0) & (x[:, :-1] > 0), 1.0, -1.0)
    assert torch.equal(y[:, 1:], want)


def test_bad_tasks_give_clear_errors():
    gen = torch.Generator()
    wrong_shape = SampledTask(
        "bad", 1, 1, lambda b, t, g: (torch.ones(b, t, 2), torch.ones(b, t, 1))
    )
    with pytest.raises(ValueError, match=r"task 'bad' yielded inputs of shape \(4, 5, 2\)"):
        wrong_shape.batch(4, 5, gen)
    zeros = SampledTask("bits", 1, 1, lambda b, t, g: (torch.ones(b, t, 1), torch.zeros(b, t, 1)))
    with pytest.raises(ValueError, match="targets with value 0.0.*-1 or \\+1"):
        zeros.batch(4, 5, gen)
    not_tensor = SampledTask("np", 1, 1, lambda b, t, g: ([1], [1]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        not_tensor.batch(1, 1, gen)
    with pytest.raises(ValueError, match="p_one"):
        StepTask("p", 2, 1, lambda s, x: (s, x[:, :1]), p_one=(0.5,))
    with pytest.raises(ValueError, match="valid names are"):
        get_task("nope")


def test_a_non_task_is_named_with_its_article():
    with pytest.raises(TypeError, match="'sys:maxsize' is an int, not a sprig.bonsai.Task"):
        get_task("sys:maxsize")


@pytest.mark.parametrize("name", list(TASKS))
def test_task_machine_gives_the_task_targets(name):
    """The targets machine (from the task's step function) walks to the sampled targets."""
    from sprig.bonsai import task_machine

    task = get_task(name)
    machine = task_machine(task)
    assert machine is not None
    x, y = task.batch(64, 30, torch.Generator().manual_seed(1))
    sym = ((x > 0).long() * 2 ** torch.arange(task.in_features)).sum(-1)  # (B, T)
    want = ((y > 0).long() * 2 ** torch.arange(task.out_features)).sum(-1)
    for b in range(x.shape[0]):
        s = 0
        for t in range(x.shape[1]):
            a = int(sym[b, t])
            assert machine.outputs[s][a] == int(want[b, t]), (b, t)
            s = machine.transitions[s][a]


def test_task_machine_unknown_targets():
    from sprig.bonsai import task_machine

    # parentheses: ")" first goes below depth 0, an input the task never yields
    m = task_machine("parentheses")
    assert m.outputs[0] == (0, -1) and len(m.transitions) == 10  # depths 0..8 and the sink
    # no step function, or a counter without bound: the targets cannot be tabulated
    copy = SampledTask("copy", 1, 1, lambda b, t, g: (torch.ones(b, t, 1), torch.ones(b, t, 1)))
    assert task_machine(copy) is None
    count = StepTask("count", 1, 1, lambda s, x: (s + 1, torch.ones_like(x)), torch.zeros(1))
    assert task_machine(count, max_states=50) is None
