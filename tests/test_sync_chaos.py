"""Chaos: gates' outboxes and agents against real receivers while everything fails at random.

Three gates, each its own process (`python -m tests.test_sync_chaos gate ...`: opens its outbox,
runs the sync agent, appends passage records when told on stdin), and three `egate central serve`
processes: central, the site's backup and the off-site backup, both backups forwarding to central.
The gates reach central through one loopback TCP proxy and the backups forward through another
(`simulators.tcp_proxy`). Each round picks a fault at random: kill -9 a gate, kill -9 central, a
backup or all three receivers, or SIGTERM one (each restarted a round or a few later), or make a proxy blackhole,
reset, refuse, cut connections mid-stream, delay or flap; then a few gates append a few records.
After the rounds everything is restarted and healed, and once it settles:

  * central holds every record exactly once: ids `<gate>:1..N` with no gap and no extra, where N
    is the gate's outbox sequence (at least every append the gate confirmed), no conflict and no
    refusal anywhere;
  * every stored envelope verifies with the gate's public key from the test PKI and says the id,
    gate and seq of its row;
  * order per gate is preserved: by seq, the passages come in the order the gate wrote them;
  * every outbox is empty, every backup has forwarded everything it holds;
  * no process died on its own, no agent or receiver logged a traceback.

Gate 2's wall clock runs 5 h ahead and gate 3's steps between 7 h behind and 3 h ahead at each
restart (the records' times, the heartbeats' `at` and the outbox's own clock; not OpenSSL's):
the receivers must take their records all the same.

Rounds: 50 per variant in CI (`CHAOS_ROUNDS` to change; `make chaos` runs 500); `CHAOS_SEED`
replays the sequence of faults (their timing still varies; the seed is in every failure message).
Central is on SQLite in one variant and on PostgreSQL (a fresh database, the site backup too) in
the other.

Also here: the outbox quota and a really full disk, an outbox that cannot write under the agent,
an agent idle longer than `failover_timeout_s` meeting one reset, and cancelling the agent and a
forwarder while they are being woken.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.serial_helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
GATES = ["CHAOS-01", "CHAOS-02", "CHAOS-03"]
SITE = "SIM"
HOUR = 3600.0
ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "50"))

# Agent timings for the chaos runs: fast enough that 50 rounds fit CI; the logic is the default one.
AGENT = dict(batch_size=20, request_timeout_s=1.0, retry_initial_s=0.05, retry_max_s=0.5, failover_after=2,
             failover_timeout_s=3.0, failback_probe_s=0.3, failback_after=2, min_dwell_s=0.5, heartbeat_s=0.5)


def skew_for(gate: str, restart: int) -> float:
    if gate == "CHAOS-02":
        return 5 * HOUR
    if gate == "CHAOS-03":
        return -7 * HOUR if restart % 2 == 0 else 3 * HOUR
    return 0.0


# ============================================================================ the gate process

def _gate_main(argv: list[str]) -> int:
    """One gate: its outbox and its sync agent on one loop, records appended on command.

    stdin:  `append K` (K passages, each journaled then recorded), EOF to stop.
    stdout: `ready`, then `ok <last seq>` after each append command.
    """
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--gate", required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--signing-key", required=True)
    ap.add_argument("--restart", type=int, default=0)
    ap.add_argument("--skew-s", type=float, default=0.0)
    ap.add_argument("--max-records", type=int, default=200_000)
    ap.add_argument("--sync", required=True, help="SyncConfig fields as JSON")
    args = ap.parse_args(argv)

    from core import logs
    logs.configure("warning", "json", gate_id=args.gate)
    import sync.agent
    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.record import load_signing_key

    skew = args.skew_s
    if skew:  # this gate's wall clock is off; monotonic time (timeouts, failover) is not
        real_time = time.time
        time.time = lambda: real_time() + skew
        sync.agent._now = lambda: (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=skew)).isoformat()

    def wall() -> str:
        return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=skew)).isoformat()

    settings = json.loads(args.sync)
    for k in ("ca_cert", "client_cert", "client_key"):
        settings[k] = Path(settings[k])
    cfg = SyncConfig(**settings)
    box = Outbox(Path(args.outbox), args.gate, load_signing_key(Path(args.signing_key)), max_records=args.max_records)
    started = time.monotonic()

    def gate_status() -> dict:
        return {"state": "idle", "health": {"door": None}, "counters": {"cleared": box.backlog()["last_seq"]},
                "in_service_s": round(time.monotonic() - started, 3)}

    agent = SyncAgent(cfg, box, gate_status=gate_status)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def read_stdin():
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read_stdin, daemon=True).start()
        task = asyncio.create_task(agent.run())

        def died(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is not None:
                import traceback
                traceback.print_exception(t.exception(), file=sys.stderr)
                sys.stderr.write("agent_died\n")
                sys.stderr.flush()
                os._exit(3)

        task.add_done_callback(died)
        print("ready", flush=True)
        n = 0
        while (line := await lines.get()) is not None:
            words = line.split()
            if words[:1] == ["append"]:
                for _ in range(int(words[1])):
                    n += 1
                    passage = {"passage_id": f"r{args.restart:04d}-{n:06d}", "started": wall(), "state": "entering"}
                    box.open(passage)
                    box.finish({**passage, "ended": wall(), "outcome": "cleared", "reasons": [],
                                "reason_detail": {}, "document": {"issuer": "UTO", "number": f"{n:09d}"},
                                "scores": {"face": 0.7}, "timings_s": {"total": 9.0}})
                agent.nudge()
                print(f"ok {box.backlog()['last_seq']}", flush=True)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        box.stop()

    asyncio.run(main())
    return 0


# ============================================================================ processes

class Proc:
    """A child process whose first line of stdout says it is ready; later lines go to `on_line`."""

    def __init__(self, name: str, argv: list[str], log: Path, ready: str, stdin: bool = False, on_line=None):
        self.name, self.argv, self.log, self.ready_re = name, argv, log, re.compile(ready)
        self.stdin, self.on_line = stdin, on_line
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()
        self.failed = threading.Event()
        self.kills = 0
        self.starts = 0

    def start(self) -> None:
        self.ready.clear()
        self.failed.clear()
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdin=subprocess.PIPE if self.stdin else None,
                                         stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        self.starts += 1
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if not self.ready.is_set() and self.ready_re.search(line):
                self.ready.set()
            elif self.on_line is not None:
                self.on_line(line.strip())
        proc.stdout.close()
        if not self.ready.is_set():
            self.failed.set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.kills += 1
        if self.proc is not None:
            self.proc.wait(10)
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # died (or was killed) meanwhile: the records were never written

    def stop(self) -> int | None:
        """Ask it to end (EOF on stdin, else SIGTERM); its exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                if self.stdin:
                    self._close_stdin()
                else:
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    return self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
                    return None
            return self.proc.returncode
        finally:
            self._close_stdin()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.failed.is_set() or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start; see {self.log}:\n{_tail(self.log)}")


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# ============================================================================ the cluster

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Central + site backup + off-site backup (processes), two proxies, N gates (processes)."""

    def __init__(self, tmp: Path, layout, db_urls: dict[str, str], gates=GATES, agent: dict | None = None):
        from simulators.tcp_proxy import TcpProxy

        self.tmp, self.layout, self.db_urls, self.gates = tmp, layout, db_urls, list(gates)
        self.agent = {**AGENT, **(agent or {})}
        self.ports = {role: _free_port() for role in ("central", "backup", "offsite")}
        self.gate_link = TcpProxy(self.ports["central"], seed=1)     # gates -> central
        self.forward_link = TcpProxy(self.ports["central"], seed=2)  # backups -> central
        self.receivers: dict[str, Proc] = {}
        self.gate_procs: dict[str, Proc] = {}
        self.restarts: Counter[str] = Counter()
        self.confirmed: dict[str, int] = {g: 0 for g in self.gates}
        self.unexpected: list[str] = []   # processes that ended without being told to
        self.start_failures: list[str] = []

    # -- set-up --------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        self.gate_link.start()
        self.forward_link.start()
        for role in self.ports:
            path = self.tmp / f"{role}.toml"
            path.write_text(self._receiver_config(role))
            self.receivers[role] = Proc(role, [sys.executable, "-m", "gate", "central", "serve", "--config", str(path)],
                                        self.tmp / f"{role}.log", r"listening on https://")
            self.receivers[role].start()
        for proc in self.receivers.values():
            proc.wait_ready()
        for gate in self.gates:
            self.start_gate(gate)
        for gate in self.gates:
            self.gate_procs[gate].wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        for proc in list(self.gate_procs.values()) + list(self.receivers.values()):
            if proc.alive():
                proc.stop()
        self.gate_link.stop()
        self.forward_link.stop()

    def _receiver_config(self, role: str) -> str:
        from sync import pki
        lay = self.layout
        central = role == "central"
        site = SITE if role == "backup" else ("offsite" if role == "offsite" else SITE)
        server = "central" if central else pki._server_name(site)
        db = self.db_urls[role]
        lines = [f'role = "{"central" if central else "backup"}"', f'site = "{site}"',
                 f'gate_keys_dir = "{lay.gate_keys_dir}"',
                 f'trusted_forwarders = ["{pki.forwarder_cn(SITE)}", "{pki.forwarder_cn("offsite")}"]',
                 "[listen]", 'host = "127.0.0.1"', f"port = {self.ports[role]}",
                 f'tls_cert = "{lay.server_cert(server)}"', f'tls_key = "{lay.server_key(server)}"',
                 f'client_ca = "{lay.ca_cert}"', "[database]", f'url = "{db}"', "connect_timeout_s = 3"]
        if not central:
            lines += ["[forward]", f'url = "https://127.0.0.1:{self.forward_link.port}"', f'ca_cert = "{lay.ca_cert}"',
                      f'client_cert = "{lay.forwarder_cert(site)}"', f'client_key = "{lay.forwarder_key(site)}"',
                      "batch_size = 50", "poll_s = 0.2", "retry_initial_s = 0.05", "retry_max_s = 0.5",
                      "timeout_s = 2.0", "refused_retry_s = 1.0"]
        lines += ["[logging]", 'level = "warning"', 'format = "json"']
        return "\n".join(lines) + "\n"

    def outbox_path(self, gate: str) -> Path:
        return self.tmp / f"{gate}.outbox.sqlite"

    def start_gate(self, gate: str, *, max_records: int = 200_000) -> None:
        lay = self.layout
        restart = self.restarts[gate]
        self.restarts[gate] += 1
        settings = {"central_url": f"https://127.0.0.1:{self.gate_link.port}",
                    "backup_url": f"https://127.0.0.1:{self.ports['backup']}",
                    "offsite_url": f"https://127.0.0.1:{self.ports['offsite']}",
                    "ca_cert": str(lay.ca_cert), "client_cert": str(lay.gate_cert(gate)),
                    "client_key": str(lay.gate_key(gate)), **self.agent}

        def on_line(line: str, gate=gate) -> None:
            if line.startswith("ok "):
                self.confirmed[gate] = max(self.confirmed[gate], int(line.split()[1]))

        argv = [sys.executable, "-m", "tests.test_sync_chaos", "gate", "--gate", gate,
                "--outbox", str(self.outbox_path(gate)), "--signing-key", str(lay.signing_key(gate)),
                "--restart", str(restart), "--skew-s", str(skew_for(gate, restart)),
                "--max-records", str(max_records), "--sync", json.dumps(settings)]
        proc = self.gate_procs[gate] = Proc(gate, argv, self.tmp / f"{gate}.log", r"^ready", stdin=True,
                                            on_line=on_line)
        proc.start()

    # -- faults ----------------------------------------------------------------------------------
    def check_unexpected(self) -> list[str]:
        """Processes that ended although nobody killed them: a finding (a receiver that could not
        bind its port again at once is only counted). Their names, to start them again."""
        dead = []
        for name, proc in list(self.receivers.items()) + list(self.gate_procs.items()):
            if proc.proc is not None and not proc.alive() and proc.proc.returncode != -signal.SIGKILL:
                if proc.failed.is_set() and name in self.receivers:
                    self.start_failures.append(f"{name}: {_tail(proc.log, 2)}")
                else:
                    self.unexpected.append(f"{name} exited with {proc.proc.returncode}: {_tail(proc.log, 10)}")
                proc.proc = None
                dead.append(name)
        return dead

    def proc(self, name: str) -> Proc:
        return self.receivers.get(name) or self.gate_procs[name]

    def restart(self, name: str) -> None:
        if name in self.receivers:
            self.receivers[name].start()
        else:
            self.start_gate(name)

    # -- what the databases hold ------------------------------------------------------------------
    def store(self, role: str):
        from sync.receiver.config import database_target, load_receiver
        from sync.receiver.store import Store
        path = self.tmp / f"{role}.toml"
        return Store(database_target(load_receiver(path).database, config_path=path), create=False)

    def outbox_state(self, gate: str) -> tuple[int, int]:
        """(depth, last seq) of a gate's outbox, read from the file as another process would."""
        db = sqlite3.connect(f"file:{self.outbox_path(gate)}?mode=ro", uri=True, timeout=10)
        try:
            (depth,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        finally:
            db.close()
        return depth, (row[0] if row else 0)

    def settled(self) -> bool:
        if any(self.outbox_state(g)[0] for g in self.gates):
            return False
        for role in ("backup", "offsite"):
            store = self.store(role)
            try:
                if store.backlog()["records"]:
                    return False
            finally:
                store.close()
        return True


def _log_problems(path: Path) -> list[str]:
    bad = []
    for line in path.read_text(errors="replace").splitlines():
        if "Traceback" in line or '"level": "critical"' in line or "record_conflict" in line \
                or "forward_refused" in line or "sync_record_refused" in line or "agent_died" in line \
                or "Error handling request" in line:
            bad.append(line[:400])
    return bad


def verify(cluster: Cluster, seed: int) -> dict:
    """Everything at central exactly once, signed, in order; outboxes empty; backups forwarded."""
    from sync import record

    where = f"(seed {seed}; logs in {cluster.tmp})"
    store = cluster.store("central")
    try:
        rows = store.records()
        status = store.status()
    finally:
        store.close()
    by_gate: dict[str, list[dict]] = {}
    for r in rows:
        by_gate.setdefault(r["gate"], []).append(r)
    assert set(by_gate) <= set(cluster.gates), f"records of unknown gates {set(by_gate)} {where}"
    totals = {}
    for gate in cluster.gates:
        depth, last_seq = cluster.outbox_state(gate)
        assert depth == 0, f"{gate}: {depth} records still in the outbox {where}"
        assert last_seq >= cluster.confirmed[gate], \
            f"{gate}: outbox seq {last_seq} < confirmed {cluster.confirmed[gate]} {where}"
        got = by_gate.get(gate, [])
        seqs = [r["seq"] for r in got]
        missing = sorted(set(range(1, last_seq + 1)) - set(seqs))
        extra = sorted(set(seqs) - set(range(1, last_seq + 1)))
        assert not missing and not extra and len(seqs) == last_seq, \
            f"{gate}: central holds {len(seqs)} of 1..{last_seq}; missing {missing[:20]} extra {extra[:20]} {where}"
        key = record.load_verify_key((cluster.layout.gate_keys_dir / f"{gate}.pem").read_bytes(), gate)
        passages = []
        for r in got:
            body = record.decode_envelope(r["envelope"]).verify(key)  # raises if the signature is bad
            assert (body["id"], body["gate"], body["seq"]) == (r["id"], gate, r["seq"]), \
                f"{r['id']}: row and body differ {where}"
            passages.append(body["passage"])
        assert passages == sorted(passages) and len(set(passages)) == len(passages), \
            f"{gate}: passages out of order by seq {where}"
        totals[gate] = last_seq
    assert status["conflicts_kept"] == 0, f"conflicts at central {where}"
    assert status["refusals"] == [], f"refusals at central: {status['refusals']} {where}"
    for role in ("backup", "offsite"):
        store = cluster.store(role)
        try:
            backup_rows = store.records()
            bstatus = store.status()
        finally:
            store.close()
        assert all(r["forwarded_at"] is not None for r in backup_rows), f"{role} did not forward everything {where}"
        assert {r["id"] for r in backup_rows} <= {r["id"] for r in rows}, f"{role} holds what central lacks {where}"
        assert bstatus["conflicts_kept"] == 0 and bstatus["refusals"] == [], f"{role}: {bstatus['refusals']} {where}"
    return {"totals": totals, "rows": rows, "heartbeats": {g: s["heartbeat"] for g, s in status["gates"].items()}}


# ============================================================================ fixtures

@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    from sync import pki
    return pki.create(tmp_path_factory.mktemp("chaos-pki"), gates=GATES, sites=[SITE])


@pytest.fixture(params=["sqlite", "postgresql"])
def db_urls(request, tmp_path):
    if request.param == "sqlite":
        yield {role: f"sqlite:///{tmp_path / (role + '.sqlite')}" for role in ("central", "backup", "offsite")}
        return
    from tests.receiver_helpers import drop_postgres, fresh_postgres
    base = request.getfixturevalue("postgres_url")
    central, backup = fresh_postgres(base), fresh_postgres(base)
    yield {"central": central, "backup": backup, "offsite": f"sqlite:///{tmp_path / 'offsite.sqlite'}"}
    for url in (central, backup):
        drop_postgres(base, url)


# ============================================================================ the chaos run

FAULTS = {  # name: weight
    "calm": 1.0, "kill_gate": 3.0, "kill_central": 2.0, "kill_backup": 2.0, "kill_receivers": 0.5,
    "term_receiver": 0.7, "gate_link": 3.0, "forward_link": 1.5,
}
LINK_FAULTS = ("blackhole", "reset", "refuse", "drop", "delay", "flap")


def _link_fault(proxy, rng: random.Random) -> str:
    kind = rng.choice(LINK_FAULTS)
    if kind == "blackhole":
        proxy.blackhole()
    elif kind == "reset":
        proxy.reset()
    elif kind == "refuse":
        proxy.refuse()
    elif kind == "drop":
        p, cut = rng.choice([0.3, 0.7, 1.0]), rng.choice([512, 4096, 16384])
        proxy.drop(p, cut)
        kind += f" p={p} cut<={cut}"
    elif kind == "delay":
        d = rng.choice([0.05, 0.2, 0.6, 1.2])  # 1.2 s per chunk: beyond the agent's request timeout
        proxy.delay(d, d / 2)
        kind += f" {d}s"
    else:
        period, other = rng.choice([0.1, 0.3, 0.8]), rng.choice(["reset", "blackhole", "refuse", "drop"])
        proxy.flap(period, other, "pass")
        kind += f" {other}/pass every {period}s"
    return kind


def run_chaos(cluster: Cluster, rounds: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    down_until: dict[str, int] = {}          # receiver or gate name -> round it comes back
    link_until = {"gate_link": -1, "forward_link": -1}
    history: list[str] = []
    names, weights = zip(*FAULTS.items())
    for rnd in range(rounds):
        # bring back what is due
        for name, until in list(down_until.items()):
            if until <= rnd:
                del down_until[name]
                cluster.restart(name)
        for link, until in link_until.items():
            proxy = getattr(cluster, link)
            if until == rnd:
                proxy.passthrough()
        for name in cluster.check_unexpected():
            if name not in down_until:
                cluster.restart(name)

        fault = rng.choices(names, weights)[0]
        detail = fault
        if fault == "kill_gate":
            gate = rng.choice(cluster.gates)
            if gate not in down_until:
                time.sleep(rng.uniform(0, 0.05))
                cluster.gate_procs[gate].kill9()
                back = rnd + rng.choice([0, 1, 1, 2])
                if back == rnd:
                    cluster.start_gate(gate)
                else:
                    down_until[gate] = back
                detail += f" {gate}"
        elif fault in ("kill_central", "kill_backup", "kill_receivers"):
            roles = {"kill_central": ["central"], "kill_backup": [rng.choice(["backup", "offsite"])],
                     "kill_receivers": ["central", "backup", "offsite"]}[fault]
            for role in roles:
                if role not in down_until:
                    cluster.receivers[role].kill9()
                    down_until[role] = rnd + rng.choice([1, 1, 2, 3])
            detail += " " + ",".join(roles)
        elif fault == "term_receiver":  # a graceful stop under load: in-flight requests end, exit 0
            role = rng.choice(list(cluster.receivers))
            proc = cluster.receivers[role]
            if role not in down_until and proc.ready.is_set():  # (a SIGTERM while it starts just ends it)
                code = proc.stop()
                if code != 0:
                    cluster.unexpected.append(f"{role} stopped by SIGTERM with exit code {code}: {_tail(proc.log, 10)}")
                proc.proc = None
                down_until[role] = rnd + rng.choice([1, 2])
                detail += f" {role}"
        elif fault in link_until:
            if link_until[fault] < rnd:
                detail += " " + _link_fault(getattr(cluster, fault), rng)
                link_until[fault] = rnd + rng.choice([1, 2, 3, 4])
        history.append(f"{rnd}: {detail}")

        for gate in rng.sample(cluster.gates, rng.randint(1, len(cluster.gates))):
            if gate not in down_until:  # now and then a burst: a backlog that takes several batches
                n = rng.randint(30, 60) if rng.random() < 0.08 else rng.randint(1, 4)
                cluster.gate_procs[gate].send(f"append {n}")
        time.sleep(rng.uniform(0.1, 0.5))
    return history


def settle(cluster: Cluster, seed: int, history: list[str], timeout: float = 90.0) -> None:
    cluster.gate_link.passthrough()
    cluster.forward_link.passthrough()
    cluster.check_unexpected()
    for name, proc in list(cluster.receivers.items()) + list(cluster.gate_procs.items()):
        if not proc.alive():
            cluster.restart(name)
    for name in list(cluster.receivers) + list(cluster.gate_procs):
        try:
            cluster.proc(name).wait_ready()
        except AssertionError:
            cluster.check_unexpected()
            cluster.restart(name)  # a port still held by the killed process a moment ago
            cluster.proc(name).wait_ready()
    for gate, proc in cluster.gate_procs.items():  # every append sent has been answered or lost
        proc.send("append 0")
    try:
        wait_for(cluster.settled, timeout, "outboxes empty and backups forwarded", interval=0.25)
    except AssertionError:
        state = {g: cluster.outbox_state(g) for g in cluster.gates}
        raise AssertionError(f"did not settle (seed {seed}): outboxes (depth, last seq) {state}; "
                             f"last rounds {history[-10:]}; logs in {cluster.tmp}") from None


@pytest.mark.timeout(max(300, ROUNDS * 3))
def test_chaos_every_record_reaches_central_exactly_once(tmp_path, layout, db_urls):
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1 << 30))
    with Cluster(tmp_path, layout, db_urls) as cluster:
        history = run_chaos(cluster, ROUNDS, seed)
        settle(cluster, seed, history)
        result = verify(cluster, seed)
        cluster.check_unexpected()
        gate_exits = {g: p.stop() for g, p in cluster.gate_procs.items()}
    assert not cluster.unexpected, f"processes that died on their own (seed {seed}): {cluster.unexpected}"
    assert all(code == 0 for code in gate_exits.values()), f"gates did not stop cleanly: {gate_exits} (seed {seed})"
    problems = {p.name: _log_problems(p) for p in tmp_path.glob("*.log")}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"(seed {seed}) {json.dumps(problems, indent=1)[:4000]}"
    kills = Counter(h.split(": ")[1].split()[0] for h in history)
    assert sum(result["totals"].values()) > ROUNDS, result["totals"]
    assert kills["kill_gate"] + kills["kill_central"] + kills["kill_backup"] > 0 and kills["gate_link"] > 0

    # Clock skew: the records and heartbeats of gates whose clocks are hours off were all taken.
    received = {r["id"]: r["received_at"] for r in result["rows"]}
    store = cluster.store("central")
    try:
        started = {r[0]: r[1] for r in _query(store, "SELECT id, started FROM records")}
    finally:
        store.close()
    offsets = Counter()
    for rid, at in started.items():
        hours = round((dt.datetime.fromisoformat(at) - received[rid]).total_seconds() / HOUR)
        offsets[(rid.split(":")[0], hours)] += 1
    assert {h for (g, h) in offsets if g == "CHAOS-01"} == {0}
    assert {h for (g, h) in offsets if g == "CHAOS-02"} == {5}
    assert {h for (g, h) in offsets if g == "CHAOS-03"} <= {-7, 3} and any(g == "CHAOS-03" for g, _ in offsets)
    beat = result["heartbeats"]["CHAOS-02"]
    assert beat is not None and abs((dt.datetime.fromisoformat(beat["at"]) - beat["received_at"]).total_seconds()
                                    - 5 * HOUR) < 600
    via = Counter(r["via"] for r in result["rows"])
    switches = {p.stem: p.read_text().count("sync_endpoint_switched") for p in tmp_path.glob("CHAOS-*.log")}
    print(f"\nchaos seed {seed}: {len(history)} rounds, records {result['totals']} (via {dict(via)}), "
          f"agent switches {switches}, faults {dict(kills)}, "
          f"gate starts {dict(cluster.restarts)}, receiver starts "
          f"{ {r: p.starts for r, p in cluster.receivers.items()} } (failed at once: {len(cluster.start_failures)}), "
          f"gate link {dict(cluster.gate_link.stats)}, forward link {dict(cluster.forward_link.stats)}")


