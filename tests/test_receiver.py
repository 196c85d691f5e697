"""The receiver (central and backup): verdicts, signatures, identity, bad input, heartbeats, status,
concurrent receivers on one PostgreSQL, and a backup forwarding to central. Loopback only; the
storage tests run against SQLite and a real PostgreSQL (the session's `postgres_url`)."""
from __future__ import annotations

import json
import random
import socket
import sqlite3
import ssl
import threading
from collections import Counter
from pathlib import Path

import msgpack
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.errors import ConfigError
from gate.cli import main as egate
from sync import pki as sync_pki
from sync import record
from sync.receiver import protocol as P
from sync.receiver.config import database_target, load_receiver
from sync.receiver.store import SCHEMA_VERSION, Store, StoreError, utcnow
from tests.receiver_helpers import (FORWARDER, GATES, SITE, Client, Envelopes, ProcessReceiver, ThreadedReceiver,
                                    drop_postgres, free_port, fresh_postgres, wait_for, write_config)

G1, G2, G3, G4 = GATES[:4]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return sync_pki.create(tmp_path_factory.mktemp("pki"), gates=GATES, sites=[SITE])


@pytest.fixture(scope="module")
def env(layout):
    return Envelopes(layout)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path}/records.sqlite"
        return
    base = request.getfixturevalue("postgres_url")
    url = fresh_postgres(base)
    yield url
    drop_postgres(base, url)


@pytest.fixture
def central(layout, db_url, tmp_path):
    cfg = write_config(tmp_path / "central.toml", layout, db_url=db_url)
    with ThreadedReceiver(cfg) as running:
        yield running


def store_of(running) -> Store:
    return running.receiver.store


def beat(gate=G1, **over) -> dict:
    b = {"gate": gate, "at": "2025-01-01T08:00:00Z", "state": "idle", "health": {"door": None, "camera": "lost"},
         "outbox_depth": 3, "oldest_age_s": 1.5, "counters": {"passages": 7}, "in_service_s": 120.0}
    b.update(over)
    return b


# ------------------------------------------------------------------------ verdicts

def test_stored_duplicate_and_conflict_verdicts(central, layout, env):
    gate = Client.gate(central.port, layout, G1)
    batch = [env(G1, 1), env(G1, 2), env(G1, 3)]
    assert gate.results(batch) == [(f"{G1}:{i}", "stored", None) for i in (1, 2, 3)]
    assert gate.results(batch) == [(f"{G1}:{i}", "duplicate", None) for i in (1, 2, 3)]
    # Same id, other bytes (a signed record with another outcome): refused, the stored one kept.
    other = env(G1, 2, "rejected")
    assert gate.results([other, env(G1, 4), env(G1, 4)]) == [
        (f"{G1}:2", "refused", "conflict"), (f"{G1}:4", "stored", None), (f"{G1}:4", "duplicate", None)]
    rows = store_of(central).records()
    assert [r["id"] for r in rows] == [f"{G1}:{i}" for i in (1, 2, 3, 4)]
    assert rows[1]["envelope"] == batch[1] and all(r["via"] == "direct" for r in rows)
    assert all(r["forwarded_at"] is not None for r in rows)  # at central a record has arrived
    status = store_of(central).status()
    assert status["conflicts_kept"] == 1
    assert [(r["client"], r["reason"], r["count"]) for r in status["refusals"]] == [(G1, "conflict", 1)]
    g = status["gates"][G1]
    assert (g["records"], g["first_seq"], g["last_seq"]) == (4, 1, 4)


def test_rows_keep_what_the_contract_says(central, layout, env):
    Client.gate(central.port, layout, G2).results([env(G2, 7, "rejected")])
    store = store_of(central)
    with store._tx(write=False) as cur:
        row = cur.run("SELECT id, gate, seq, passage, outcome, started, ended, envelope, via FROM records").fetchone()
    body = record.decode_envelope(bytes(row[7])).verify(
        record.load_verify_key((layout.gate_keys_dir / f"{G2}.pem").read_bytes(), G2))
    assert row[:7] == (f"{G2}:7", G2, 7, "p-000007", "rejected", body["started"], body["ended"])
    assert row[8] == "direct"


