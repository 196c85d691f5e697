"""A receiver's configuration (`egate central serve --config FILE`): central or backup.

Loaded by the strict loader (`core.settings`): unknown keys, wrong types and missing files are
refused with the file and key named. `config/central.example.toml` and
`config/backup.example.toml` are complete examples; docs/sync.md, "Receiver", has every key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.settings import describe_schema, load, opt, read_secret, Secret

from sync.receiver.protocol import MAX_BATCH_BYTES, MAX_BATCH_RECORDS


@dataclass(frozen=True, kw_only=True)
class Listen:
    host: str = opt("127.0.0.1", doc="address to listen on")
    port: int = opt(8443, min=0, max=65535, doc="0: any free port (printed at start)")
    tls_cert: Path = opt(must_exist=True, kind="file", doc="the receiver's server certificate (PEM)")
    tls_key: Path = opt(must_exist=True, kind="file", doc="secret: its private key (PEM)")
    client_ca: Path = opt(must_exist=True, kind="file",
                          doc="CA certificate(s) a client's certificate must chain to (gates and forwarders)")


@dataclass(frozen=True, kw_only=True)
class Database:
    url: str = opt(doc="`sqlite:///ABSOLUTE/PATH`, `sqlite:RELATIVE/PATH` (to this file) or `postgresql://user@host:port/db`")
    password_file: Path | None = opt(None, must_exist=True, kind="file",
                                     doc="secret: the PostgreSQL password (never in the url)")
    workers: int = opt(4, min=1, max=64, doc="database connections (threads) for PostgreSQL; SQLite uses one")
    connect_timeout_s: int = opt(5, min=1, max=120)


@dataclass(frozen=True, kw_only=True)
class Forward:
    url: str = opt(doc="central's base URL, e.g. https://central.example:8443")
    ca_cert: Path = opt(must_exist=True, kind="file", doc="CA that central's server certificate chains to")
    client_cert: Path = opt(must_exist=True, kind="file", doc="this backup's forwarder certificate (CN backup:<site>)")
    client_key: Path = opt(must_exist=True, kind="file", doc="secret: its private key")
    batch_size: int = opt(500, min=1, max=MAX_BATCH_RECORDS, doc="records per request (also kept under 8 MiB)")
    poll_s: float = opt(2.0, min=0.05, max=600, doc="how often to look for records another receiver stored")
    retry_initial_s: float = opt(0.5, min=0.01, max=60, doc="first wait after central failed")
    retry_max_s: float = opt(30.0, min=0.1, max=3600, doc="longest wait between attempts")
    timeout_s: float = opt(30.0, min=0.5, max=600, doc="one request to central, connect to answer")
    refused_retry_s: float = opt(600.0, min=1, max=86400,
                                 doc="when central refuses a record (e.g. it lacks the gate's key), try it again after this")


@dataclass(frozen=True, kw_only=True)
class Publish:
    signing_key: Path | None = opt(None, must_exist=True, kind="file",
                                   doc="secret: role central: the Ed25519 key that signs bundles (`egate bundle publish`)")
    verify_key: Path | None = opt(None, must_exist=True, kind="file",
                                  doc="role backup: central's publishing key (public): what it mirrors must verify (unset: form only)")
    mirror_s: float = opt(30.0, min=0.05, max=86400, doc="role backup: how often to ask central for newer bundles")
    max_bytes: int = opt(64 * 1024 * 1024, min=1024, max=1024 * 1024 * 1024, doc="largest bundle published or mirrored")


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_batch_records: int = opt(MAX_BATCH_RECORDS, min=1, max=MAX_BATCH_RECORDS)
    max_batch_bytes: int = opt(MAX_BATCH_BYTES, min=64 * 1024, max=MAX_BATCH_BYTES)
    heartbeat_history_days: float = opt(7.0, min=0.01, max=3650, doc="heartbeat history kept; the latest per gate always")


@dataclass(frozen=True, kw_only=True)
class Logging:
    level: Literal["debug", "info", "warning", "error"] = opt("info")
    format: Literal["auto", "json", "console"] = opt("auto")


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    role: Literal["central", "backup"] = opt(doc="central keeps the records; a backup also forwards them to central")
    site: str = opt(doc="where this receiver runs: an airport or port code, or `offsite`")
    listen: Listen = opt()
    database: Database = opt()
    gate_keys_dir: Path = opt(must_exist=True, kind="dir", doc="`<gate id>.pem`: each gate's Ed25519 record key")
    trusted_forwarders: tuple[str, ...] = opt((), doc="client CNs that may send other gates' records (backup:<site>)")
    forward: Forward | None = opt(None, doc="role backup only: where and how to forward to central")
    publish: Publish = opt(Publish(), doc="downstream bundles (docs/sync.md, Downstream)")
    limits: Limits = opt(Limits())
    logging: Logging = opt(Logging())
    source: Path | None = field(default=None, metadata={"internal": True})

    @property
    def name(self) -> str:
        return self.role if self.role == "central" else f"backup:{self.site}"


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the database is: `kind` is sqlite (with `path`) or postgresql (with `dsn`)."""
    kind: Literal["sqlite", "postgresql"]
    path: Path | None = None
    dsn: str | None = None
    password: Secret | None = None
    connect_timeout_s: int = 5

    def display(self) -> str:
        return f"sqlite:{self.path}" if self.kind == "sqlite" else self.dsn


