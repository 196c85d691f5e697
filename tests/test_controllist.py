"""The control list: its format and index, matching rules, the verified cache (signature, staleness,
swap on update), and a fuzzed decoder."""
import datetime as dt
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.screening import controllist as CL
from gate.screening.controllist import ControlList, ControlListError, Entry, ListCache, Query
from sync import downstream as D

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=1)
WANTED = Entry("CL-1", surname="Müller", given_names="Jürgen Karl", birth_date="19710604", nationality="D",
               category="wanted", action="detain", note="case 4711")
STOLEN = Entry("CL-2", issuer="NLD", number="NPF7K2L91", category="stolen_document")
YEAR_ONLY = Entry("CL-3", surname="Жуков", given_names="Иван", birth_date="19800000")


def listed(*entries, serial=1):
    return CL.decode(CL.build(entries, serial=serial, issued=NOW))


def test_document_and_folded_name_with_birth_date_match():
    cl = ControlList(listed(WANTED, STOLEN, YEAR_ONLY))
    assert [h.entry.id for h in cl.lookup(Query("NLD", "NPF7K2L91", "BAKKER", "SANNE", "19930117"))] == ["CL-2"]
    assert cl.lookup(Query("NLD", "NPF7K2L91", "X", "Y"), match=("name_birth_date",)) == []
    # The MRZ writes Müller as MUELLER or MULLER, Jürgen as JUERGEN: every spelling meets the entry.
    for surname, given in (("MUELLER", "JUERGEN KARL"), ("MULLER", "JURGEN KARL"), ("MUELLER", "JUERGEN<KARL")):
        (hit,) = cl.lookup(Query("D", "C01X00T47", surname, given, "19710604"))
        assert hit.entry.id == "CL-1" and hit.on == "name_birth_date" and "detain" in hit.detail()
    assert cl.lookup(Query("D", "C01X00T47", "MUELLER", "JUERGEN KARL", "19710605")) == []   # another birthday
    assert cl.lookup(Query("D", "C01X00T47", "MUELLER", "JUERGEN", "19710604")) == []        # full rule: both names
    assert cl.lookup(Query("D", "C01X00T47", "MUELLER", "JUERGEN", "19710604"), name_rule="first")
    # A list that knows only the year matches any birthday that year.
    assert cl.lookup(Query("RUS", "1", "ZHUKOV", "IVAN", "19800312"))[0].entry.id == "CL-3"


def test_delta_removes_and_adds_and_must_name_its_snapshot():
    snap = listed(WANTED, STOLEN, serial=7)
    added = Entry("CL-9", issuer="TWN", number="312004871")
    delta = CL.decode(CL.build([added], serial=3, kind="delta", base=7, removed=["CL-2"], issued=NOW))
    cl = ControlList(snap, delta)
    assert cl.version == "7+3" and cl.entries == 3
    assert cl.lookup(Query("NLD", "NPF7K2L91", "", "")) == []
    assert cl.lookup(Query("TWN", "312004871", "", ""))[0].entry.id == "CL-9"
    other = CL.decode(CL.build([added], serial=4, kind="delta", base=6, issued=NOW))
    with pytest.raises(ControlListError):
        ControlList(snap, other)


def test_lapsed_entries_do_not_match():
    cl = ControlList(listed(Entry("CL-5", issuer="NLD", number="X1", valid_until="20260101")))
    assert cl.lookup(Query("NLD", "X1", "", ""), today=dt.date(2026, 11, 30)) == []


def _publish(tmp_path, key, kind, data, version, created=NOW):
    bundle = D.verify(D.sign(kind, version, {"list.ecl": data}, key, created), key.public_key())
    return D.BundleDir(tmp_path, key.public_key()).install(bundle)


