"""Pictures (matplotlib, headless). The outer ring: the library core never imports this."""

import matplotlib

matplotlib.use("Agg")

__all__: list[str] = []
