"""The main job: one simulated lane, the real gate process, travellers walking through, a summary.

    egate demo [--profile realistic|zero-latency] [--travellers genuine,forged,...]

The gate side is exactly what `egate run` runs (`gate.app.GateApp`), talking to the lane's
simulators over ptys, pcscd+vpcd and loopback HTTP. Nationals are enrolled at a simulated
counter first (fingerprint impressions the gate never sees, sealed with AES-GCM). Each
traveller is a `simulators.traveller.Traveller` acting on what it sees of the lane. The
summary pairs every traveller with the gate's passage record and says whether the gate's
decision was the right one for that kind of traveller.

Pairing is by identity, never by position: a record belongs to the traveller whose passport it
read (the record's issuer and document number, `record.document`, against the holder's) and
who had that passport on the reader when the record was opened (`record.started` within the
traveller's window, from laying the passport down to leaving). Several travellers may carry the
same passport (an impostor with lin's, lin again later): the window tells them apart. A traveller
with no record and a record with no traveller each show up as a wrong row; neither shifts the
pairing of the others.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from biometrics.finger.extract import Extractor
from biometrics.privacy import BiometricSample
from core import audit, logs
from core.reasons import Category, Reason
from gate import config
from gate.app import GateApp
from gate.steps import EnrolmentStore
from simulators.lane import ENROLMENT_IMPRESSIONS, PEOPLE, Lane
from simulators import lists
from simulators.sync_sites import SyncSites
from simulators.traveller import Traveller
from sync.record import RATINGS, satisfaction_rate

# Attacks with lin's and chen's passports come before lin and chen pass: once a passport has passed,
# the gate refuses it again for `screening.reuse.window_s` (the `repeat` traveller shows it).
DEFAULT_TRAVELLERS = ("impostor", "photo_attack", "replay_attack", "tailgater", "forged", "child", "no_show",
                      "genuine:lin", "genuine:devries", "genuine:chen", "resident", "watchlisted", "genuine:bakker",
                      "repeat")
# On an arrival gate foreigners are not served (the lane serves them on departure): they are refused.
ARRIVAL_TRAVELLERS = ("impostor", "photo_attack", "replay_attack", "tailgater", "forged", "child", "no_show:chen",
                      "genuine:lin", "foreigner:devries", "genuine:chen", "resident", "watchlisted", "foreigner:bakker",
                      "repeat")


@dataclass(frozen=True)
class Expected:
    """What a correct gate does with one kind of traveller, and why: the outcome, and the
    categories every reason code of the record must belong to (none for a cleared passage)."""

    outcomes: frozenset[str]
    because: frozenset[Category] = frozenset()

    def met_by(self, record: dict) -> bool:
        reasons = [Reason.parse(r) for r in record["reasons"]]
        return record["outcome"] in self.outcomes and all(r.category in self.because for r in reasons)


_BIOMETRIC = (Category.FACE, Category.LIVENESS, Category.FINGER, Category.FUSION)


def _expect(outcomes: tuple[str, ...], *because: Category) -> Expected:
    return Expected(frozenset(outcomes), frozenset(because))


# What a correct gate does with each kind of traveller. An attacker refused by the fingerprint
# after the face was fooled is still refused for a biometric reason: each modality backs the other.
EXPECTED = {
    "genuine": _expect(("cleared",)),
    "forged": _expect(("refused_document",), Category.PASSIVE_AUTH),
    "impostor": _expect(("refused_biometric",), *_BIOMETRIC),
    "tailgater": _expect(("refused_biometric",), Category.MANTRAP),
    "child": _expect(("refused_document", "refused_biometric"), Category.ELIGIBILITY, Category.MANTRAP),
    "photo_attack": _expect(("refused_biometric",), *_BIOMETRIC),
    "replay_attack": _expect(("refused_biometric",), *_BIOMETRIC),
    "no_show": _expect(("abandoned",), Category.ENTRY),
    "watchlisted": _expect(("refused_document",), Category.SCREENING),   # a silent referral
    "resident": _expect(("cleared",)),
    "foreigner": _expect(("refused_document",), Category.ELIGIBILITY),
    "repeat": _expect(("refused_document",), Category.SCREENING),
}


@dataclass
class Row:
    """One line of the summary: a traveller and the gate's record of them. Either side may be
    missing (a traveller the gate kept no record of, a record no traveller explains), and a
    traveller with more than one record gets a row for each extra one; such rows are wrong."""

    traveller: dict | None
    record: dict | None
    note: str = ""      # why the row is wrong whatever the decision: "no record", "no traveller", ...

    @property
    def correct(self) -> bool:
        return (self.traveller is not None and self.record is not None and not self.note
                and EXPECTED[self.traveller["kind"]].met_by(self.record))


def traveller_entry(t: Traveller, clock_offset: float | None = None) -> dict:
    """`t.summary()` plus what links it to the gate's records: `document`, the holder's
    "issuer:number" (what the gate reads from the passport), and `window`, wall-clock seconds
    from laying the passport down to leaving (until now if the traveller is still there).
    `clock_offset` is wall clock minus monotonic clock (measured now when None)."""
    offset = time.time() - time.monotonic() if clock_offset is None else clock_offset
    events = list(t.timeline)
    start = next((e.t for e in events if e.what == "passport_presented"), events[0].t if events else time.monotonic())
    end = next((e.t for e in events if e.what == "done"), time.monotonic())
    return t.summary() | {"document": t.holder.traveller_id, "window": (start + offset, end + offset)}


def record_document(record: dict) -> str | None:
    """The record's link to a traveller: "issuer:number" of the passport the gate read (None
    when no MRZ was read)."""
    doc = record.get("document") or {}
    if not doc.get("issuer") or not doc.get("number"):
        return None
    return f"{doc['issuer']}:{doc['number']}"


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).timestamp()


def link(travellers: list[dict], records: list[dict], slack_s: float = 0.05) -> tuple[dict[int, list[dict]], list[dict]]:
    """Each record to the traveller it belongs to: same passport (`traveller["document"]` ==
    `record_document(record)`), and the last such traveller to have laid it down before the
    record started, provided they had not left yet (`slack_s` covers the two clocks' reading).
    Returns {traveller id: their records, oldest first} and the records no traveller explains.
    Order of either list does not matter."""
    mine: dict[int, list[dict]] = {t["id"]: [] for t in travellers}
    orphans: list[dict] = []
    for record in sorted(records, key=lambda r: _epoch(r["started"])):
        doc, at = record_document(record), _epoch(record["started"])
        holders = [t for t in travellers if t["document"] == doc and t["window"][0] - slack_s <= at]
        owner = max(holders, key=lambda t: t["window"][0], default=None)
        if owner is None or at > owner["window"][1] + slack_s:
            orphans.append(record)
        else:
            mine[owner["id"]].append(record)
    return mine, orphans


def pair(travellers: list[dict], records: list[dict]) -> list[Row]:
    """Rows for the summary: each traveller (in the order given) with their record, a wrong row
    for each extra record of theirs, then a wrong row for each record no traveller explains."""
    mine, orphans = link(travellers, records)
    rows = []
    for t in travellers:
        got = mine[t["id"]]
        rows.append(Row(t, got[0] if got else None, "" if got else "no record"))
        rows += [Row(t, extra, "extra record") for extra in got[1:]]
    rows += [Row(None, r, "no traveller") for r in orphans]
    return rows


def parse_travellers(spec: str | tuple[str, ...]) -> list[tuple[str, str | None]]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        kind, _, who = item.strip().partition(":")
        if kind not in EXPECTED:
            raise ValueError(f"unknown traveller kind {kind!r}; one of {', '.join(EXPECTED)}")
        out.append((kind, who or None))
    return out


def enrol_nationals(lane: Lane, store: EnrolmentStore) -> list[str]:
    """The counter: each national's right index finger, from an impression the gate never sees."""
    extractor = Extractor()
    enrolled = []
    for p in PEOPLE:
        if not p.national:
            continue
        image = lane.finger_generator.impression(p.finger_id, ENROLMENT_IMPRESSIONS - 1)
        with BiometricSample.from_array(image, kind="enrolment print") as sample:
            store.enrol(p.traveller_id, extractor.extract(sample).template)
        enrolled.append(p.key)
    return enrolled


def parse_outage(spec: str) -> tuple[int, int]:
    """"A:B": central stops before traveller A and starts again before traveller B (1-based)."""
    first, _, second = spec.partition(":")
    try:
        a, b = int(first), int(second)
    except ValueError:
        raise ValueError(f"--stop-central takes A:B (traveller numbers), not {spec!r}") from None
    if not 1 <= a < b:
        raise ValueError(f"--stop-central {spec}: need 1 <= A < B")
    return a, b


# The agent's timings for the demo: fail over after two failed requests, fail back after two good
# probes a second apart and five seconds on the backup (production defaults are slower).
DEMO_AGENT = dict(failover_after=2, failover_timeout_s=3.0, failback_probe_s=1.0, failback_after=2,
                  min_dwell_s=5.0, retry_max_s=2.0, heartbeat_s=2.0)


def run(workdir: Path, profile: str = "realistic", travellers=DEFAULT_TRAVELLERS, out=print,
        outage: tuple[int, int] | None = None, direction: str = "departure") -> list[Row]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Each run starts with no crossings: an earlier run's passages at the gate and at the receivers
    # would make this run's travellers "the same passport twice".
    for old in [*workdir.glob("gate-data/outbox.sqlite*"), *workdir.glob("sync/*.sqlite*")]:
        old.unlink()
    logs.configure("warning", "json", stream=open(workdir / "gate.log", "w"))
    plan = parse_travellers(travellers)
    gate_id = "SIM-LANE-01"
    with SyncSites(workdir, [gate_id]) as sites, \
            Lane(workdir, profile=profile, gate_id=gate_id, sync=sites.gate_settings(gate_id, **DEMO_AGENT),
                 signing_key=sites.signing_key(gate_id)) as lane:
        lists.screen_lane(lane, direction=direction, reuse_window_s=3600, central_check=True)
        cfg = config.load_gate(lane.config_path)
        out(f"Receivers: central {sites.url('central')}, site backup {sites.url('backup')}, "
            f"off-site backup {sites.url('offsite')} (mutual TLS, SQLite)")
        out(f"Simulated lane ({profile}) in {workdir}")
        for d in lane.devices():
            out(f"  {d['device']:<12} {d['link']:<5} {d['where']}  {d['notes']}")
        app = GateApp(cfg)
        lane.watch_screen(app.screen)   # the travellers read what the gate's screen shows
        enrolled = enrol_nationals(lane, app.enrolment)
        out(f"Counter enrolment (fingerprint, sealed AES-GCM): {', '.join(enrolled)}")
        walked: list[Traveller] = []

        def walk_everyone():
            try:
                if not _wait(lambda: app.controller.machine.state == "idle", 30):
                    out("gate never became ready")
                    return
                if getattr(app.screen, "url", None):
                    out(f"Kiosk page (the travellers' screen; open it in a browser to follow): {app.screen.url}")
                for number, (kind, who) in enumerate(plan, 1):
                    if outage and number == outage[0]:
                        sites.stop("central")
                        out(f"  -- central receiver stopped before traveller {number}")
                    if outage and number == outage[1]:
                        sites.start("central")
                        out(f"  -- central receiver started again before traveller {number}")
                    before = len(app.controller.records)
                    t = Traveller(lane, kind, who).start()
                    walked.append(t)
                    t.join(180)
                    tap_rating(app.screen, t)
                    out(f"  traveller {t.id:>2} {kind:<13} {t.person.key:<8} → {t.outcome}")
                    _wait(lambda: app.controller.machine.state == "idle" and len(app.controller.records) > before, 30)
                sites.start("central")
                if not _wait(lambda: app.outbox.depth() == 0, 60):
                    out(f"  outbox still holds {app.outbox.depth()} records after 60 s")
            finally:
                app.reactor.call_from_thread(app.reactor.request_stop)

        out(f"Travellers: {len(plan)}")
        walker = threading.Thread(target=walk_everyone, name="demo-travellers", daemon=True)
        asyncio.run(app.run(lambda: _start(walker)))
        walker.join(5)
        records = [r.as_dict() for r in app.controller.records]
        ids = [r.record_id for r in app.controller.records]
        _wait(lambda: set(ids) <= set(sites.records("central")), 20)  # the backups forward what they hold
        held = {role: sites.records(role) for role in ("central", "backup", "offsite")}
    rows = pair([traveller_entry(t) for t in walked], records)
    out("")
    out(summary(rows, cfg, workdir, app.controller.ratings, app.controller.cycles))
    out(sync_summary(ids, held, app.sync, sites))
    return rows


def sync_summary(ids: list[str], held: dict[str, list[str]], agent, sites: SyncSites) -> str:
    """Where the records went: each receiver's share, central complete and free of duplicates, and
    the failover and failback the outage caused."""
    central = held["central"]
    lines = ["", "RECORDS AT THE RECEIVERS", f"  the gate wrote {len(ids)} signed records"]
    for role, name in (("central", "central"), ("backup", "site backup"), ("offsite", "off-site backup")):
        mine = [i for i in held[role] if i in set(ids)]
        lines.append(f"  {name:<16} holds {len(mine):>3}")
    missing = sorted(set(ids) - set(central), key=ids.index)
    lines.append(f"  central has every record exactly once: "
                 f"{'yes' if not missing and len(central) == len(set(central)) else 'NO, missing ' + ', '.join(missing)}")
    for sw in agent.switches:
        how = f" (failure detected in {sw.detection_s:.1f} s)" if sw.detection_s is not None else ""
        lines.append(f"  {sw.at[11:19]} the gate's agent moved to {sw.to}{how}: {sw.why[:80]}")
    back = next((sw for sw in agent.switches if sw.to == "central"), None)
    if back is not None and "central" in sites.stopped_at:
        restarted = max(t for t in sites.restarts("central") if t <= back.mono)
        lines.append(f"  failback took {back.mono - restarted:.1f} s from central's return "
                     f"({DEMO_AGENT['failback_after']} good probes {DEMO_AGENT['failback_probe_s']:.0f} s apart, "
                     f"at least {DEMO_AGENT['min_dwell_s']:.0f} s on the backup: no flapping)")
    return "\n".join(lines)


async def _start(thread: threading.Thread) -> None:
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.1)


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# Simulated travellers cannot feel: the demo taps a face for each one offered the rating, by how long
# their passage took (passport laid down to past the exit), against the anchors' 10-18 s.
RATING_BY_TIME_S = ((12.0, "good"), (20.0, "neutral"), (float("inf"), "poor"))