def _query(store, sql: str) -> list[tuple]:
    with store._tx(write=False) as cur:
        return cur.run(sql).fetchall()


# ============================================================================ disk full, idle failover

class RunningAgent:
    """A SyncAgent on its own loop in a thread, as the gate's reactor runs it."""

    def __init__(self, agent):
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()

        async def start():
            return asyncio.create_task(self.agent.run())

        self.task = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)  # the agent's asyncio.Task
        return self

    def nudge(self) -> None:
        """SyncAgent.nudge from another thread (an asyncio.Event is set on its own loop only)."""
        self.loop.call_soon_threadsafe(self.agent.nudge)

    def __exit__(self, *exc):
        async def stop():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)  # its session closes

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _passage(n: int) -> dict:
    return {"passage_id": f"p{n:06d}", "started": "2026-11-30T02:00:00+00:00", "ended": "2026-11-30T02:00:09+00:00",
            "outcome": "cleared", "reasons": [], "reason_detail": {}, "document": {"number": f"{n:09d}"},
            "scores": {}, "timings_s": {"total": 9.0}}


def _gate_status() -> dict:
    return {"state": "idle", "health": {}, "counters": {}, "in_service_s": 1.0}


def _single_receiver(tmp: Path, layout, port: int) -> Proc:
    from sync import pki
    cfg = tmp / "central.toml"
    cfg.write_text("\n".join([
        'role = "central"', f'site = "{SITE}"', f'gate_keys_dir = "{layout.gate_keys_dir}"',
        f'trusted_forwarders = ["{pki.forwarder_cn(SITE)}"]', "[listen]", 'host = "127.0.0.1"', f"port = {port}",
        f'tls_cert = "{layout.server_cert("central")}"', f'tls_key = "{layout.server_key("central")}"',
        f'client_ca = "{layout.ca_cert}"', "[database]", f'url = "sqlite:///{tmp / "central.sqlite"}"',
        "[logging]", 'level = "warning"', 'format = "json"']) + "\n")
    return Proc("central", [sys.executable, "-m", "gate", "central", "serve", "--config", str(cfg)],
                tmp / "central.log", r"listening on https://")


