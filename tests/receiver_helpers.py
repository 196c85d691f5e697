"""Helpers for the receiver tests: records, configs, a receiver in a thread or a process, a client."""
from __future__ import annotations

import asyncio
import http.client
import io
import json
import itertools
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import psycopg
import structlog

from sync import pki as sync_pki
from sync import record
from sync.receiver import protocol as P
from sync.receiver.config import load_receiver
from sync.receiver.server import Receiver

ROOT = Path(__file__).resolve().parents[1]
GATES = [f"SIM-LANE-{i:02d}" for i in range(1, 9)]
SITE = "TPE"
FORWARDER = sync_pki.forwarder_cn(SITE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------ records

def passage(seq: int, outcome: str = "accepted") -> dict:
    return {"passage_id": f"p-{seq:06d}", "started": "2025-01-01T08:00:00.000Z", "ended": "2025-01-01T08:00:09.500Z",
            "outcome": outcome, "reasons": [] if outcome == "accepted" else ["face_mismatch"],
            "reason_detail": {}, "document": {"issuer": "UTO", "number_hmac": "ab" * 32},
            "scores": {"face": 0.71}, "timings_s": {"document": 1.2, "face": 2.5}}


def envelope(layout, gate: str, seq: int, outcome: str = "accepted", key=None) -> bytes:
    key = key or record.load_signing_key(layout.signing_key(gate))
    return record.sign(record.encode_body(gate=gate, seq=seq, passage=passage(seq, outcome)), key)


class Envelopes:
    """Signed envelopes per gate, keys loaded once."""

    def __init__(self, layout):
        self.layout = layout
        self.keys = {}

    def __call__(self, gate: str, seq: int, outcome: str = "accepted") -> bytes:
        if gate not in self.keys:
            self.keys[gate] = record.load_signing_key(self.layout.signing_key(gate))
        return envelope(self.layout, gate, seq, outcome, self.keys[gate])


# ------------------------------------------------------------------------ databases

_names = itertools.count(1)


def fresh_postgres(base_url: str) -> str:
    """A new empty database on the session's PostgreSQL server; its URL."""
    name = f"recv_{os.getpid()}_{next(_names)}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres(base_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------ configs

def write_config(path: Path, layout, *, role: str = "central", db_url: str, port: int = 0,
                 site: str = SITE, forward_port: int | None = None, forwarders=(FORWARDER,),
                 server: str | None = None, gate_keys_dir: Path | None = None, extra: str = ""):
    """A receiver config for the test PKI; loaded and checked."""
    server = server or ("central" if role == "central" else f"backup-{site}")
    lines = [
        f'role = "{role}"', f'site = "{site}"',
        f'gate_keys_dir = "{gate_keys_dir or layout.gate_keys_dir}"',
        "trusted_forwarders = [" + ", ".join(f'"{f}"' for f in forwarders) + "]",
        "[listen]", 'host = "127.0.0.1"', f"port = {port}",
        f'tls_cert = "{layout.server_cert(server)}"', f'tls_key = "{layout.server_key(server)}"',
        f'client_ca = "{layout.ca_cert}"',
        "[database]", f'url = "{db_url}"',
        "[logging]", 'level = "warning"', 'format = "json"',
    ]
    if forward_port is not None:
        lines += ["[forward]", f'url = "https://127.0.0.1:{forward_port}"', f'ca_cert = "{layout.ca_cert}"',
                  f'client_cert = "{layout.forwarder_cert(site)}"', f'client_key = "{layout.forwarder_key(site)}"',
                  "batch_size = 40", "poll_s = 0.1", "retry_initial_s = 0.05", "retry_max_s = 0.4",
                  "timeout_s = 10.0", "refused_retry_s = 3600.0"]
    path.write_text("\n".join(lines) + "\n" + extra)
    return load_receiver(path)


# ------------------------------------------------------------------------ receivers

class ThreadedReceiver:
    """A Receiver on its own event loop in a thread (with `with`)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="receiver-loop")
        self.log_stream = io.StringIO()   # its own log: JSON lines, kept out of the test's stdout
        log = structlog.wrap_logger(structlog.PrintLogger(self.log_stream), processors=[
            structlog.processors.add_log_level, structlog.processors.JSONRenderer(sort_keys=True)])
        self.receiver = Receiver(cfg, log=log)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log_stream.getvalue().splitlines()]

    def call(self, coro, timeout=60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self):
        self.thread.start()
        self.call(self.receiver.start())
        self.port = self.receiver.port
        return self

    def __exit__(self, *exc):
        try:
            self.call(self.receiver.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class ProcessReceiver:
    """`egate central serve --config FILE` in a subprocess (with `with`); stopped by SIGTERM."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gate", "central", "serve", "--config", str(self.config_path)],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"receiver did not start: {line!r} {out!r} {err[-2000:]!r}")
        self.port = int(m.group(1))
        return self

    def terminate(self, timeout=20) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------------ a tiny client

class Client:
    """An HTTPS client with (or without) a client certificate; one connection per request."""

    def __init__(self, port: int, ca: Path, cert: Path | None = None, key: Path | None = None):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            self.ctx.load_cert_chain(str(cert), str(key))

    @classmethod
    def gate(cls, port, layout, gate):
        return cls(port, layout.ca_cert, layout.gate_cert(gate), layout.gate_key(gate))

    @classmethod
    def forwarder(cls, port, layout, site=SITE):
        return cls(port, layout.ca_cert, layout.forwarder_cert(site), layout.forwarder_key(site))

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = P.CONTENT_TYPE):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        decoded = msgpack.unpackb(data, raw=False) if ctype.startswith(P.CONTENT_TYPE) else data
        return resp.status, decoded

    def send(self, envelopes) -> tuple[int, object]:
        return self.request("POST", P.RECORDS_PATH, P.encode_batch(envelopes))

    def results(self, envelopes) -> list[tuple[str | None, str, str | None]]:
        status, reply = self.send(envelopes)
        assert status == 200, (status, reply)
        return [(r["id"], r["status"], r["reason"]) for r in reply["results"]]

    def heartbeat(self, beat: dict):
        return self.request("POST", P.HEARTBEAT_PATH, msgpack.packb(beat))

    def status(self):
        return self.request("GET", P.STATUS_PATH)


class RunningAgent:
    """A SyncAgent on its own loop in a thread, as the gate runs it on its reactor (with `with`)."""

    def __init__(self, agent):
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="agent-loop")

    def __enter__(self):
        self.thread.start()

        async def start():
            return asyncio.ensure_future(self.agent.run())

        self.task = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        return self

    def __exit__(self, *exc):
        async def stop():  # the agent unwinds (its session closes) before the loop stops
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
