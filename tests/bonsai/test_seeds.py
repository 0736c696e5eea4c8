import pickle

import pytest
import torch

from sprig.bonsai import GrowConfig, get_task, grow_seeds


def _configs():
    return [GrowConfig(cells=[(1, 2)], steps=40, batch_size=16, seed=s) for s in (0, 1, 2)]


def test_forked_seeds_give_what_one_process_gives():
    """Seeds grown in forked processes (one torch thread each) are the runs grown here."""
    options = {"check_sequences": 50, "validation_sequences": 100}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the forked runs use one thread: compare like with like
    try:
        here = grow_seeds("delay-1", _configs(), jobs=1, **options)
    finally:
        torch.set_num_threads(threads)
    done = []
    forked = grow_seeds(
        "delay-1", _configs(), jobs=2, on_done=lambda c, r: done.append(c.seed), **options
    )
    assert sorted(done) == [0, 1, 2]
    for a, b in zip(here, forked):
        assert a.losses == b.losses and a.threshold == b.threshold
        assert a.graph.counts() == b.graph.counts() and a.score.accuracy == b.score.accuracy


def test_tasks_holding_closures_grow_forked():
    """delay-1's step is a local function, which cannot be pickled: the forked runs inherit
    the task instead of receiving it."""
    task = get_task("delay-1")
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(task)
    results = grow_seeds(task, _configs()[:2], jobs=2, check_sequences=50, validation_sequences=100)
    assert [r.task for r in results] == [task, task]