def _central_ids(tmp: Path) -> list[str]:
    from sync.receiver.config import DatabaseTarget
    from sync.receiver.store import Store
    store = Store(DatabaseTarget("sqlite", path=tmp / "central.sqlite"), create=False)
    try:
        return [r["id"] for r in store.records()]
    finally:
        store.close()


def test_disk_full_the_outbox_quota_stops_the_lane_drops_nothing_and_clears_when_central_takes_records(tmp_path,
                                                                                                      layout):
    from structlog.testing import capture_logs

    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.record import load_signing_key

    gate = GATES[0]
    port = _free_port()
    central = _single_receiver(tmp_path, layout, port)
    box = Outbox(tmp_path / "outbox.sqlite", gate, load_signing_key(layout.signing_key(gate)), max_records=10)
    cfg = SyncConfig(central_url=f"https://127.0.0.1:{port}", ca_cert=layout.ca_cert,
                     client_cert=layout.gate_cert(gate), client_key=layout.gate_key(gate),
                     **{**AGENT, "retry_max_s": 0.3})
    agent = SyncAgent(cfg, box, gate_status=_gate_status)
    with capture_logs() as logged, RunningAgent(agent) as running:
        for i in range(1, 10):  # central is not there: everything stays
            box.finish(_passage(i))
            running.nudge()
        assert box.status().healthy
        assert any(e["event"] == "outbox_alarm" for e in logged), "no alarm at 70 %"
        box.finish(_passage(10))
        status = box.status()
        assert not status.healthy and "full" in status.detail
        assert box.finish(_passage(11)) == f"{gate}:11"  # the passage already under way is still recorded
        assert [p.id for p in box.unacknowledged(100)] == [f"{gate}:{i}" for i in range(1, 12)]
        wait_for(lambda: len(agent.errors) >= 3, 10, "the agent trying and failing")
        assert box.depth() == 11 and not box.status().healthy
        central.start()
        try:
            central.wait_ready()
            wait_for(lambda: box.depth() == 0, 30, "central takes the backlog")
            assert box.status().healthy
            assert box.finish(_passage(12)) == f"{gate}:12"
            wait_for(lambda: box.depth() == 0, 30, "the next record too")
        finally:
            central.stop()
    assert _central_ids(tmp_path) == [f"{gate}:{i}" for i in range(1, 13)]


