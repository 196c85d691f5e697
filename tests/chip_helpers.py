"""Chip-level fixtures: LDS files with the right structure but no PKI (passive authentication is P1's area)."""
from __future__ import annotations

import contextlib
import os

from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import PcscReader
from simulators.chip.applet import EmrtdApplet
from simulators.chip.vpcd import PORTS, READER_NAMES, VirtualCard

CARD_DEADLINE_S = 10.0  # pcscd sees a vpcd card come and go within ~50 ms; this only bounds a failure

KEY = BacKey("L898902C", "690806", "940623")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
       "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes((n,)) if n < 0x80 else bytes((0x81, n)) if n < 0x100 else b"\x82" + n.to_bytes(2, "big")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big") + length + value


def synthetic_files(dg2_size: int = 25_000, sod_size: int = 1_800) -> dict[str, bytes]:
    """EF.COM listing DG1 and DG2, DG1 with a TD3 MRZ, DG2 and EF.SOD of the given total sizes (random content)."""
    ef_com = tlv(0x60, tlv(0x5F01, b"0107") + tlv(0x5F36, b"040000") + tlv(0x5C, bytes((0x61, 0x75))))
    dg1 = tlv(0x61, tlv(0x5F1F, "".join(TD3).encode()))
    return {"EF.COM": ef_com, "DG1": dg1, "DG2": _filled(0x75, dg2_size), "EF.SOD": _filled(0x77, sod_size)}


def _filled(tag: int, total: int) -> bytes:
    header = len(tlv(tag, bytes(total)))  - total
    return tlv(tag, os.urandom(total - header))


@contextlib.contextmanager
def inserted(applet: EmrtdApplet, slot: int = 0):
    """The applet as a card in vpcd slot `slot`, present in pcscd on entry, removed again on exit."""
    card = VirtualCard(applet, PORTS[slot]).start()
    reader = PcscReader(READER_NAMES[slot])
    try:
        reader.wait_for_card(CARD_DEADLINE_S)
        yield card, reader
    finally:
        card.stop()
        reader.wait_for_card(CARD_DEADLINE_S, present=False)
