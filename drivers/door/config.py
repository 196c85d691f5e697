"""Settings of the door controller (`devices.door`)."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import opt
from drivers.transport import SerialPort


@dataclass(frozen=True, kw_only=True)
class DoorConfig(SerialPort):
    watchdog_ms: int = opt(1000, min=200, max=10_000, doc="controller locks both leaves if the host is silent this long")
    beams: int = opt(8, min=2, max=64)
    high_row_cm: int = opt(120, min=50, max=250, doc="height of the upper beam row as mounted: who never breaks it "
                                                     "is under it (`eligibility.min_height_cm`)")
