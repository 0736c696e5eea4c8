"""Binary sequence tasks for bonsai networks: +-1 bits in, +-1 bits out, one per time step.

A task makes batches ``x (B, T, in)``, ``y (B, T, out)`` of +-1 values. Users define their own in
one of two ways, and every bonsai command works on them:

* :class:`StepTask`: inputs drawn independently (``P(+1) = p_one`` per input), targets from a
  vectorised step function over a hidden state, ``step(state (B, k), x_t (B, in)) ->
  (state (B, k), y_t (B, out))``. Most tasks are this.
* :class:`SampledTask`: any function ``sample(batch, length, generator) -> (x, y)``, for tasks
  whose inputs depend on the past (balanced parentheses).

A task with a step function (every :class:`StepTask`, a :class:`SampledTask` given one) also
gives the targets of inputs it did not sample (:func:`sprig.bonsai.task_machine`: the viewer's
edited inputs); the step marks an input the task never yields with a 0 target (unknown).

:meth:`Task.batch` checks what a task yields (shapes, +-1 values) and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .._checks import check_int
from .._registry import Registry
from .._words import a

StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
SampleFn = Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]


class Task:
    """Base of all tasks: ``name``, ``in_features``, ``out_features`` and :meth:`sample`."""

    name: str
    in_features: int
    out_features: int
    #: ``step(state (B, k), x_t (B, in)) -> (state (B, k), y_t (B, out))`` from
    #: ``initial_state``, when the task has one: its targets for any input (0: unknown)
    step: StepFn | None = None
    initial_state: Tensor = torch.zeros(0)

    def sample(self, batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def batch(self, batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A checked batch: ``x (batch, length, in_features)``, ``y (batch, length,
        out_features)``, float32, every value +-1."""
        x, y = self.sample(batch, length, generator)
        for what, t, width in (("inputs", x, self.in_features), ("targets", y, self.out_features)):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"task {self.name!r} yielded {what} of type {type(t).__name__}, "
                    "expected a torch.Tensor"
                )
            if tuple(t.shape) != (batch, length, width):
                raise ValueError(
                    f"task {self.name!r} yielded {what} of shape {tuple(t.shape)}, expected "
                    f"(batch, length, {width}) = {(batch, length, width)}"
                )
            bad = (t != 1) & (t != -1)
            if bool(bad.any()):
                value = t[bad].flatten()[0].item()
                raise ValueError(
                    f"task {self.name!r} yielded {what} with value {value!r}; every value must "
                    "be -1 or +1 (map 0/1 bits with 2 * bit - 1)"
                )
        return x.float(), y.float()


def _check_widths(name: str, in_features: int, out_features: int) -> None:
    for what, v in (("in_features", in_features), ("out_features", out_features)):
        check_int(v, f"task {name!r}: {what}", 1)


