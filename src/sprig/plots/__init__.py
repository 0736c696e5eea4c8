"""Pictures (matplotlib, headless). The outer ring: the library core never imports this.

Each function draws one picture from a model or a run's metrics, writes it atomically and
returns the path it wrote.
"""

import matplotlib

matplotlib.use("Agg")

from ._boundary import plot_decision_boundary  # noqa: E402
from ._curves import plot_loss_curves, plot_training_curves, read_metrics  # noqa: E402
from ._density import plot_accuracy_vs_density  # noqa: E402
from ._masks import plot_masks, plot_nnz  # noqa: E402
from ._topology import alive_units, plot_topology  # noqa: E402

__all__ = [
    "alive_units",
    "plot_accuracy_vs_density",
    "plot_decision_boundary",
    "plot_loss_curves",
    "plot_masks",
    "plot_nnz",
    "plot_topology",
    "plot_training_curves",
    "read_metrics",
]
