import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _compiled_kernels() -> None:
    # Calls made before numba's warm-up ends run on PyTorch's kernels (sprig.kernels._warm):
    # wait once, so that every test runs the kernels it means to (tests/kernels/test_warm.py
    # covers the warm-up itself)
    import sprig.kernels

    sprig.kernels.wait_compiled()
