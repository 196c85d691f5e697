"""Builds one gate process from its config: drivers, steps, controller, on one reactor.

Every driver is a `core.component.Component` added in dependency order; the controller is the
reactor's service. The reactor cancels the services (passage controller, sync agent) first and stops components
in reverse, so on SIGTERM the passage is aborted first (its record written to the outbox), the
devices stop next (the door driver locks both leaves as it stops, unless the emergency input
holds them open), and the outbox is closed last. Each driver's events reach the controller
through one path: its sink hands them to the loop with `reactor.call_from_thread`.
"""
from __future__ import annotations

from biometrics.privacy import TemplateVault
from core import audit, logs
from core.errors import ConfigError
from core.settings import read_secret
from drivers.camera.driver import Camera
from drivers.door.driver import DoorController
from drivers.emrtd.pcsc import PcscReader
from drivers.fingerprint.driver import FingerprintScanner
from drivers.hotplug import HotplugMonitor, watch_configured
from drivers.mrz_reader.driver import MrzReader
from drivers.page_scanner.driver import PageScanner
from drivers.screen.driver import Screen
from drivers.screen.kiosk import build_screen
from gate.config import GateConfig
from gate.console.service import ConsoleService
from gate import screening
from gate.controller import Devices, GateController
from gate.decision import Decider
from gate.reactor import Reactor
from gate.steps import ChipStep, EnrolmentStore, FaceStep, FingerStep
from icao9303.trust import CRL_SUFFIXES, TrustStore
from sync.agent import SyncAgent
from sync.outbox import Outbox
from sync.record import RecordError, load_signing_key

log = logs.get("app")


def load_trust(cfg: GateConfig) -> TrustStore:
    store = TrustStore()
    if cfg.pki.csca_dir:
        store = TrustStore.from_dir(cfg.pki.csca_dir)
    if cfg.pki.master_list:
        store.add_master_list(cfg.pki.master_list.read_bytes(), anchors=store)
    if cfg.pki.crl_dir and cfg.pki.crl_dir != cfg.pki.csca_dir:  # from_dir took the CSCA dir's CRLs
        for p in sorted(cfg.pki.crl_dir.rglob("*")):
            if p.is_file() and p.suffix.lower() in CRL_SUFFIXES:
                store.add_crl(p)
    if not store.cscas and cfg.eligibility.require_passive_auth:
        raise ConfigError(cfg.source or "(gate config)", "pki.csca_dir", "no CSCA certificate",
                          "a CSCA directory or master list: passive authentication is required")
    if cfg.eligibility.require_passive_auth and not store.crls:
        raise ConfigError(cfg.source or "(gate config)", "pki.crl_dir", "no CRL",
                          "a directory of current CRLs: revocation is a required passive-authentication check")
    return store


def open_outbox(cfg: GateConfig) -> Outbox:
    """The signed outbox in the data directory; the settings it needs are checked here, by name."""
    source = cfg.source or "(gate config)"
    if cfg.storage.signing_key is None:
        raise ConfigError(source, "storage.signing_key", "nothing", "an Ed25519 key file: every passage record is signed")
    try:
        key = load_signing_key(cfg.storage.signing_key)
    except RecordError as exc:
        raise ConfigError(source, "storage.signing_key", str(exc), "an Ed25519 private key (PEM)") from None
    s = cfg.sync
    if s.central_url:
        for name in ("ca_cert", "client_cert", "client_key"):
            if getattr(s, name) is None:
                raise ConfigError(source, f"sync.{name}", "nothing", "a file: the receivers are reached over mutual TLS")
    hash_key = None
    if s.document_number == "keyed_hash":
        if s.document_hash_key is None:
            raise ConfigError(source, "sync.document_hash_key", "nothing", "a key file: document_number is keyed_hash")
        hash_key = read_secret(s.document_hash_key).reveal()
    return Outbox(cfg.storage.data_dir / "outbox.sqlite", cfg.gate.id, key, max_records=s.outbox_max_records,
                  document_policy=s.document_number, document_hash_key=hash_key)


