"""Repository-level pytest set-up: sprig.keras's doctests need the optional Keras extra."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("keras") else ["src/sprig/keras"]
