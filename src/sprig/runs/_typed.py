"""Typed reading of config tables: every key checked against a dataclass field or a signature.

TOML gives dicts of plain values; these helpers turn them into typed objects and turn every
mistake into one :class:`ConfigError` line that names the key and the type it needs.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any

_MISSING = inspect.Parameter.empty


class ConfigError(ValueError):
    """A config that sprig cannot run: an unknown key, a wrong type, a bad value."""


def type_name(hint: Any) -> str:
    """A reader's name for a type hint: ``int``, ``list of float``, ``float or list of float``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "any value"
    if hint is type(None):
        return "nothing (leave the key out)"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return f"list of {type_name(args[0])}"
    if origin in (dict, collections.abc.Mapping):
        return "table"
    if dataclasses.is_dataclass(hint):
        return "table"
    return getattr(hint, "__name__", str(hint))


def _fail(key: str, hint: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"key '{key}' must be {type_name(hint)}, got {value!r} ({type(value).__name__})"
    )


def check_type(value: Any, hint: Any, key: str) -> Any:
    """``value`` converted to ``hint`` (an int where a float is wanted, a list to a tuple).

    Raises:
        ConfigError: naming ``key`` and the expected type.

    Example:
        >>> check_type([1, 2], list[float], "model.densities")
        [1.0, 2.0]
        >>> check_type("x", int, "steps")
        Traceback (most recent call last):
        ...
        sprig.runs._typed.ConfigError: key 'steps' must be int, got 'x' (str)
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return check_type(value, arm, key)
            except ConfigError:
                continue
        raise _fail(key, hint, value)
    if origin is typing.Literal:
        if value in args:
            return value
        raise _fail(key, hint, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _fail(key, hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(key, hint, value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(key, hint, value)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise _fail(key, hint, value)
        item = args[0] if args else Any
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed length: tuple[X, Y]
            if len(value) != len(args):
                raise _fail(key, hint, value)
            return tuple(
                check_type(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))
            )
        items = [check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise _fail(key, hint, value)
        vtype = args[1] if len(args) == 2 else Any
        return {k: check_type(v, vtype, f"{key}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(key, hint, value)
        return build_dataclass(hint, value, key)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _fail(key, hint, value)
    return value  # a hint this checker does not know: the callee validates


def _hints(obj: Any) -> dict[str, Any]:
    target = getattr(obj, "__init__") if isinstance(obj, type) else obj  # noqa: B009
    try:
        return typing.get_type_hints(target)
    except Exception:  # annotations naming types only imported for type checkers
        return {}


def build_dataclass(cls: type[Any], table: Mapping[str, Any], where: str = "") -> Any:
    """An instance of dataclass ``cls`` from ``table``; unknown keys and wrong types fail.

    A dataclass with a field ``options: dict[str, Any]`` takes the table's other keys into it
    (its ``__post_init__`` checks them against whatever they configure).
    """
    prefix = f"{where}." if where else ""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    open_table = "options" in fields
    known = {k: v for k, v in table.items() if k in fields and k != "options"}
    rest = {k: v for k, v in table.items() if k not in known}
    if rest and not open_table:
        unknown = sorted(rest)[0]
        section = f" in [{where}]" if where else ""
        raise ConfigError(
            f"unknown key '{prefix}{unknown}'; valid keys{section}: {', '.join(sorted(fields))}"
        )
    kwargs = {k: check_type(v, hints[k], prefix + k) for k, v in known.items()}
    if open_table:
        kwargs["options"] = rest
    for name, f in fields.items():
        if (
            name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(f"missing key '{prefix}{name}' ({type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{where or 'top level'}]: {err}") from None


def bind_options(
    fn: Callable[..., Any],
    options: Mapping[str, Any],
    where: str,
    provided: Collection[str] = (),
) -> dict[str, Any]:
    """Check ``options`` against ``fn``'s parameters; return them typed.

    Args:
        fn: a function or class whose keyword parameters are the options.
        options: the config's values for them.
        where: the config section, for messages (``"method"``).
        provided: parameter names the run fills in itself (``model``, ``seed``...).

    Returns:
        the typed options (parameters in ``provided`` are left to the caller).
    """
    params = {
        name: p
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    hints = _hints(fn)
    out = {}
    for key, value in options.items():
        if key in provided and key in params:
            raise ConfigError(f"key '{where}.{key}' is set by the run itself; remove it")
        if key not in params:
            if takes_any:
                out[key] = value
                continue
            valid = [f"{n} ({type_name(hints.get(n, Any))})" for n in params if n not in provided]
            raise ConfigError(
                f"unknown key '{where}.{key}'; valid keys in [{where}]: name, "
                + (", ".join(valid) or "no others")
            )
        out[key] = check_type(value, hints.get(key, Any), f"{where}.{key}")
    for name, p in params.items():
        if name not in out and name not in provided and p.default is _MISSING:
            raise ConfigError(f"missing key '{where}.{name}' ({type_name(hints.get(name, Any))})")
    return out
