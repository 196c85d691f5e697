"""The strict settings loader: TOML files into frozen, typed dataclasses.

A schema *is* a set of dataclasses: each field's type, range and choices are declared next to it
with `opt`, and the loader rejects unknown keys, wrong types, out-of-range or non-finite numbers,
missing referenced files and settings the code does not honour yet, with one `ConfigError` naming
file, key, found and expected. Device schemas live beside their drivers; applications compose them.

Secrets (keys, passwords) are configured as file paths and read through `read_secret`, whose
result never renders its content.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError

_UNSET = object()


def opt(default=dataclasses.MISSING, *, min=None, max=None, must_exist=False, kind=None, doc="",
        unsupported="", honoured=_UNSET):
    """Declare a setting: default, numeric range, and for paths whether the file must exist.

    kind="file"/"dir" says what a path must be when must_exist is set. `unsupported` says why the
    code does not honour this setting yet: the loader then refuses the key whenever it is present,
    or, with `honoured`, whenever its value differs from the one value the code does honour.
    """
    meta = {"min": min, "max": max, "must_exist": must_exist, "kind": kind, "doc": doc,
            "unsupported": unsupported, "honoured": honoured}
    return field(default=default, metadata=meta)


class Secret:
    """A secret read from a file: usable as bytes, never shown."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes):
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


def read_secret(path: Path) -> Secret:
    return Secret(Path(path).read_bytes().strip())


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _expected(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_expected(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", Path: "a path string"}[tp]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Loader:
    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent

    def fail(self, key, found, expected):
        raise ConfigError(self.path, key, found, expected)

    def table(self, cls, data: Any, key: str):
        if not isinstance(data, dict):
            self.fail(key or "(top level)", _describe(data), "a table")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        for name in data:
            if name not in fields:
                self.fail(_join(key, name), "an unknown key", "one of " + ", ".join(sorted(fields)))
        values = {}
        for name, f in fields.items():
            sub = _join(key, name)
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(sub, "nothing (missing)", _expected(hints[name]))
                continue
            values[name] = self.value(hints[name], data[name], sub, f.metadata)
            self.refuse_unsupported(sub, values[name], f.metadata)
        return cls(**values)

    def refuse_unsupported(self, key: str, value, meta) -> None:
        why = meta.get("unsupported")
        if not why:
            return
        honoured = meta.get("honoured", _UNSET)
        if honoured is _UNSET:
            self.fail(key, f"{_describe(value)}, a setting that is not supported yet ({why})", "no such key")
        if value != honoured:
            self.fail(key, f"{_describe(value)}, a value that is not supported yet ({why})", repr(honoured))

    def value(self, tp, raw, key, meta):
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
            return self.value(inner, raw, key, meta)
        if dataclasses.is_dataclass(tp):
            return self.table(tp, raw, key)
        if origin is Literal:
            if raw not in typing.get_args(tp):
                self.fail(key, _describe(raw), _expected(tp))
            return raw
        if origin is tuple:  # TOML arrays become tuples: config is immutable
            if not isinstance(raw, list):
                self.fail(key, _describe(raw), _expected(tp))
            inner = typing.get_args(tp)[0]
            return tuple(self.value(inner, item, f"{key}[{i}]", {}) for i, item in enumerate(raw))
        if tp is Path:
            if not isinstance(raw, str) or not raw:
                self.fail(key, _describe(raw), "a path string")
            p = Path(raw)
            p = p if p.is_absolute() else (self.base / p)
            if meta.get("must_exist"):
                kind = meta.get("kind")
                ok = p.is_file() if kind == "file" else p.is_dir() if kind == "dir" else p.exists()
                if not ok:
                    self.fail(key, f"{raw!r} (no such {kind or 'path'}: {p})", f"an existing {kind or 'path'}")
            return p
        # bool is an int in Python: refuse it where a number is expected, and vice versa.
        if tp is float and isinstance(raw, int) and not isinstance(raw, bool):
            raw = float(raw)
        if not isinstance(raw, tp) or (tp is not bool and isinstance(raw, bool)):
            self.fail(key, _describe(raw), _expected(tp))
        if tp is str and not raw.strip():
            self.fail(key, "an empty string", "a non-empty string")
        lo, hi = meta.get("min"), meta.get("max")
        if tp is float and not math.isfinite(raw):  # nan passes every comparison; inf is never a bound
            self.fail(key, _describe(raw), "a finite number" + (f" in {lo}..{hi}" if lo is not None else ""))
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            self.fail(key, _describe(raw), f"{_expected(tp)} in {lo}..{hi}")
        return raw


T = typing.TypeVar("T")


def load(path: str | Path, schema: type[T]) -> T:
    """Load and validate a TOML file against a schema dataclass."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "no such file", "a readable TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "(file)", f"bytes that are not UTF-8 ({exc.reason})", "UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", str(exc), "valid TOML") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(path, "(syntax)", "values nested too deeply to parse", "valid TOML") from None
    cfg = _Loader(path).table(schema, raw, "")
    has_source = any(f.name == "source" for f in dataclasses.fields(schema))
    return dataclasses.replace(cfg, source=path) if has_source else cfg


def describe_schema(cls, prefix="") -> list[tuple[str, str, str, str]]:
    """Rows of (key, type, default, doc) for a configuration reference."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        key = _join(prefix, f.name)
        inner = tp
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        if dataclasses.is_dataclass(inner):
            rows.extend(describe_schema(inner, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        rng = ""
        if f.metadata.get("min") is not None:
            rng = f" ({f.metadata['min']}..{f.metadata['max']})"
        doc = f.metadata.get("doc", "")
        if f.metadata.get("unsupported"):
            honoured = f.metadata.get("honoured", _UNSET)
            only = "refused when set" if honoured is _UNSET else f"only {honoured!r} accepted"
            doc = f"{doc}; " if doc else ""
            doc += f"**not supported yet** ({f.metadata['unsupported']}): {only}"
        rows.append((key, _expected(tp) + rng, default, doc))
    return rows
