"""Local decisions: is this document acceptable, is its holder eligible, and may they pass?

`document_verdict` is a pure function of the document (printed MRZ, the chip's DG1, passive and
chip authentication) and the policy (`[eligibility]`): document code and issuing state, validity
and expiry, the holder's category (national, resident with a registered permit, foreigner) per
lane direction, minimum age, enrolment, passive and chip authentication. `Decider.decide` (what
the controller calls, in a worker thread) adds what needs the world: the resident register, the
control list, enrolment, and one document used twice (this gate's outbox, and central).

Each refusal carries `core.reasons.Reason` members (`DOC_EXPIRED`, `PA_FAILED:sod_signature`, ...)
whose values the passage record and the monitoring platform use; the screen text comes from the
reasons' guidance ids (`core.reasons.guidance_for`). A control-list hit is a silent referral: the
screen shows the ordinary "please see an officer", the officer gets `Verdict.alerts`.
Rules and their order: docs/decisions.md.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from core import logs
from core.reasons import Reason, guidance_for
from gate.config import Eligibility, GateConfig
from icao9303 import mrz as _mrz
from icao9303.pa import PassiveAuthResult

log = logs.get("decision")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: tuple[Reason, ...] = ()
    details: dict = field(default_factory=dict)
    alerts: tuple[tuple[Reason, str], ...] = ()   # what the officer must be told, with the detail

    @property
    def guidance(self) -> str:
        """The message the screen shows for this verdict."""
        return "passage.enter" if self.accepted else guidance_for(self.reasons)


def chip_auth_mode(policy: Eligibility, issuer: str) -> str:
    """The clone-detection mode for documents of `issuer`: its state's rule, else the default."""
    for rule in policy.chip_authentication_by_state:
        if issuer in rule.states:
            return rule.mode
    return policy.chip_authentication


def chip_auth_verdict(checks: dict[str, str], mode: str) -> list[Reason]:
    """Clone detection: any check that failed refuses the chip; with `required`, so does a chip
    that passed none (not offered, or offered in a form this reader cannot run)."""
    if mode == "off":
        return []
    if any(status == "failed" for status in checks.values()):
        return [Reason.CHIP_AUTH_FAILED]
    if mode == "required" and not any(status == "passed" for status in checks.values()):
        return [Reason.CHIP_AUTH_NOT_OFFERED]
    return []


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def category_of(nationality: str, policy: Eligibility, resident: bool) -> str:
    """national (`eligibility.nationals`), resident (a foreigner with a registered permit) or foreigner."""
    if nationality in policy.nationals:
        return "national"
    return "resident" if resident else "foreigner"


def holder_data(optical: _mrz.Mrz, pa: PassiveAuthResult | None, dg1: _mrz.Mrz | None) -> tuple[_mrz.Mrz, str]:
    """Whose data the holder rules read: the chip's DG1 once passive authentication vouched for
    it (its hash in the signed SOD, and it agrees with the printed MRZ), else the printed MRZ."""
    if dg1 is not None and pa is not None and pa.passed:
        hashed = pa.check("dg1_hash")
        if hashed is not None and hashed.status == "passed":
            return dg1, "dg1"
    return optical, "mrz"