def test_disk_really_full_the_outbox_says_so_loses_nothing_and_recovers_when_central_takes_records(tmp_path,
                                                                                                 layout):
    """The disk fills before the quota does (SQLite's max_page_count stands in for ENOSPC): the
    append fails with the disk's own error, nothing half-written, no sequence number used, the
    passage stays open in the journal, the outbox reports itself unhealthy (the lane stops), and
    the agent keeps delivering; once central has taken records the passage can be recorded."""
    import sqlite3 as _sqlite3

    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.record import load_signing_key

    gate = GATES[0]
    port = _free_port()
    central = _single_receiver(tmp_path, layout, port)
    box = Outbox(tmp_path / "outbox.sqlite", gate, load_signing_key(layout.signing_key(gate)))
    cfg = SyncConfig(central_url=f"https://127.0.0.1:{port}", ca_cert=layout.ca_cert,
                     client_cert=layout.gate_cert(gate), client_key=layout.gate_key(gate),
                     **{**AGENT, "retry_max_s": 0.3})
    agent = SyncAgent(cfg, box, gate_status=_gate_status)
    with RunningAgent(agent) as running:
        for i in range(1, 6):
            box.finish(_passage(i))
        (pages,) = box._db.execute("PRAGMA page_count").fetchone()
        box._db.execute(f"PRAGMA max_page_count = {pages}")
        n = 5
        with pytest.raises(_sqlite3.OperationalError, match="full"):
            while n < 10_000:
                box.open({"passage_id": f"p{n + 1:06d}", "state": "entering"})
                box.finish(_passage(n + 1))
                n += 1
        status = box.status()
        assert not status.healthy and "cannot write" in status.detail, status
        assert box.pending()["passage_id"] == f"p{n + 1:06d}"  # still open: it will not be forgotten
        assert [p.seq for p in box.unacknowledged(100_000)] == list(range(1, n + 1))
        wait_for(lambda: len(agent.errors) >= 3, 10, "the agent trying and failing")
        assert not running.task.done(), "the agent stopped"
        central.start()
        try:
            central.wait_ready()
            wait_for(lambda: box.depth() == 0 or running.task.done(), 30, "central takes the backlog")
            assert not running.task.done(), running.task.exception()
            assert box.status().healthy
            assert box.finish(_passage(n + 1)) == f"{gate}:{n + 1}"  # the passage left open, recorded now
            wait_for(lambda: box.depth() == 0, 30, "that record too")
        finally:
            central.stop()
    assert _central_ids(tmp_path) == [f"{gate}:{i}" for i in range(1, n + 2)]


