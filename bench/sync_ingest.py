"""Sync benchmarks: central ingest into PostgreSQL, failover detection, draining a backlog.

1. **Ingest.** Several gates (threads, one keep-alive mutual-TLS connection each) send signed
   records in batches to a real `egate central serve` process on PostgreSQL: TLS, msgpack,
   Ed25519 verification of every record, the idempotent insert and the verdicts. Baseline in the
   same run, on the same PostgreSQL server and the same schema (migrated by the receiver's own
   Store): the same rows, already decoded, as one raw `INSERT … ON CONFLICT (id) DO NOTHING` per
   batch and one commit, from as many connections as there are gates. Target ≥ 0.5×. Each side
   runs three times, alternating, on fresh databases; the best run of each is compared.
2. **Failover detection.** A SyncAgent with the default timings (`sync.config.SyncConfig`) on
   central while records arrive (one every 100 ms); central is killed (SIGKILL: connections are
   refused) and the time to the switch to the site's backup is measured, from the kill and from
   the agent's first failed request (its `detection_s`). Also with central blackholed instead (a
   loopback proxy that swallows everything: each request waits for `request_timeout_s`). Target
   ≤ 2 s.
3. **Drain.** A 100,000-record backlog in one gate's outbox (written with the outbox's own
   `finish`) goes to central on PostgreSQL through the agent, with the default batch size (100)
   and with 500: the time until the outbox is empty.

It starts its own PostgreSQL (`simulators.services.postgres_server`) and stops everything itself.

  .venv/bin/python -m bench.sync_ingest [--gates 8] [--records 5000] [--batch 500]
                                         [--backlog 100000] [--failovers 5] [--only ingest,failover,drain]
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from simulators import services
from simulators.tcp_proxy import TcpProxy
from sync import pki, record
from sync.agent import SyncAgent
from sync.config import SyncConfig
from sync.outbox import Outbox
from sync.receiver import protocol as P
from sync.receiver.config import DatabaseTarget
from sync.receiver.store import Store, utcnow

ROOT = Path(__file__).resolve().parents[1]
SITE = "SIM"


def passage(n: int, t: float) -> dict:
    """A realistic cleared passage (as bench.sync_outbox writes it), ≈ 560 bytes signed."""
    return {"passage_id": f"{n:032x}", "started": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t - 9.4)),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t)),
            "outcome": "cleared", "reasons": [], "reason_detail": {},
            "document": {"type": "P", "issuer": "TWN", "nationality": "TWN", "number": f"{300000000 + n}",
                         "traveller_class": "national", "passive_auth": {"sod_signature": "passed"}},
            "scores": {"face": {"score": 0.7123, "threshold": 0.428, "frames": 5}, "finger": {"score": 88}},
            "timings_s": {"document": 0.41, "enter": 3.2, "face": 2.1, "finger": 0.9, "exit": 2.2, "total": 9.4}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------ receivers and databases

class Databases:
    def __init__(self, base_url: str):
        self.base = base_url
        self.n = 0

    def fresh(self, prefix: str) -> str:
        self.n += 1
        name = f"{prefix}_{self.n}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.base.rsplit("/", 1)[0] + "/" + name


class ReceiverProc:
    """`egate central serve` in a subprocess, on a fixed port (so it can be killed and started again)."""

    def __init__(self, work: Path, layout: pki.Layout, role: str, db_url: str, port: int,
                 central_port: int | None = None):
        self.path = work / f"{role}.toml"
        self.log = work / f"{role}.log"
        self.port = port
        server = "central" if role == "central" else f"backup-{SITE}"
        lines = [f'role = "{"central" if role == "central" else "backup"}"', f'site = "{SITE}"',
                 f'gate_keys_dir = "{layout.gate_keys_dir}"', f'trusted_forwarders = ["{pki.forwarder_cn(SITE)}"]',
                 "[listen]", 'host = "127.0.0.1"', f"port = {port}",
                 f'tls_cert = "{layout.server_cert(server)}"', f'tls_key = "{layout.server_key(server)}"',
                 f'client_ca = "{layout.ca_cert}"', "[database]", f'url = "{db_url}"']
        if central_port is not None:
            lines += ["[forward]", f'url = "https://127.0.0.1:{central_port}"', f'ca_cert = "{layout.ca_cert}"',
                      f'client_cert = "{layout.forwarder_cert(SITE)}"', f'client_key = "{layout.forwarder_key(SITE)}"']
        lines += ["[logging]", 'level = "warning"', 'format = "json"']
        self.path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> ReceiverProc:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "gate", "central", "serve", "--config", str(self.path)],
                                         cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"receiver did not start: {line!r}; see {self.log}")
        return self

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


# ------------------------------------------------------------------------ 1. ingest

def make_envelopes(layout: pki.Layout, gates: list[str], n: int) -> dict[str, list[bytes]]:
    now = time.time()
    out = {}
    for g in gates:
        key = record.load_signing_key(layout.signing_key(g))
        out[g] = [record.sign(record.encode_body(gate=g, seq=i, passage=passage(i, now)), key) for i in range(1, n + 1)]
    return out


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def ingest_receiver(layout, envelopes: dict[str, list[bytes]], port: int, batch: int) -> float:
    """Records per second through the receiver: one thread and one keep-alive connection per gate."""
    errors: list[str] = []
    barrier = threading.Barrier(len(envelopes) + 1)

    def gate(g: str, envs: list[bytes]):
        ctx = ssl.create_default_context(cafile=str(layout.ca_cert))
        ctx.load_cert_chain(str(layout.gate_cert(g)), str(layout.gate_key(g)))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
        conn.connect()
        bodies = [P.encode_batch(b) for b in _batches(envs, batch)]
        barrier.wait()
        for body, chunk in zip(bodies, _batches(envs, batch)):
            conn.request("POST", P.RECORDS_PATH, body=body, headers={"Content-Type": P.CONTENT_TYPE})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                errors.append(f"{g}: HTTP {resp.status} {data[:200]!r}")
                return
            results = P.decode_results(data, len(chunk))
            bad = [r for r in results if r["status"] != P.STORED]
            if bad:
                errors.append(f"{g}: {len(bad)} not stored, e.g. {bad[0]}")
                return
        conn.close()

    threads = [threading.Thread(target=gate, args=item) for item in envelopes.items()]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return sum(map(len, envelopes.values())) / elapsed


def ingest_raw(db_url: str, envelopes: dict[str, list[bytes]], batch: int, keys: dict | None = None) -> float:
    """Rows per second: the same rows (decoded beforehand) as one multi-row INSERT … ON CONFLICT (id)
    DO NOTHING per batch, one commit each, one connection per gate, on the receiver's own schema.
    With `keys` (gate -> public key), each row's signature is checked before its batch is inserted."""
    store = Store(DatabaseTarget("postgresql", dsn=db_url))
    store.migrate()
    store.close()
    now = utcnow()
    rows = {}
    for g, envs in envelopes.items():
        rows[g] = []
        for env in envs:
            body = record.decode_body(record.decode_envelope(env).body)
            rows[g].append((body["id"], g, body["seq"], body["passage"], body["outcome"], body["started"],
                            body["ended"], env, now, "direct", now))
    barrier = threading.Barrier(len(rows) + 1)
    errors = []

    def gate(g: str, mine: list[tuple]):
        try:
            with psycopg.connect(db_url) as conn:
                chunks = _batches(mine, batch)
                barrier.wait()
                for chunk in chunks:
                    if keys is not None:
                        for r in chunk:
                            env = record.decode_envelope(r[7])
                            keys[g].verify(env.sig, record.DOMAIN + env.body)
                    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                    conn.execute("INSERT INTO records (id, gate, seq, passage, outcome, started, ended, envelope, "
                                 f"received_at, via, forwarded_at) VALUES {values} ON CONFLICT (id) DO NOTHING",
                                 [p for r in chunk for p in r])
                    conn.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(str(exc))
            barrier.abort()

    threads = [threading.Thread(target=gate, args=item) for item in rows.items()]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return sum(map(len, rows.values())) / elapsed


