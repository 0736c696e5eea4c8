"""Pictures (matplotlib, headless). The outer ring: the library core never imports this."""

import matplotlib

matplotlib.use("Agg")

from ._density import plot_accuracy_vs_density  # noqa: E402

__all__: list[str] = ["plot_accuracy_vs_density"]
