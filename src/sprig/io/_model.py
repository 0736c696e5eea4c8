"""sprig's model format: one safetensors file holding weights and masks, with a JSON manifest
(module configs, mask patterns, versions) in the safetensors header's metadata.

Nothing here unpickles: safetensors stores raw tensors and the manifest is JSON, so loading a
file never executes code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .._checks import check_int, check_module, check_path
from .._formats import MODEL_FORMAT_VERSION
from .._version import __version__
from ..masks import (
    MASK_SUFFIX,
    StoresWeights,
    Summary,
    SummaryRow,
    apply_mask,
    compressed_weights,
    get_mask,
    mask_pattern,
    masked_parameters,
)
from ..nn import MODULES, module_config
from ._atomic import write_atomic

FORMAT = "sprig.model"


class SprigFileError(ValueError):
    """A file that is not a readable sprig file, or does not fit the model it is loaded into."""


def manifest_for(model: nn.Module, **extra: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "sprig_version": __version__,
        "torch_version": torch.__version__,
        "model": module_config(model),
        "masks": {mp.qualname: mp.pattern for mp in masked_parameters(model)},
        "modules": _submodule_configs(model),
        **extra,
    }


def _submodule_configs(model: nn.Module) -> dict[str, Any]:
    """Configs of the registered sprig modules inside ``model`` (e.g. compressed layers)."""
    out = {}
    for name, module in model.named_modules():
        cfg = module_config(module) if name else None
        if cfg is not None:
            out[name] = cfg
    return out


def _restore_submodules(
    model: nn.Module,
    manifest: Mapping[str, Any],
    tensors: Mapping[str, Tensor],
    only: type[nn.Module] | None = None,
) -> list[tuple[str, nn.Module]]:
    """Swap in the recorded sprig submodules whose class differs from the model's (compressed
    layers in a model rebuilt from its uncompressed config); all are built before any swap.

    Args:
        only: swap only records whose class is a subclass of this (None: any).

    Returns:
        ``(name, old module)`` pairs, to undo the swaps with :func:`_undo_swaps`.
    """
    modules = dict(model.named_modules())
    records = manifest.get("modules") or {}
    if not isinstance(records, dict) or not all(
        isinstance(r, dict) and "class" in r and "config" in r for r in records.values()
    ):
        raise SprigFileError(
            "the manifest's modules record must map module names to {class, config} records"
        )
    swaps = []
    for name, spec in sorted(records.items()):
        current = modules.get(name)
        if current is None or getattr(type(current), "_sprig_name", None) == spec["class"]:
            continue
        try:
            cls = MODULES.get(spec["class"])
            if only is not None and not issubclass(cls, only):
                continue
            swaps.append((name, _build(cls, spec["config"], tensors, name + ".")))
        except Exception as err:  # a config edited by hand: any error is the file's
            raise SprigFileError(
                f"cannot rebuild {name} ({spec['class']}): {type(err).__name__}: {err}"
            ) from None
    undo = []
    for name, new in swaps:
        parent, _, attr = name.rpartition(".")
        undo.append((name, model.get_submodule(name)))
        setattr(model.get_submodule(parent), attr, new)
    return undo


def _build(
    cls: Any,
    config: Any,
    tensors: Mapping[str, Tensor],
    prefix: str,
    swapped: tuple[str, ...] = (),
) -> nn.Module:
    """``cls(**config)``, first built on the meta device (no memory) where the class allows:
    every tensor it would allocate must be in the file, with its shape, except under the
    ``swapped`` submodules (replaced afterwards by their recorded class). A hand-edited config
    (a hidden size of 1e9 beside small tensors) then fails before it allocates gigabytes."""
    rng = torch.get_rng_state()  # the probe must not move the global generator (seed=None)
    try:
        with torch.device("meta"):
            probe = cls(**config)
    except Exception:  # constructors that need real values (masks drawn at init) skip the probe
        probe = None
    finally:
        torch.set_rng_state(rng)
    if probe is not None:
        for key, t in probe.state_dict().items():
            saved = tensors.get(prefix + key)
            if saved is None and key.startswith(swapped):
                continue
            if saved is None or tuple(saved.shape) != tuple(t.shape):
                have = None if saved is None else tuple(saved.shape)
                raise ValueError(
                    f"its config makes {prefix + key} of shape {tuple(t.shape)}, the file holds "
                    f"{have}: the config does not fit the file's tensors"
                )
    model: nn.Module = cls(**config)
    return model


def _undo_swaps(model: nn.Module, undo: list[tuple[str, nn.Module]]) -> None:
    for name, old in reversed(undo):
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, old)


def save(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s weights and masks (safetensors) and a JSON manifest to ``path``.

    The write is atomic: a temporary file is written and renamed, so an interrupted save never
    leaves a half-written file where a good one was.

    Example:
        >>> import tempfile, sprig
        >>> mlp = sprig.SparseMLP([2, 8, 1], densities=0.5)
        >>> path = save(mlp, tempfile.mkdtemp() + "/mlp.safetensors")
        >>> bool(torch.equal(sprig.load(path).layers[0].weight, mlp.layers[0].weight))
        True
    """
    check_module(model, "sprig.save")
    check_path(path, "sprig.save")
    # clone: safetensors refuses tensors that share memory (tied weights)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"sprig": json.dumps(manifest_for(model))}
    return write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and manifest of a sprig file, with a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sprig file at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        with path.open("rb") as fh:
            head = fh.read(2)
        if head in (b"PK", b"\x80\x02", b"\x80\x04"):  # torch.save's zip, or a pickle
            raise SprigFileError(
                f"{path} is a torch.save/pickle file, not a sprig (safetensors) file: sprig "
                "never unpickles (that can run code). Load it with torch.load in code you "
                "trust, then sprig.save the model"
            ) from None
        raise SprigFileError(
            f"{path} is not a readable sprig file (corrupt or truncated?): {err}"
        ) from None
    try:
        manifest = json.loads(meta["sprig"])
        fmt, version = manifest["format"], format_version(manifest["format_version"])
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        raise SprigFileError(
            f"{path} is a safetensors file without a sprig manifest; save it with sprig.save"
        ) from None
    if fmt != FORMAT:
        raise SprigFileError(f"{path} holds {fmt!r}, not a sprig model")
    if version > MODEL_FORMAT_VERSION:
        raise SprigFileError(
            f"{path} was written by sprig {manifest.get('sprig_version')} in format "
            f"v{version}; this sprig reads up to v{MODEL_FORMAT_VERSION}: upgrade sprig"
        )
    return tensors, manifest