def tap_rating(screen, t: Traveller) -> str | None:
    """The one tap a traveller offered the rating makes (the page's POST /api/rating does the same)."""
    offer = screen.open_offer() if hasattr(screen, "open_offer") else None
    if offer is None or offer.rating is not None:
        return None
    start, end = traveller_entry(t)["window"]
    face = next(face for limit, face in RATING_BY_TIME_S if end - start <= limit)
    return face if screen.rate(offer.token, face) == "recorded" else None


def summary(rows: list[Row], cfg: config.GateConfig, workdir: Path, ratings: dict[str, int] | None = None,
            cycles: dict[str, float] | None = None) -> str:
    lines = ["=" * 100, "PASSAGES", "=" * 100,
             f"{'#':>2} {'traveller':<13} {'person':<8} {'gate decision':<18} {'right?':<6} {'time s':>6} "
             f"{'face':>6} {'finger':>6}  reasons"]
    for row in rows:
        r = row.record or {}
        t = row.traveller or {"id": "-", "kind": "(no traveller)", "person": "-"}
        face = r.get("scores", {}).get("face", {}).get("score")
        finger = (r.get("scores", {}).get("finger", {}).get("match") or {}).get("score")
        note = f"  [{row.note}]" if row.note and row.record is not None else ""
        lines.append(f"{t['id']:>2} {t['kind']:<13} {t['person']:<8} "
                     f"{r.get('outcome', '(no record)'):<18} {'yes' if row.correct else 'NO':<6} "
                     f"{r.get('timings_s', {}).get('total', float('nan')):>6.1f} "
                     f"{'' if face is None else f'{face:.2f}':>6} {'' if finger is None else finger:>6}  "
                     f"{', '.join(r.get('reasons', [])) or '-'}{note}")
    cleared = [row.record for row in rows if row.record and row.record["outcome"] == "cleared"]
    correct = sum(row.correct for row in rows)
    lines += ["", f"Right decisions: {correct}/{len(rows)}"]
    if cleared:
        times = [r["timings_s"].get("passage", r["timings_s"]["total"]) for r in cleared]
        p50 = statistics.median(times)
        lines += [f"Cleared passages: {len(cleared)}; passage time (passport read → traveller past the exit leaf): "
                  f"median {p50:.1f} s, max {max(times):.1f} s (anchor: 10–18 s)"]
        laps = [cycles[r["passage_id"]] for r in cleared if cycles and r["passage_id"] in cycles]
        if laps:
            c50 = statistics.median(laps)
            lines.append(f"Lane cycle (passport read → exit locked behind the traveller): median {c50:.1f} s, i.e. "
                         f"{3600 / c50:.0f} travellers/hour one at a time (anchor: 110–150); a queue overlaps the next "
                         f"document with the mantrap (bench.passage measures that throughput)")
        if not laps:
            lines.append(f"Throughput bound at the passage time: {3600 / p50:.0f} travellers/hour/gate (anchor: 110–150)")
        steps = {}
        for r in cleared:
            for k in ("document", "enter", "face", "finger", "exit", "passage"):
                if k in r["timings_s"]:
                    steps.setdefault(k, []).append(r["timings_s"][k])
        lines.append("Median step times: " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in steps.items()))
    if ratings is not None:
        rate = satisfaction_rate(ratings)
        lines.append(f"Satisfaction (one tap, three faces; simulated by passage time): {sum(ratings.values())} "
                     f"ratings, " + ", ".join(f"{face} {ratings.get(face, 0)}" for face in RATINGS) + "; "
                     + ("no rating" if rate is None else f"{100 * rate:.1f} % good") + " (target >= 95.1 %)")
    trail = cfg.storage.data_dir / "audit.jsonl"
    broken = audit.verify(trail)
    lines += [f"Passage records (signed; decisions, reasons, scores; no images): {cfg.storage.data_dir / 'outbox.sqlite'}",
              f"Audit trail {trail}: {'intact' if broken is None else f'BROKEN at line {broken.line}'}",
              f"Gate log: {workdir / 'gate.log'}"]
    return "\n".join(lines)
