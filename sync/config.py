"""Settings of the store-and-forward sync agent (`sync` in the gate's config).

The agent is not built yet: every key is refused at load rather than silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import opt

_NOT_YET = "the store-and-forward sync agent is not built yet"


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    central_url: str = opt("", unsupported=_NOT_YET)
    backup_url: str = opt("", unsupported=_NOT_YET)
    ca_cert: Path | None = opt(None, must_exist=True, kind="file", unsupported=_NOT_YET)
    client_cert: Path | None = opt(None, must_exist=True, kind="file", unsupported=_NOT_YET)
    client_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret", unsupported=_NOT_YET)
    batch_size: int = opt(100, min=1, max=10_000, unsupported=_NOT_YET)
    retry_initial_s: float = opt(0.5, min=0.01, max=60, unsupported=_NOT_YET)
    retry_max_s: float = opt(30.0, min=0.1, max=3600, unsupported=_NOT_YET)
    failback_probe_s: float = opt(10.0, min=0.1, max=3600, unsupported=_NOT_YET)
