"""Downstream bundles: central publishes and serves (SQLite and PostgreSQL), a gate pulls, verifies
and installs atomically keeping the previous good copy; tampered, foreign, rolled-back, stale,
unsigned and malformed bundles are refused with a reason and change nothing; pulls go through the
agent's failover (central down: from the backup that mirrored it); an installed CRL bundle is what
`load_trust` reads; the decoder is fuzzed."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import aiohttp
import msgpack
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings, strategies as st

from gate.cli import main as egate
from sync import downstream as D
from sync import pki as sync_pki
from sync.agent import SyncAgent
from sync.config import Bundles, SyncConfig
from sync.outbox import Outbox
from sync.receiver import bundles
from sync.receiver.config import database_target
from sync.receiver.protocol import client_ssl_context
from sync.receiver.store import Store
from sync.record import load_signing_key
from tests.receiver_helpers import (RunningAgent, SITE, Client, ThreadedReceiver, drop_postgres, fresh_postgres, free_port,
                                    wait_for, write_config)

GATE = "SIM-LANE-01"
NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)


# ------------------------------------------------------------------------ a tiny passport PKI: CSCA, DS, CRLs

def _cert(subject: str, key, issuer_name: str, issuer_key, ca: bool) -> x509.Certificate:
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "UT"),  # noqa: E731
                                 x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


CSCA_KEY = ec.generate_private_key(ec.SECP256R1())
CSCA = _cert("CSCA UTO", CSCA_KEY, "CSCA UTO", CSCA_KEY, True)
DS = _cert("DS UTO 01", ec.generate_private_key(ec.SECP256R1()), "CSCA UTO", CSCA_KEY, False)


def crl(number: int, revoked=()) -> bytes:
    b = (x509.CertificateRevocationListBuilder().issuer_name(CSCA.subject).last_update(NOW - DAY)
         .next_update(NOW + 30 * DAY).add_extension(x509.CRLNumber(number), critical=False))
    for cert in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                                      .revocation_date(NOW - DAY).build())
    return b.sign(CSCA_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def crl_files(number: int, revoked=()) -> dict[str, bytes]:
    return {"csca_uto.crl": crl(number, revoked)}


PUBLISHER = Ed25519PrivateKey.generate()
PUBLIC = PUBLISHER.public_key()
OTHER = Ed25519PrivateKey.generate()


# ------------------------------------------------------------------------ the format, alone

def test_a_signed_bundle_verifies_and_says_what_it_is():
    env = D.sign("crl", 3, crl_files(3), PUBLISHER)
    b = D.verify(env, PUBLIC, kind="crl", after=2, max_age_s=3600)
    assert (b.kind, b.version, b.key, list(b.files)) == ("crl", 3, D.key_id(PUBLISHER), ["csca_uto.crl"])
    assert b.raw == env and abs(b.age_s()) < 60


def _tamper(env: bytes) -> bytes:
    outer = msgpack.unpackb(env, raw=False)
    body = msgpack.unpackb(outer["body"], raw=False)
    name = next(iter(body["files"]))
    data = bytearray(body["files"][name])
    data[-1] ^= 1
    body["files"][name] = bytes(data)
    outer["body"] = msgpack.packb(body, use_bin_type=True)
    return msgpack.packb(outer, use_bin_type=True)


def _unsigned(env: bytes) -> bytes:
    outer = msgpack.unpackb(env, raw=False)
    del outer["sig"]
    return msgpack.packb(outer, use_bin_type=True)


@pytest.mark.parametrize("make, kwargs, reason", [
    (lambda: _unsigned(D.sign("crl", 3, crl_files(3), PUBLISHER)), {}, "unsigned"),
    (lambda: D.sign("crl", 3, crl_files(3), OTHER), {}, "foreign"),
    (lambda: _tamper(D.sign("crl", 3, crl_files(3), PUBLISHER)), {}, "bad_signature"),
    (lambda: D.sign("notices", 3, {"list.bin": b"entries"}, PUBLISHER), {}, "wrong_kind"),
    (lambda: D.sign("crl", 2, crl_files(2), PUBLISHER), {}, "rollback"),
    (lambda: D.sign("crl", 1, crl_files(1), PUBLISHER), {}, "rollback"),
    (lambda: D.sign("crl", 3, crl_files(3), PUBLISHER, NOW - 8 * DAY), {}, "stale"),
    (lambda: D.sign("crl", 3, crl_files(3), PUBLISHER, NOW + DAY), {}, "future"),
    (lambda: b"\x93\x01\x02", {}, "malformed"),
    (lambda: D.sign("crl", 3, crl_files(3), PUBLISHER), {"max_bytes": 100}, "too_large"),
])
def test_each_refusal_names_its_reason(make, kwargs, reason):
    with pytest.raises(D.BundleError) as err:
        D.verify(make(), PUBLIC, kind="crl", after=2, max_age_s=7 * 86400, **kwargs)
    assert err.value.reason == reason, err.value


def test_a_crl_bundle_must_hold_crls_that_load_and_is_refused_before_signing_otherwise():
    with pytest.raises(D.BundleError) as err:
        D.sign("crl", 1, {"csca.crl": b"not a CRL"}, PUBLISHER)
    assert err.value.reason == "bad_payload"
    with pytest.raises(D.BundleError) as err:
        D.sign("crl", 1, {"csca.pem": crl(1)}, PUBLISHER)   # load_trust reads *.crl only
    assert err.value.reason == "bad_payload"
    with pytest.raises(D.BundleError) as err:
        D.sign("crl", 1, {"../evil.crl": crl(1)}, PUBLISHER)
    assert err.value.reason == "malformed"
    # Signed anyway by a publisher that skipped the check: the gate refuses it all the same.
    body = D.encode_body("crl", 3, {"csca.crl": b"garbage"}, D.key_id(PUBLISHER), NOW)
    env = msgpack.packb({"v": 1, "body": body, "sig": PUBLISHER.sign(D.DOMAIN + body)}, use_bin_type=True)
    with pytest.raises(D.BundleError) as err:
        D.verify(env, PUBLIC, kind="crl")
    assert err.value.reason == "bad_payload"


def test_a_record_signature_is_no_bundle_signature():
    """Domain separation: the same key signing the same bytes as a passage record does not verify."""
    from sync import record

    body = D.encode_body("crl", 3, crl_files(3), D.key_id(PUBLISHER), NOW)
    env = msgpack.packb({"v": 1, "body": body, "sig": PUBLISHER.sign(record.DOMAIN + body)}, use_bin_type=True)
    with pytest.raises(D.BundleError) as err:
        D.verify(env, PUBLIC, kind="crl")
    assert err.value.reason == "bad_signature"


# ------------------------------------------------------------------------ installing, alone

def _settings(tmp_path, **kw) -> Bundles:
    key = tmp_path / "publisher.pub.pem"
    if not key.exists():
        key.write_bytes(PUBLIC.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return Bundles(**{"kinds": ("crl",), "publisher_key": key, "interval_s": 1.0, **kw})


def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None)
            for p in sorted(path.rglob("*"))}


def test_install_is_atomic_keeps_the_previous_copy_and_a_refusal_changes_nothing(tmp_path):
    down = D.Downstream(_settings(tmp_path), tmp_path / "bundles")
    assert down.version("crl") == 0 and down.status()["kinds"]["crl"]["version"] is None
    down.accept("crl", D.sign("crl", 1, crl_files(1), PUBLISHER))
    second = crl_files(2, [DS])
    down.accept("crl", D.sign("crl", 2, second, PUBLISHER))
    kdir = tmp_path / "bundles" / "crl"
    assert os.readlink(kdir / "current") == "v2" and os.readlink(kdir / "previous") == "v1"
    assert (kdir / "current" / "csca_uto.crl").read_bytes() == second["csca_uto.crl"]
    assert sorted(p.name for p in kdir.iterdir()) == ["current", "previous", "v1", "v1.bundle", "v2", "v2.bundle"]
    good = _tree(tmp_path / "bundles")
    for env, reason in [(_tamper(D.sign("crl", 3, crl_files(3), PUBLISHER)), "bad_signature"),
                        (D.sign("crl", 3, crl_files(3), OTHER), "foreign"),
                        (D.sign("crl", 1, crl_files(1), PUBLISHER), "rollback"),
                        (D.sign("crl", 2, crl_files(2), PUBLISHER), "rollback"),
                        (D.sign("crl", 3, crl_files(3), PUBLISHER, NOW - 30 * DAY), "stale"),
                        (_unsigned(D.sign("crl", 3, crl_files(3), PUBLISHER)), "unsigned"),
                        (b"\xc1", "malformed")]:
        with pytest.raises(D.BundleError) as err:
            down.accept("crl", env, "test")
        assert err.value.reason == reason
        assert _tree(tmp_path / "bundles") == good, reason
    st_ = down.status()
    assert st_["refused"] == {"bad_signature": 1, "foreign": 1, "rollback": 2, "stale": 1, "unsigned": 1, "malformed": 1}
    assert st_["kinds"]["crl"]["version"] == 2 and st_["kinds"]["crl"]["previous_version"] == 1
    assert st_["kinds"]["crl"]["last_refusal"]["reason"] == "malformed"
    # A third version: v1 goes, v2 becomes the previous copy.
    down.accept("crl", D.sign("crl", 3, crl_files(3), PUBLISHER))
    assert sorted(p.name for p in kdir.iterdir()) == ["current", "previous", "v2", "v2.bundle", "v3", "v3.bundle"]
    # A new process reads what is installed from disk: the rollback guard survives a restart.
    again = D.Downstream(_settings(tmp_path), tmp_path / "bundles")
    assert again.version("crl") == 3 and again.previous["crl"] == 2 and again.installed["crl"].verified
    with pytest.raises(D.BundleError) as err:
        again.accept("crl", D.sign("crl", 2, crl_files(2), PUBLISHER))
    assert err.value.reason == "rollback"


def test_a_crash_mid_install_leaves_the_old_bundle_in_use_and_is_cleaned_up(tmp_path, monkeypatch):
    down = D.Downstream(_settings(tmp_path), tmp_path / "bundles")
    down.accept("crl", D.sign("crl", 1, crl_files(1), PUBLISHER))
    real = D._link

    def crash(kdir, name, target):
        if name == "current":
            raise OSError(28, "No space left on device")
        return real(kdir, name, target)

    monkeypatch.setattr(D, "_link", crash)
    with pytest.raises(OSError):
        down.accept("crl", D.sign("crl", 2, crl_files(2), PUBLISHER))
    monkeypatch.setattr(D, "_link", real)
    restarted = D.Downstream(_settings(tmp_path), tmp_path / "bundles")
    assert restarted.version("crl") == 1
    restarted.accept("crl", D.sign("crl", 2, crl_files(2), PUBLISHER))
    assert restarted.version("crl") == 2


def test_an_installed_crl_bundle_is_what_load_trust_reads(tmp_path):
    """A gate whose pki.crl_dir is <bundles>/crl/current loads the published CRL: the DS it revokes
    is found revoked by the trust store the gate builds."""
    from gate import config as gate_config
    from gate.app import load_trust

    down = D.Downstream(_settings(tmp_path), tmp_path / "bundles")
    down.accept("crl", D.sign("crl", 1, crl_files(1, [DS]), PUBLISHER))
    csca_dir = tmp_path / "csca"
    csca_dir.mkdir()
    (csca_dir / "csca_uto.pem").write_bytes(CSCA.public_bytes(serialization.Encoding.PEM))
    example = Path(__file__).resolve().parents[1] / "config" / "gate.example.toml"
    cfg = gate_config.load_gate(example)
    cfg = dataclasses.replace(cfg, pki=gate_config.Pki(csca_dir=csca_dir, crl_dir=tmp_path / "bundles/crl/current"))
    trust = load_trust(cfg)
    (loaded,) = trust.crls_for(CSCA)
    assert loaded.get_revoked_certificate_by_serial_number(DS.serial_number) is not None
    assert str(tmp_path / "bundles/crl/current/csca_uto.crl") in trust.sources


# ------------------------------------------------------------------------ central and a gate over mutual TLS

@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return sync_pki.create(tmp_path_factory.mktemp("pki"), gates=[GATE], sites=[SITE], publisher=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.sqlite'}"
        return
    base = request.getfixturevalue("postgres_url")
    url = fresh_postgres(base)
    yield url
    drop_postgres(base, url)


def central_config(tmp_path, layout, db_url, port=0):
    extra = f'[publish]\nsigning_key = "{layout.publisher_key}"\n'
    return write_config(tmp_path / "central.toml", layout, db_url=db_url, port=port, extra=extra)


def store_of(cfg) -> Store:
    return Store(database_target(cfg.database, config_path=cfg.source), create=False)


def gate_down(tmp_path, layout, **kw) -> D.Downstream:
    cfg = Bundles(**{"kinds": ("crl", "notices"), "publisher_key": layout.publisher_public, **kw})
    return D.Downstream.from_config(cfg, tmp_path / "gate")


def pull(down: D.Downstream, layout, port: int, role="central") -> dict:
    async def go():
        ctx = client_ssl_context(layout.ca_cert, layout.gate_cert(GATE), layout.gate_key(GATE))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            return await down.pull(session, f"https://127.0.0.1:{port}", role)
    return asyncio.run(go())


def raw_insert(store: Store, kind: str, version: int, envelope: bytes) -> None:
    """A row as a compromised or buggy receiver might hold it: what it serves is not what it says."""
    with store._tx() as cur:
        cur.run("INSERT INTO bundles (kind, version, created, sha256, size, envelope, stored_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kind, version, NOW.isoformat(), "-", len(envelope), envelope,
                                                     store._ts(NOW), "test"))


def test_publish_at_central_then_the_gate_installs_and_every_bad_bundle_is_refused(tmp_path, layout, db_url, capsys):
    cfg = central_config(tmp_path, layout, db_url)
    (tmp_path / "crl").mkdir()
    (tmp_path / "crl" / "csca_uto.crl").write_bytes(crl(1))
    with ThreadedReceiver(cfg) as central:
        down = gate_down(tmp_path, layout)
        assert pull(down, layout, central.port) == {"crl": "current", "notices": "current"}
        assert egate(["bundle", "publish", "--config", str(cfg.source), "--kind", "crl",
                      "--dir", str(tmp_path / "crl")]) == 0
        assert "published crl v1" in capsys.readouterr().out
        assert pull(down, layout, central.port) == {"crl": "installed v1", "notices": "current"}
        assert pull(down, layout, central.port) == {"crl": "current", "notices": "current"}
        store = store_of(cfg)
        try:
            key = load_signing_key(layout.publisher_key)
            done = bundles.publish(store, key, "crl", crl_files(2, [DS]))
            bundles.publish(store, key, "notices", {"snapshot.bin": b"\x00" * 1000})
            assert done.version == 2
            assert pull(down, layout, central.port) == {"crl": "installed v2", "notices": "installed v1"}
            kdir = tmp_path / "gate" / "bundles" / "crl"
            good = _tree(kdir)
            assert os.readlink(kdir / "current") == "v2" and os.readlink(kdir / "previous") == "v1"
            # Each bad bundle becomes central's newest in turn; each is refused, the good copies stay.
            raw_insert(store, "crl", 3, _tamper(D.sign("crl", 3, crl_files(3), key)))
            assert pull(down, layout, central.port)["crl"] == "refused: bad_signature"
            bundles.publish(store, OTHER, "crl", crl_files(4))                     # v4, another key
            assert pull(down, layout, central.port)["crl"] == "refused: foreign"
            raw_insert(store, "crl", 5, _v1(store))                                 # v1's bytes, served as v5
            assert pull(down, layout, central.port)["crl"] == "refused: rollback"
            bundles.publish(store, key, "crl", crl_files(6), created=NOW - 8 * DAY)  # v6, too old
            assert pull(down, layout, central.port)["crl"] == "refused: stale"
            raw_insert(store, "crl", 7, D.sign("notices", 7, {"x": b"x"}, key))
            assert pull(down, layout, central.port)["crl"] == "refused: wrong_kind"
            raw_insert(store, "crl", 8, b"\x81\xa1v\x01")
            assert pull(down, layout, central.port)["crl"] == "refused: malformed"
            assert _tree(kdir) == good
            assert down.refused == {"bad_signature": 1, "foreign": 1, "rollback": 1, "stale": 1, "wrong_kind": 1,
                                    "malformed": 1}
            # A good one above them all is installed; the refused ones never were.
            done = bundles.publish(store, key, "crl", crl_files(9))
            assert pull(down, layout, central.port)["crl"] == "installed v9"
            assert os.readlink(kdir / "current") == "v9" and os.readlink(kdir / "previous") == "v2"
            assert [r["version"] for r in bundles.history(store, "crl")] == list(range(1, 10))
        finally:
            store.close()
        events = [e for e in central.events() if e.get("event") == "bundle_served"]
        assert events and all(e["client"] == GATE for e in events)
    assert egate(["bundle", "show", "--config", str(cfg.source)]) == 0
    out = capsys.readouterr().out
    assert "crl" in out and "v9" in out and "notices" in out


def _v1(store) -> bytes:
    with store._tx(write=False) as cur:
        return bytes(cur.run("SELECT envelope FROM bundles WHERE kind = 'crl' AND version = 1").fetchone()[0])


def test_the_receiver_answers_bad_requests_with_errors_and_the_index(tmp_path, layout):
    cfg = central_config(tmp_path, layout, f"sqlite:///{tmp_path / 'c.sqlite'}")
    with ThreadedReceiver(cfg) as central:
        client = Client.gate(central.port, layout, GATE)
        assert client.request("GET", "/v1/bundles/crl")[0] == 204
        assert client.request("GET", "/v1/bundles")[1] == {"bundles": {}}
        store = store_of(cfg)
        try:
            bundles.publish(store, load_signing_key(layout.publisher_key), "crl", crl_files(1))
        finally:
            store.close()
        status, body = client.request("GET", "/v1/bundles/crl?after=0")   # the client decodes msgpack
        assert status == 200 and msgpack.unpackb(body["body"])["version"] == 1 and len(body["sig"]) == 64
        assert client.request("GET", "/v1/bundles/crl?after=1")[0] == 204
        assert client.request("GET", "/v1/bundles")[1]["bundles"]["crl"]["version"] == 1
        for path in ("/v1/bundles/crl?after=-1", "/v1/bundles/crl?after=x", "/v1/bundles/CRL",
                     "/v1/bundles/crl?after=99999999999999999999"):
            status, body = client.request("GET", path)
            assert status == 400 and body["error"] == "bad_request", path
        assert client.request("POST", "/v1/bundles/crl", b"")[0] == 405
    # Only central publishes; a file that is no CRL is refused before anything is signed.
    (tmp_path / "x.crl").write_bytes(b"nope")
    assert egate(["bundle", "publish", "--config", str(cfg.source), "--kind", "crl", "--file",
                  str(tmp_path / "x.crl")]) == 1


# ------------------------------------------------------------------------ through the agent's failover

def test_the_agent_pulls_in_its_cycle_and_through_failover_from_the_backup_that_mirrored(tmp_path, layout):
    """Central publishes; the site's backup mirrors it (verified with central's public key). With
    central down, the agent fails over to the backup and installs the bundle from there; when
    central publishes again after it returns, the agent (failed back) installs that one."""
    ports = {"central": free_port(), "backup": free_port()}
    central_cfg = central_config(tmp_path, layout, f"sqlite:///{tmp_path / 'central.sqlite'}", ports["central"])
    backup_cfg = write_config(
        tmp_path / "backup.toml", layout, role="backup", port=ports["backup"],
        db_url=f"sqlite:///{tmp_path / 'backup.sqlite'}", forward_port=ports["central"],
        extra=f'[publish]\nverify_key = "{layout.publisher_public}"\nmirror_s = 0.1\n')
    gate_dir = tmp_path / "gate"
    box = Outbox(gate_dir / "outbox.sqlite", GATE, load_signing_key(layout.signing_key(GATE)))
    sync_cfg = SyncConfig(
        central_url=f"https://127.0.0.1:{ports['central']}", backup_url=f"https://127.0.0.1:{ports['backup']}",
        ca_cert=layout.ca_cert, client_cert=layout.gate_cert(GATE), client_key=layout.gate_key(GATE),
        request_timeout_s=2.0, retry_initial_s=0.05, retry_max_s=0.3, failover_after=2, failover_timeout_s=5.0,
        failback_probe_s=0.2, failback_after=2, min_dwell_s=0.5, heartbeat_s=0.3,
        bundles=Bundles(kinds=("crl",), publisher_key=layout.publisher_public, interval_s=1.0))
    key = load_signing_key(layout.publisher_key)
    central = ThreadedReceiver(central_cfg).__enter__()
    backup = ThreadedReceiver(backup_cfg).__enter__()
    try:
        store = store_of(central_cfg)
        bundles.publish(store, key, "crl", crl_files(1, [DS]))
        store.close()
        backup_store = store_of(backup_cfg)
        wait_for(lambda: bundles.index(backup_store).get("crl", {}).get("version") == 1, 20, what="backup mirrored v1")
        central.__exit__(None, None, None)
        central = None
        agent = SyncAgent(sync_cfg, box, gate_status=lambda: {"state": "idle", "health": {}, "counters": {},
                                                              "in_service_s": 1.0})
        assert agent.downstream is not None and agent.downstream.dir.dir == gate_dir / "bundles"
        with RunningAgent(agent):
            wait_for(lambda: agent.downstream.version("crl") == 1, 20, what="v1 installed from the backup")
            assert agent.machine.active == "backup" and [s.to for s in agent.switches] == ["backup"]
            assert "bundles" in agent.switches[0].why
            central = ThreadedReceiver(central_cfg).__enter__()
            wait_for(lambda: agent.machine.active == "central", 20, what="fail back to central")
            store = store_of(central_cfg)
            bundles.publish(store, key, "crl", crl_files(2))
            store.close()
            wait_for(lambda: agent.downstream.version("crl") == 2, 20, what="v2 installed from central")
            wait_for(lambda: (box.agent_status() or {}).get("bundles", {}).get("kinds", {}).get("crl", {})
                     .get("version") == 2, 10, what="the installed version in the agent's status")
        shown = box.agent_status()["bundles"]["kinds"]["crl"]
        assert shown["previous_version"] == 1 and shown["stale"] is False and shown["age_s"] < 60
        wait_for(lambda: bundles.index(backup_store).get("crl", {}).get("version") == 2, 20, what="backup mirrored v2")
        backup_store.close()
    finally:
        backup.__exit__(None, None, None)
        if central is not None:
            central.__exit__(None, None, None)
        box.stop()


# ------------------------------------------------------------------------ whatever an endpoint answers

def test_malformed_answers_are_typed_errors_and_never_a_crash(tmp_path):
    """A plain-HTTP stand-in for a receiver answering each way a broken or hostile one might."""
    down = D.Downstream(_settings(tmp_path, kinds=("crl",), max_bytes=4096), tmp_path / "bundles")
    down.accept("crl", D.sign("crl", 1, crl_files(1), PUBLISHER))
    answers = iter([
        web.Response(status=200, body=b"\xc1\xc1 not msgpack"),
        web.Response(status=200, body=msgpack.packb({"v": 1, "body": b"\x80", "sig": b"x" * 64})),
        web.Response(status=200, body=b""),
        web.Response(status=200, body=b"\x00" * 5000),          # more than max_bytes
        web.Response(status=404, text="no such path"),
        web.Response(status=401, text="who are you"),
        web.Response(status=503, text="down"),
    ])

    async def handler(request):
        return next(answers)

    async def go():
        app = web.Application()
        app.router.add_get("/v1/bundles/{kind}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        out = []
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(6):
                    out.append((await down.pull(session, url, "central"))["crl"])
                with pytest.raises(D.Unreachable):
                    await down.pull(session, url, "central")
            with pytest.raises(D.Unreachable):   # nobody listening
                async with aiohttp.ClientSession() as session:
                    await down.pull(session, "http://127.0.0.1:1", "central")
        finally:
            await runner.cleanup()
        return out

    out = asyncio.run(go())
    assert out[:4] == ["refused: malformed", "refused: malformed", "refused: malformed", "refused: too_large"]
    assert out[4].startswith("error: central: HTTP 404") and out[5].startswith("error: central: HTTP 401")
    assert down.version("crl") == 1 and os.readlink(tmp_path / "bundles" / "crl" / "current") == "v1"


GOOD = D.sign("crl", 5, crl_files(5), PUBLISHER)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_any_bytes_are_a_bundle_error_or_nothing(data):
    try:
        D.verify(data, PUBLIC, kind="crl", max_age_s=3600)
    except D.BundleError as exc:
        assert exc.reason in D.REFUSALS


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=1, max_value=255))
def test_fuzz_a_flipped_byte_is_always_refused(pos, flip):
    data = bytearray(GOOD)
    data[pos] ^= flip
    with pytest.raises(D.BundleError) as err:
        D.verify(bytes(data), PUBLIC, kind="crl", max_age_s=3600)
    assert err.value.reason in D.REFUSALS


_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.floats() | st.text(max_size=20)
                       | st.binary(max_size=40), lambda kids: st.lists(kids, max_size=4)
                       | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({"v": st.sampled_from([1, 1, True, 2, "1"]), "kind": st.sampled_from(["crl", "CRL", ""]) | _values,
                              "version": st.integers(min_value=-2, max_value=2 ** 63 - 1) | _values,
                              "created": st.sampled_from([NOW.isoformat(), "2020-01-01T00:00:00", "x"]) | _values,
                              "key": st.sampled_from([D.key_id(PUBLISHER), "0" * 16]) | _values,
                              "files": st.dictionaries(st.text(max_size=12), st.binary(max_size=30) | _values,
                                                       max_size=3) | _values}),
       st.sampled_from(["drop", "extra", "keep"]), st.binary(min_size=0, max_size=70))
def test_fuzz_structured_bodies_are_refused_with_a_reason(body, change, sig):
    if change == "drop":
        body.pop("files")
    elif change == "extra":
        body["more"] = 1
    env = msgpack.packb({"v": 1, "body": msgpack.packb(body, use_bin_type=True), "sig": sig}, use_bin_type=True)
    with pytest.raises(D.BundleError) as err:
        D.verify(env, PUBLIC, kind="crl", max_age_s=3600)
    assert err.value.reason in D.REFUSALS


def test_the_gate_cli_pulls_once_down_the_list_and_shows_installed_bundles(tmp_path, layout, capsys):
    """`egate bundle pull` (commissioning): central is down, the backup answers; then `show`."""
    example = Path(__file__).resolve().parents[1] / "config" / "gate.example.toml"
    text = example.read_text().replace('data_dir = "../var/gate"', f'data_dir = "{tmp_path / "data"}"')
    backup_cfg = write_config(tmp_path / "backup.toml", layout, role="backup", port=0,
                              db_url=f"sqlite:///{tmp_path / 'backup.sqlite'}", forward_port=free_port(),
                              extra=f'[publish]\nverify_key = "{layout.publisher_public}"\n')
    with ThreadedReceiver(backup_cfg) as backup:
        store = store_of(backup_cfg)
        try:
            bundles.put_envelope(store, D.sign("crl", 4, crl_files(4), load_signing_key(layout.publisher_key)), "test")
        finally:
            store.close()
        cfg_path = tmp_path / "gate.toml"
        cfg_path.write_text(text + "\n".join([
            "[sync]", f'central_url = "https://127.0.0.1:{free_port()}"',
            f'backup_url = "https://127.0.0.1:{backup.port}"', f'ca_cert = "{layout.ca_cert}"',
            f'client_cert = "{layout.gate_cert(GATE)}"', f'client_key = "{layout.gate_key(GATE)}"',
            "[sync.bundles]", 'kinds = ["crl"]', f'publisher_key = "{layout.publisher_public}"', ""]))
        capsys.readouterr()
        assert egate(["bundle", "pull", "--config", str(cfg_path)]) == 0
        out = capsys.readouterr().out
        assert "central: unreachable" in out and "backup: crl installed v4" in out
        assert egate(["bundle", "pull", "--config", str(cfg_path)]) == 0
        assert "backup: crl current" in capsys.readouterr().out
    assert egate(["bundle", "show", "--config", str(cfg_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["crl"]["version"] == 4 and shown["crl"]["stale"] is False
    assert (tmp_path / "data" / "bundles" / "crl" / "current" / "csca_uto.crl").is_file()


def test_a_version_1_database_migrates_to_2_keeping_its_records(tmp_path, monkeypatch, layout):
    from sync.receiver import store as store_mod
    from sync.receiver.store import Incoming
    from tests.receiver_helpers import envelope

    cfg = central_config(tmp_path, layout, f"sqlite:///{tmp_path / 'old.sqlite'}")
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    old = Store(database_target(cfg.database, config_path=cfg.source))
    assert old.migrate() == (0, 1)
    env = envelope(layout, GATE, 1)
    assert old.ingest([Incoming(f"{GATE}:1", GATE, 1, "p-1", "accepted", "a", "b", env)], via="direct",
                      client=GATE) == ["stored"]
    assert bundles.index(old) == {}
    old.close()
    monkeypatch.undo()
    new = Store(database_target(cfg.database, config_path=cfg.source))
    try:
        assert new.migrate() == (1, store_mod.SCHEMA_VERSION)
        assert [r["id"] for r in new.records()] == [f"{GATE}:1"]
        assert bundles.publish(new, load_signing_key(layout.publisher_key), "crl", crl_files(1)).version == 1
    finally:
        new.close()


def test_only_central_signs(tmp_path, layout):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="publish.signing_key"):
        write_config(tmp_path / "b.toml", layout, role="backup", db_url="sqlite:b.sqlite", forward_port=1,
                     extra=f'[publish]\nsigning_key = "{layout.publisher_key}"\n')
