"""run_parts: the serial fallback is for a missing threading layer, not for kernel errors."""

import numpy as np
import pytest
import torch

from sprig.kernels import _threads


def _failing(_bounds):
    raise ValueError("boom")


def test_missing_threading_layer_falls_back_to_one_thread(monkeypatch):
    monkeypatch.setattr(_threads, "_parallel_ok", True)
    monkeypatch.setattr(_threads, "_layer_loaded", lambda: False)
    ran = []
    _threads.run_parts(_failing, lambda: ran.append("serial"), np.arange(3))
    assert ran == ["serial"] and _threads._parallel_ok is False
    _threads.run_parts(lambda b: ran.append("parallel"), lambda: ran.append("serial"), [0, 1, 2])
    assert ran == ["serial", "serial"]  # stays on one thread


def test_kernel_errors_propagate(monkeypatch):
    monkeypatch.setattr(_threads, "_parallel_ok", True)
    monkeypatch.setattr(_threads, "_layer_loaded", lambda: True)
    with pytest.raises(ValueError, match="boom"):
        _threads.run_parts(_failing, lambda: None, np.arange(3))
    assert _threads._parallel_ok is True


def _load(monkeypatch, per_core: float) -> None:
    cores = _threads._cores()
    monkeypatch.setattr(_threads, "BUSY_LOAD_PER_CORE", 1.0)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (per_core * cores, 0.0, 0.0))
    monkeypatch.setattr(_threads, "_busy", (-1e9, False))  # look again


def test_busy_machine_runs_parts_on_one_thread(monkeypatch):
    # a thread team on taken cores waits for its descheduled thread (7 ms for a 0.1 ms product)
    monkeypatch.setattr(_threads, "_parallel_ok", True)
    ran = []
    _load(monkeypatch, 1.5)
    assert _threads.machine_busy()
    _threads.run_parts(lambda b: ran.append("parallel"), lambda: ran.append("serial"), [0, 1, 2])
    _load(monkeypatch, 0.2)
    assert not _threads.machine_busy()
    _threads.run_parts(lambda b: ran.append("parallel"), lambda: ran.append("serial"), [0, 1, 2])
    assert ran == ["serial", "parallel"]


def test_one_thread_if_busy_restores_the_thread_count(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _load(monkeypatch, 1.5)
        with _threads.one_thread_if_busy():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        _load(monkeypatch, 0.2)
        with _threads.one_thread_if_busy():
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
