"""The other end of the gate's sync link: central, the site's backup and the integrated off-site
backup, each a real `egate central serve` process over mutual TLS with its own SQLite database,
on fixed loopback ports so one can be stopped and started again (failover and failback).

    with SyncSites(workdir, gates=["SIM-LANE-01"]) as sites:
        sites.gate_settings("SIM-LANE-01")    # the [sync] table and signing key for the gate's config
        sites.stop("central"); ...; sites.start("central")
        sites.records("central")              # record ids stored there
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sync import pki
from sync.receiver.config import database_target, load_receiver
from sync.receiver.store import Store

ROLES = ("central", "backup", "offsite")
SITE = "SIM"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SyncSitesError(RuntimeError):
    pass


class SyncSites:
    def __init__(self, workdir: Path, gates: list[str]):
        self.dir = Path(workdir).resolve() / "sync"
        self.gates = gates
        self.layout: pki.Layout | None = None
        self.ports = {role: _free_port() for role in ROLES}
        self.procs: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, list[float]] = {}   # every start, time.monotonic()
        self.stopped_at: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> SyncSites:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.layout = pki.create(self.dir / "pki", gates=self.gates, sites=[SITE])
        for role in ROLES:
            self._write_config(role)
        for role in ROLES:
            self.start(role)
        return self

    def __exit__(self, *exc) -> None:
        for role in list(self.procs):
            self.stop(role)

    def start(self, role: str) -> None:
        if role in self.procs:
            return
        proc = subprocess.Popen([sys.executable, "-m", "gate", "central", "serve", "--config", str(self.config(role))],
                                stdout=subprocess.PIPE, stderr=open(self.dir / f"{role}.log", "a"), text=True)
        line = proc.stdout.readline()
        if not re.search(r"listening on https://", line):
            proc.kill()
            raise SyncSitesError(f"{role} receiver did not start ({line.strip()!r}); see {self.dir / (role + '.log')}")
        self.procs[role] = proc
        self.started_at.setdefault(role, []).append(time.monotonic())

    def stop(self, role: str) -> None:
        proc = self.procs.pop(role, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self.stopped_at[role] = time.monotonic()

    def restarts(self, role: str) -> list[float]:
        return self.started_at.get(role, [])

    # -- what the gate needs ---------------------------------------------------------------
    def url(self, role: str) -> str:
        return f"https://127.0.0.1:{self.ports[role]}"

    def gate_settings(self, gate: str, **agent) -> str:
        """The `[sync]` table for this gate's config (TOML), plus faster agent timings if given."""
        lay = self.layout
        lines = ["[sync]", f'central_url = "{self.url("central")}"', f'backup_url = "{self.url("backup")}"',
                 f'offsite_url = "{self.url("offsite")}"', f'ca_cert = "{lay.ca_cert}"',
                 f'client_cert = "{lay.gate_cert(gate)}"', f'client_key = "{lay.gate_key(gate)}"']
        lines += [f"{k} = {v!r}" for k, v in agent.items()]
        return "\n".join(lines) + "\n"

    def signing_key(self, gate: str) -> Path:
        return self.layout.signing_key(gate)

    # -- what each site holds ----------------------------------------------------------------
    def config(self, role: str) -> Path:
        return self.dir / f"{role}.toml"

    def records(self, role: str) -> list[str]:
        cfg = load_receiver(self.config(role))
        path = self.dir / f"{role}.sqlite"
        if not path.exists():
            return []
        store = Store(database_target(cfg.database, config_path=self.config(role)), create=False)
        try:
            return [r["id"] for r in store.records()]
        finally:
            store.close()

    def _write_config(self, role: str) -> None:
        lay = self.layout
        central = role == "central"
        server = "central" if central else pki._server_name(SITE if role == "backup" else pki.OFFSITE)
        site = SITE if role != "offsite" else pki.OFFSITE
        forwarders = ", ".join(f'"{pki.forwarder_cn(s)}"' for s in (SITE, pki.OFFSITE))
        lines = [f'role = "{"central" if central else "backup"}"', f'site = "{site}"',
                 f'gate_keys_dir = "{lay.gate_keys_dir}"', f"trusted_forwarders = [{forwarders}]",
                 "[listen]", 'host = "127.0.0.1"', f"port = {self.ports[role]}",
                 f'tls_cert = "{lay.server_cert(server)}"', f'tls_key = "{lay.server_key(server)}"',
                 f'client_ca = "{lay.ca_cert}"', "[database]", f'url = "sqlite:///{self.dir / (role + ".sqlite")}"']
        if not central:
            lines += ["[forward]", f'url = "{self.url("central")}"', f'ca_cert = "{lay.ca_cert}"',
                      f'client_cert = "{lay.forwarder_cert(site)}"', f'client_key = "{lay.forwarder_key(site)}"',
                      "poll_s = 0.5", "retry_initial_s = 0.2", "retry_max_s = 2.0"]
        lines += ["[logging]", 'level = "warning"', 'format = "json"']
        self.config(role).write_text("\n".join(lines) + "\n")
        load_receiver(self.config(role))  # a config error shows here, named, before any process starts