def format_version(value: Any) -> int:
    """A manifest's ``format_version``: an int >= 1 (ValueError otherwise: 1.9, "2", inf)."""
    return check_int(value, "format_version", 1)


def _split(qual: str) -> tuple[str, str]:
    mod, _, name = qual.rpartition(".")
    return mod, name


def load_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    patterns: Mapping[str, str] | None = None,
    strict: bool = True,
) -> nn.Module:
    """Load weights and masks into ``model``, adding masks the model does not have yet.

    Mask entries are ``<param>_mask`` tensors beside their parameter. Everything is checked
    before anything changes: on a mismatch the model is left as it was.

    Args:
        model: the model to load into (a user's own model or a sprig one).
        state_dict: e.g. from ``sparse_model.state_dict()`` or :func:`read_file`.
        patterns: pattern labels of the masks (qualified parameter name -> label).
        strict: whether keys must match exactly (after adding the masks).
    """
    modules = dict(model.named_modules())
    params = dict(model.named_parameters(remove_duplicate=False))  # tied weights: every name
    patterns = _check_patterns(patterns, params, state_dict)
    new_masks: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not key.endswith(MASK_SUFFIX):
            continue
        qual = key[: -len(MASK_SUFFIX)]
        if qual not in params:
            continue  # an ordinary buffer that happens to end in _mask
        if not bool(((value == 0) | (value == 1)).all()):
            raise SprigFileError(f"mask {key} holds values other than 0 and 1")
        mod_name, name = _split(qual)
        if get_mask(modules[mod_name], name) is None:
            if tuple(value.shape) != tuple(params[qual].shape):
                raise SprigFileError(
                    f"mask {key} has shape {tuple(value.shape)} but {qual} has shape "
                    f"{tuple(params[qual].shape)}: the file does not fit this model"
                )
            new_masks[qual] = value
    expected = dict(model.state_dict())
    expected.update({q + MASK_SUFFIX: m for q, m in new_masks.items()})
    # compressed layers hold as many nonzeros as the file says (pruning and rewiring change
    # the count its config was built with): the file's count, if values and columns agree
    resized: dict[str, int] = {}
    for qual, c in compressed_weights(model):
        prefix = qual.removesuffix("weight")
        v, k = state_dict.get(prefix + "values"), state_dict.get(prefix + "col")
        if v is None or k is None or v.dim() != 1 or tuple(k.shape) != tuple(v.shape):
            continue
        if v.numel() != c.nonzero_values().numel():
            resized[qual] = v.numel()
            expected[prefix + "values"] = expected[prefix + "values"].new_empty(v.shape)
            expected[prefix + "col"] = expected[prefix + "col"].new_empty(k.shape)
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if strict and (missing or unexpected):
        raise SprigFileError(
            "state does not fit the model: "
            + (f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} " if missing else "")
            + (
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
                if unexpected
                else ""
            )
            + "; was it saved from a model of another shape?"
        )
    for key, value in state_dict.items():
        if key not in expected:
            continue
        want = expected[key]
        if tuple(value.shape) != tuple(want.shape):
            owner = modules.get(_split(key)[0])
            if isinstance(owner, StoresWeights):  # a compressed layer
                raise SprigFileError(
                    f"{key} holds {value.numel()} stored entries in the file but "
                    f"{want.numel()} in the model: its compressed layers were made at another "
                    "density. Load the file into the model before compressing it (load_state "
                    "swaps in the saved compressed layers), or rebuild a sprig model with "
                    "sprig.load(path)"
                )
            raise SprigFileError(
                f"{key} has shape {tuple(value.shape)} in the file but "
                f"{tuple(want.shape)} in the model"
            )
        # float to float casts as torch does (a float64 model may load a float32 file); any
        # other change of dtype would truncate or wrap values silently (indices, counts);
        # masks are checked for 0/1 above
        is_mask = key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] in params
        floats = value.is_floating_point() and want.is_floating_point()
        if value.dtype != want.dtype and not floats and not is_mask:
            raise SprigFileError(
                f"{key} is {value.dtype} in the file but {want.dtype} in the model: the "
                "file does not fit this model (or its config's dtype was edited)"
            )
    compressed = dict(compressed_weights(model))
    for qual, nnz in resized.items():
        compressed[qual].resize_nonzeros(nnz)
    for qual, mask in new_masks.items():
        mod_name, name = _split(qual)
        label = (patterns or {}).get(qual, "custom")
        apply_mask(modules[mod_name], name, mask, pattern=label)
    # existing masks keep their label unless the file names one
    for qual, label in (patterns or {}).items():
        mod_name, name = _split(qual)
        if qual not in new_masks and mask_pattern(modules[mod_name], name) is not None:
            apply_mask(modules[mod_name], name, state_dict[qual + MASK_SUFFIX], pattern=label)
    model.load_state_dict(dict(state_dict), strict=strict)
    return model


