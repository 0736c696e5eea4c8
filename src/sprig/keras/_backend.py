"""Keras backend selection: sprig's Keras layer runs on Keras's torch backend.

Keras 3 picks its backend once, when ``keras`` is first imported, from ``KERAS_BACKEND`` (or
``~/.keras/keras.json``). Importing :mod:`sprig.keras` before ``keras`` selects torch; importing
it after ``keras`` started on another backend cannot switch it, so the layer refuses to be built
there with an error that says what to do.
"""

from __future__ import annotations

import importlib.util
import os
import sys

BACKEND = "torch"


def select_torch_backend() -> None:
    """Ask Keras for the torch backend if keras is not imported yet and none was chosen.

    An explicit ``KERAS_BACKEND`` set by the user is left alone (and checked later by
    :func:`require_torch_backend`).
    """
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", BACKEND)


def check_keras() -> None:
    """Import keras, or raise ImportError saying how to install Keras 3."""
    if importlib.util.find_spec("keras") is None:
        raise ImportError(
            "sprig.keras needs Keras 3, which is not installed: pip install 'sprig[keras]'"
        )
    try:
        import keras
    except (ImportError, ValueError) as err:
        # keras is there, but the backend it was told to load is not (e.g. jax, tensorflow)
        raise ImportError(
            f"keras could not load its {os.environ.get('KERAS_BACKEND')!r} backend ({err}); "
            "sprig.keras runs on the torch backend: set KERAS_BACKEND=torch or unset it"
        ) from err
    major = int(str(keras.__version__).split(".")[0])
    if major != 3:
        raise ImportError(
            f"sprig.keras needs Keras 3, found keras {keras.__version__}: "
            "pip install 'sprig[keras]' (keras>=3,<4)"
        )


def require_torch_backend(feature: str) -> None:
    """Raise RuntimeError naming ``feature`` unless Keras runs on the torch backend."""
    import keras

    active = keras.backend.backend()
    if active != BACKEND:
        raise RuntimeError(
            f"{feature} needs Keras's torch backend, but Keras runs on {active!r}: its sparse "
            "kernels (sprig.kernels) and sparse inputs are torch tensors. Set "
            "KERAS_BACKEND=torch before keras is first imported (or import sprig.keras before "
            "keras) and start a new Python process."
        )
