"""``sprig run``: experiments from a config file, with checkpoints and resume."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from ..runs import RunConfig, RunResult, default_out, load_config, resume_run, run_experiment
from ._folders import UsageError


def _describe(result: RunResult) -> str:
    final = result.final
    acc = final.get("test_accuracy", final.get("train_accuracy"))
    which = "test" if "test_accuracy" in final else "train"
    parts = [f"step {result.step}"]
    if acc is not None:
        parts.append(f"{which} accuracy {acc:.3f}")
    if "density" in final:
        parts.append(f"density {final['density']:.3f}")
    return ", ".join(parts)


def run_command(
    config: Path | None,
    out: Path | None,
    resume: Path | None,
    quiet: bool,
    threads: int | None,
    echo: Callable[[str], None],
    seed: int | None = None,
) -> None:
    """Start or resume a run; print where it is (quiet: only the folder).

    ``seed`` replaces the config's seed for a new run (the run folder's config records it).
    """
    if config is None and resume is None:
        raise UsageError("give a config file (sprig run experiment.toml) or --resume RUN_DIR")
    if resume is not None and out is not None:
        raise UsageError("--out names a new run folder; a resumed run stays in RUN_DIR")
    if seed is not None and resume is not None:
        raise UsageError("--seed applies to a new run; a resumed run keeps its own seed")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    folder = resume if resume is not None else out
    try:
        if resume is not None:
            result = resume_run(resume, config=config, progress=not quiet)
        else:
            assert config is not None
            folder = out if out is not None else default_out(config.stem)
            source: Path | RunConfig = config
            if seed is not None:
                cfg = load_config(config)
                source = dataclasses.replace(cfg, seed=seed, name=cfg.name or config.stem)
            result = run_experiment(source, folder, progress=not quiet)
    except KeyboardInterrupt:
        if folder is None or not (folder / "run.json").exists():
            raise RuntimeError("interrupted before the run started; nothing was written") from None
        raise RuntimeError(
            f"interrupted; continue from the last checkpoint with: sprig run --resume {folder}"
        ) from None
    if quiet:
        echo(str(result.path))
    elif result.already_finished:
        echo(f"{result.path} has already finished ({_describe(result)}); nothing to do")
    else:
        how = f"resumed at step {result.resumed_from}" if result.resumed_from is not None else ""
        echo(f"run {'finished' if not how else how + ', finished'}: {_describe(result)}")
        echo(f"  folder: {result.path}")
        echo(f"  plots:  {', '.join(p.name for p in result.plots)}")