def test_the_agent_outlives_an_outbox_that_cannot_write(tmp_path, layout):
    """On a really full disk even the DELETE of acknowledged records fails (SQLite must append to
    its WAL; seen on a full tmpfs). The agent logs it and goes on: the records central has stored
    stay in the outbox, are sent again once the disk has room and answered `duplicate`."""
    import sqlite3 as _sqlite3

    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.record import load_signing_key

    gate = GATES[0]
    port = _free_port()
    central = _single_receiver(tmp_path, layout, port)
    box = Outbox(tmp_path / "outbox.sqlite", gate, load_signing_key(layout.signing_key(gate)))
    real_ack, real_status = box.acknowledged, box.set_status
    full = {"acks": 3, "status": 3}

    def acknowledged(ids, by):
        if full["acks"]:
            full["acks"] -= 1
            raise _sqlite3.OperationalError("database or disk is full")
        return real_ack(ids, by)

    def set_status(status):
        if full["status"]:
            full["status"] -= 1
            raise _sqlite3.OperationalError("database or disk is full")
        return real_status(status)

    box.acknowledged, box.set_status = acknowledged, set_status
    for i in range(1, 31):
        box.finish(_passage(i))
    cfg = SyncConfig(central_url=f"https://127.0.0.1:{port}", ca_cert=layout.ca_cert,
                     client_cert=layout.gate_cert(gate), client_key=layout.gate_key(gate),
                     **{**AGENT, "batch_size": 10})
    agent = SyncAgent(cfg, box, gate_status=_gate_status)
    central.start()
    try:
        central.wait_ready()
        with RunningAgent(agent) as running:
            wait_for(lambda: box.depth() == 0 or running.task.done(), 30, "the outbox drained")
            assert not running.task.done(), f"the agent stopped: {running.task.exception()!r}"
            assert full == {"acks": 0, "status": 0}
            assert any("disk is full" in e for e in agent.errors)
    finally:
        central.stop()
    assert _central_ids(tmp_path) == [f"{gate}:{i}" for i in range(1, 31)]


