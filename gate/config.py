"""Strict TOML configuration.

Files are loaded once at start into frozen dataclasses. The schema *is* the
dataclasses: each field's type, range and choices are declared next to it, and
the loader rejects unknown keys, wrong types, out-of-range values and missing
referenced files with one `ConfigError` naming file, key, found and expected.

Secrets (keys, passwords) are configured as file paths and read through
`read_secret`, whose result never renders its content.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gate.errors import ConfigError


def opt(default=dataclasses.MISSING, *, min=None, max=None, must_exist=False, kind=None, doc=""):
    """Declare a config field: default, numeric range, and for paths whether the file must exist.

    kind="file"/"dir" says what a path must be when must_exist is set.
    """
    meta = {"min": min, "max": max, "must_exist": must_exist, "kind": kind, "doc": doc}
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


# ---------------------------------------------------------------- gate schema

@dataclass(frozen=True, kw_only=True)
class GateIdentity:
    id: str = opt(doc="unique gate id, e.g. TPE-T1-D-07")
    site: str = opt(doc="airport or port code")
    lane: int = opt(min=1, max=999)
    direction: Literal["arrival", "departure"] = opt()


@dataclass(frozen=True, kw_only=True)
class SerialPort:
    port: str = opt(doc="pyserial URL or device path")
    baudrate: int = opt(115200, min=1200, max=3_000_000)
    usb_id: str = opt("", doc="VID:PID[:serial] for hotplug matching; empty disables")


@dataclass(frozen=True, kw_only=True)
class DoorConfig(SerialPort):
    watchdog_ms: int = opt(1000, min=200, max=10_000, doc="controller locks both leaves if the host is silent this long")
    beams: int = opt(8, min=2, max=64)


@dataclass(frozen=True, kw_only=True)
class ChipReaderConfig:
    reader: str = opt(doc="PC/SC reader name (substring match); never readers()[0]")
    apdu_timeout_s: float = opt(2.0, min=0.05, max=30.0)


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    source: str = opt(doc="device index, file path or stream URL")
    width: int = opt(640, min=160, max=4096)
    height: int = opt(480, min=120, max=4096)


@dataclass(frozen=True, kw_only=True)
class ScreenConfig:
    languages: tuple[str, ...] = opt(("zh-TW", "en"))
    listen: str = opt("127.0.0.1:8480", doc="host:port of the traveller kiosk page")


@dataclass(frozen=True, kw_only=True)
class Devices:
    door: DoorConfig = opt()
    mrz_reader: SerialPort = opt()
    chip_reader: ChipReaderConfig = opt()
    camera: CameraConfig = opt()
    fingerprint: SerialPort = opt()
    screen: ScreenConfig = opt(ScreenConfig())


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    document_s: float = opt(30.0, min=1, max=300)
    chip_read_s: float = opt(15.0, min=1, max=120)
    face_capture_s: float = opt(10.0, min=1, max=120)
    finger_capture_s: float = opt(10.0, min=1, max=120)
    passage_s: float = opt(60.0, min=5, max=600)
    door_travel_s: float = opt(3.0, min=0.5, max=30)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    face_fmr: float = opt(0.001, min=1e-6, max=0.1, doc="target false-match rate for face")
    finger_fmr: float = opt(0.001, min=1e-6, max=0.1)
    nfiq2_min: int = opt(30, min=0, max=100)
    face_quality_min: float = opt(0.5, min=0.0, max=1.0)
    face_attempts: int = opt(3, min=1, max=10)
    finger_attempts: int = opt(3, min=1, max=10)


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    min_age_years: int = opt(10, min=0, max=120)
    min_height_cm: int = opt(120, min=50, max=250)
    document_types: tuple[str, ...] = opt(("P",))
    nationals: tuple[str, ...] = opt(("TWN",), doc="ICAO codes served as nationals")
    foreigners_on: tuple[Literal["arrival", "departure"], ...] = opt(("departure",))
    require_passive_auth: bool = opt(True)
    require_active_auth: bool = opt(False)
    require_fingerprint: bool = opt(False)


@dataclass(frozen=True, kw_only=True)
class Pki:
    csca_dir: Path | None = opt(None, must_exist=True, kind="dir")
    master_list: Path | None = opt(None, must_exist=True, kind="file")
    crl_dir: Path | None = opt(None, must_exist=True, kind="dir")
    watchlist_signer: Path | None = opt(None, must_exist=True, kind="file")


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    central_url: str = opt()
    backup_url: str = opt()
    ca_cert: Path | None = opt(None, must_exist=True, kind="file")
    client_cert: Path | None = opt(None, must_exist=True, kind="file")
    client_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret")
    batch_size: int = opt(100, min=1, max=10_000)
    retry_initial_s: float = opt(0.5, min=0.01, max=60)
    retry_max_s: float = opt(30.0, min=0.1, max=3600)
    failback_probe_s: float = opt(10.0, min=0.1, max=3600)


@dataclass(frozen=True, kw_only=True)
class Storage:
    data_dir: Path = opt(doc="outbox, watchlist cache and audit trail live here; created if missing")
    signing_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret: passage-record signing key")
    template_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret: AES-GCM key for enrolled templates")


@dataclass(frozen=True, kw_only=True)
class Logging:
    level: Literal["debug", "info", "warning", "error"] = opt("info")
    format: Literal["auto", "json", "console"] = opt("auto")


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    gate: GateIdentity = opt()
    devices: Devices = opt()
    storage: Storage = opt()
    sync: SyncConfig = opt()
    timeouts: Timeouts = opt(Timeouts())
    thresholds: Thresholds = opt(Thresholds())
    eligibility: Eligibility = opt(Eligibility())
    pki: Pki = opt(Pki())
    logging: Logging = opt(Logging())
    source: Path | None = field(default=None, metadata={"internal": True})  # the file it came from


# ------------------------------------------------------------- central schema

@dataclass(frozen=True, kw_only=True)
class Listen:
    host: str = opt("127.0.0.1")
    port: int = opt(8443, min=1, max=65535)
    tls_cert: Path | None = opt(None, must_exist=True, kind="file")
    tls_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret")
    client_ca: Path | None = opt(None, must_exist=True, kind="file")


@dataclass(frozen=True, kw_only=True)
class Database:
    url: str = opt(doc="sqlite:///path or postgresql://user@host/db")
    password_file: Path | None = opt(None, must_exist=True, kind="file", doc="secret")


@dataclass(frozen=True, kw_only=True)
class CentralConfig:
    role: Literal["central", "backup"] = opt()
    listen: Listen = opt(Listen())
    database: Database = opt()
    gate_keys_dir: Path | None = opt(None, must_exist=True, kind="dir", doc="public keys that verify gate records")
    logging: Logging = opt(Logging())
    source: Path | None = field(default=None, metadata={"internal": True})  # the file it came from


# ------------------------------------------------------------------- loader

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
        return cls(**values)

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
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            self.fail(key, _describe(raw), f"{_expected(tp)} in {lo}..{hi}")
        return raw


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


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
    cfg = _Loader(path).table(schema, raw, "")
    has_source = any(f.name == "source" for f in dataclasses.fields(schema))
    return dataclasses.replace(cfg, source=path) if has_source else cfg


def load_gate(path: str | Path) -> GateConfig:
    return load(path, GateConfig)


def load_central(path: str | Path) -> CentralConfig:
    return load(path, CentralConfig)


def detect_schema(path: str | Path) -> type:
    """Tell a gate file from a central file by its top-level tables."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return GateConfig  # load() then reports the precise problem
    return CentralConfig if "role" in raw or "database" in raw else GateConfig


def describe_schema(cls=GateConfig, prefix="") -> list[tuple[str, str, str, str]]:
    """Rows of (key, type, default, doc) for the README configuration reference."""
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
        rows.append((key, _expected(tp) + rng, default, f.metadata.get("doc", "")))
    return rows


def reference_markdown() -> str:
    """The configuration reference in docs/configuration.md, generated from the schema."""
    parts = ["# Configuration reference", "",
             "Generated by `egate config reference` from `gate/config.py`; a test keeps it in step.",
             "Relative paths are relative to the config file. Unknown keys are errors."]
    for title, schema in (("Gate (`config/gate.example.toml`)", GateConfig),
                          ("Central and backup (`config/central.example.toml`)", CentralConfig)):
        parts += ["", f"## {title}", "", "| key | type | default | notes |", "|---|---|---|---|"]
        parts += [f"| `{k}` | {t} | `{d}` | {doc} |" for k, t, d, doc in describe_schema(schema)]
    return "\n".join(parts) + "\n"
