"""The experiment runner: build from a config, train with checkpoints, finish with plots.

Resuming is exact: a checkpoint holds the model, masks, optimizer, LR schedule, the method's
callbacks that have state, the generators for batch order and for the method, the global
random states and the step, so a run stopped at any point (even by SIGKILL) and resumed ends
with the same weights, masks and metrics as one that never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..io import (
    checkpoint_info,
    load_checkpoint,
    save,
    save_checkpoint,
    write_text_atomic,
)
from ..kernels import wait_compiled
from . import _experiment
from ._config import (
    RunConfig,
    config_diff,
    config_hash,
    config_toml,
    load_config,
)
from ._experiment import Experiment, build
from ._folder import MetricsWriter, RunError, RunFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What a run left behind.

    Attributes:
        path: the run folder.
        step: the steps completed.
        final: the last evaluation (``train_accuracy``, ``test_accuracy``, ``density``...).
        plots: the pictures written.
        resumed_from: the checkpoint step it continued from (None for a fresh run).
        already_finished: True when a resumed run had nothing left to do.
    """

    path: Path
    step: int
    final: dict[str, float] = field(default_factory=dict)
    plots: tuple[Path, ...] = ()
    resumed_from: int | None = None
    already_finished: bool = False


@contextlib.contextmanager
def _own_rng() -> Iterator[None]:
    """The run seeds and restores global random states; the caller's are given back after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _checkpoint(folder: RunFolder, exp: Experiment, step: int) -> None:
    save_checkpoint(
        folder.checkpoint_path(step),
        exp.model,
        step=step,
        optimizer=exp.optimizer,
        states=exp.states(),
        generators=exp.generators(),
        extra={"config_sha256": config_hash(exp.config), "sprig_version": __version__},
    )
    folder.prune_checkpoints(exp.config.keep_checkpoints)


def _plots(folder: RunFolder, exp: Experiment) -> list[Path]:
    from ..plots import (
        plot_decision_boundary,
        plot_masks,
        plot_nnz,
        plot_topology,
        plot_training_curves,
    )

    cfg, model, data = exp.config, exp.model, exp.data
    label = cfg.name or folder.path.name
    d = folder.plots
    out = [
        plot_training_curves(folder.metrics, d / "training_curves.png", title=label),
        plot_masks(model, d / "masks.png", title=f"{label}: masks"),
        plot_nnz(model, d / "nnz.png"),
    ]
    if data.n_features == 2:
        x = torch.cat([data.x_train, data.x_test])
        y = torch.cat([data.y_train, data.y_test])
        out.append(plot_decision_boundary({label: model}, x, y, d / "decision_boundary.png"))
    try:
        out.append(plot_topology(model, d / "topology.png"))
    except ValueError as err:  # not an MLP chain, or too wide to draw
        log.info("no topology plot: %s", err)
    return out


def _execute(folder: RunFolder, exp: Experiment, resume: Path | None, progress: bool) -> RunResult:
    cfg = exp.config
    # every step on the compiled kernels, never on the PyTorch paths that serve while numba
    # warms up: a run's metrics and weights must not depend on when the warm-up ended (a
    # resumed run matches the unbroken one bit for bit); a CUDA model needs no numba
    if any(p.device.type == "cpu" for p in exp.model.parameters()):
        wait_compiled()
    start_time = time.perf_counter()
    start = 0
    if resume is not None:
        info = load_checkpoint(
            resume,
            exp.model,
            optimizer=exp.optimizer,
            states=exp.states(),
            generators=exp.generators(),
        )
        start = info.step
        folder.truncate_metrics(start)
    else:
        folder.truncate_metrics(-1)
    writer = MetricsWriter(folder.metrics)
    final: dict[str, float] = {}
    try:
        if resume is None:
            final = _experiment.evaluate(exp)
            writer.write({"step": 0, **final})
            writer.sync()
            _checkpoint(folder, exp, 0)
        from tqdm import tqdm

        with tqdm(
            total=cfg.steps,
            initial=start,
            disable=not progress,
            unit="step",
            desc=cfg.name or folder.path.name,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            for k in range(start, cfg.steps):
                lr = float(exp.optimizer.param_groups[0]["lr"])
                record: dict[str, Any] = {
                    "step": k + 1,
                    "loss": _experiment.train_step(exp, k),
                    "lr": lr,
                }
                done = k + 1
                if done % cfg.eval_every == 0 or done == cfg.steps:
                    final = _experiment.evaluate(exp)
                    record.update(final)
                    bar.set_postfix(
                        loss=f"{record['loss']:.4f}",
                        acc=f"{final.get('test_accuracy', final['train_accuracy']):.3f}",
                        refresh=False,
                    )
                writer.write(record)
                if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                    writer.sync()  # the metrics up to a checkpoint are on disk before it is
                    _checkpoint(folder, exp, done)
                bar.update(1)
    finally:
        writer.close()
    if not final:
        final = _experiment.evaluate(exp)
    save(exp.model, folder.model)
    plots = _plots(folder, exp) if cfg.plots else []
    started = folder.read_status().get("started")
    folder.write_status(
        status="finished",
        started=started,
        sprig_version=__version__,
        config_sha256=config_hash(cfg),
        step=cfg.steps,
        final=final,
        seconds_last_session=round(time.perf_counter() - start_time, 3),
        resumed_from=None if resume is None else start,
    )
    return RunResult(folder.path, cfg.steps, final, tuple(plots), None if resume is None else start)


def default_out(name: str, root: str | os.PathLike[str] = "runs") -> Path:
    """``runs/NAME``, or ``runs/NAME-2``, ``-3``... when that is taken: never an old run."""
    base = Path(root) / name
    candidate, i = base, 1
    while candidate.exists():
        i += 1
        candidate = base.with_name(f"{base.name}-{i}")
    return candidate


def run_experiment(
    config: str | os.PathLike[str] | RunConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    progress: bool = False,
) -> RunResult:
    """Run the experiment a config describes, into a new run folder.

    Everything is built (and so checked) before the folder is created; a folder that exists
    and is not empty is never written into.

    Args:
        config: a TOML file (copied into the run folder as it is) or a :class:`RunConfig`.
        out: the run folder to create (default ``runs/<config name>``, numbered if taken).
        progress: show a progress bar on stderr.

    Returns:
        the :class:`RunResult`.

    Example:
        >>> import tempfile
        >>> from sprig.runs import RunConfig, config_from_dict
        >>> cfg = config_from_dict({"steps": 20, "plots": False, "data": {"name": "moons"},
        ...                         "model": {"hidden": [8], "densities": 0.5}})
        >>> result = run_experiment(cfg, tempfile.mkdtemp() + "/run")
        >>> result.step, result.final["density"]
        (20, 0.5)
    """
    if isinstance(config, RunConfig):
        cfg, text, stem = config, config_toml(config), config.name or "run"
    else:
        cfg = load_config(config)
        text, stem = Path(config).read_text(), Path(config).stem
    with _own_rng():
        exp = build(cfg)
        folder = RunFolder.create(out if out is not None else default_out(stem))
        write_text_atomic(folder.config, text)
        folder.write_status(
            status="running",
            sprig_version=__version__,
            config_sha256=config_hash(cfg),
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        return _execute(folder, exp, None, progress)


def resume_run(
    run_dir: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | RunConfig | None = None,
    progress: bool = False,
) -> RunResult:
    """Continue a stopped run from its newest checkpoint, to the same end as an unbroken run.

    Args:
        run_dir: a folder written by :func:`run_experiment`.
        config: optionally the config the caller believes the run has; a different one fails.
        progress: show a progress bar on stderr.

    Returns:
        the :class:`RunResult` (``already_finished`` when there was nothing left to do).

    Raises:
        RunError: not a run folder, an unwritable one, a config or checkpoint of another
            experiment. Nothing in the folder changes then.
    """
    folder = RunFolder.open(run_dir)
    status = folder.read_status()
    cfg = load_config(folder.config)
    fingerprint = config_hash(cfg)
    if status.get("config_sha256") != fingerprint:
        raise RunError(
            f"{folder.config} no longer matches the config {folder.path} was started with "
            "(edited?); put the original back or start a new run"
        )
    if config is not None:
        other = config if isinstance(config, RunConfig) else load_config(config)
        diff = config_diff(cfg, other)
        if diff is not None:
            raise RunError(
                f"{config if not isinstance(config, RunConfig) else 'the config'} differs from "
                f"the config of {folder.path} at {diff}; resume without a config or start a "
                "new run"
            )
    if status.get("status") == "finished":
        return RunResult(
            folder.path,
            int(status.get("step", cfg.steps)),
            dict(status.get("final", {})),
            already_finished=True,
        )
    latest = folder.latest_checkpoint()
    if latest is not None:
        info = checkpoint_info(latest)
        if info.extra.get("config_sha256") != fingerprint:
            raise RunError(
                f"checkpoint {latest} was written by a different config than "
                f"{folder.config}; it cannot be resumed with it"
            )
    folder.remove_temporaries()
    with _own_rng():
        exp = build(cfg)
        # killed before its first checkpoint: nothing to continue from, start over in place
        return _execute(folder, exp, latest, progress)