class GateApp:
    def __init__(self, cfg: GateConfig, *, screen: Screen | None = None):
        self.cfg = cfg
        self.reactor = Reactor()
        data = cfg.storage.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.audit = audit.AuditLog(data / "audit.jsonl")
        self.outbox = self.reactor.add(open_outbox(cfg))
        call = self.reactor.call_from_thread
        # The door's watchdog is fed only while the controller proves the loop turns and it serves.
        self.door = DoorController.from_config(cfg.devices.door, cfg.timeouts.door_travel_s, lock_on_stop=True,
                                               emit=lambda ev: call(self.controller.door_event, ev),
                                               alive=lambda: self.controller.alive())
        # The serial MRZ reader, the page scanner or both: the page scanner emits the reader's events.
        mrz_sink = lambda ev: call(self.controller.mrz_event, ev)  # noqa: E731
        self.mrz = MrzReader.from_config(cfg.devices.mrz_reader, emit=mrz_sink) if cfg.devices.mrz_reader else None
        self.page_scanner = (PageScanner.from_config(cfg.devices.page_scanner, emit=mrz_sink)
                             if cfg.devices.page_scanner else None)
        readers = tuple(r for r in (self.mrz, self.page_scanner) if r is not None)
        if not readers:
            raise ConfigError(cfg.source or "(gate config)", "devices.mrz_reader", "nothing",
                              "an MRZ reader, a page scanner (devices.page_scanner), or both")
        self.chip_reader = PcscReader.from_config(cfg.devices.chip_reader)
        self.camera = Camera.from_config(cfg.devices.camera, emit=lambda ev: call(self.controller.device_event, ev))
        self.scanner = FingerprintScanner.from_config(cfg.devices.fingerprint,
                                                      emit=lambda ev: call(self.controller.device_event, ev))
        self.screen = screen or build_screen(cfg.devices.screen, str(cfg.source or "(gate config)"))
        self.screen.attach(lambda ev: call(self.controller.screen_event, ev))   # a traveller's one-tap rating
        finger = None
        if cfg.storage.template_key:
            store = EnrolmentStore(data / "enrolment", TemplateVault.from_key_file(cfg.storage.template_key))
            finger = FingerStep(cfg, self.scanner, store)
        elif cfg.eligibility.require_fingerprint:
            raise ConfigError(cfg.source or "(gate config)", "storage.template_key", "nothing",
                              "a template key: eligibility.require_fingerprint needs enrolled templates")
        self.enrolment = finger.store if finger else None
        # The outbox too: a full one takes the lane out of service before a record could be lost.
        required = (*readers, self.chip_reader, self.camera, self.outbox) + ((self.scanner,) if finger else ())
        devices = Devices(self.door, readers[0], ChipStep(cfg, load_trust(cfg), self.chip_reader),
                          FaceStep(cfg, self.camera), finger, self.screen, required)
        self.controller = GateController(cfg, self.reactor, devices, store=self.outbox, audit=self.audit)
        for component in (self.door, *readers, self.chip_reader, self.camera, self.scanner, self.screen):
            self.reactor.add(component)
        self.hotplug = self._hotplug()
        self.reactor.service("passage", self.controller.serve)
        self.sync = SyncAgent(cfg.sync, self.outbox, gate_status=self.controller.status_snapshot)
        # Screening (gate/screening): the control list's health decides service like a device's.
        services, screened = screening.build(cfg, outbox=self.outbox, agent=self.sync, enrolment=self.enrolment)
        self.controller.decider = Decider(cfg, services)
        self.controller.dev.required += tuple(self.reactor.add(c) for c in screened)
        if self.sync.urls:  # a service that ends stops the gate: with no endpoint the agent has nothing to run
            self.reactor.service("sync", self.sync.run)
        # Every audit entry (officer alerts included) leaves for central as a record: first what the
        # outbox has not taken yet (a crash, the last shutdown's gate.stop), then each as it is written.
        for entry in self.audit.entries(self.outbox.audit_seq()):
            self.outbox.add_audit(entry)
        self.audit.subscribe(self._audit_to_outbox)
        # The console and officer socket (gate/console): technicians' commands, officers' commands and alerts.
        self.console = ConsoleService(self)
        self.controller.on_alert = self.console.publish_alert
        self.reactor.service("console", self.console.run)

    def _audit_to_outbox(self, entry: dict) -> None:
        self.outbox.add_audit(entry)
        self.sync.nudge()

    def _hotplug(self) -> HotplugMonitor | None:
        """Watch the serial devices that have a configured `usb_id`: a removal is seen at once."""
        transports = {"door": self.door.transport, **({"mrz_reader": self.mrz.transport} if self.mrz else {}),
                      "fingerprint": self.scanner.transport}
        watched = {name: t for name, t in transports.items() if getattr(self.cfg.devices, name).usb_id}
        if not watched:
            return None
        monitor = HotplugMonitor()
        watch_configured(monitor, self.cfg.devices, watched)
        return self.reactor.add(monitor)

    async def run(self, main=None) -> None:
        self.audit.append("gate", "gate.start", gate_id=self.cfg.gate.id)
        try:
            await self.reactor.run(main)
        finally:
            self.audit.unsubscribe(self._audit_to_outbox)  # the outbox is closed: it takes this one at the next start
            self.audit.append("gate", "gate.stop", gate_id=self.cfg.gate.id)
