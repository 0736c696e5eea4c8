"""torch.compile runs sprig layers quietly: no Dynamo warnings about sprig's caches, graph
breaks on its checks or recompilations, and the same outputs."""

import logging
import warnings

import pytest
import torch

import sprig


@pytest.fixture
def dynamo():
    """Dynamo's caches cleared before and after: no compiled frame of another test is reused,
    and none is left for later tests."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("compressed", [False, True], ids=["masked", "compressed"])
def test_torch_compile_is_quiet_and_equal(compressed, caplog, dynamo):
    torch.manual_seed(0)
    model = sprig.nn.SparseMLP([16, 32, 4], densities=0.3)
    if compressed:
        model = sprig.compress(model)
    compiled = torch.compile(model, backend="eager")  # Dynamo's tracing without inductor
    x = torch.randn(8, 16)
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        out = compiled(x)  # with gradients: the training path
        with torch.no_grad():
            for batch in (8, 1, 3):  # several shapes: cached plans, no recompile storms
                assert torch.allclose(compiled(x[:batch]), model(x[:batch]), atol=1e-5)
    assert torch.allclose(out, model(x), atol=1e-5)
    out.sum().backward()
    assert [str(w.message)[:80] for w in seen] == []
    dynamo = [r.getMessage()[:120] for r in caplog.records if r.name.startswith("torch")]
    assert dynamo == []
