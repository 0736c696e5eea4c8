"""run_parts: the serial fallback is for a missing threading layer, not for kernel errors."""

import numpy as np
import pytest

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
