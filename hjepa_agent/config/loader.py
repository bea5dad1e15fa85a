"""Typed YAML loading: nested frozen dataclasses built from mappings.

Every error names the file, the dotted key and the offending value, so a robot
that is handed a bad file fails at start with a message a person can act on.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is invalid; the message names file, key and value."""

    def __init__(self, file: str | Path, key: str, reason: str) -> None:
        self.file = str(file)
        self.key = key
        self.reason = reason
        super().__init__(f"{self.file}: {key or '<root>'}: {reason}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; ConfigError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(p, "", "file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(p, "", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(p, "", f"top level must be a mapping, got {type(data).__name__}")
    return data


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _convert(tp: Any, value: Any, file: str | Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a mapping, got {value!r}")
        return build(tp, value, file, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, file, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(file, key, f"expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_convert(item_tp, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a mapping, got {value!r}")
        _, val_tp = typing.get_args(tp)
        return {str(k): _convert(val_tp, v, file, _join(key, str(k))) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(file, key, f"expected a number, got {value!r}")
        f = float(value)
        if not math.isfinite(f):
            raise ConfigError(file, key, f"must be finite, got {value!r}")
        return f
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(file, key, f"expected a string, got {value!r}")
        return value
    return value


def build(cls: type[T], data: dict[str, Any], file: str | Path, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``: unknown and missing keys are errors.

    A field with a default may be omitted. ``__post_init__`` validation errors
    (ValueError) are re-raised as ConfigError naming the field path.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(file, _join(prefix, unknown[0]),
                          f"unknown key (allowed: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise ConfigError(file, key, "missing required key")
            continue
        kwargs[name] = _convert(hints[name], data[name], file, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        # Validators raise ValueError("field: reason"); re-anchor at our prefix.
        msg = str(exc)
        sub, _, reason = msg.partition(": ")
        if reason and sub in fields:
            raise ConfigError(file, _join(prefix, sub), reason) from exc
        raise ConfigError(file, prefix, msg) from exc


def require(cond: bool, field: str, reason: str) -> None:
    """Raise ValueError("field: reason") unless ``cond``; used in __post_init__."""
    if not cond:
        raise ValueError(f"{field}: {reason}")
