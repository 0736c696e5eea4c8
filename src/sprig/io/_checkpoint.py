"""Checkpoints: everything a training run needs to continue exactly where it stopped.

One safetensors file holds the model (weights and masks, as :func:`sprig.save` writes them),
the optimizer state, the state of any object with ``state_dict``/``load_state_dict`` (learning
rate schedulers, pruning schedules, mask updaters), random number generator states and the
step counter. Tensors go to safetensors; everything else (numbers, strings, nesting) goes to
JSON in the file's header. Nothing is pickled, so loading a checkpoint never runs code.

The file is written to a temporary name and renamed (:func:`sprig.io.write_atomic`): a crash
mid-write leaves the previous checkpoint untouched and never a broken one under the final name.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .._checks import check_int
from .._formats import CHECKPOINT_FORMAT_VERSION
from .._version import __version__
from .._words import a
from ._atomic import write_atomic
from ._model import SprigFileError, format_version, load_state_dict, manifest_for

FORMAT = "sprig.checkpoint"
_MODEL = "model/"


class Stateful(Protocol):
    """Anything with torch's ``state_dict``/``load_state_dict`` pair."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state_dict: Any, /) -> Any: ...


RandomGenerator = torch.Generator | np.random.Generator


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself: its step and the caller's ``extra`` JSON."""

    path: Path
    step: int
    extra: dict[str, Any] = field(default_factory=dict)


# --- nested state <-> (JSON, tensors) ------------------------------------------------------
# state_dicts are trees of dicts/lists/tuples with tensors and plain values at the leaves.
# Tensors are replaced by {"__tensor__": key}; tuples and dicts with non-string keys (torch
# optimizers key their state by int) are tagged so that they come back as they were.


