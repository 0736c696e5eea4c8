import importlib.util
import sys
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).parents[2] / "examples" / "rigl_moons.py"


@pytest.mark.slow
def test_rigl_moons_runs_and_strips():
    spec = importlib.util.spec_from_file_location("rigl_moons", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    report = mod.main(seeds=2, steps=60, densities=mod.ARTICLE_DENSITIES)
    assert set(report.accuracy) == {"static", "rigl", "set"}
    assert all(0.0 <= a <= 1.0 for accs in report.accuracy.values() for a in accs)
    assert len(report.stripped) == 2
    for res in report.stripped:
        assert res.sizes_before == (2, 16, 16, 1)
        assert res.sizes_after[0] == 2 and res.sizes_after[-1] == 1
        assert res.params_after < res.params_before
