"""The gate's configuration: the device schemas (each beside its driver) composed with the
gate's own settings, loaded by the strict loader in `core.settings`.

`egate config check FILE` validates a file; `egate config reference` prints
docs/configuration.md from these schemas.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import ConfigError
from core.settings import describe_schema, load, opt
from drivers.camera.config import CameraConfig
from drivers.door.config import DoorConfig
from drivers.emrtd.config import ChipReaderConfig
from drivers.fingerprint.config import FingerprintConfig
from drivers.mrz_reader.config import MrzReaderConfig
from drivers.page_scanner.config import PageScannerConfig
from drivers.screen.config import ScreenConfig
from gate.console.config import ConsoleConfig
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
    mrz_reader: MrzReaderConfig | None = opt(None, doc="the serial MRZ reader; configure it, the page scanner or both")
    page_scanner: PageScannerConfig | None = opt(None, doc="a document camera whose page images the two-engine MRZ "
                                                           "pipeline reads (docs/mrz_reader.md)")
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
class StateChipAuth:
    """Clone detection for some issuing states (`[[eligibility.chip_authentication_by_state]]`)."""
    states: tuple[str, ...] = opt(doc="issuing states (ICAO codes as in the MRZ: D, NLD, TWN, ...)")
    mode: Literal["off", "when_offered", "required"] = opt()


Category = Literal["national", "resident", "foreigner"]


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    """Who may use this gate (docs/decisions.md, "Eligibility"); each refusal has its own reason."""
    min_age_years: int = opt(10, min=0, max=120, doc="from the chip's DG1 once passive authentication passed")
    min_height_cm: int = opt(120, min=0, max=250,
                             doc="0: no height limit; otherwise the beam row that measures it, "
                                 "`devices.door.high_row_cm`, must be mounted at this height")
    document_types: tuple[str, ...] = opt(("P",), doc="document codes served, exactly as printed (P, PD, PO, ...): "
                                                       "P does not accept PD")
    issuing_states: tuple[str, ...] = opt((), doc="issuing states served (ICAO codes); empty: every state")
    min_validity_days: int = opt(0, min=0, max=3650, doc="the document must still be valid this many days after today")
    expired_grace_days: int = opt(0, min=0, max=3650,
                                  doc="nationals arriving may use a passport expired at most this many days")
    nationals: tuple[str, ...] = opt(("TWN",), doc="ICAO codes served as nationals")
    residents_on: tuple[Literal["arrival", "departure"], ...] = opt(
        ("arrival", "departure"), doc="directions residents (a registered permit, `screening.residents`) may use")
    foreigners_on: tuple[Literal["arrival", "departure"], ...] = opt(("departure",))
    enrolment_required: tuple[Category, ...] = opt(
        (), doc="categories that must have enrolled (a fingerprint template on this gate) to use it")
    require_passive_auth: bool = opt(True)
    chip_authentication: Literal["off", "when_offered", "required"] = opt(
        "when_offered", doc="clone detection (Active Authentication, Chip Authentication, PACE-CAM): a chip that "
                            "fails it is refused; `required` also refuses a chip that offers none; per issuing "
                            "state in `chip_authentication_by_state`")
    chip_authentication_by_state: tuple[StateChipAuth, ...] = opt(
        (), doc="`[[eligibility.chip_authentication_by_state]]` tables of `states` and `mode`: the mode for "
                "documents of those issuing states")
    require_fingerprint: bool = opt(False)


@dataclass(frozen=True, kw_only=True)
class ControlListConfig:
    enabled: bool = opt(False, doc="screen every traveller against the control list (downstream kinds "
                                   "`controllist` and `controllist-delta` in `sync.bundles.kinds`)")
    max_age_s: float = opt(86400.0, min=60, max=31 * 86400,
                           doc="an older list (or none, or one that fails its signature) takes the lane out of service")
    match: tuple[Literal["document", "name_birth_date"], ...] = opt(
        ("document", "name_birth_date"), doc="what makes a hit: document number + issuing state, and/or "
                                             "the folded name (ICAO 9303 part 3) + birth date")
    name_rule: Literal["full", "first"] = opt("full", doc="names match on surname and every given name, "
                                                          "or on surname and the first given name")


@dataclass(frozen=True, kw_only=True)
class Residents:
    enabled: bool = opt(False, doc="a resident register (downstream kind `residents`) tells residents with a "
                                   "registered permit from other foreigners; unusable: they count as foreigners")
    max_age_s: float = opt(7 * 86400.0, min=60, max=366 * 86400)


@dataclass(frozen=True, kw_only=True)
class Reuse:
    window_s: float = opt(0.0, min=0, max=366 * 86400,
                          doc="refuse a document this gate cleared less than this long ago; 0: off")
    central: bool = opt(False, doc="ask central for an open crossing in this direction (arrived twice without "
                                   "leaving, left without having arrived)")
    central_timeout_s: float = opt(1.0, min=0.05, max=10, doc="without an answer in time the check is skipped "
                                                               "and the record says so")


@dataclass(frozen=True, kw_only=True)
class Screening:
    control_list: ControlListConfig = opt(ControlListConfig())
    residents: Residents = opt(Residents())
    reuse: Reuse = opt(Reuse())


@dataclass(frozen=True, kw_only=True)
class Pki:
    csca_dir: Path | None = opt(None, must_exist=True, kind="dir")
    master_list: Path | None = opt(None, must_exist=True, kind="file")
    crl_dir: Path | None = opt(None, must_exist=True, kind="dir")
    watchlist_signer: Path | None = opt(None, must_exist=True, kind="file",
                                        unsupported="the control list is verified with central's publishing key "
                                                    "(`sync.bundles.publisher_key`)")


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
    screening: Screening = opt(Screening())
    pki: Pki = opt(Pki())
    logging: Logging = opt(Logging())
    console: ConsoleConfig = opt(ConsoleConfig())
    source: Path | None = field(default=None, metadata={"internal": True})  # the file it came from


def load_gate(path: str | Path) -> GateConfig:
    cfg = load(path, GateConfig)
    _check_policy(cfg)
    return cfg


def _check_policy(cfg: GateConfig) -> None:
    """What the schema alone cannot say: settings that must agree with each other."""
    el, src = cfg.eligibility, cfg.source or "(gate config)"
    if el.min_height_cm and el.min_height_cm != cfg.devices.door.high_row_cm:
        raise ConfigError(src, "eligibility.min_height_cm", str(el.min_height_cm),
                          f"0 (no limit) or {cfg.devices.door.high_row_cm}: the height of the beam row that measures "
                          "it (`devices.door.high_row_cm`; mount the row at the limit)")
    for i, rule in enumerate(el.chip_authentication_by_state):
        for state in rule.states:
            if not (1 <= len(state) <= 3 and state.isalpha() and state.isupper()):
                raise ConfigError(src, f"eligibility.chip_authentication_by_state[{i}].states", repr(state),
                                  "ICAO codes of one to three capital letters")
    for code in el.document_types:
        if not (1 <= len(code) <= 2 and code.isalpha() and code.isupper()):
            raise ConfigError(src, "eligibility.document_types", repr(code), "document codes such as P, PD, I, AC")
    sc = cfg.screening
    kinds = set(cfg.sync.bundles.kinds)
    for on, key, need in ((sc.control_list.enabled, "screening.control_list.enabled", ("controllist", "controllist-delta")),
                          (sc.residents.enabled, "screening.residents.enabled", ("residents",))):
        if not on:
            continue
        if cfg.sync.bundles.publisher_key is None:
            raise ConfigError(src, "sync.bundles.publisher_key", "nothing",
                              f"central's publishing key: {key} verifies the list with it")
        if not set(need) <= kinds:
            raise ConfigError(src, "sync.bundles.kinds", repr(sorted(kinds)), f"{', '.join(need)} among them ({key})")


def reference_markdown() -> str:
    """The configuration reference in docs/configuration.md, generated from the schemas."""
    parts = ["# Configuration reference", "",
             "Generated by `egate config reference` from `gate/config.py` and the device schemas beside each",
             "driver (`drivers/*/config.py`); a test keeps it in step. Relative paths are relative to the",
             "config file. Unknown keys are errors, and so are settings marked *not supported yet*.",
             "", "## Gate (`config/gate.example.toml`)", "", "| key | type | default | notes |", "|---|---|---|---|"]
    parts += [f"| `{k}` | {t} | `{d}` | {doc} |" for k, t, d, doc in describe_schema(GateConfig)]
    return "\n".join(parts) + "\n"