def document_verdict(optical: _mrz.Mrz, pa: PassiveAuthResult | None, policy: Eligibility,
                     direction: str, today: dt.date, chip_auth: dict | None = None, *,
                     dg1: _mrz.Mrz | None = None, resident: bool = False, enrolled: bool | None = None) -> Verdict:
    """Document authenticity and holder eligibility (docs/decisions.md, "Eligibility").

    `pa` is None when the chip could not be read; it then fails only if the policy requires
    passive authentication. `resident`: the resident register lists this document with a valid
    permit. `enrolled`: whether the traveller has enrolled (None: not known, not checked).
    """
    reasons: list[Reason] = []
    holder, source = holder_data(optical, pa, dg1)
    if not optical.valid:
        reasons.append(Reason.MRZ_INVALID)
    if optical.doc_type not in policy.document_types:     # exact: P never accepts PD or PO
        reasons.append(Reason.DOC_TYPE_NOT_ACCEPTED)
    if policy.issuing_states and optical.issuer not in policy.issuing_states:
        reasons.append(Reason.ISSUER_NOT_ACCEPTED)
    category = category_of(holder.nationality, policy, resident)
    expiry = optical.expiry_date
    grace = policy.expired_grace_days if category == "national" and direction == "arrival" else 0
    if expiry is None or expiry + dt.timedelta(days=grace) < today:
        reasons.append(Reason.DOC_EXPIRED)
    elif expiry >= today and policy.min_validity_days and expiry < today + dt.timedelta(days=policy.min_validity_days):
        reasons.append(Reason.DOC_VALIDITY_TOO_SHORT)
    if category == "resident" and direction not in policy.residents_on:
        reasons.append(Reason.RESIDENT_NOT_SERVED)
    if category == "foreigner" and direction not in policy.foreigners_on:
        reasons.append(Reason.FOREIGNER_NOT_SERVED)
    if holder.birth_date is None or age_on(holder.birth_date, today) < policy.min_age_years:
        reasons.append(Reason.AGE_BELOW_MINIMUM)
    if enrolled is False and category in policy.enrolment_required:
        reasons.append(Reason.NOT_ENROLLED)
    if pa is None:
        if policy.require_passive_auth:
            reasons.append(Reason.CHIP_UNREADABLE)
    elif not pa.passed:
        reasons.extend([Reason.for_pa_check(c.name) for c in pa.failed] or [Reason.PA_VERDICT])
    mode = chip_auth_mode(policy, optical.issuer)
    reasons.extend(chip_auth_verdict(chip_auth or {}, mode) if pa is not None else [])
    details = {"traveller_class": category, "holder_data": source}
    if mode != policy.chip_authentication:
        details["chip_auth_mode"] = mode
    if chip_auth:
        details["chip_auth"] = dict(chip_auth)
    if pa is not None:
        details["passive_auth"] = {c.name: c.status for c in pa.checks}
    return Verdict(not reasons, tuple(dict.fromkeys(reasons)), details)


# ------------------------------------------------------------------------ with the world

@dataclass
class Services:
    """What `Decider` asks beyond the document; each may be None (not configured)."""
    control_list: object | None = None        # gate.screening.controllist.ListCache
    residents: object | None = None           # a ListCache of the resident register
    enrolled: Callable[[str], bool] | None = None          # traveller id -> enrolled?
    recent_clearance: Callable[[str, str, float], float | None] | None = None   # (issuer, number, window) -> age s
    central_crossing: Callable[[str, str, str, float], dict] | None = None      # (issuer, number, direction, timeout)


