"""Break-even table measured by ``benchmarks/bench_kernels.py`` (generated: do not edit by hand).

Rows: (device, dtype, mode, size, batch, density, block). CSR runs at densities <= density.
"""

TABLE: tuple[tuple[str, str, str, int, int, float, int], ...] = ()
