"""Convolution break-even table measured by ``benchmarks/bench_conv.py`` (generated: do
not edit by hand; rerun the benchmark on the target machine instead).

Rows: (device, dtype, channels, size, kernel, density).
The direct sparse convolution runs at densities <= density.
Measured on: 2.13.0+cpu, 1 threads.
"""

TABLE: tuple[tuple[str, str, int, int, int, float], ...] = (
    ("cpu", "float32", 64, 4, 3, 0.0),
    ("cpu", "float32", 64, 8, 3, 0.2),
    ("cpu", "float32", 64, 16, 3, 0.3),
    ("cpu", "float32", 64, 28, 3, 0.2),
    ("cpu", "float32", 64, 56, 3, 0.2),
    ("cpu", "float32", 128, 4, 3, 0.1),
    ("cpu", "float32", 128, 8, 3, 0.2),
    ("cpu", "float32", 128, 16, 3, 0.1),
    ("cpu", "float32", 128, 28, 3, 0.2),
    ("cpu", "float32", 128, 56, 3, 0.2),
    ("cpu", "float32", 256, 4, 3, 0.05),
    ("cpu", "float32", 256, 8, 3, 0.1),
    ("cpu", "float32", 256, 16, 3, 0.1),
    ("cpu", "float32", 256, 28, 3, 0.2),
    ("cpu", "float32", 256, 56, 3, 0.2),
    ("cpu", "float32", 512, 4, 3, 0.1),
    ("cpu", "float32", 512, 8, 3, 0.1),
    ("cpu", "float32", 512, 16, 3, 0.2),
    ("cpu", "float32", 512, 28, 3, 0.1),
    ("cpu", "float32", 512, 56, 3, 0.2),
    ("cpu", "float32", 64, 4, 1, 0.0),
    ("cpu", "float32", 64, 8, 1, 0.0),
    ("cpu", "float32", 64, 16, 1, 0.0),
    ("cpu", "float32", 64, 28, 1, 0.2),
    ("cpu", "float32", 64, 56, 1, 0.3),
    ("cpu", "float32", 128, 4, 1, 0.0),
    ("cpu", "float32", 128, 8, 1, 0.05),
    ("cpu", "float32", 128, 16, 1, 0.2),
    ("cpu", "float32", 128, 28, 1, 0.3),
    ("cpu", "float32", 128, 56, 1, 0.3),
    ("cpu", "float32", 256, 4, 1, 0.0),
    ("cpu", "float32", 256, 8, 1, 0.2),
    ("cpu", "float32", 256, 16, 1, 0.3),
    ("cpu", "float32", 256, 28, 1, 0.3),
    ("cpu", "float32", 256, 56, 1, 0.3),
    ("cpu", "float32", 512, 4, 1, 0.05),
    ("cpu", "float32", 512, 8, 1, 0.1),
    ("cpu", "float32", 512, 16, 1, 0.3),
    ("cpu", "float32", 512, 28, 1, 0.3),
    ("cpu", "float32", 512, 56, 1, 0.3),
)
