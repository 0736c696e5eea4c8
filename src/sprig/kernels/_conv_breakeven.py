"""Convolution break-even table measured by ``benchmarks/bench_conv.py`` (generated: do not
edit by hand; rerun the benchmark on the target machine instead).

Rows: (device, dtype, channels, size, kernel, density).
The direct sparse convolution runs at densities <= density.
Not measured yet.
"""

TABLE: tuple[tuple[str, str, int, int, int, float], ...] = ()
