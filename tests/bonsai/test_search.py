import pytest

from sprig.bonsai import (
    GrowConfig,
    SearchConfig,
    StepTask,
    extract_fsm,
    grow,
    grow_bonsai,
)

# y = NOT x: learnt by the smallest size within a few hundred steps
NOT = StepTask("not", 1, 1, lambda s, x: (s, -x))
FAST = {"check_sequences": 200, "validation_sequences": 500}


def test_search_finds_the_smallest_size_and_lists_its_runs():
    seen = []
    r = grow_bonsai(
        NOT,
        search=SearchConfig(sizes=[[(1, 1)], [(2, 2)]], budget_s=120),
        on_progress=seen.append,
        **FAST,
    )
    assert r.score.perfect and r.score.sequences == 500
    assert [a.cells for a in r.attempts] == [((1, 1),)]  # the first size was perfect: stop
    a = r.attempts[0]
    assert a.perfect and a.length == 40 and a.steps < 3000  # early stop at the last length
    # the curriculum went through every length, in order
    lengths = [p.check.length for p in seen]
    assert lengths == sorted(lengths) and set(lengths) == {4, 8, 16, 40}
    assert extract_fsm(r.graph).num_states == 1


def test_search_tries_seeds_then_larger_sizes():
    # a recipe of 1 step learns nothing: every seed of every size is tried, none perfect
    # (not NOT: an untrained cell computes it for half the seeds)
    search = SearchConfig(
        sizes=[[(1, 1)], [(2, 1)]],
        seeds=2,
        seed=5,
        budget_s=None,
        recipe={"steps": 1, "batch_size": 8, "finetune_steps": 0},
    )
    r = grow_bonsai("delay-1", search=search, check_sequences=20, validation_sequences=20)
    assert [(a.cells, a.seed) for a in r.attempts] == [
        (((1, 1),), 5),
        (((1, 1),), 6),
        (((2, 1),), 5),
        (((2, 1),), 6),
    ]
    assert not r.score.perfect
    assert r.score.accuracy == max(a.accuracy for a in r.attempts)  # the most accurate run


def test_a_budget_too_small_raises():
    with pytest.raises(ValueError, match=r"budget_s=0.001 s is too small to try one size"):
        grow_bonsai(NOT, search=SearchConfig(budget_s=0.001), **FAST)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seeds": 0}, "seeds must be a positive int"),
        ({"budget_s": 0}, "budget_s must be > 0"),
        ({"sizes": []}, "at least one"),
        ({"recipe": {"cells": [(1, 1)]}}, "must not set 'cells'"),
        ({"sizes": [[(0, 1)]]}, "cells must be"),
    ],
)
def test_bad_search_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchConfig(**kwargs)


def test_config_and_search_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        grow_bonsai(NOT, GrowConfig(steps=1), search=SearchConfig())


def test_curriculum_needs_checks_and_stops_when_stalled():
    with pytest.raises(ValueError, match="check_every"):
        GrowConfig(curriculum=(4,))
    # lr 1e-6 learns nothing: patience ends the run long before its 2,000 steps
    cfg = GrowConfig(cells=[(1, 1)], lr=1e-6, steps=2000, batch_size=16, check_every=10, patience=3)
    _, losses = grow(NOT, cfg)
    assert len(losses) <= 100


def test_deadline_stops_training():
    import time

    _, losses = grow(NOT, GrowConfig(cells=[(1, 1)], steps=1000), deadline=time.perf_counter())
    assert losses == []