def test_cache_swaps_on_update_goes_stale_and_refuses_a_bad_signature(tmp_path):
    key = Ed25519PrivateKey.generate()
    clock = [NOW]
    cache = ListCache("control_list", tmp_path, key.public_key(), max_age_s=3600, clock=lambda: clock[0])
    assert not cache.status().healthy and "no controllist" in cache.status().detail
    _publish(tmp_path, key, "controllist", CL.build([STOLEN], serial=1, issued=NOW), 1)
    assert cache.status().healthy and cache.snapshot()["version"] == "1"
    first = cache.usable()
    _publish(tmp_path, key, "controllist-delta",
             CL.build([WANTED], serial=1, kind="delta", base=1, issued=NOW), 1, created=NOW + dt.timedelta(minutes=30))
    assert cache.status().healthy and cache.snapshot()["version"] == "1+1"
    assert cache.usable() is not first and first.version == "1"     # swapped in whole, the old one untouched
    clock[0] = NOW + dt.timedelta(minutes=89)                         # age runs from the newest piece (the delta)
    assert cache.status().healthy
    clock[0] = NOW + dt.timedelta(minutes=91)
    status = cache.status()
    assert not status.healthy and "stale" in status.detail and cache.usable() is None
    # A fresh snapshot brings it back.
    _publish(tmp_path, key, "controllist", CL.build([STOLEN], serial=2, issued=NOW), 2,
             created=NOW + dt.timedelta(minutes=90))
    assert cache.status().healthy and cache.snapshot()["version"] == "2"   # the delta waits for its snapshot
    # The installed envelope altered on disk: the signature fails, the list is not used.
    env = next((tmp_path / "controllist").glob("v2.bundle"))
    raw = bytearray(env.read_bytes())
    raw[-10] ^= 1   # a bit of the signature
    env.write_bytes(bytes(raw))
    status = cache.status()
    assert not status.healthy and "bad_signature" in status.detail and cache.usable() is None
    assert cache.snapshot()["state"] == "bad_signature"


def test_downstream_refuses_a_bundle_that_is_no_control_list():
    key = Ed25519PrivateKey.generate()
    with pytest.raises(D.BundleError) as err:
        D.sign("controllist", 1, {"x.ecl": b"\x80"}, key)
    assert err.value.reason == "bad_payload"
    with pytest.raises(D.BundleError):
        D.sign("controllist", 1, {"x.ecl": CL.build([STOLEN], serial=1, kind="delta", base=1)}, key)


def test_decoder_fuzz_raises_control_list_error_only():
    rng = random.Random(11)
    good = CL.build([WANTED, STOLEN, YEAR_ONLY, Entry("CL-4", surname="O'Brien", birth_date="19500101")], serial=3)
    queries = [Query("NLD", "NPF7K2L91", "MUELLER", "JUERGEN KARL", "19710604"), Query("D", "1", "OBRIEN", "", "19500101")]
    for i in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                del data[pos:pos + rng.randint(1, 16)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        if i % 10 == 0:
            data = data[:rng.randrange(len(data))]
        try:
            f = CL.decode(bytes(data))
        except ControlListError:
            continue
        for q in queries:   # what decoded is safe to look up: a bad entry raises ControlListError only
            try:
                ControlList(f).lookup(q)
            except ControlListError:
                pass
    for junk in (b"", b"\xc1", b"\x91\x01", 7, None):
        with pytest.raises(ControlListError):
            CL.decode(junk)


def test_decoder_fuzz_with_well_formed_msgpack_of_wrong_content():
    """Past msgpack: every field replaced by values of other types and sizes, the arrays cut or
    shuffled, entries that are no entries."""
    import msgpack

    rng = random.Random(5)
    good = msgpack.unpackb(CL.build([WANTED, STOLEN, YEAR_ONLY], serial=2), raw=False)
    odd = [None, True, -1, 0, 2 ** 64 - 1, 1.5, "", "x" * 300, b"", b"\x00" * 7, [], {}, ["CL-1"], {"a": 1},
           b"\x81\xa2id\x01", msgpack.packb({"id": "X", "birth_date": "bad"})]
    for _ in range(3000):
        doc = dict(good)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(sorted(doc))
            value = doc[key]
            if isinstance(value, bytes) and value and rng.random() < 0.6:
                cut = bytearray(value)
                if rng.random() < 0.5:
                    cut[rng.randrange(len(cut))] = rng.randrange(256)
                else:
                    del cut[rng.randrange(len(cut)):]
                doc[key] = bytes(cut)
            else:
                doc[key] = rng.choice(odd)
        if rng.random() < 0.1:
            doc.pop(rng.choice(sorted(doc)))
        try:
            f = CL.decode(msgpack.packb(doc, use_bin_type=True))
        except ControlListError:
            continue
        try:
            ControlList(f).lookup(Query("NLD", "NPF7K2L91", "MUELLER", "JUERGEN KARL", "19710604"))
        except ControlListError:
            pass
