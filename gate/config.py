"""The gate's configuration: the device schemas (each beside its driver) composed with the
gate's own settings, loaded by the strict loader in `core.settings`.

`egate config check FILE` validates a file; `egate config reference` prints
docs/configuration.md from these schemas.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.settings import describe_schema, load, opt
from drivers.camera.config import CameraConfig
from drivers.door.config import DoorConfig
from drivers.emrtd.config import ChipReaderConfig
from drivers.fingerprint.config import FingerprintConfig
from drivers.mrz_reader.config import MrzReaderConfig
from drivers.screen.config import ScreenConfig
from sync.config import SyncConfig


@dataclass(frozen=True, kw_only=True)
class GateIdentity:
    id: str = opt(doc="unique gate id, e.g. TPE-T1-D-07")
    site: str = opt(doc="airport or port code")
    lane: int = opt(min=1, max=999)
    direction: Literal["arrival", "departure"] = opt()


@dataclass(frozen=True, kw_only=True)
class Devices:
    door: DoorConfig = opt()
    mrz_reader: MrzReaderConfig = opt()
    chip_reader: ChipReaderConfig = opt()
    camera: CameraConfig = opt()
    fingerprint: FingerprintConfig = opt()
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
    face_quality_min: float = opt(0.5, min=0.0, max=1.0,
                                  unsupported="face quality is a set of pass/fail checks, not one score")
    face_attempts: int = opt(3, min=1, max=10, unsupported="the face step has one capture window, no retries")
    finger_attempts: int = opt(3, min=1, max=10)


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    min_age_years: int = opt(10, min=0, max=120)
    min_height_cm: int = opt(120, min=50, max=250,
                             unsupported="the beam array's upper row is fixed at 120 cm", honoured=120)
    document_types: tuple[str, ...] = opt(("P",))
    nationals: tuple[str, ...] = opt(("TWN",), doc="ICAO codes served as nationals")
    foreigners_on: tuple[Literal["arrival", "departure"], ...] = opt(("departure",))
    require_passive_auth: bool = opt(True)
    chip_authentication: Literal["off", "when_offered", "required"] = opt(
        "when_offered", doc="clone detection (Active Authentication, Chip Authentication, PACE-CAM): a chip that "
                            "fails it is refused; `required` also refuses a chip that offers none")
    require_fingerprint: bool = opt(False)


@dataclass(frozen=True, kw_only=True)
class Pki:
    csca_dir: Path | None = opt(None, must_exist=True, kind="dir")
    master_list: Path | None = opt(None, must_exist=True, kind="file")
    crl_dir: Path | None = opt(None, must_exist=True, kind="dir")
    watchlist_signer: Path | None = opt(None, must_exist=True, kind="file",
                                        unsupported="control-list screening is not built yet")


@dataclass(frozen=True, kw_only=True)
class Storage:
    data_dir: Path = opt(doc="the outbox (passage records, journal) and the audit trail live here; created if missing")
    signing_key: Path | None = opt(None, must_exist=True, kind="file",
                                   doc="secret: Ed25519 key (PEM) that signs every passage record; required")
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
    sync: SyncConfig = opt(SyncConfig())
    timeouts: Timeouts = opt(Timeouts())
    thresholds: Thresholds = opt(Thresholds())
    eligibility: Eligibility = opt(Eligibility())
    pki: Pki = opt(Pki())
    logging: Logging = opt(Logging())
    source: Path | None = field(default=None, metadata={"internal": True})  # the file it came from


def load_gate(path: str | Path) -> GateConfig:
    return load(path, GateConfig)


def reference_markdown() -> str:
    """The configuration reference in docs/configuration.md, generated from the schemas."""
    parts = ["# Configuration reference", "",
             "Generated by `egate config reference` from `gate/config.py` and the device schemas beside each",
             "driver (`drivers/*/config.py`); a test keeps it in step. Relative paths are relative to the",
             "config file. Unknown keys are errors, and so are settings marked *not supported yet*.",
             "", "## Gate (`config/gate.example.toml`)", "", "| key | type | default | notes |", "|---|---|---|---|"]
    parts += [f"| `{k}` | {t} | `{d}` | {doc} |" for k, t, d, doc in describe_schema(GateConfig)]
    return "\n".join(parts) + "\n"
