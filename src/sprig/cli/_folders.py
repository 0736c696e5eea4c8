"""Output folders of the CLI commands that write one (demo, bonsai, lottery, sparse-vs-dense).

A folder is checked before any work starts: not a file, new or empty, writable. One the
command created is removed again when the command fails before writing into it.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path


class UsageError(ValueError):
    """The command line itself is wrong (exit code 2): a bad option value, found before any
    work is done."""


_created: list[Path] = []


def output_folder(out: Path | None, name: str) -> Path:
    """``out``, or ``runs/<name>-<time>``, created and checked to be usable.

    Raises:
        UsageError: naming ``--out`` when it is a file or a folder with files in it.
        ValueError: naming ``--out`` when it is not writable.
    """
    folder = out if out is not None else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty; choose another --out")
    new = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if new:
            _created.append(folder)
        with tempfile.TemporaryFile(dir=folder):
            pass  # os.access says yes to root on a read-only mount; a real file does not
    except OSError as err:
        remove_empty_outputs()
        raise ValueError(f"cannot write to --out {folder}: {err.strerror or err}") from None
    return folder


def remove_empty_outputs() -> None:
    """Remove the folders :func:`output_folder` created that are still empty (a failed run)."""
    for folder in reversed(_created):
        with contextlib.suppress(OSError):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    _created.clear()