def test_an_idle_agent_does_not_fail_over_on_one_reset_connection(tmp_path, layout):
    """An agent that had nothing to send for longer than `failover_timeout_s` meets one reset
    connection (a central restarted, a stale keep-alive, a NAT): that is one failure, not
    `failover_after`; it stays on central and delivers there."""
    from simulators.tcp_proxy import TcpProxy
    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.record import load_signing_key

    gate = GATES[0]
    port, backup_port = _free_port(), _free_port()
    central = _single_receiver(tmp_path, layout, port)
    box = Outbox(tmp_path / "outbox.sqlite", gate, load_signing_key(layout.signing_key(gate)))
    central.start()
    try:
        central.wait_ready()
        with TcpProxy(port) as proxy:
            cfg = SyncConfig(central_url=f"https://127.0.0.1:{proxy.port}",
                             backup_url=f"https://127.0.0.1:{backup_port}",  # nobody there: a switch would show
                             ca_cert=layout.ca_cert, client_cert=layout.gate_cert(gate),
                             client_key=layout.gate_key(gate), failover_after=3, failover_timeout_s=1.0,
                             retry_initial_s=0.1, request_timeout_s=2.0, heartbeat_s=3600)
            agent = SyncAgent(cfg, box, gate_status=_gate_status)
            with RunningAgent(agent) as running:
                box.finish(_passage(1))
                running.nudge()
                wait_for(lambda: box.depth() == 0, 10, "the first record at central")
                time.sleep(1.5)  # idle for longer than failover_timeout_s
                proxy.reset()    # the open connection goes...
                proxy.reset_next(1)  # ...and so does the next one
                box.finish(_passage(2))
                running.nudge()
                wait_for(lambda: box.depth() == 0 or agent.switches, 10, "the second record at central")
                assert [(s.to, s.why) for s in agent.switches] == [], "failed over on one reset"
    finally:
        central.stop()
    assert _central_ids(tmp_path) == [f"{gate}:1", f"{gate}:2"]


