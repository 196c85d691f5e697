"""The gate's outbox: signed records, a monotonic sequence, the journal in the same transaction,
acknowledgements, the quota, and a kill -9 in the middle of appending."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import record as rec
from sync.outbox import Outbox, OutboxError

KEY = Ed25519PrivateKey.generate()


def passage(n: int, **kw) -> dict:
    return {"passage_id": f"p{n}", "gate_id": "G1", "started": "2026-11-30T02:00:00+00:00",
            "ended": "2026-11-30T02:00:09+00:00", "outcome": "cleared", "reasons": [], "reason_detail": {},
            "document": {"type": "P", "issuer": "TWN", "nationality": "TWN", "number": f"30000000{n}"},
            "scores": {"face": {"score": 0.71, "threshold": 0.43}}, "timings_s": {"total": 9.1}, **kw}


def test_records_are_signed_numbered_and_carry_no_more_than_the_decision(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    ids = [box.finish(passage(i)) for i in range(1, 4)]
    assert ids == ["G1:1", "G1:2", "G1:3"]
    pending = box.unacknowledged(10)
    assert [p.id for p in pending] == ids and [p.seq for p in pending] == [1, 2, 3]
    body = rec.decode_envelope(pending[0].envelope).verify(KEY.public_key())
    assert body["gate"] == "G1" and body["seq"] == 1 and body["passage"] == "p1"
    assert body["document"]["number"] == "300000001" and body["scores"]["face"]["score"] == 0.71
    with pytest.raises(rec.RecordError, match="signature"):
        rec.decode_envelope(pending[0].envelope).verify(Ed25519PrivateKey.generate().public_key())


def test_a_tampered_record_fails_its_signature(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    box.finish(passage(1, outcome="refused_biometric", reasons=["FACE_NO_MATCH"]))
    env = msgpack.unpackb(box.unacknowledged(1)[0].envelope)
    forged = env["body"].replace(b"refused_biometric", b"cleared\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0")
    assert forged != env["body"]
    tampered = msgpack.packb({**env, "body": forged}, use_bin_type=True)
    with pytest.raises(rec.RecordError):
        rec.decode_envelope(tampered).verify(KEY.public_key())


def test_keyed_hash_policy_never_stores_the_document_number(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY, document_policy="keyed_hash", document_hash_key=b"k" * 32)
    box.finish(passage(1))
    raw = box.unacknowledged(1)[0].envelope
    body = rec.decode_envelope(raw).verify(KEY.public_key())
    assert "number" not in body["document"] and len(body["document"]["number_hmac"]) == 64
    assert b"300000001" not in raw
    other = Outbox(tmp_path / "o2.sqlite", "G1", KEY, document_policy="keyed_hash", document_hash_key=b"k" * 32)
    other.finish(passage(1))
    again = rec.decode_envelope(other.unacknowledged(1)[0].envelope).verify(KEY.public_key())
    assert again["document"]["number_hmac"] == body["document"]["number_hmac"]  # the same traveller links


def test_the_journal_closes_in_the_same_transaction_that_appends_the_record(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    box.open({"passage_id": "p1", "state": "entering"})
    assert box.pending() == {"passage_id": "p1", "state": "entering"}
    box.finish(passage(1))
    assert box.pending() is None and box.depth() == 1


def test_only_central_removes_a_record_a_backup_only_marks_it(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    for i in range(1, 5):
        box.finish(passage(i))
    assert box.acknowledged(["G1:1", "G1:2"], by="backup") == 2
    assert [p.id for p in box.unacknowledged(10, skip_backup_acked=True)] == ["G1:3", "G1:4"]
    assert [p.id for p in box.unacknowledged(10)] == ["G1:1", "G1:2", "G1:3", "G1:4"]  # central still needs all
    assert box.acknowledged(["G1:1", "G1:3"], by="central") == 2
    assert [p.id for p in box.unacknowledged(10)] == ["G1:2", "G1:4"]
    assert box.backlog()["acked_by_backup_only"] == 1


def test_the_sequence_never_goes_back_even_after_everything_was_acknowledged(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path, "G1", KEY)
    box.finish(passage(1))
    box.finish(passage(2))
    box.acknowledged(["G1:1", "G1:2"], by="central")
    box.stop()
    again = Outbox(path, "G1", KEY)
    assert again.finish(passage(3)) == "G1:3"


def test_an_outbox_belongs_to_one_gate(tmp_path):
    Outbox(tmp_path / "o.sqlite", "G1", KEY).stop()
    with pytest.raises(OutboxError, match="G1"):
        Outbox(tmp_path / "o.sqlite", "G2", KEY)


def test_quota_makes_the_outbox_unhealthy_and_never_drops_a_record(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY, max_records=10)
    for i in range(1, 10):
        box.finish(passage(i))
    assert box.status().healthy
    box.finish(passage(10))
    status = box.status()
    assert not status.healthy and "full" in status.detail
    box.finish(passage(11))  # the passage that was already under way is still recorded
    assert box.depth() == 11
    box.acknowledged(["G1:1", "G1:2"], by="central")
    assert box.status().healthy


def test_a_journal_entry_that_is_not_a_passage_is_a_typed_error(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    box.open({"passage_id": "p1"})
    box.stop()
    db = sqlite3.connect(tmp_path / "o.sqlite")
    db.execute("UPDATE journal SET passage = '[1, 2'")
    db.commit()
    db.close()
    with pytest.raises(OutboxError, match="journal"):
        Outbox(tmp_path / "o.sqlite", "G1", KEY).pending()


def test_kill_9_while_appending_loses_and_duplicates_nothing(tmp_path):
    """A process appends as fast as it can; it is killed; every committed id is there once, in order,
    and the journal holds the passage that was open."""
    key_path = tmp_path / "k.pem"
    from cryptography.hazmat.primitives import serialization
    key_path.write_bytes(KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    script = textwrap.dedent(f"""
        import sys
        from sync.outbox import Outbox
        from sync.record import load_signing_key
        box = Outbox({str(tmp_path / 'o.sqlite')!r}, "G1", load_signing_key({str(key_path)!r}))
        n = 0
        while True:
            n += 1
            box.open({{"passage_id": f"p{{n}}"}})
            rid = box.finish({{"passage_id": f"p{{n}}", "started": "s", "ended": "e", "outcome": "cleared",
                              "reasons": [], "document": {{}}, "scores": {{}}, "timings_s": {{}}}})
            print(rid, flush=True)
            if n == 30:
                box.open({{"passage_id": "p31"}})
                print("open", flush=True)
                sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    printed = []
    for line in proc.stdout:
        if line.strip() == "open":
            break
        printed.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    box = Outbox(tmp_path / "o.sqlite", "G1", KEY)
    ids = [p.id for p in box.unacknowledged(1000)]
    assert ids == printed == [f"G1:{i}" for i in range(1, 31)]
    assert box.pending() == {"passage_id": "p31"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoding_garbage_gives_only_record_errors(data):
    for decode in (rec.decode_envelope, rec.decode_body):
        try:
            decode(data)
        except rec.RecordError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(rec._BODY_KEYS) + ["extra"]),
                       st.one_of(st.none(), st.integers(-2**63, 2**64 - 1), st.text(max_size=5),
                                 st.lists(st.text(max_size=3)),
                                 st.dictionaries(st.text(max_size=3), st.integers(-2**63, 2**64 - 1))), max_size=14))
def test_decoding_msgpack_maps_of_the_wrong_shape_gives_only_record_errors(fields):
    try:
        rec.decode_body(msgpack.packb(fields))
    except rec.RecordError:
        pass
