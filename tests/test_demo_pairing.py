"""The demo pairs passage records with travellers by who they are (the passport read, while that
traveller had it on the reader), never by position: unit level, no lane."""
import datetime as dt
import random
from types import SimpleNamespace

from simulators import demo
from simulators.lane import person
from simulators.traveller import Event

T0 = 1_760_000_000.0   # wall-clock seconds


def doc(key: str) -> str:
    return person(key).traveller_id


def traveller(tid: int, kind: str, walker: str, holder: str, start: float, end: float) -> dict:
    return {"id": tid, "kind": kind, "person": walker, "holder": holder, "document": doc(holder),
            "window": (T0 + start, T0 + end), "outcome": "passed", "timeline": []}


def record(holder: str | None, at: float, outcome: str, reasons=(), rid: str = "") -> dict:
    p = person(holder) if holder else None
    started = dt.datetime.fromtimestamp(T0 + at, dt.timezone.utc).isoformat()
    return {"passage_id": rid or f"{holder}@{at}", "started": started, "outcome": outcome, "reasons": list(reasons),
            "document": {"issuer": p.nationality, "number": p.document_number} if p else {},
            "timings_s": {"total": 1.0}}


# Six travellers one after another; three of them carry lin's passport.
TRAVELLERS = [
    traveller(1, "genuine", "lin", "lin", 0.0, 4.0),
    traveller(2, "impostor", "bakker", "lin", 4.1, 8.0),
    traveller(3, "forged", "chen", "chen", 8.1, 13.0),
    traveller(4, "genuine", "devries", "devries", 13.1, 17.0),
    traveller(5, "no_show", "devries", "devries", 17.1, 27.0),
    traveller(6, "photo_attack", "bakker", "lin", 27.1, 31.0),
]
RECORDS = {
    1: record("lin", 0.2, "cleared"),
    2: record("lin", 4.3, "refused_biometric", ["FACE_NO_MATCH"]),
    3: record("chen", 8.2, "refused_document", ["PA_FAILED:dg1_hash"]),
    4: record("devries", 13.2, "cleared"),
    5: record("devries", 17.2, "abandoned", ["ENTRY_TIMEOUT"]),
    6: record("lin", 27.3, "refused_biometric", ["PAD_PASSIVE"]),
}


def by_traveller(rows):
    return {row.traveller["id"]: row for row in rows if row.traveller is not None and row.note != "extra record"}


def test_records_in_any_order_pair_with_their_own_traveller():
    for seed in range(5):
        records = list(RECORDS.values())
        random.Random(seed).shuffle(records)
        travellers = list(TRAVELLERS)
        random.Random(seed + 100).shuffle(travellers)
        rows = demo.pair(travellers, records)
        assert len(rows) == 6 and all(row.correct for row in rows), [(r.traveller["id"], r.record) for r in rows]
        for tid, row in by_traveller(rows).items():
            assert row.record is RECORDS[tid]
        assert [row.traveller["id"] for row in rows] == [t["id"] for t in travellers]   # the order given


def test_a_missing_record_is_wrong_for_its_traveller_and_shifts_nobody():
    records = [r for tid, r in RECORDS.items() if tid != 4]   # devries's cleared passage was never written
    random.Random(7).shuffle(records)
    rows = demo.pair(TRAVELLERS, records)
    got = by_traveller(rows)
    assert got[4].record is None and got[4].note == "no record" and not got[4].correct
    # The next devries (a no-show, same passport) keeps its own record; by position it would have
    # been given to traveller 4 and every traveller after would have shifted by one.
    assert got[5].record is RECORDS[5] and got[5].correct
    assert [tid for tid, row in got.items() if row.correct] == [1, 2, 3, 5, 6]
    assert len(rows) == 6


def test_an_impostor_cleared_is_wrong_even_with_a_right_record_next_to_it():
    records = dict(RECORDS)
    records[2] = record("lin", 4.3, "cleared")        # the impostor got through on lin's passport
    rows = demo.pair(TRAVELLERS, list(reversed(records.values())))
    got = by_traveller(rows)
    assert got[1].correct and not got[2].correct and got[2].record is records[2]


def test_a_record_no_traveller_explains_is_a_wrong_row_of_its_own():
    unknown_document = record("wang", 5.0, "refused_document", ["AGE_BELOW_MINIMUM"])  # nobody laid wang's down
    no_mrz = record(None, 9.0, "refused_document", ["MRZ_UNREADABLE"])
    after_leaving = record("chen", 13.5, "refused_document", ["PA_FAILED:dg1_hash"])  # chen had left at 13.0
    before_anyone = record("lin", -3.0, "cleared")
    records = list(RECORDS.values()) + [unknown_document, no_mrz, after_leaving, before_anyone]
    random.Random(3).shuffle(records)
    rows = demo.pair(TRAVELLERS, records)
    orphans = [row for row in rows if row.traveller is None]
    assert {id(row.record) for row in orphans} == {id(unknown_document), id(no_mrz), id(after_leaving),
                                                   id(before_anyone)}
    assert all(row.note == "no traveller" and not row.correct for row in orphans)
    assert all(row.correct for row in rows if row.traveller is not None)
    assert rows[-len(orphans):] == orphans    # after every traveller's row


def test_a_second_record_for_one_traveller_is_a_wrong_row_too():
    again = record("chen", 10.0, "refused_document", ["PA_FAILED:dg1_hash"], rid="again")
    rows = demo.pair(TRAVELLERS, list(RECORDS.values()) + [again])
    chen = [row for row in rows if row.traveller and row.traveller["id"] == 3]
    assert [row.record["passage_id"] for row in chen] == [RECORDS[3]["passage_id"], "again"]
    assert chen[0].correct and chen[1].note == "extra record" and not chen[1].correct
    mine, orphans = demo.link(TRAVELLERS, list(RECORDS.values()) + [again])
    assert [r["passage_id"] for r in mine[3]] == [RECORDS[3]["passage_id"], "again"] and orphans == []


def test_traveller_entry_takes_the_window_from_the_timeline():
    t = SimpleNamespace(holder=person("lin"),
                        timeline=[Event(100.0, "arrived"), Event(100.5, "passport_presented"), Event(104.0, "done")],
                        summary=lambda: {"id": 9, "kind": "genuine", "person": "lin", "holder": "lin"})
    entry = demo.traveller_entry(t, clock_offset=T0)
    assert entry["document"] == doc("lin") and entry["window"] == (T0 + 100.5, T0 + 104.0)
    assert demo.record_document(record("lin", 1.0, "cleared")) == doc("lin")


def test_the_summary_shows_rows_without_a_traveller_or_a_record(tmp_path):
    (tmp_path / "audit.jsonl").write_text("")
    records = [r for tid, r in RECORDS.items() if tid != 4] + [record(None, 9.0, "refused_document", ["MRZ_UNREADABLE"])]
    rows = demo.pair(TRAVELLERS, records)
    text = demo.summary(rows, SimpleNamespace(storage=SimpleNamespace(data_dir=tmp_path)), tmp_path)
    assert "Right decisions: 5/7" in text
    assert "(no record)" in text and "(no traveller)" in text and "[no traveller]" in text