def verify_ceiling(layout, gate: str, envs: list[bytes]) -> tuple[float, float, str]:
    """Signature checks per second with nothing else: one thread, then one thread per core."""
    key = record.load_verify_key((layout.gate_keys_dir / f"{gate}.pem").read_bytes(), gate)
    parsed = [record.decode_envelope(e) for e in envs]

    def work():
        for e in parsed:
            key.verify(e.sig, record.DOMAIN + e.body)

    t0 = time.perf_counter()
    work()
    one = len(parsed) / (time.perf_counter() - t0)
    cores = os.cpu_count() or 1
    threads = [threading.Thread(target=work) for _ in range(cores)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return one, cores * len(parsed) / (time.perf_counter() - t0), f"{cores} threads"


def bench_ingest(work: Path, layout, dbs: Databases, gates: list[str], per_gate: int, batch: int) -> float:
    print(f"== ingest: {len(gates)} gates x {per_gate} records, batches of {batch}, central on PostgreSQL")
    envelopes = make_envelopes(layout, gates, per_gate)
    size = statistics.mean(len(e) for e in envelopes[gates[0]])
    ceiling = verify_ceiling(layout, gates[0], envelopes[gates[0]][:2000])
    keys = {g: record.load_verify_key((layout.gate_keys_dir / f"{g}.pem").read_bytes(), g) for g in gates}
    ours, raw, signed = [], [], []
    for attempt in range(3):
        raw.append(ingest_raw(dbs.fresh("raw"), envelopes, batch))
        signed.append(ingest_raw(dbs.fresh("raw"), envelopes, batch, keys))
        central = ReceiverProc(work, layout, "central", dbs.fresh("ingest"), free_port()).start()
        try:
            ours.append(ingest_receiver(layout, envelopes, central.port, batch))
        finally:
            central.stop()
        print(f"   run {attempt + 1}: receiver {ours[-1]:,.0f} records/s, raw INSERT {raw[-1]:,.0f} rows/s, "
              f"raw INSERT + Ed25519 verify {signed[-1]:,.0f} rows/s")
    best, base = max(ours), max(raw)
    print(f"central ingest (mutual TLS, msgpack, Ed25519 per record, idempotent insert): {best:,.0f} records/s "
          f"({size:.0f} B records)")
    print(f"raw batched INSERT ... ON CONFLICT DO NOTHING, same server and schema: {base:,.0f} rows/s "
          f"-> ratio {best / base:.2f} (target >= 0.5)")
    print(f"raw batched INSERT with each row's Ed25519 signature verified first (the cost a signed record "
          f"cannot avoid): {max(signed):,.0f} rows/s -> ratio {best / max(signed):.2f}")
    print(f"Ed25519 verification alone (cryptography, these records): {ceiling[0]:,.0f} /s on one thread, "
          f"{ceiling[1]:,.0f} /s on {ceiling[2]} -> the receiver reaches {best / ceiling[1]:.2f} of that ceiling")
    return best


# ------------------------------------------------------------------------ agents

class RunningAgent:
    """A SyncAgent on its own event loop in a thread, as the gate's reactor runs it."""

    def __init__(self, agent: SyncAgent):
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()

        async def start():
            return asyncio.create_task(self.agent.run())

        self.task = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)  # the agent's asyncio.Task
        return self

    def __exit__(self, *exc):
        async def stop():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)  # its session closes

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def gate_status() -> dict:
    return {"state": "idle", "health": {}, "counters": {}, "in_service_s": 0.0}


