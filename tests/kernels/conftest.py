import pytest

from sprig.kernels import _threads


@pytest.fixture(autouse=True)
def _threads_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel tests exercise the threaded paths; on a loaded CI runner machine_busy() would
    # quietly send them all to the serial loops (tests that want the check set it back)
    monkeypatch.setattr(_threads, "BUSY_LOAD_PER_CORE", float("inf"))
    monkeypatch.setattr(_threads, "_busy", (-1e9, False))