def _encode(obj: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    if isinstance(obj, Tensor):
        # clone: safetensors refuses tensors that share memory
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if k is not None and not isinstance(k, (bool, int, float, str)):
                raise TypeError(f"cannot checkpoint {key}: dict key {k!r} is not a str or number")
            items.append([k, _encode(v, f"{key}.{k}", tensors)])
        return {"__dict__": items}
    raise TypeError(
        f"cannot checkpoint {key}: {a(type(obj).__name__)} ({obj!r:.60}); a state_dict may hold "
        "tensors, numbers, strings, None, and lists, tuples and dicts of them"
    )


def _decode(obj: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


# --- random number generators --------------------------------------------------------------


def _rng_state(gen: RandomGenerator, key: str, tensors: dict[str, Tensor]) -> Any:
    if isinstance(gen, torch.Generator):
        if gen.device.type != "cpu":
            raise TypeError(f"cannot checkpoint generator {key} on {gen.device}: use a CPU one")
        tensors[key] = gen.get_state()  # uint8 tensor
        return {"torch": key}
    if isinstance(gen, np.random.Generator):
        return {"numpy": gen.bit_generator.state}  # a dict of ints and strings
    raise TypeError(f"{key}: expected a torch.Generator or numpy Generator, got {type(gen)}")


def _set_rng_state(
    gen: RandomGenerator, saved: Any, key: str, tensors: Mapping[str, Tensor], path: Path
) -> None:
    try:
        if isinstance(gen, torch.Generator) and isinstance(saved, dict) and "torch" in saved:
            gen.set_state(tensors[saved["torch"]])
        elif isinstance(gen, np.random.Generator) and isinstance(saved, dict) and "numpy" in saved:
            gen.bit_generator.state = saved["numpy"]
        else:
            raise SprigFileError(
                f"generator {key} in the checkpoint is not {a(type(gen).__name__)}"
            )
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        if isinstance(err, SprigFileError):
            raise
        raise SprigFileError(f"{path}: random state {key} is malformed ({err!r})") from err


def _global_rng(tensors: dict[str, Tensor]) -> dict[str, Any]:
    tensors["rng/torch_global"] = torch.get_rng_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    tensors["rng/numpy_global"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32))
    return {
        "numpy_global": [kind, int(pos), int(has_gauss), float(gauss)],
        "python_global": _encode(random.getstate(), "rng/python_global", tensors),
    }


def _set_global_rng(
    saved: Mapping[str, Any], tensors: Mapping[str, Tensor], path: Path, dry_run: bool = False
) -> None:
    """Restore torch's, numpy's and Python's global random states (``dry_run``: only try them
    on throwaway generators, so a malformed record fails before anything changes)."""
    try:
        torch_state = tensors["rng/torch_global"]
        kind, pos, has_gauss, gauss = saved["numpy_global"]
        keys = tensors["rng/numpy_global"].numpy().view(np.uint32)
        numpy_state = (kind, keys, pos, has_gauss, gauss)
        python_state = _decode(saved["python_global"], tensors)
        if dry_run:
            torch.Generator().set_state(torch_state)
            np.random.RandomState().set_state(numpy_state)
            random.Random().setstate(python_state)
            return
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise SprigFileError(f"{path}: the global random state is malformed ({err!r})") from err
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


# --- save / load ---------------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    states: Mapping[str, Stateful] | None = None,
    generators: Mapping[str, RandomGenerator] | None = None,
    global_rng: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of a training run to ``path`` atomically.

    Args:
        path: the file to write (``.safetensors`` by convention).
        model: its weights and masks are saved as :func:`sprig.save` saves them.
        step: the number of completed training steps.
        optimizer: its ``state_dict`` (moments, step counts, param groups).
        states: named objects with ``state_dict``/``load_state_dict``: an LR scheduler, a
            pruning schedule, a mask updater.
        generators: named torch (CPU) or numpy generators, e.g. the one that draws batches.
        global_rng: also save torch's, numpy's and Python's global random states.
        extra: JSON-able values to keep beside the state (a config hash, a run name).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, sprig
        >>> mlp = sprig.SparseMLP([2, 8, 2], densities=0.5)
        >>> opt = torch.optim.Adam(mlp.parameters())
        >>> path = tempfile.mkdtemp() + "/c.safetensors"
        >>> _ = save_checkpoint(path, mlp, step=3, optimizer=opt)
        >>> load_checkpoint(path, sprig.SparseMLP([2, 8, 2], densities=0.5), optimizer=opt).step
        3
    """
    check_int(step, "step", 0, " (completed steps)")
    tensors: dict[str, Tensor] = {
        _MODEL + k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()
    }
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "sprig_version": __version__,
        "step": step,
        "model": manifest_for(model),
        "extra": json.loads(json.dumps(dict(extra or {}))),  # fail here if not JSON-able
    }
    if optimizer is not None:
        meta["optimizer"] = _encode(optimizer.state_dict(), "optimizer", tensors)
    meta["states"] = {
        name: _encode(obj.state_dict(), f"states/{name}", tensors)
        for name, obj in (states or {}).items()
    }
    meta["generators"] = {
        name: _rng_state(gen, f"rng/{name}", tensors) for name, gen in (generators or {}).items()
    }
    if global_rng:
        meta["global_rng"] = _global_rng(tensors)
    header = {"sprig": json.dumps(meta)}
    return write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def _read(path: Path, with_tensors: bool) -> tuple[dict[str, Tensor], dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path)) if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as err:
        raise SprigFileError(f"{path} is not a readable checkpoint (truncated?): {err}") from None
    try:
        meta = json.loads(header["sprig"])
        fmt, version = meta["format"], format_version(meta["format_version"])
    except (KeyError, TypeError, ValueError):
        raise SprigFileError(f"{path} is a safetensors file but not a sprig checkpoint") from None
    if fmt != FORMAT:
        raise SprigFileError(f"{path} holds {fmt!r}, not a checkpoint (load it with sprig.load)")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise SprigFileError(
            f"{path} is a v{version} checkpoint from sprig {meta.get('sprig_version')}; this "
            f"sprig reads up to v{CHECKPOINT_FORMAT_VERSION}: upgrade sprig"
        )
    return tensors, meta


def checkpoint_info(path: str | os.PathLike[str]) -> CheckpointInfo:
    """The step and ``extra`` of a checkpoint, read from its header only (cheap)."""
    _, meta = _read(Path(path), with_tensors=False)
    return CheckpointInfo(Path(path), int(meta["step"]), dict(meta.get("extra", {})))


def _check_names(
    what: str, wanted: Mapping[str, Any], saved: Mapping[str, Any], path: Path
) -> None:
    missing = sorted(set(wanted) - set(saved))
    if missing:
        have = ", ".join(sorted(saved)) or "none"
        raise SprigFileError(f"{path} has no {what} {missing}; it has: {have}")


def _follow_replaced(
    optimizer: torch.optim.Optimizer, before: Sequence[Tensor], after: Sequence[Tensor]
) -> None:
    """Point ``optimizer`` at parameters that loading replaced (compressed layers resized to
    the file's nonzero count get new value tensors), keeping the state it just loaded."""
    swap = {id(a): b for a, b in zip(before, after) if a is not b}
    if not swap:
        return
    for group in optimizer.param_groups:
        group["params"] = [swap.get(id(p), p) for p in group["params"]]
    for old in [p for p in optimizer.state if id(p) in swap]:
        optimizer.state[swap[id(old)]] = optimizer.state.pop(old)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    states: Mapping[str, Stateful] | None = None,
    generators: Mapping[str, RandomGenerator] | None = None,
    global_rng: bool = True,
) -> CheckpointInfo:
    """Restore what :func:`save_checkpoint` wrote into freshly built objects.

    Build the model, optimizer, schedulers and generators as at the start of the run, then call
    this; training continues at ``info.step`` exactly as it would have without the stop.
    Everything is checked against the file before anything changes.

    Args:
        path: a file written by :func:`save_checkpoint`.
        model: receives weights and masks (masks are added where the model has none).
        optimizer: receives its state (the file must hold one).
        states: objects whose ``load_state_dict`` receives the state saved under their name.
        generators: generators whose state is restored, by name.
        global_rng: restore torch's, numpy's and Python's global random states.

    Returns:
        the :class:`CheckpointInfo` (step and ``extra``).
    """
    path = Path(path)
    tensors, meta = _read(path, with_tensors=True)
    states, generators = dict(states or {}), dict(generators or {})
    _check_names("state", states, meta.get("states", {}), path)
    _check_names("generator", generators, meta.get("generators", {}), path)
    if global_rng and "global_rng" not in meta:
        raise SprigFileError(f"{path} has no global random state; pass global_rng=False")
    opt_state: dict[str, Any] = {}
    if optimizer is not None:
        if "optimizer" not in meta:
            raise SprigFileError(f"{path} holds no optimizer state")
        opt_state = _decode_checked(meta["optimizer"], tensors, path)
        try:
            saved_sizes = [len(g["params"]) for g in opt_state["param_groups"]]
        except (KeyError, TypeError) as err:
            raise SprigFileError(f"{path}: the optimizer state is malformed ({err!r})") from err
        sizes = [len(g["params"]) for g in optimizer.param_groups]
        if saved_sizes != sizes:
            raise SprigFileError(
                f"{path} holds an optimizer with parameter groups of sizes {saved_sizes}, "
                f"this one has {sizes}: was it saved from another model?"
            )
    step = meta.get("step")
    step = check_int(step, f"{path}: step", 0, error=SprigFileError)
    saved_states = {name: _decode_checked(meta["states"][name], tensors, path) for name in states}
    # random states are tried on throwaway generators first: a bad one fails before any change
    for name, gen in generators.items():
        _set_rng_state(_blank(gen), meta["generators"][name], f"rng/{name}", tensors, path)
    if global_rng:
        _set_global_rng(meta["global_rng"], tensors, path, dry_run=True)
    model_tensors = {k[len(_MODEL) :]: v for k, v in tensors.items() if k.startswith(_MODEL)}
    # the optimizer and the states go first, each restored if a later one refuses its state;
    # the model last: load_state_dict checks shapes and keys before it changes anything
    undo: list[tuple[Any, Any]] = []
    try:
        targets = [(optimizer, opt_state)] if optimizer is not None else []
        for obj, state in [*targets, *((states[n], saved_states[n]) for n in states)]:
            before = obj.state_dict()
            obj.load_state_dict(state)
            undo.append((obj, before))
        params_before = list(model.parameters())
        load_state_dict(model, model_tensors, meta["model"].get("masks", {}))
        if optimizer is not None:
            _follow_replaced(optimizer, params_before, list(model.parameters()))
    except Exception as err:
        for obj, before in reversed(undo):
            obj.load_state_dict(before)
        if isinstance(err, SprigFileError):
            raise
        raise SprigFileError(f"{path}: {type(err).__name__}: {err}; nothing was changed") from err
    for name, gen in generators.items():
        _set_rng_state(gen, meta["generators"][name], f"rng/{name}", tensors, path)
    if global_rng:
        _set_global_rng(meta["global_rng"], tensors, path)
    return CheckpointInfo(path, step, dict(meta.get("extra", {})))


def _decode_checked(obj: Any, tensors: Mapping[str, Tensor], path: Path) -> Any:
    try:
        return _decode(obj, tensors)
    except (KeyError, TypeError, ValueError) as err:
        raise SprigFileError(f"{path}: a saved state is malformed ({err!r})") from err


def _blank(gen: RandomGenerator) -> RandomGenerator:
    """A fresh generator of ``gen``'s kind, to try a saved state on."""
    if isinstance(gen, torch.Generator):
        return torch.Generator()
    if isinstance(gen, np.random.Generator):
        return np.random.Generator(type(gen.bit_generator)())
    return gen  # _set_rng_state refuses other kinds before it changes them