@dataclass
class StepTask(Task):
    """A task defined by a step function over a hidden state.

    Args:
        name: the task's name.
        in_features: input bits per step.
        out_features: output bits per step.
        step: ``step(state (B, k), x_t (B, in)) -> (state (B, k), y_t (B, out))``.
        initial_state: the state before the first step, ``(k,)``.
        p_one: P(input = +1), one for all inputs or one per input.

    Example (y[n] = NOT x[n]):
        >>> task = StepTask("not", 1, 1, lambda s, x: (s, -x), torch.zeros(0))
        >>> x, y = task.batch(2, 3, torch.Generator().manual_seed(0))
        >>> bool((y == -x).all())
        True
    """

    name: str
    in_features: int
    out_features: int
    step: StepFn
    initial_state: Tensor = field(default_factory=lambda: torch.zeros(0))
    p_one: float | Sequence[float] = 0.5

    def __post_init__(self) -> None:
        _check_widths(self.name, self.in_features, self.out_features)
        p = [self.p_one] * self.in_features if isinstance(self.p_one, (int, float)) else self.p_one
        if len(p) != self.in_features or not all(0.0 <= float(v) <= 1.0 for v in p):
            raise ValueError(
                f"task {self.name!r}: p_one must be one probability in [0, 1] or one per input "
                f"({self.in_features}), got {self.p_one!r}"
            )
        self._p = torch.tensor([float(v) for v in p])

    def sample(self, batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        u = torch.rand(batch, length, self.in_features, generator=generator)
        x = torch.where(u < self._p, 1.0, -1.0)
        state = self.initial_state.float().expand(batch, -1).clone()
        ys = []
        for x_t in x.unbind(1):
            state, y_t = self.step(state, x_t)
            ys.append(y_t)
        return x, torch.stack(ys, dim=1)


@dataclass
class SampledTask(Task):
    """A task defined by a function that makes whole batches.

    Args:
        name: the task's name.
        in_features: input bits per step.
        out_features: output bits per step.
        sample_fn: ``sample_fn(batch, length, generator) -> (x (B, T, in), y (B, T, out))``.
        step: optional, as :class:`StepTask`'s: the targets of any input, for the viewer
            (without it an edited input's targets are unknown); a 0 in ``y_t`` marks an input
            the sampler never yields (target unknown).
        initial_state: the step's state before the first step, ``(k,)``.

    Example (y[n] = x[n]):
        >>> def copy(b, t, g):
        ...     x = torch.randint(0, 2, (b, t, 1), generator=g) * 2.0 - 1
        ...     return x, x.clone()
        >>> x, y = SampledTask("copy", 1, 1, copy).batch(4, 5, torch.Generator())
        >>> tuple(y.shape)
        (4, 5, 1)
    """

    name: str
    in_features: int
    out_features: int
    sample_fn: SampleFn
    step: StepFn | None = None
    initial_state: Tensor = field(default_factory=lambda: torch.zeros(0))

    def __post_init__(self) -> None:
        _check_widths(self.name, self.in_features, self.out_features)

    def sample(self, batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.sample_fn(batch, length, generator)


def _sign(b: Tensor) -> Tensor:
    return torch.where(b, 1.0, -1.0)


def delay(k: int) -> StepTask:
    """y[n] = x[n - k] (bits before the sequence count as -1)."""

    def step(state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        # state: the last k inputs, oldest first
        return torch.cat([state[:, 1:], x], dim=1), state[:, :1]

    return StepTask(f"delay-{k}", 1, 1, step, -torch.ones(k))


def loop() -> StepTask:
    """The loop -1, -1, +1, -1, -1, +1, ... whatever the input."""

    def step(state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return (state + 1) % 3, _sign(state == 2)

    return StepTask("loop", 1, 1, step, torch.zeros(1))


def one_to_111() -> StepTask:
    """An input +1 forces output +1 for that step and the next two (replace 1 -> 111)."""

    def step(left: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        one = x > 0
        y = _sign(one | (left > 0))
        return torch.where(one, 2.0, (left - 1).clamp(min=0)), y

    return StepTask("1to111", 1, 1, step, torch.zeros(1))


_GATES = (  # XOR -> AND -> NOR -> NAND, on booleans a, b
    lambda a, b: a ^ b,
    lambda a, b: a & b,
    lambda a, b: ~(a | b),
    lambda a, b: ~(a & b),
)


def switcher() -> StepTask:
    """Inputs [change_mode (P(+1) = 0.3), a, b]; the gate cycles XOR -> AND -> NOR -> NAND from
    XOR, a change applies before the output; y = gate(a, b)."""

    def step(mode: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        mode = (mode + (x[:, :1] > 0).float()) % 4
        a, b = x[:, 1:2] > 0, x[:, 2:3] > 0
        out = torch.zeros_like(a)
        for i, gate in enumerate(_GATES):
            out = torch.where(mode == i, gate(a, b), out)
        return mode, _sign(out)

    return StepTask("switcher", 3, 1, step, torch.zeros(1), p_one=(0.3, 0.5, 0.5))


def parentheses(max_depth: int = 8) -> SampledTask:
    """'(' = -1, ')' = +1, always valid (never below depth 0, at most ``max_depth``); the output
    is +1 iff the depth is 0 after the character."""

    def step(depth: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        # depth (B, 1); -1 is a sink for inputs the sampler never yields (target unknown)
        new = depth + torch.where(x > 0, -1.0, 1.0)
        new = torch.where((depth < 0) | (new < 0) | (new > max_depth), -1.0, new)
        return new, torch.where(new < 0, 0.0, _sign(new == 0))

    def sample(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        coin = torch.rand(batch, length, generator=generator) < 0.5
        depth = torch.zeros(batch, 1)
        xs, ys = [], []
        for t in range(length):
            d = depth[:, 0]
            close = torch.where(d == 0, False, torch.where(d == max_depth, True, coin[:, t]))
            x_t = _sign(close)[:, None]
            depth, y_t = step(depth, x_t)
            xs.append(x_t)
            ys.append(y_t)
        return torch.stack(xs, 1), torch.stack(ys, 1)

    return SampledTask("parentheses", 1, 1, sample, step, torch.zeros(1))


TASKS: Registry[Callable[[], Task]] = Registry("bonsai task")
TASKS.add("delay-1", lambda: delay(1))
TASKS.add("delay-2", lambda: delay(2))
TASKS.add("loop", loop)
TASKS.add("parentheses", parentheses)
TASKS.add("1to111", one_to_111)
TASKS.add("switcher", switcher)


def get_task(task: str | Task) -> Task:
    """A task from its registry name (``"delay-2"``, ``"1to111"``...), from ``"module:name"``
    (a :class:`Task`, or a function returning one, in an importable module: how the CLI runs
    users' own tasks), or the task itself.

    Example:
        >>> get_task("sprig.bonsai._tasks:loop").name
        'loop'
    """
    if isinstance(task, Task):
        return task
    if ":" in task and task not in TASKS:
        import importlib

        module_name, _, attr = task.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"cannot load task {task!r} ({err}); give MODULE:NAME of a Task in an importable "
                "module (run from its folder or set PYTHONPATH)"
            ) from None
        made = obj if isinstance(obj, Task) else obj() if callable(obj) else obj
        if not isinstance(made, Task):
            raise TypeError(f"{task!r} is {a(type(made).__name__)}, not a sprig.bonsai.Task")
        return made
    return TASKS.get(task)()
