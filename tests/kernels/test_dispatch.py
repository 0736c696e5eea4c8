"""The dispatcher: measured table, neighbours, overrides."""

import pytest
import torch

from sprig.kernels import (
    BreakEven,
    ConvBreakEven,
    Plan,
    choose,
    choose_conv,
    conv_dispatch_table,
    dispatch_table,
    get_conv_dispatch_table,
    get_dispatch_table,
)
from sprig.kernels._dispatch import _CONV_DEFAULT, _DEFAULT

F32 = torch.float32
TABLE = [
    BreakEven("cpu", "float32", "infer", 1024, 1, 0.2),
    BreakEven("cpu", "float32", "infer", 1024, 256, 0.05, block=32),
    BreakEven("cpu", "float32", "infer", 4096, 1, 0.3),
    BreakEven("cpu", "float32", "infer", 4096, 256, 0.1, block=32),
]


def test_measured_cells_and_neighbours():
    with dispatch_table(TABLE):
        assert choose(0.2, (1024, 1024), 1, F32, "cpu") == Plan("csr", 0)
        assert choose(0.21, (1024, 1024), 1, F32, "cpu") == Plan("dense")
        # a mask built at 0.2 holds round(0.2 * n) weights, a hair above 0.2: still measured
        n = 1024 * 1027  # 0.2 * n = 210329.6
        assert round(0.2 * n) / n > 0.2
        assert choose(round(0.2 * n) / n, (1024, 1027), 1, F32, "cpu").kernel == "csr"
        assert choose((round(0.2 * n) + 2) / n, (1024, 1027), 1, F32, "cpu").kernel == "dense"
        assert choose(0.05, (1024, 1024), 256, F32, "cpu") == Plan("csr", 32)
        # between measured batches and sizes, the stricter neighbour decides
        assert choose(0.1, (1024, 1024), 16, F32, "cpu").kernel == "dense"
        assert choose(0.04, (1024, 1024), 16, F32, "cpu").kernel == "csr"
        assert choose(0.25, (2048, 2048), 1, F32, "cpu").kernel == "dense"
        assert choose(0.15, (2048, 2048), 1, F32, "cpu").kernel == "csr"
        # beyond the measured range: the edge cells
        assert choose(0.25, (16384, 16384), 1, F32, "cpu").kernel == "csr"
        assert choose(0.01, (512, 512), 1, F32, "cpu").kernel == "dense"  # below measured


def test_unmeasured_means_dense_and_overrides():
    with dispatch_table(TABLE):
        assert choose(0.01, (1024, 1024), 1, torch.float64, "cpu").kernel == "dense"
        assert choose(0.01, (1024, 1024), 1, F32, "cuda").kernel == "dense"
        assert choose(0.01, (1024, 1024), 1, F32, "cpu", mode="train").kernel == "dense"
        assert choose(0.9, (1024, 1024), 1, F32, "cpu", backend="csr").kernel == "csr"
        assert choose(0.01, (1024, 1024), 1, F32, "cpu", backend="dense").kernel == "dense"
        assert choose(0.01, (1024, 1024), 300, F32, "cpu", block=64) == Plan("csr", 64)
    with dispatch_table([]):
        assert choose(0.001, (4096, 4096), 1, F32, "cpu").kernel == "dense"
    assert get_dispatch_table() == _DEFAULT


def test_bad_names():
    with pytest.raises(ValueError, match="backend must be one of auto, dense, csr"):
        choose(0.1, (4, 4), 1, F32, "cpu", backend="fast")
    with pytest.raises(ValueError, match="mode must be one of"):
        BreakEven("cpu", "float32", "eval", 4, 1, 0.1)


def test_shipped_table_is_measured():
    """The package ships the table the benchmark wrote: CPU float32 rows for both modes."""
    modes = {(r.mode, r.dtype, r.device) for r in _DEFAULT}
    assert {("infer", "float32", "cpu"), ("train", "float32", "cpu")} <= modes
    assert all(0.0 <= r.density <= 1.0 for r in _DEFAULT)


CONV = [
    ConvBreakEven("cpu", "float32", 64, 8, 3, 0.2),
    ConvBreakEven("cpu", "float32", 64, 32, 3, 0.3),
    ConvBreakEven("cpu", "float32", 256, 8, 3, 0.1),
    ConvBreakEven("cpu", "float32", 256, 32, 3, 0.2),
    ConvBreakEven("cpu", "float32", 64, 8, 1, 0.05),
]


def test_conv_cells_neighbours_and_kernels():
    with conv_dispatch_table(CONV):
        assert choose_conv(0.2, (64, 64), 64, 9, F32, "cpu") == Plan("csr")
        assert choose_conv(0.21, (64, 64), 64, 9, F32, "cpu") == Plan("dense")
        assert choose_conv(0.3, (64, 64), 32 * 32, 9, F32, "cpu").kernel == "csr"
        # between measured sizes and channels, the stricter neighbour decides
        assert choose_conv(0.25, (64, 64), 16 * 16, 9, F32, "cpu").kernel == "dense"
        assert choose_conv(0.25, (128, 128), 32 * 32, 9, F32, "cpu").kernel == "dense"
        assert choose_conv(0.2, (128, 128), 32 * 32, 9, F32, "cpu").kernel == "csr"
        # the nearest measured kernel: 1x1 cells for 1x1, 3x3 cells for 7x7
        assert choose_conv(0.1, (64, 64), 64, 1, F32, "cpu").kernel == "dense"
        assert choose_conv(0.05, (64, 64), 64, 1, F32, "cpu").kernel == "csr"
        assert choose_conv(0.2, (64, 64), 64, 49, F32, "cpu").kernel == "csr"
        # fewer channels than measured: dense; more: the edge cells
        assert choose_conv(0.01, (3, 64), 64, 49, F32, "cpu").kernel == "dense"
        assert choose_conv(0.1, (512, 512), 8 * 8, 9, F32, "cpu").kernel == "csr"
        # unmeasured dtype or device: dense; forced backends
        assert choose_conv(0.01, (64, 64), 64, 9, torch.float64, "cpu").kernel == "dense"
        assert choose_conv(0.01, (64, 64), 64, 9, F32, "cuda").kernel == "dense"
        assert choose_conv(0.9, (64, 64), 64, 9, F32, "cpu", backend="csr").kernel == "csr"
        assert choose_conv(0.01, (64, 64), 64, 9, F32, "cpu", backend="dense").kernel == "dense"
    with conv_dispatch_table([]):
        assert choose_conv(0.001, (256, 256), 64, 9, F32, "cpu").kernel == "dense"
    assert get_conv_dispatch_table() == _CONV_DEFAULT
    with pytest.raises(ValueError, match="break-even density must be in"):
        ConvBreakEven("cpu", "float32", 64, 8, 3, 1.5)