def test_signatures_are_verified(central, layout, env):
    gate = Client.gate(central.port, layout, G1)
    # Signed with another gate's key.
    forged = envelope_with_key(layout, G1, 1, record.load_signing_key(layout.signing_key(G2)))
    # A body altered after signing (outcome changed, signature kept).
    good = record.decode_envelope(env(G1, 2, "rejected"))
    altered_body = good.body.replace(b"rejected", b"accepted")
    tampered = msgpack.packb({"v": 1, "body": altered_body, "sig": good.sig}, use_bin_type=True)
    # A signature over the body without the domain prefix.
    key = record.load_signing_key(layout.signing_key(G1))
    body3 = record.encode_body(gate=G1, seq=3, passage=_passage(3))
    no_domain = msgpack.packb({"v": 1, "body": body3, "sig": key.sign(body3)}, use_bin_type=True)
    assert gate.results([forged, tampered, no_domain]) == [
        (f"{G1}:1", "refused", "bad_signature"), (f"{G1}:2", "refused", "bad_signature"),
        (f"{G1}:3", "refused", "bad_signature")]
    assert store_of(central).record_count() == 0
    assert _refusals(central) == {"bad_signature": 3}


def envelope_with_key(layout, gate, seq, key):
    return record.sign(record.encode_body(gate=gate, seq=seq, passage=_passage(seq)), key)


def _passage(seq):
    from tests.receiver_helpers import passage
    return passage(seq)


def _refusals(running) -> dict:
    counts = Counter()
    for r in store_of(running).status()["refusals"]:
        counts[r["reason"]] += r["count"]
    return dict(counts)


# ------------------------------------------------------------------------ bad input