def _check_patterns(
    patterns: Any, params: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]
) -> dict[str, str]:
    """The manifest's mask labels, checked before anything changes: a dict of string labels for
    parameters of this model whose masks the file holds."""
    if patterns is None:
        return {}
    if not isinstance(patterns, Mapping):
        raise SprigFileError(f"the masks record must map parameters to labels, got {patterns!r}")
    for qual, label in patterns.items():
        if not isinstance(label, str):
            raise SprigFileError(f"the mask label of {qual} must be a string, got {label!r}")
        if qual not in params or qual + MASK_SUFFIX not in state_dict:
            raise SprigFileError(
                f"the file labels a mask of {qual}, which this model or the file does not have: "
                "was it saved from another model?"
            )
    return dict(patterns)


def load_state(model: nn.Module, path: str | os.PathLike[str], strict: bool = True) -> nn.Module:
    """Restore weights and masks saved by :func:`save` into ``model`` (e.g. a user's own model)."""
    check_module(model, "sprig.load_state")
    check_path(path, "sprig.load_state")
    from ..compress import CompressedModule  # compressed layers saved from a user's model

    tensors, manifest = read_file(path)
    undo = _restore_submodules(model, manifest, tensors, only=CompressedModule)
    try:
        return load_state_dict(model, tensors, manifest.get("masks", {}), strict=strict)
    except Exception:
        _undo_swaps(model, undo)  # a failed load leaves the model as it was
        raise


