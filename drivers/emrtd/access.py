"""Access control chosen per document.

A strategy has a `name` and `establish(send) -> SecureMessaging`, where `send`
transmits one plain command. BAC is the only one today; PACE (chosen when
EF.CardAccess lists a PACEInfo) and the chip/active authentication steps that
follow it slot in here without touching the reader.
"""
from __future__ import annotations

from typing import Callable, Protocol

from drivers.emrtd.apdu import Command, Response
from drivers.emrtd.bac import Bac, BacKey
from drivers.emrtd.sm import SecureMessaging


class AccessControl(Protocol):
    name: str

    def establish(self, send: Callable[[Command], Response]) -> SecureMessaging: ...


def for_document(key: BacKey) -> AccessControl:
    """The strategy for one document: BAC until PACE exists, then PACE when EF.CardAccess offers it."""
    return Bac(key)