def test_the_agent_and_a_forwarder_stop_when_cancelled_even_while_woken(tmp_path, layout):
    """Cancelling the agent (the gate stopping) or a backup's forwarder (SIGTERM) while its wake
    event is being set (a record arriving, a batch stored) must end it. On Python 3.11,
    `asyncio.wait_for(event.wait(), t)` returns instead of raising when the event was set in the
    same loop iteration as the cancel, and the loop goes on: the process hangs at shutdown."""
    import types

    from core import logs
    from sync.agent import SyncAgent
    from sync.config import SyncConfig
    from sync.outbox import Outbox
    from sync.receiver.config import Forward
    from sync.receiver.forward import Forwarder
    from sync.record import load_signing_key

    gate = GATES[0]
    box = Outbox(tmp_path / "outbox.sqlite", gate, load_signing_key(layout.signing_key(gate)))
    dead = f"https://127.0.0.1:{_free_port()}"  # nobody: every cycle fails and waits on the event
    agent = SyncAgent(SyncConfig(central_url=dead, ca_cert=layout.ca_cert, client_cert=layout.gate_cert(gate),
                                 client_key=layout.gate_key(gate), retry_initial_s=0.5, retry_max_s=0.5,
                                 heartbeat_s=3600), box, gate_status=_gate_status)
    box.finish(_passage(1))

    async def nothing(fn, *args):
        return []  # a backup database with nothing to forward

    forwarder = Forwarder(Forward(url=dead, ca_cert=layout.ca_cert, client_cert=layout.forwarder_cert(SITE),
                                  client_key=layout.forwarder_key(SITE), poll_s=0.5),
                          store=types.SimpleNamespace(claim_unforwarded=None), db=nothing, log=logs.get("test"))

    async def trials(run, wake, n=10) -> int:
        stuck = 0
        for _ in range(n):
            task = asyncio.create_task(run())
            await asyncio.sleep(0.2)  # failed (or found nothing) and now waits for its event
            wake()                    # a record arrives...
            task.cancel()             # ...as the gate (or the receiver) stops
            await asyncio.sleep(0.1)
            stuck += not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return stuck

    async def main():
        stuck = (await trials(agent.run, agent.nudge), await trials(forwarder.run, forwarder.wake.set))
        assert forwarder.failures == 0 and "sync_cycle_failed" not in " ".join(agent.errors)
        return stuck

    stuck_agent, stuck_forwarder = asyncio.run(main())
    box.stop()
    assert (stuck_agent, stuck_forwarder) == (0, 0), "cancellations swallowed (of 10 each)"


if __name__ == "__main__":
    if sys.argv[1:2] == ["gate"]:
        sys.exit(_gate_main(sys.argv[2:]))
    sys.exit(f"usage: python -m tests.test_sync_chaos gate ...")
