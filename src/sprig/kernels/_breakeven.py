"""Break-even table measured by ``benchmarks/bench_kernels.py`` (generated: do not
edit by hand; rerun the benchmark on the target machine instead).

Rows: (device, dtype, mode, size, batch, density, block).
CSR runs at densities <= density.
Measured on: torch 2.13.0+cpu; inference cells streaming from memory
with 1 thread(s);
training rows kept from an earlier run.
"""

TABLE: tuple[tuple[str, str, str, int, int, float, int], ...] = (
    ("cpu", "float32", "infer", 1024, 1, 0.5, 0),
    ("cpu", "float32", "infer", 1024, 32, 0.3, 0),
    ("cpu", "float32", "infer", 1024, 256, 0.2, 32),
    ("cpu", "float32", "infer", 4096, 1, 0.5, 0),
    ("cpu", "float32", "infer", 4096, 32, 0.3, 0),
    ("cpu", "float32", "infer", 4096, 256, 0.2, 32),
    ("cpu", "float32", "infer", 8192, 1, 0.3, 0),
    ("cpu", "float32", "infer", 8192, 32, 0.2, 0),
    ("cpu", "float32", "infer", 8192, 256, 0.2, 32),
    ("cpu", "float32", "train", 1024, 1, 0.0, 0),
    ("cpu", "float32", "train", 1024, 32, 0.0, 0),
    ("cpu", "float32", "train", 1024, 256, 0.01, 32),
    ("cpu", "float32", "train", 4096, 1, 0.0, 0),
    ("cpu", "float32", "train", 4096, 32, 0.0, 0),
    ("cpu", "float32", "train", 4096, 256, 0.05, 32),
)