def database_target(db: Database, base: Path | None = None, config_path: Path | None = None) -> DatabaseTarget:
    """The database a `[database]` table names, checked: a password only from password_file."""
    where = config_path or "(receiver config)"
    url = db.url
    if url.startswith("sqlite:"):
        rest = url.removeprefix("sqlite:")
        if rest.startswith("//"):
            rest = rest[2:]  # sqlite:///abs -> /abs
            if not rest.startswith("/"):
                raise ConfigError(where, "database.url", repr(url), "sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH")
        if not rest:
            raise ConfigError(where, "database.url", repr(url), "a database file after sqlite:")
        path = Path(rest)
        if not path.is_absolute():
            path = Path(os.path.abspath((base or Path.cwd()) / path))
        if db.password_file is not None:
            raise ConfigError(where, "database.password_file", "a password for SQLite", "no password_file with sqlite")
        return DatabaseTarget("sqlite", path=path, connect_timeout_s=db.connect_timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        if parts.password:
            raise ConfigError(where, "database.url", "a password in the url", "the password in database.password_file")
        password = read_secret(db.password_file) if db.password_file else None
        return DatabaseTarget("postgresql", dsn=url, password=password, connect_timeout_s=db.connect_timeout_s)
    raise ConfigError(where, "database.url", repr(url[:60]), "sqlite:... or postgresql://...")


def check(cfg: ReceiverConfig) -> ReceiverConfig:
    """Rules across keys: a backup forwards, central does not; URLs are HTTPS."""
    where = cfg.source or "(receiver config)"
    if cfg.role == "backup" and cfg.forward is None:
        raise ConfigError(where, "forward", "nothing (missing)", "a [forward] table for role backup")
    if cfg.role == "central" and cfg.forward is not None:
        raise ConfigError(where, "forward", "a [forward] table", "no [forward] for role central (it forwards to nobody)")
    if cfg.role == "backup" and cfg.publish.signing_key is not None:
        raise ConfigError(where, "publish.signing_key", "a signing key on a backup", "none: only central publishes")
    if cfg.forward is not None:
        parts = urlsplit(cfg.forward.url)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(where, "forward.url", repr(cfg.forward.url), "https://HOST:PORT (no path)")
    database_target(cfg.database, cfg.source.parent if cfg.source else None, cfg.source)
    return cfg


def load_receiver(path: str | Path) -> ReceiverConfig:
    return check(load(path, ReceiverConfig))


def reference_markdown() -> str:
    """The receiver configuration reference in docs/sync.md, generated from the schema."""
    rows = describe_schema(ReceiverConfig)
    lines = ["| key | type | default | notes |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | `{d}` | {doc} |" for k, t, d, doc in rows]
    return "\n".join(lines) + "\n"


__all__ = ["ReceiverConfig", "Listen", "Database", "Forward", "Publish", "Limits", "Logging", "DatabaseTarget",
           "database_target", "load_receiver", "reference_markdown", "check"]
