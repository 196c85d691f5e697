"""Local decisions, as pure functions: is this document acceptable, and is its holder eligible?

Each refusal carries `core.reasons.Reason` members (`DOC_EXPIRED`, `PA_FAILED:sod_signature`, ...)
whose values the passage record and the monitoring platform use; the screen text comes from the
reasons' guidance ids (`core.reasons.guidance_for`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.reasons import Reason, guidance_for
from gate.config import Eligibility
from icao9303 import mrz as _mrz
from icao9303.pa import PassiveAuthResult


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: tuple[Reason, ...] = ()
    details: dict = field(default_factory=dict)

    @property
    def guidance(self) -> str:
        """The message the screen shows for this verdict."""
        return "passage.enter" if self.accepted else guidance_for(self.reasons)


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


def document_verdict(optical: _mrz.Mrz, pa: PassiveAuthResult | None, policy: Eligibility,
                     direction: str, today: dt.date, chip_auth: dict | None = None) -> Verdict:
    """Document authenticity and holder eligibility from the optical MRZ and passive authentication.

    `pa` is None when the chip could not be read; it then fails only if the policy requires
    passive authentication.
    """
    reasons: list[Reason] = []
    if not optical.valid:
        reasons.append(Reason.MRZ_INVALID)
    if optical.doc_type[:1] not in {t[:1] for t in policy.document_types} and optical.doc_type not in policy.document_types:
        reasons.append(Reason.DOC_TYPE_NOT_ACCEPTED)
    if optical.expiry_date is None or optical.expiry_date < today:
        reasons.append(Reason.DOC_EXPIRED)
    national = optical.nationality in policy.nationals
    if not national and direction not in policy.foreigners_on:
        reasons.append(Reason.FOREIGNER_NOT_SERVED)
    if optical.birth_date is None or age_on(optical.birth_date, today) < policy.min_age_years:
        reasons.append(Reason.AGE_BELOW_MINIMUM)
    if pa is None:
        if policy.require_passive_auth:
            reasons.append(Reason.CHIP_UNREADABLE)
    elif not pa.passed:
        reasons.extend([Reason.for_pa_check(c.name) for c in pa.failed] or [Reason.PA_VERDICT])
    reasons.extend(chip_auth_verdict(chip_auth or {}, policy.chip_authentication) if pa is not None else [])
    details = {"traveller_class": "national" if national else "foreigner"}
    if chip_auth:
        details["chip_auth"] = dict(chip_auth)
    if pa is not None:
        details["passive_auth"] = {c.name: c.status for c in pa.checks}
    return Verdict(not reasons, tuple(reasons), details)