def test_bad_input_gets_a_clear_answer_and_stores_nothing(central, layout, env):
    gate = Client.gate(central.port, layout, G1)
    valid = P.encode_batch([env(G1, 1), env(G1, 2)])
    stranger = Ed25519PrivateKey.generate()
    cases = [
        ("truncated", "POST", valid[: len(valid) // 2], P.CONTENT_TYPE, 400, "bad_body"),
        ("garbage", "POST", bytes(random.Random(1).randbytes(300)), P.CONTENT_TYPE, 400, "bad_body"),
        ("trailing bytes", "POST", valid + b"\xc0", P.CONTENT_TYPE, 400, "bad_body"),
        ("a map, not an array", "POST", msgpack.packb({"records": []}), P.CONTENT_TYPE, 400, "bad_body"),
        ("empty body", "POST", b"", P.CONTENT_TYPE, 400, "bad_body"),
        ("wrong content type", "POST", valid, "application/json", 415, "wrong_content_type"),
        ("no content type", "POST", valid, "", 415, "wrong_content_type"),
        ("too many records", "POST", P.encode_batch([env(G1, 1)] * (P.MAX_BATCH_RECORDS + 1)), P.CONTENT_TYPE,
         413, "too_large"),
        ("more than 8 MiB", "POST", msgpack.packb([b"\0" * P.MAX_BATCH_BYTES], use_bin_type=True), P.CONTENT_TYPE,
         413, "too_large"),
    ]
    for what, method, body, ctype, want_status, want_error in cases:
        status, reply = gate.request(method, P.RECORDS_PATH, body, ctype)
        assert (status, reply["error"]) == (want_status, want_error), what
        assert reply["reason"], what
    # Per record: the rest of the batch is still answered, in order.
    results = gate.results([
        7,                                              # not a bin
        b"\x81\xa1v\x01",                               # a bin that is no envelope
        env(G1, 1)[:-5],                                # a truncated envelope
        envelope_with_key(layout, "SIM-LANE-77", 1, stranger),   # a gate nobody knows
        envelope_with_key(layout, "../../etc/passwd", 1, stranger),  # a gate id that is no file name
        env(G2, 1),                                     # another gate's record, sent by G1
    ])
    assert results == [(None, "refused", "malformed"), (None, "refused", "malformed"), (None, "refused", "malformed"),
                       ("SIM-LANE-77:1", "refused", "unknown_gate"), ("../../etc/passwd:1", "refused", "unknown_gate"),
                       (f"{G2}:1", "refused", "foreign")]
    assert store_of(central).record_count() == 0
    assert _refusals(central) == {"bad_body": 5, "wrong_content_type": 2, "too_large": 2, "malformed": 3,
                                  "unknown_gate": 2, "foreign": 1}
    # Still serving, the whole path: an empty batch is a probe.
    assert gate.send([]) == (200, {"results": []})
    assert gate.results([env(G1, 1)]) == [(f"{G1}:1", "stored", None)]


def test_other_paths_and_methods(central, layout):
    gate = Client.gate(central.port, layout, G1)
    assert gate.request("GET", P.RECORDS_PATH)[0] == 405
    assert gate.request("POST", "/v2/records", b"\x90")[0] == 404


def test_no_client_certificate_or_one_from_another_ca_is_refused_at_the_handshake(central, layout, tmp_path):
    no_cert = Client(central.port, layout.ca_cert)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        no_cert.send([])
    other = sync_pki.create(tmp_path / "other", gates=[G1], sites=[], offsite=False)
    impostor = Client(central.port, layout.ca_cert, other.gate_cert(G1), other.gate_key(G1))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        impostor.send([])
    assert store_of(central).status()["clients"] == []   # neither got as far as a request
    assert Client.gate(central.port, layout, G1).send([]) == (200, {"results": []})


def test_a_client_checks_the_receivers_certificate_too(central, layout, tmp_path):
    other = sync_pki.create(tmp_path / "other", gates=[G1], sites=[], offsite=False)
    client = Client(central.port, other.ca_cert, other.gate_cert(G1), other.gate_key(G1))
    with pytest.raises(ssl.SSLCertVerificationError):
        client.send([])


def test_a_replayed_batch_is_all_duplicates_and_stores_nothing_new(central, layout, env):
    gate = Client.gate(central.port, layout, G3)
    batch = [env(G3, i) for i in range(1, 51)]
    assert {s for _, s, _ in gate.results(batch)} == {"stored"}
    before = store_of(central).records()
    for client in (gate, Client.forwarder(central.port, layout)):   # replayed by the gate, or relayed
        assert gate.results(batch) == [(f"{G3}:{i}", "duplicate", None) for i in range(1, 51)]
        assert client.results(batch[:10]) == [(f"{G3}:{i}", "duplicate", None) for i in range(1, 11)]
    assert store_of(central).records() == before  # same rows, same via, same times
    assert _refusals(central) == {}


def test_a_trusted_forwarder_may_send_any_gates_records_an_untrusted_one_may_not(layout, env, tmp_path):
    cfg = write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/c.sqlite", forwarders=["backup:KHH"])
    with ThreadedReceiver(cfg) as running:
        # backup:TPE is a valid certificate of the CA, but not listed: its records are foreign.
        untrusted = Client.forwarder(running.port, layout)
        assert untrusted.results([env(G1, 1)]) == [(f"{G1}:1", "refused", "foreign")]
    cfg = write_config(tmp_path / "c2.toml", layout, db_url=f"sqlite:{tmp_path}/c2.sqlite")
    with ThreadedReceiver(cfg) as running:
        trusted = Client.forwarder(running.port, layout)
        assert trusted.results([env(G1, 1), env(G2, 1)]) == [(f"{G1}:1", "stored", None), (f"{G2}:1", "stored", None)]
        assert {r["via"] for r in store_of(running).records()} == {FORWARDER}


def test_a_new_gate_key_is_picked_up_without_a_restart(layout, env, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    cfg = write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/c.sqlite", gate_keys_dir=keys)
    with ThreadedReceiver(cfg) as running:
        gate = Client.gate(running.port, layout, G4)
        assert gate.results([env(G4, 1)]) == [(f"{G4}:1", "refused", "unknown_gate")]
        (keys / f"{G4}.pem").write_bytes(b"not a key")
        assert gate.results([env(G4, 1)]) == [(f"{G4}:1", "refused", "unknown_gate")]
        (keys / f"{G4}.pem").write_bytes((layout.gate_keys_dir / f"{G4}.pem").read_bytes())
        assert gate.results([env(G4, 1)]) == [(f"{G4}:1", "stored", None)]


def test_database_gone_answers_503_and_the_receiver_recovers(postgres_url, layout, env, tmp_path):
    url = fresh_postgres(postgres_url)
    cfg = write_config(tmp_path / "c.toml", layout, db_url=url)
    with ThreadedReceiver(cfg) as running:
        gate = Client.gate(running.port, layout, G1)
        assert gate.results([env(G1, 1)]) == [(f"{G1}:1", "stored", None)]
        with psycopg.connect(postgres_url, autocommit=True) as conn:   # kill the receiver's connections
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                         "pg_backend_pid()", (url.rsplit("/", 1)[1],))
        status, reply = gate.send([env(G1, 2)])
        if status == 200:   # a worker whose connection survived answered; the next one will not
            assert reply["results"][0]["status"] == "stored"
        else:
            assert (status, reply["error"]) == (503, "unavailable")
        # Reconnects on the next request: nothing lost, nothing twice.
        assert gate.results([env(G1, 2), env(G1, 3)])[1] == (f"{G1}:3", "stored", None)
        assert [r["seq"] for r in store_of(running).records()] == [1, 2, 3]
        drop_postgres(postgres_url, url)
        status, reply = gate.send([env(G1, 4)])
        assert (status, reply["error"]) == (503, "unavailable")
        assert gate.send([]) [0] == 503   # a probe proves the database too


# ------------------------------------------------------------------------ heartbeats and status

def test_heartbeats_are_stored_latest_and_history(central, layout):
    gate = Client.gate(central.port, layout, G1)
    assert gate.heartbeat(beat()) == (200, {"ok": True})
    assert gate.heartbeat(beat(state="in_passage", outbox_depth=0, oldest_age_s=None)) == (200, {"ok": True})
    hb = store_of(central).status()["gates"][G1]["heartbeat"]
    assert (hb["state"], hb["outbox_depth"], hb["oldest_age_s"]) == ("in_passage", 0, None)
    assert hb["health"] == {"door": None, "camera": "lost"} and hb["counters"] == {"passages": 7}
    with store_of(central)._tx(write=False) as cur:
        assert cur.run("SELECT COUNT(*) FROM heartbeats WHERE gate = ?", (G1,)).fetchone()[0] == 2
    assert store_of(central).prune_heartbeats(3600) == 0
    assert store_of(central).prune_heartbeats(0) == 2
    assert store_of(central).status()["gates"][G1]["heartbeat"]["state"] == "in_passage"  # the latest stays


def test_bad_heartbeats(central, layout):
    gate = Client.gate(central.port, layout, G1)
    assert gate.heartbeat(beat(gate=G2))[0] == 403                   # another gate's
    assert gate.heartbeat({**beat(), "extra": 1})[0] == 400
    no_state = beat()
    del no_state["state"]
    assert gate.heartbeat(no_state)[0] == 400
    assert gate.heartbeat(beat(outbox_depth="3"))[0] == 400
    assert gate.heartbeat(beat(outbox_depth=True))[0] == 400
    assert gate.heartbeat(beat(in_service_s=float("nan")))[0] == 400
    assert gate.request("POST", P.HEARTBEAT_PATH, b"\xc1")[0] == 400
    assert gate.request("POST", P.HEARTBEAT_PATH, msgpack.packb(beat()), "text/plain")[0] == 415
    assert gate.request("POST", P.HEARTBEAT_PATH, msgpack.packb(beat(state="x" * 70000)))[0] == 413
    assert Client.forwarder(central.port, layout).heartbeat(beat())[0] == 403
    assert store_of(central).status()["gates"] == {}
    assert _refusals(central) == {"forbidden": 2, "bad_body": 6, "wrong_content_type": 1, "too_large": 1}


def test_status_endpoint_and_command(central, layout, env, capsys):
    Client.gate(central.port, layout, G1).results([env(G1, 1), env(G1, 2)])
    Client.gate(central.port, layout, G2).heartbeat(beat(gate=G2))
    status, reply = Client.gate(central.port, layout, G3).status()
    assert status == 200
    assert {k: reply[k] for k in ("role", "site", "records", "gates", "schema_version")} == {
        "role": "central", "site": SITE, "records": 2, "gates": [G1, G2], "schema_version": SCHEMA_VERSION}
    config = str(central.cfg.source)
    assert egate(["central", "status", "--config", config, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["records"] == 2 and shown["gates"][G1]["records"] == 2
    assert shown["gates"][G2]["heartbeat"]["state"] == "idle" and shown["role"] == "central"
    assert {c["cn"] for c in shown["clients"]} == {G1, G2}   # status is read-only: G3 left no trace
    assert egate(["central", "status", "--config", config]) == 0
    text = capsys.readouterr().out
    assert "2 records, 2 gates seen" in text and G2 in text and "refusals by reason: none" in text


def test_status_command_on_a_missing_database_says_so(layout, tmp_path, capsys):
    write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/none.sqlite")
    assert egate(["central", "status", "--config", str(tmp_path / "c.toml")]) == 1
    assert "no database file" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


# ------------------------------------------------------------------------ storage

def test_migrations_are_versioned_and_idempotent(db_url, tmp_path):
    target = database_target(load_config_db(db_url, tmp_path), tmp_path)
    store = Store(target)
    try:
        assert store.schema_version() == 0
        assert store.migrate() == (0, SCHEMA_VERSION)
        assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
        with store._tx() as cur:
            cur.run("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (SCHEMA_VERSION + 1, store._ts(utcnow())))
        with pytest.raises(StoreError, match="newer than this receiver"):
            store.migrate()
    finally:
        store.close()


def test_receivers_starting_together_migrate_once(postgres_url, tmp_path):
    url = fresh_postgres(postgres_url)
    target = database_target(load_config_db(url, tmp_path), tmp_path)
    stores = [Store(target) for _ in range(4)]
    results, barrier = [], threading.Barrier(4)

    def go(store):
        barrier.wait()
        results.append(store.migrate())

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sorted(results) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3
    drop_postgres(postgres_url, url)


def test_sqlite_is_wal_with_full_sync(layout, tmp_path):
    cfg = write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/db/r.sqlite")
    with ThreadedReceiver(cfg) as running:
        conn = running.receiver.store._conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL
    assert sqlite3.connect(tmp_path / "db" / "r.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def load_config_db(url, tmp_path):
    from sync.receiver.config import Database
    return Database(url=url)


def test_two_receivers_on_one_postgresql_ingest_concurrently_with_no_duplicate(postgres_url, layout, env, tmp_path):
    """Two `egate central serve` processes on one database; every gate sends each batch to both at
    once (as after a failover race), several gates in parallel: each record stored exactly once."""
    url = fresh_postgres(postgres_url)
    for name in ("a", "b"):
        write_config(tmp_path / f"{name}.toml", layout, db_url=url)
    per_gate, batch_size = 200, 40
    batches = {g: [[env(g, s) for s in range(i, i + batch_size)] for i in range(1, per_gate + 1, batch_size)]
               for g in GATES}
    verdicts: Counter = Counter()
    stored_by: Counter = Counter()
    stored_ids: list[str] = []
    errors: list = []
    lock = threading.Lock()
    with ProcessReceiver(tmp_path / "a.toml") as a, ProcessReceiver(tmp_path / "b.toml") as b:
        def send(gate, port, order):
            client = Client.gate(port, layout, gate)
            try:
                for i in order:
                    for rid, status, reason in client.results(batches[gate][i]):
                        with lock:
                            verdicts[status] += 1
                            if status == "stored":
                                stored_ids.append(rid)
                                stored_by[port] += 1
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

        threads = []
        for k, gate in enumerate(GATES):
            order = list(range(len(batches[gate])))
            threads.append(threading.Thread(target=send, args=(gate, a.port, order)))
            threads.append(threading.Thread(target=send, args=(gate, b.port, order[::-1] if k % 2 else order)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        for running in (a, b):
            code, err = running.terminate()
            assert code == 0, err[-2000:]
    total = per_gate * len(GATES)
    assert verdicts == Counter({"stored": total, "duplicate": total})
    assert stored_by[a.port] > 0 and stored_by[b.port] > 0   # both receivers did store
    assert len(stored_ids) == len(set(stored_ids)) == total
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM records").fetchone() == (total, total)
        for gate in GATES:
            seqs = [r[0] for r in conn.execute("SELECT seq FROM records WHERE gate = %s ORDER BY seq", (gate,))]
            assert seqs == list(range(1, per_gate + 1))
        assert conn.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
    drop_postgres(postgres_url, url)


# ------------------------------------------------------------------------ forwarding

def test_backup_forwards_to_central_when_it_comes_up_exactly_once(layout, env, db_url, tmp_path):
    """Gates deliver to the site backup while central is down; central comes up; every record
    reaches central once (also those a gate had already delivered to central itself)."""
    central_port = free_port()
    backup_cfg = write_config(tmp_path / "backup.toml", layout, role="backup", db_url=f"sqlite:{tmp_path}/b.sqlite",
                              forward_port=central_port)
    central_keys = tmp_path / "central_keys"
    central_keys.mkdir()
    for gate in (G1, G2):   # central lacks G3's key: the backup keeps G3's record, with the reason
        (central_keys / f"{gate}.pem").write_bytes((layout.gate_keys_dir / f"{gate}.pem").read_bytes())
    central_cfg = write_config(tmp_path / "central.toml", layout, db_url=db_url, port=central_port,
                               gate_keys_dir=central_keys)
    sent = {G1: [env(G1, s) for s in range(1, 101)], G2: [env(G2, s) for s in range(1, 61)]}
    with ThreadedReceiver(backup_cfg) as backup:
        for gate, envs in sent.items():
            client = Client.gate(backup.port, layout, gate)
            for i in range(0, len(envs), 25):
                assert {s for _, s, _ in client.results(envs[i:i + 25])} == {"stored"}
        assert Client.gate(backup.port, layout, G3).results([env(G3, 1)]) == [(f"{G3}:1", "stored", None)]
        wait_for(lambda: backup.receiver.forwarder.failures >= 2, what="the forwarder to fail while central is down")
        assert store_of(backup).backlog()["records"] == 161
        with ThreadedReceiver(central_cfg) as central:
            # One gate reached central directly for part of its records before the backup forwarded them.
            assert {s for _, s, _ in Client.gate(central.port, layout, G2).results(sent[G2][:30])} == {"stored"}
            wait_for(lambda: store_of(backup).backlog() | {"oldest_received_at": None} == {
                "records": 1, "refused_by_central": 1, "oldest_received_at": None}, what="the backlog to drain")
            left = store_of(backup).records(G3)
            assert left[0]["forwarded_at"] is None and left[0]["forward_error"] == "unknown_gate"
            rows = store_of(central).records()
            assert len(rows) == len({r["id"] for r in rows}) == 160
            for gate, envs in sent.items():
                got = [r for r in rows if r["gate"] == gate]
                assert [r["seq"] for r in got] == list(range(1, len(envs) + 1))
                assert [r["envelope"] for r in got] == envs
            assert {r["via"] for r in rows if r["gate"] == G1} == {FORWARDER}
            assert {r["via"] for r in rows if r["gate"] == G2 and r["seq"] <= 30} == {"direct"}
            assert _refusals(central) == {"unknown_gate": 1}
            snapshot = backup.receiver.forwarder.snapshot()
            assert snapshot["forwarded"] == 160 and snapshot["refused"] == 1
            # New records keep flowing while both are up.
            Client.gate(backup.port, layout, G1).results([env(G1, 101)])
            wait_for(lambda: len(store_of(central).records(G1)) == 101, what="a new record to be forwarded")
    status = Store(database_target(backup_cfg.database, tmp_path), create=False)
    try:
        assert status.backlog()["records"] == 1 and status.backlog()["refused_by_central"] == 1
    finally:
        status.close()


def test_backup_status_command_shows_the_backlog(layout, env, tmp_path, capsys):
    cfg = write_config(tmp_path / "backup.toml", layout, role="backup", db_url=f"sqlite:{tmp_path}/b.sqlite",
                       forward_port=free_port())
    with ThreadedReceiver(cfg) as backup:
        Client.gate(backup.port, layout, G1).results([env(G1, 1), env(G1, 2)])
        status, reply = Client.gate(backup.port, layout, G1).status()
        assert reply["role"] == "backup" and reply["backlog"] == 2 and reply["forwarding"]["forwarded"] == 0
    assert egate(["central", "status", "--config", str(tmp_path / "backup.toml")]) == 0
    assert "not yet forwarded to central: 2 records" in capsys.readouterr().out


def test_serve_command_runs_until_sigterm(layout, tmp_path):
    write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/c.sqlite")
    with ProcessReceiver(tmp_path / "c.toml") as running:
        assert Client.gate(running.port, layout, G1).send([]) == (200, {"results": []})
        code, err = running.terminate()
    assert code == 0
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events == [], events  # level warning: nothing to say on a clean run


# ------------------------------------------------------------------------ config

def test_example_configs_load(tmp_path):
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "config").mkdir()
    sync_pki.create(tmp_path / "var" / "pki", gates=[G1], sites=[SITE])
    for name in ("central", "backup"):
        path = tmp_path / "config" / f"{name}.example.toml"
        path.write_text((root / "config" / f"{name}.example.toml").read_text())
        cfg = load_receiver(path)
        assert cfg.role == name and cfg.site == SITE
        target = database_target(cfg.database, path.parent)
        assert target.kind == "sqlite" and target.path == tmp_path / "var" / ("central" if name == "central" else "backup-TPE") / "records.sqlite"
    assert load_receiver(tmp_path / "config" / "central.example.toml").trusted_forwarders == ("backup:TPE", "backup:offsite")
    assert load_receiver(tmp_path / "config" / "backup.example.toml").forward.url == "https://127.0.0.1:8443"


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace('role = "backup"', 'role = "central"'), "forward"),        # central forwards to nobody
    (lambda t: t[:t.index("[forward]")], "forward"),                               # a backup must
    (lambda t: t + "[limits]\nmax_batch_records = 5000\n", "limits.max_batch_records"),
    (lambda t: 'colour = "blue"\n' + t, "colour"),
    (lambda t: t.replace("batch_size = 40", "batch_size = 40\nbatchsize = 4"), "forward.batchsize"),
    (lambda t: t.replace('url = "https://127.0.0.1:9"', 'url = "http://127.0.0.1:9"'), "forward.url"),
    (lambda t: t.replace('url = "sqlite:r.sqlite"', 'url = "postgresql://egate:secret@127.0.0.1/egate"'),
     "database.url"),
    (lambda t: t.replace('url = "sqlite:r.sqlite"', 'url = "mysql://x"'), "database.url"),
    (lambda t: t.replace('url = "sqlite:r.sqlite"', 'url = "sqlite://relative"'), "database.url"),
    (lambda t: t.replace('port = 0', 'port = 70000'), "listen.port"),
])
def test_config_refusals(layout, tmp_path, edit, key):
    write_config(tmp_path / "base.toml", layout, role="backup", db_url="sqlite:r.sqlite", forward_port=9)
    (tmp_path / "c.toml").write_text(edit((tmp_path / "base.toml").read_text()))
    with pytest.raises(ConfigError) as exc:
        load_receiver(tmp_path / "c.toml")
    assert exc.value.key == key, str(exc.value)


def test_sqlite_urls(tmp_path):
    from sync.receiver.config import Database
    assert database_target(Database(url="sqlite:///var/lib/x.db"), tmp_path).path == Path("/var/lib/x.db")
    assert database_target(Database(url="sqlite:rel/x.db"), tmp_path).path == tmp_path / "rel" / "x.db"
    pg = database_target(Database(url="postgresql://egate@127.0.0.1:5432/egate"), tmp_path)
    assert pg.kind == "postgresql" and pg.password is None
    (tmp_path / "pw").write_text("s3cret\n")
    pg = database_target(Database(url="postgresql://egate@127.0.0.1/egate", password_file=tmp_path / "pw"), tmp_path)
    assert pg.password.reveal() == b"s3cret" and "s3cret" not in repr(pg)
    with pytest.raises(ConfigError, match="password_file"):
        database_target(Database(url="sqlite:x.db", password_file=tmp_path / "pw"), tmp_path)


def test_serve_reports_a_port_in_use(layout, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gate.cli.cmd_central.logs.configure", lambda *a, **k: None)  # keep the process's logging
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        write_config(tmp_path / "c.toml", layout, db_url=f"sqlite:{tmp_path}/c.sqlite", port=busy.getsockname()[1])
        assert egate(["central", "serve", "--config", str(tmp_path / "c.toml")]) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_docs_hold_the_receiver_reference():
    from sync.receiver.config import reference_markdown
    docs = (Path(__file__).resolve().parents[1] / "docs" / "sync.md").read_text()
    assert reference_markdown() in docs, "docs/sync.md: paste `egate central reference` under Receiver"
