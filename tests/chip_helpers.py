"""Chip-level fixtures: LDS files with the right structure but no PKI (passive authentication is P1's area)."""
from __future__ import annotations

import contextlib
import os

from drivers.emrtd.bac import BacKey
from icao9303 import mrz as mrzmod
from drivers.emrtd.pcsc import PcscReader
from icao9303 import lds, tlv
from simulators.chip.applet import EmrtdApplet
from simulators.chip.vpcd import PORTS, READER_NAMES, VirtualCard, exclusive_slots as exclusive_vpcd  # noqa: F401 (re-exported for the chip tests)

CARD_DEADLINE_S = 10.0  # pcscd notices a vpcd card come or go within about half a second; this bounds a failure

KEY = BacKey("L898902C", "690806", "940623")  # ICAO 9303-11 Appendix D's document keys
TD3 = (  # ICAO's specimen MRZ, only DG1's content here (passive authentication is tested with the test PKI)
"P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
       "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def synthetic_files(dg2_size: int = 25_000, sod_size: int = 1_800) -> dict[str, bytes]:
    """EF.COM listing DG1 and DG2, DG1 with a TD3 MRZ, DG2 and EF.SOD of the given total sizes (random content)."""
    return {"EF.COM": lds.build_com([1, 2]), "DG1": lds.build_dg1(TD3),
            "DG2": _filled(0x75, dg2_size), "EF.SOD": _filled(0x77, sod_size)}


def _filled(tag: int, total: int) -> bytes:
    header = len(tlv.encode(tag, bytes(total))) - total
    return tlv.encode(tag, os.urandom(total - header))


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


# The ICAO 9303 specimen (Anna Eriksson) used by the PACE, AA and CA tests against the applet.
LINES = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
MRZ_KEY = BacKey.from_mrz(mrzmod.parse(LINES))


class AppletLink:
    """The chip applet as a transport, without pcscd: every APDU sent is kept."""

    def __init__(self, applet):
        self.applet, self.sent = applet, []

    def transmit(self, raw: bytes) -> bytes:
        self.sent.append(raw)
        return self.applet.process(raw)
