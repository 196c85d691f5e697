"""Settings of the store-and-forward sync agent (`sync` in the gate's config)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class Bundles:
    """What the agent pulls downstream from the receivers (`[sync.bundles]`, docs/sync.md "Downstream")."""
    kinds: tuple[str, ...] = opt((), doc="bundle kinds to pull (crl, masterlist, controllist); empty: none")
    publisher_key: Path | None = opt(None, must_exist=True, kind="file",
                                     doc="central's Ed25519 publishing key (public, PEM); required with kinds")
    dir: Path | None = opt(None, doc="where installed bundles go (`<kind>/current`); default `<storage.data_dir>/bundles`")
    interval_s: float = opt(300.0, min=1, max=86400, doc="how often the active endpoint is asked for newer bundles")
    max_age_s: float = opt(7 * 86400.0, min=60, max=366 * 86400,
                           doc="a bundle created longer ago is refused as stale (an installed one shows stale)")
    timeout_s: float = opt(60.0, min=1, max=3600, doc="one bundle download, connect to last byte")
    max_bytes: int = opt(64 * 1024 * 1024, min=1024, max=1024 * 1024 * 1024, doc="largest bundle accepted")


@dataclass(frozen=True, kw_only=True)
class SyncConfig:
    # Endpoints, in the order the agent prefers them; only central is required for sync to run.
    central_url: str = opt("", doc="https://host:port of the central system; empty: records stay in the outbox")
    backup_url: str = opt("", doc="the site's backup receiver, first to fail over to")
    offsite_url: str = opt("", doc="the integrated off-site backup, last resort")
    ca_cert: Path | None = opt(None, must_exist=True, kind="file", doc="CA that signs the receivers' certificates")
    client_cert: Path | None = opt(None, must_exist=True, kind="file", doc="this gate's TLS client certificate (CN = gate id)")
    client_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret")
    batch_size: int = opt(100, min=1, max=1000)
    request_timeout_s: float = opt(5.0, min=0.1, max=120)
    retry_initial_s: float = opt(0.5, min=0.01, max=60)
    retry_max_s: float = opt(30.0, min=0.1, max=3600)
    failover_after: int = opt(3, min=1, max=100, doc="consecutive failed requests before moving down the list")
    failover_timeout_s: float = opt(10.0, min=0.5, max=3600, doc="...or this long without an acknowledgement")
    failback_probe_s: float = opt(10.0, min=0.1, max=3600, doc="how often a better endpoint is probed")
    failback_after: int = opt(3, min=1, max=100, doc="consecutive successful probes before moving back up")
    min_dwell_s: float = opt(30.0, min=0, max=86400, doc="least time on an endpoint before moving back up")
    heartbeat_s: float = opt(5.0, min=0.5, max=3600)
    document_number: Literal["full", "keyed_hash"] = opt("full", doc="how records carry the document number")
    document_hash_key: Path | None = opt(None, must_exist=True, kind="file", doc="secret: HMAC key for keyed_hash")
    outbox_max_records: int = opt(200_000, min=10, max=100_000_000,
                                  doc="alarm at 70 %; at 100 % the lane takes no new passage (nothing is dropped)")
    bundles: Bundles = opt(Bundles())

    @property
    def endpoints(self) -> list[tuple[str, str]]:
        """(role, url) in order of preference, the configured ones only."""
        return [(role, url) for role, url in (("central", self.central_url), ("backup", self.backup_url),
                                               ("offsite", self.offsite_url)) if url]
