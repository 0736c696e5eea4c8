"""Saving and loading: safetensors + JSON, atomic writes, never pickle."""

from .._formats import MODEL_FORMAT_VERSION as FORMAT_VERSION  # this package's files
from ._atomic import atomic_path, write_atomic, write_text_atomic
from ._checkpoint import (
    CheckpointInfo,
    Stateful,
    checkpoint_info,
    load_checkpoint,
    save_checkpoint,
)
from ._model import (
    SprigFileError,
    file_summary,
    load,
    load_state,
    load_state_dict,
    manifest_for,
    read_file,
    save,
)

__all__ = [
    "FORMAT_VERSION",
    "CheckpointInfo",
    "SprigFileError",
    "Stateful",
    "atomic_path",
    "checkpoint_info",
    "file_summary",
    "load",
    "load_checkpoint",
    "load_state",
    "load_state_dict",
    "manifest_for",
    "read_file",
    "save",
    "save_checkpoint",
    "write_atomic",
    "write_text_atomic",
]
