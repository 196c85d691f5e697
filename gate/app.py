"""Builds one gate process from its config: drivers, steps, controller, on one reactor.

Components are added in dependency order; the reactor stops them in reverse, so on SIGTERM
the passage is aborted first (its record written), the devices stop next with both leaves
locked, and the passage log is closed last.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from biometrics.privacy import TemplateVault
from drivers.camera import Camera
from drivers.door.driver import DoorController
from drivers.door.protocol import Leaf
from drivers.fingerprint.driver import FingerprintScanner
from drivers.mrz_reader.driver import MrzReader
from drivers.screen import RecordingScreen
from gate import audit, logs
from gate.config import GateConfig
from gate.controller import Devices, GateController, PassageRecord
from gate.document.trust import CRL_SUFFIXES, TrustStore
from gate.errors import ConfigError
from gate.reactor import CheckResult, Component, Reactor
from gate.steps import ChipStep, EnrolmentStore, FaceStep, FingerStep

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


class PassageLog(Component):
    """Passage records as fsync'd JSON lines in the data directory (the signed outbox and its
    sync agent replace this file's role when they land)."""

    name = "passage_log"

    def __init__(self, path: Path):
        self.path = path

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: PassageRecord) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(record.as_dict(), sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    async def self_check(self) -> CheckResult:
        ok = os.access(self.path.parent, os.W_OK)
        return CheckResult(self.name, ok, str(self.path) if ok else f"{self.path.parent} not writable")


class Device(Component):
    """A driver with synchronous start/stop behind the reactor's Component interface."""

    def __init__(self, name: str, driver, check, stop_hook=None):
        self.name = name
        self.driver = driver
        self._check = check
        self._stop_hook = stop_hook

    async def start(self) -> None:
        self.driver.start()

    async def self_check(self) -> CheckResult:
        ok, detail = await asyncio.get_running_loop().run_in_executor(None, self._check)
        return CheckResult(self.name, ok, detail)

    async def stop(self) -> None:
        if self._stop_hook:
            self._stop_hook()
        self.driver.stop()


class ControllerTask(Component):
    name = "passage"

    def __init__(self, controller: GateController):
        self.controller = controller
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.controller.serve())

    async def self_check(self) -> CheckResult:
        return CheckResult(self.name, self.task is not None and not self.task.done(), self.controller.machine.state)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class GateApp:
    def __init__(self, cfg: GateConfig, *, screen=None):
        self.cfg = cfg
        self.reactor = Reactor()
        data = cfg.storage.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.audit = audit.AuditLog(data / "audit.jsonl")
        self.passages = self.reactor.add(PassageLog(data / "passages.jsonl"))
        self.screen = screen or RecordingScreen()
        call = self.reactor.call_from_thread
        self.door = DoorController.from_config(cfg.devices.door, cfg.timeouts.door_travel_s,
                                               on_event=lambda ev: self.controller.door_event(ev), call=call)
        self.mrz = MrzReader.from_config(cfg.devices.mrz_reader, on_event=lambda ev: self.controller.mrz_event(ev),
                                         call=call)
        self.camera = Camera.from_config(cfg.devices.camera)
        self.scanner = FingerprintScanner.from_config(cfg.devices.fingerprint)
        chip = ChipStep(cfg, load_trust(cfg))
        finger = None
        if cfg.storage.template_key:
            store = EnrolmentStore(data / "enrolment", TemplateVault.from_config(cfg.storage))
            finger = FingerStep(cfg, self.scanner, store)
        elif cfg.eligibility.require_fingerprint:
            raise ConfigError(cfg.source or "(gate config)", "storage.template_key", "nothing",
                              "a template key: eligibility.require_fingerprint needs enrolled templates")
        self.enrolment = finger.store if finger else None
        self.controller = GateController(cfg, self.reactor, Devices(self.door, self.mrz, chip, FaceStep(cfg, self.camera),
                                                                    finger, self.screen),
                                         on_record=self.passages.write)
        self.reactor.add(Device("door", self.door, self._door_check, stop_hook=self._doors_safe))
        self.reactor.add(Device("mrz_reader", self.mrz, lambda: (self.mrz.transport.connected, self.mrz.transport.url)))
        self.reactor.add(Device("camera", self.camera, self._camera_check))
        self.reactor.add(Device("fingerprint", self.scanner, self._scanner_check))
        self.reactor.add(ControllerTask(self.controller))

    def _door_check(self):
        self.door.query_status()
        return self.door.transport.connected, f"{self.door.transport.url} {self.door.state.link_up and 'link up' or 'link down'}"

    def _camera_check(self):
        try:
            frame = self.camera.wait_frame(0, timeout_s=3.0)
        except Exception as exc:
            return False, str(exc)
        return True, f"{frame.image.shape[1]}x{frame.image.shape[0]}"

    def _scanner_check(self):
        try:
            params = self.scanner.connect(timeout_s=3.0)
        except Exception as exc:
            return False, str(exc)
        return True, f"{params}"

    def _doors_safe(self) -> None:
        """Shutdown: both leaves closed and locked (the controller's watchdog would do it too)."""
        if self.controller.emergency:
            return
        for leaf in (Leaf.ENTRY, Leaf.EXIT):
            try:
                self.door.lock(leaf)
            except Exception as exc:  # link down: the controller's watchdog locks on its own
                log.warning("door_lock_on_stop_failed", leaf=leaf.name, error=str(exc))

    async def run(self, main=None) -> None:
        self.audit.append("gate", "gate.start", gate_id=self.cfg.gate.id)
        try:
            await self.reactor.run(main)
        finally:
            self.audit.append("gate", "gate.stop", gate_id=self.cfg.gate.id)
