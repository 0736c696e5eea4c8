"""Saving and loading: safetensors + JSON, atomic writes, never pickle."""

from ._atomic import atomic_path, write_atomic, write_text_atomic
from ._model import (
    FORMAT_VERSION,
    SprigFileError,
    load,
    load_state,
    load_state_dict,
    manifest_for,
    read_file,
    save,
)

__all__ = [
    "FORMAT_VERSION",
    "SprigFileError",
    "atomic_path",
    "load",
    "load_state",
    "load_state_dict",
    "manifest_for",
    "read_file",
    "save",
    "write_atomic",
    "write_text_atomic",
]
