"""Access control chosen per document, under a configured policy.

A strategy has a `name` and `establish(send) -> SecureMessaging`, where `send`
transmits one plain command; PACE (`before_select`) runs in the master file and
the eMRTD application is then selected under secure messaging, BAC runs after
selecting the application.

`plan(key, card_access, policy)` is the one place that picks the strategy:

  pace_then_bac  PACE when EF.CardAccess offers a PACEInfo we support, else BAC; if PACE is
                 offered but fails, BAC is tried as the fallback and the reader records it
                 (`ReadResult.fallback`, a warning in the log): never silently.
  pace_only      PACE or nothing: a chip without (supported) PACE is `AccessRefused`.
  bac_only       BAC; EF.CardAccess is not even read.

The password is the MRZ (document number, birth and expiry dates: `BacKey`) or, for PACE, the
CAN (`pace.Can`). BAC needs the MRZ, so a CAN-only read has no fallback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from drivers.emrtd import pace
from drivers.emrtd.apdu import ChipError, Command, Response
from drivers.emrtd.bac import Bac, BacKey
from drivers.emrtd.sm import SecureMessaging
from icao9303.secinfo import SecurityInfoSet

POLICIES = ("pace_then_bac", "pace_only", "bac_only")
DEFAULT_POLICY = "pace_then_bac"


class AccessControl(Protocol):
    name: str

    def establish(self, send: Callable[[Command], Response]) -> SecureMessaging: ...


class AccessRefused(ChipError):
    """The access policy forbids every method the chip offers (e.g. pace_only and a BAC-only chip)."""


@dataclass
class AccessPlan:
    primary: AccessControl
    fallback: AccessControl | None = None
    pace_offered: bool | None = None   # None: EF.CardAccess not read (bac_only)
    note: str = ""                      # why this plan, e.g. "EF.CardAccess absent"


def plan(key: BacKey | pace.Can, card_access: SecurityInfoSet | None = None, policy: str = DEFAULT_POLICY,
         *, can: pace.Can | None = None, card_access_note: str = "") -> AccessPlan:
    """The strategy (and the fallback the policy allows) for one document.

    `card_access`: the parsed EF.CardAccess, or None when the chip has none (or it was not read);
    `card_access_note` says why it is missing (absent, unreadable, malformed) for the record.
    `can`: PACE with the CAN instead of the MRZ (BAC, the fallback, still uses the MRZ `key`)."""
    if policy not in POLICIES:
        raise ValueError(f"access policy {policy!r}: one of {', '.join(POLICIES)}")
    bac = Bac(key) if isinstance(key, BacKey) else None
    if policy == "bac_only":
        if bac is None:
            raise AccessRefused("access policy bac_only needs the MRZ, not a CAN")
        return AccessPlan(bac, note="policy bac_only")
    offered = card_access is not None and bool(card_access.pace)
    info = pace.choose(card_access) if card_access is not None else None
    if info is not None:
        return AccessPlan(pace.Pace(info, can or key), bac if policy == "pace_then_bac" else None, True,
                          f"EF.CardAccess offers {info.name} (parameter id {info.parameter_id})")
    if card_access is None:
        why = card_access_note or "EF.CardAccess absent"
    elif offered:
        why = "EF.CardAccess offers only unsupported PACE: " + ", ".join(
            f"{p.name}/{p.parameter_id}" for p in card_access.pace)
    else:
        why = "EF.CardAccess lists no PACEInfo"
    if policy == "pace_only":
        raise AccessRefused(f"access policy pace_only: {why}")
    if bac is None:
        raise AccessRefused(f"no PACE ({why}) and BAC needs the MRZ, not a CAN")
    return AccessPlan(bac, pace_offered=offered, note=why)


def for_document(key: BacKey | pace.Can, card_access: SecurityInfoSet | None = None,
                 policy: str = DEFAULT_POLICY) -> AccessControl:
    """The strategy for one document: PACE when EF.CardAccess offers it (and the policy allows), else BAC."""
    return plan(key, card_access, policy).primary


def describe(strategy: AccessControl) -> dict:
    """What the record keeps about the access method."""
    if isinstance(strategy, pace.Pace):
        return {"method": "PACE", **strategy.describe()}
    return {"method": strategy.name, "cipher": "3DES", "password": "MRZ"}