def agent_config(layout, gate: str, central_url: str, backup_url: str = "", **kw) -> SyncConfig:
    return SyncConfig(central_url=central_url, backup_url=backup_url, ca_cert=layout.ca_cert,
                      client_cert=layout.gate_cert(gate), client_key=layout.gate_key(gate), **kw)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------ 2. failover

def one_failover(work: Path, layout, gate: str, how: str, rng: random.Random, **timings) -> tuple[float, float]:
    """(kill -> switch, first failed request -> switch) in seconds, for central killed or blackholed."""
    for f in work.glob("*.sqlite*"):
        f.unlink()
    cport, bport = free_port(), free_port()
    central = ReceiverProc(work, layout, "central", f"sqlite:///{work / 'central.sqlite'}", cport).start()
    backup = ReceiverProc(work, layout, "backup", f"sqlite:///{work / 'backup.sqlite'}", bport, cport).start()
    proxy = TcpProxy(cport).start()
    box = Outbox(work / "outbox.sqlite", gate, record.load_signing_key(layout.signing_key(gate)))
    stop = threading.Event()
    try:
        cfg = agent_config(layout, gate, f"https://127.0.0.1:{proxy.port if how == 'blackholed' else cport}",
                           f"https://127.0.0.1:{bport}", **timings)
        agent = SyncAgent(cfg, box, gate_status=gate_status)

        def lane():  # a record every 100 ms; like gate/app.py, no nudge: the agent finds them as it polls
            n = 0
            while not stop.is_set():
                n += 1
                box.finish(passage(n, time.time()))
                stop.wait(0.1)

        with RunningAgent(agent):
            writer = threading.Thread(target=lane, daemon=True)
            writer.start()
            wait_for(lambda: agent.sent["central"] >= 10, 30, "records at central")
            time.sleep(rng.uniform(0, 1.0))
            t_kill = time.monotonic()
            if how == "killed":
                central.kill9()
            else:
                proxy.blackhole()
            wait_for(lambda: agent.switches, 60, "the switch to the backup")
            switch = agent.switches[0]
            stop.set()
            writer.join()
        assert switch.to == "backup", switch
        return switch.mono - t_kill, switch.detection_s
    finally:
        stop.set()
        proxy.stop()
        backup.stop()
        central.stop()
        box.stop()
        for f in work.glob("outbox.sqlite*"):
            f.unlink()