def file_summary(path: str | os.PathLike[str]) -> Summary:
    """The sparsity table of a saved file without rebuilding its model: one row per mask.

    For a user's own masked model saved with :func:`save`, which :func:`load` cannot rebuild
    (``sprig summary FILE`` prints it).
    """
    tensors, manifest = read_file(path)
    patterns = manifest.get("masks") or {}
    rows = []
    for key, mask in tensors.items():
        qual = key[: -len(MASK_SUFFIX)]
        if not key.endswith(MASK_SUFFIX) or qual not in tensors:
            continue
        label = patterns.get(qual, "custom") if isinstance(patterns, dict) else "custom"
        rows.append(
            SummaryRow(qual, tuple(mask.shape), int(mask.count_nonzero()), mask.numel(), label)
        )
    # compressed layers (values, crow, col): each rebuilt alone from its recorded class and
    # config, as load does, to count what it stores
    records = manifest.get("modules") or {}
    for name, spec in sorted(records.items() if isinstance(records, dict) else []):
        try:
            cls = MODULES.get(spec["class"])
            if not issubclass(cls, StoresWeights):
                continue
            prefix = name + "."
            module = _build(cls, spec["config"], tensors, prefix)
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(own)
        except Exception as err:  # a config edited by hand: any error is the file's
            raise SprigFileError(
                f"cannot read {name} ({spec.get('class')}) for its summary: "
                f"{type(err).__name__}: {err}"
            ) from None
        assert isinstance(module, StoresWeights)
        for weight, shape, nnz, pattern in module.stored_weights():
            numel = math.prod(shape)
            rows.append(SummaryRow(f"{prefix}{weight}", tuple(shape), nnz, numel, pattern))
    return Summary(tuple(rows))


def load(path: str | os.PathLike[str]) -> nn.Module:
    """Rebuild a sprig model saved by :func:`save` (weights, masks and all).

    For a user's own model class, build the model and call :func:`load_state` instead.
    """
    tensors, manifest = read_file(path)
    spec = manifest.get("model")
    if not spec:
        raise SprigFileError(
            f"{path} holds the state of a model sprig cannot rebuild by itself (not a sprig "
            "module); build your model, then call sprig.load_state(model, path)"
        )
    try:
        cls = MODULES.get(spec["class"])
        records = manifest.get("modules")
        swapped = tuple(f"{n}." for n in records) if isinstance(records, dict) else ()
        model = _build(cls, spec["config"], tensors, "", swapped)
    except Exception as err:  # a config edited by hand: any error is the file's
        raise SprigFileError(
            f"{path}: cannot rebuild the model: {type(err).__name__}: {err}"
        ) from None
    _restore_submodules(model, manifest, tensors)
    return load_state_dict(model, tensors, manifest.get("masks", {}))
