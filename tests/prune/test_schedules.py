import pytest
import torch
from torch import nn

import sprig
from sprig.data import course_task
from sprig.prune import GradualPruning, MagnitudePruner, OneShot, Polynomial, RandomPruner
from sprig.training import TrainConfig, train_classifier


def zhu_gupta_sparsity(t, s_i, s_f, t0, n, dt):
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


def test_polynomial_follows_the_paper_formula_in_density():
    s_i, s_f, t0, n, dt = 0.0, 0.9, 20, 8, 5
    sched = Polynomial(
        final_density=1 - s_f, initial_density=1 - s_i, start=t0, end=t0 + n * dt, every=dt
    )
    for t in range(0, 100):
        d = sched.density_at(t)
        if t0 <= t <= t0 + n * dt and (t - t0) % dt == 0:
            assert d == pytest.approx(1 - zhu_gupta_sparsity(t, s_i, s_f, t0, n, dt), abs=1e-12)
        else:
            assert d is None
    assert sched.target(0) == 1.0 and sched.target(10_000) == pytest.approx(0.1)
    # starting from an already-sparse network
    half = Polynomial(final_density=0.05, initial_density=0.5, start=0, end=10, every=1)
    assert half.density_at(0) == 0.5 and half.density_at(10) == pytest.approx(0.05)


def test_bad_schedules():
    with pytest.raises(ValueError, match=r"end \(10\) must be after its start \(50\)"):
        Polynomial(final_density=0.1, start=50, end=10)
    with pytest.raises(ValueError, match="must be a multiple of every"):
        Polynomial(final_density=0.1, start=0, end=95, every=10)
    with pytest.raises(ValueError, match="sparsity 0.9 is density 0.1"):
        Polynomial(final_density=0.0, start=0, end=10, every=1)
    with pytest.raises(ValueError, match="above initial_density"):
        Polynomial(final_density=0.8, initial_density=0.5, start=0, end=10, every=1)
    with pytest.raises(ValueError, match="at must be"):
        OneShot(0.5, at=-1)
    with pytest.raises(TypeError, match="Schedule"):
        GradualPruning(0.5)  # type: ignore[arg-type]


def test_gradual_pruning_in_training_loop_hits_every_target():
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    sched = Polynomial(final_density=0.1, start=10, end=50, every=10)
    cb = GradualPruning(sched)
    hist = train_classifier(
        net, course_task(n_train=512, n_test=256), TrainConfig(steps=60, lr=1e-2), callbacks=[cb]
    )
    steps = [s for s, _ in cb.history]
    assert steps == [10, 20, 30, 40, 50]
    for s, d in cb.history:
        # layer scope: every layer exactly round(d_t * numel), so the total is within rounding
        assert d == pytest.approx(sched.density_at(s), abs=1e-2)
    assert sprig.density(net) == pytest.approx(0.1, abs=1e-3)
    assert hist.final_accuracy > 0.8
    for row in sprig.masks.masked_parameters(net):
        assert bool((row.param[~row.mask] == 0).all())


def test_state_dict_resumes():
    sched = Polynomial(final_density=0.2, start=2, end=8, every=2)
    net = nn.Linear(10, 10)
    a = GradualPruning(sched, RandomPruner(), seed=1)
    for _ in range(4):
        a.step(net)
    state = a.state_dict()
    assert state["step"] == 4 and state["schedule"]["kind"] == "Polynomial"
    b = GradualPruning(sched, RandomPruner(), seed=1)
    b.load_state_dict(state)
    net_b = nn.Linear(10, 10)
    sprig.load_state_dict(net_b, net.state_dict())
    for _ in range(6):
        a.step(net)
        b.step(net_b)
    assert a.history == b.history
    assert torch.equal(net.weight_mask, net_b.weight_mask)
    assert int(net.weight_mask.sum()) == 20
    with pytest.raises(ValueError, match="OneShot"):
        GradualPruning(sched).load_state_dict({"step": 1, "schedule": {"kind": "OneShot"}})
    with pytest.raises(ValueError, match="'step'"):
        GradualPruning(sched).load_state_dict({})


def test_one_shot_in_loop():
    net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    cb = GradualPruning(OneShot(0.25, at=5), MagnitudePruner(scope="global"))
    train_classifier(net, course_task(n_train=256, n_test=64), TrainConfig(steps=8), callbacks=[cb])
    assert cb.history[0][0] == 5
    assert sprig.summary(net).nnz == round(0.25 * (20 * 32 + 32 * 2))


def test_one_shot_at_step_zero_prunes_at_the_first_call():
    # GradualPruning counts steps from 1, so OneShot's default at=0 never fired
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    cb = GradualPruning(OneShot(density=0.1))
    for _ in range(5):
        cb.step(net)
    assert sprig.density(net) == pytest.approx(0.1, abs=0.005)
    assert [step for step, _ in cb.history] == [1]