def bench_failover(work: Path, layout, gate: str, rounds: int) -> None:
    d = SyncConfig()
    print(f"== failover: default agent timings (request_timeout_s {d.request_timeout_s}, retry_initial_s "
          f"{d.retry_initial_s}, failover_after {d.failover_after}, failover_timeout_s {d.failover_timeout_s}); "
          f"a record every 100 ms; {rounds} rounds each")
    rng = random.Random(7)
    tuned = {"request_timeout_s": 1.0, "failover_timeout_s": 2.0}
    for how, timings in (("killed", {}), ("blackholed", {}), ("blackholed", tuned)):
        n = rounds if how == "killed" else max(2, rounds // 2)
        runs = [one_failover(work, layout, gate, how, rng, **timings) for _ in range(n)]
        from_kill = [k for k, _ in runs]
        detection = [d for _, d in runs]
        what = "defaults" if not timings else ", ".join(f"{k} {v}" for k, v in timings.items())
        print(f"central {how} ({what}): fault -> switch median {statistics.median(from_kill):.2f} s "
              f"(max {max(from_kill):.2f}); first failed request -> switch median {statistics.median(detection):.2f} s "
              f"-> ratio {statistics.median(from_kill) / 2.0:.2f} to the target (<= 2 s)")


# ------------------------------------------------------------------------ 3. drain

def fill_outbox(path: Path, layout, gate: str, n: int) -> float:
    """n records through Outbox.finish (signed, one transaction each); fsync off while filling,
    which only shortens the set-up. Returns the seconds it took."""
    box = Outbox(path, gate, record.load_signing_key(layout.signing_key(gate)), max_records=10 * n)
    box._db.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    now = time.time()
    for i in range(1, n + 1):
        box.finish(passage(i, now))
    elapsed = time.perf_counter() - t0
    box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    box.stop()
    return elapsed


def bench_drain(work: Path, layout, dbs: Databases, gate: str, n: int, ingest_rate: float | None) -> None:
    print(f"== drain: a {n:,}-record backlog in one gate's outbox -> central on PostgreSQL, default agent timings")
    master = work / "backlog.sqlite"
    took = fill_outbox(master, layout, gate, n)
    print(f"   (backlog written with Outbox.finish in {took:.1f} s, fsync off for the set-up)")
    for batch in (100, 500):
        path = work / f"drain-{batch}.sqlite"
        shutil.copy(master, path)
        central = ReceiverProc(work, layout, "central", dbs.fresh("drain"), free_port()).start()
        box = Outbox(path, gate, record.load_signing_key(layout.signing_key(gate)), max_records=10 * n)
        try:
            agent = SyncAgent(agent_config(layout, gate, f"https://127.0.0.1:{central.port}", batch_size=batch),
                              box, gate_status=gate_status)
            t0 = time.perf_counter()
            with RunningAgent(agent):
                wait_for(lambda: box.depth() == 0, 3600, "the outbox drained", interval=0.05)
                elapsed = time.perf_counter() - t0
            assert agent.sent["central"] == n, agent.sent
        finally:
            box.stop()
            central.stop()
            path.unlink()
        rate = n / elapsed
        extra = f"; {rate / ingest_rate:.2f}x the multi-gate ingest rate" if ingest_rate else ""
        print(f"drain {n:,} records, batch_size {batch}{' (default)' if batch == 100 else ''}: {elapsed:.1f} s "
              f"= {rate:,.0f} records/s, one request at a time{extra}")


# ------------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gates", type=int, default=8)
    ap.add_argument("--records", type=int, default=5000, help="records per gate for the ingest figure")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--only", default="ingest,failover,drain")
    args = ap.parse_args()
    only = set(args.only.split(","))
    gates = [f"BENCH-{i:02d}" for i in range(1, args.gates + 1)]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        layout = pki.create(work / "pki", gates=gates, sites=[SITE])
        rate = None
        with services.postgres_server() as base_url:
            dbs = Databases(base_url)
            if "ingest" in only:
                rate = bench_ingest(work, layout, dbs, gates, args.records, args.batch)
            if "failover" in only:
                bench_failover(work, layout, gates[0], args.failovers)
            if "drain" in only:
                bench_drain(work, layout, dbs, gates[0], args.backlog, rate)
    print(f"(whole bench {time.perf_counter() - t_start:.0f} s; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
