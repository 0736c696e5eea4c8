"""A run folder on disk: its layout, its status file, its metrics and its checkpoints.

::

    RUN/
      config.toml          the experiment's config (a copy of the file it was started with)
      run.json             status: format, config fingerprint, step, final metrics
      metrics.jsonl        one JSON record per step (loss, lr; accuracies at evaluations)
      model.safetensors    the final model (sprig.save), once the run has finished
      checkpoints/step-00000100.safetensors ...
      plots/*.png
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO, Any

from .._formats import RUN_FORMAT_VERSION
from ..io import write_text_atomic

FORMAT = "sprig.run"
_CKPT = re.compile(r"^step-(\d+)\.safetensors$")


class RunError(RuntimeError):
    """A run that cannot start or continue: a taken or unwritable folder, a foreign one."""


class RunFolder:
    """Paths and bookkeeping of one run folder (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.status_file = self.path / "run.json"
        self.metrics = self.path / "metrics.jsonl"
        self.model = self.path / "model.safetensors"
        self.checkpoints = self.path / "checkpoints"
        self.plots = self.path / "plots"

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> RunFolder:
        """Make a new, empty run folder; never reuses a folder that holds anything."""
        folder = cls(path)
        p = folder.path
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise RunError(
                f"{p} already exists and is not an empty folder; choose another --out "
                f"(or continue that run with --resume {p})"
            )
        try:
            p.mkdir(parents=True, exist_ok=True)
            folder.checkpoints.mkdir()
            folder.plots.mkdir()
        except OSError as err:
            raise RunError(f"cannot create run folder {p}: {err.strerror or err}") from None
        if not os.access(p, os.W_OK):
            raise RunError(f"cannot write to {p}: permission denied")
        return folder

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunFolder:
        """An existing run folder, checked to be one and to be writable."""
        folder = cls(path)
        if not folder.path.is_dir():
            raise RunError(f"{folder.path} is not a folder; give the folder a run was written to")
        status = folder.read_status()
        if status.get("format") != FORMAT:
            raise RunError(f"{folder.path} is not a sprig run folder (its run.json is foreign)")
        if int(status.get("format_version", 0)) > RUN_FORMAT_VERSION:
            raise RunError(f"{folder.path} was written by a newer sprig; upgrade sprig")
        if not folder.config.is_file():
            raise RunError(f"{folder.path} is a run folder without its config.toml; cannot resume")
        for p in (folder.path, folder.checkpoints):
            if p.exists() and not os.access(p, os.W_OK):
                raise RunError(f"cannot write to {p}: permission denied")
        return folder

    def remove_temporaries(self) -> None:
        """Delete the temporary files an atomic write leaves when its process is killed."""
        for d in (self.path, self.checkpoints, self.plots):
            if d.is_dir():
                for f in d.glob(".*.tmp"):
                    f.unlink(missing_ok=True)

    def read_status(self) -> dict[str, Any]:
        try:
            status = json.loads(self.status_file.read_text())
        except FileNotFoundError:
            raise RunError(
                f"{self.path} is not a sprig run folder (no run.json); start a run with "
                f"`sprig run CONFIG --out {self.path}`"
            ) from None
        except (OSError, ValueError) as err:
            raise RunError(f"{self.status_file} is unreadable: {err}") from None
        if not isinstance(status, dict):
            raise RunError(f"{self.path} is not a sprig run folder (its run.json is foreign)")
        return status

    def write_status(self, **fields: Any) -> None:
        status = {"format": FORMAT, "format_version": RUN_FORMAT_VERSION, **fields}
        write_text_atomic(self.status_file, json.dumps(status, indent=2) + "\n")

    # --- checkpoints -----------------------------------------------------------------------

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:08d}.safetensors"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first (temporary files are not listed)."""
        if not self.checkpoints.is_dir():
            return []
        steps = [int(m.group(1)) for f in self.checkpoints.iterdir() if (m := _CKPT.match(f.name))]
        return sorted(steps)

    def latest_checkpoint(self) -> Path | None:
        steps = self.checkpoint_steps()
        return self.checkpoint_path(steps[-1]) if steps else None

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the ``keep`` newest checkpoints (the newest is never deleted)."""
        for step in self.checkpoint_steps()[: -max(keep, 1)]:
            self.checkpoint_path(step).unlink(missing_ok=True)

    # --- metrics ---------------------------------------------------------------------------

    def truncate_metrics(self, step: int) -> None:
        """Keep only records up to ``step`` (a killed run may have logged past its checkpoint,
        and its last line may be torn)."""
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            at = rec.get("step") if isinstance(rec, dict) else None
            if isinstance(at, int) and not isinstance(at, bool) and at <= step:
                kept.append(line)  # a record without an integer step is dropped like a torn one
        write_text_atomic(self.metrics, "".join(line + "\n" for line in kept))


class MetricsWriter:
    """Appends JSON records to ``metrics.jsonl``; :meth:`sync` makes them durable."""

    def __init__(self, path: Path) -> None:
        self._fh: IO[str] = open(path, "a")  # noqa: SIM115 (closed in close())

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