class Decider:
    """The document stage's decision, in one blocking call (`decide`), so the controller has one
    hook: document and eligibility, then screening. Runs in a worker thread."""

    def __init__(self, cfg: GateConfig, services: Services | None = None, *, today: Callable[[], dt.date] = dt.date.today):
        self.cfg = cfg
        self.s = services or Services()
        self.today = today

    def status(self) -> dict:
        """For the gate's status (`GateController.status_snapshot`): the lists' versions and ages."""
        out = {}
        if self.s.control_list is not None:
            out["control_list"] = self.s.control_list.snapshot()
        if self.s.residents is not None:
            out["resident_register"] = self.s.residents.snapshot()
        return out

    def decide(self, optical: _mrz.Mrz, chip) -> Verdict:
        """`chip` is a `gate.steps.ChipOutcome` (passive_auth, chip_auth, dg1)."""
        cfg, s = self.cfg, self.s
        sc = cfg.screening
        today = self.today()
        pa = chip.passive_auth if chip is not None else None
        dg1 = getattr(chip, "dg1", None)
        holder, _ = holder_data(optical, pa, dg1)
        details: dict = {"direction": cfg.gate.direction}
        resident = False
        if s.residents is not None:
            register = s.residents.usable()
            if register is None:
                details["resident_register"] = s.residents.snapshot()["state"]
            else:
                from gate.screening.controllist import Query
                hits = register.lookup(Query.from_mrz(optical), match=("document",), today=today)
                resident = bool(hits)
                if resident:
                    details["resident_permit"] = hits[0].entry.id
        enrolled = None
        if s.enrolled is not None and cfg.eligibility.enrolment_required:
            enrolled = s.enrolled(f"{optical.issuer}:{optical.document_number}")
        v = document_verdict(optical, pa, cfg.eligibility, cfg.gate.direction, today,
                             chip.chip_auth if chip is not None else None, dg1=dg1, resident=resident,
                             enrolled=enrolled)
        reasons = list(v.reasons)
        details.update(v.details)
        alerts: list[tuple[Reason, str]] = []
        # The control list, whatever else was decided: a wanted person with an expired passport is still found.
        if sc.control_list.enabled and s.control_list is not None:
            self._screen(optical, holder, today, reasons, details, alerts)
        # One document used twice: only for a passage that would otherwise go on.
        if not reasons and (sc.reuse.window_s or sc.reuse.central):
            self._reuse(optical, reasons, details)
        return Verdict(not reasons, tuple(dict.fromkeys(reasons)), details, tuple(alerts))

    def _screen(self, optical, holder, today, reasons, details, alerts) -> None:
        from gate.screening.controllist import ControlListError, Query

        cl = self.cfg.screening.control_list
        current = self.s.control_list.usable()
        if current is None:
            reasons.append(Reason.CONTROL_LIST_UNAVAILABLE)
            details["control_list"] = {"checked": False, "state": self.s.control_list.snapshot()["state"]}
            return
        queries = {Query.from_mrz(optical), Query.from_mrz(holder)}
        hits = {}
        try:
            for q in queries:
                for h in current.lookup(q, match=cl.match, name_rule=cl.name_rule, today=today):
                    hits.setdefault(h.entry.id, h)
        except ControlListError as exc:   # an entry central signed that does not decode: still a referral
            log.error("control_list_entry_unreadable", error=str(exc))
            reasons.append(Reason.CONTROL_LIST_HIT)
            details["control_list"] = {"checked": True, "version": current.version, "hit": "unreadable entry"}
            alerts.append((Reason.CONTROL_LIST_HIT, f"control list {current.version}: an entry matched but does "
                                                    f"not decode ({exc})"))
            return
        details["control_list"] = {"checked": True, "version": current.version}
        if hits:
            reasons.append(Reason.CONTROL_LIST_HIT)
            details["control_list"]["hits"] = [h.as_dict() for h in hits.values()]
            for h in hits.values():
                alerts.append((Reason.CONTROL_LIST_HIT, h.detail()))

    def _reuse(self, optical, reasons, details) -> None:
        ru, s = self.cfg.screening.reuse, self.s
        out: dict = {}
        if ru.window_s and s.recent_clearance is not None:
            age = s.recent_clearance(optical.issuer, optical.document_number, ru.window_s)
            out["local"] = "clear" if age is None else f"cleared {age:.0f} s ago"
            if age is not None:
                reasons.append(Reason.DOC_ALREADY_USED)
        if ru.central:
            if s.central_crossing is None:
                out["central"] = "skipped: no central link"
            else:
                answer = s.central_crossing(optical.issuer, optical.document_number, self.cfg.gate.direction,
                                            ru.central_timeout_s)
                out["central"] = answer.get("checked", "skipped")
                if answer.get("open"):
                    reasons.append(Reason.OPEN_CROSSING)
                    out["last_crossing"] = answer.get("last")
        details["reuse"] = out
