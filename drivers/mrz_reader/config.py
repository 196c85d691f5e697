"""Settings of the MRZ reader (`devices.mrz_reader`)."""
from __future__ import annotations

from dataclasses import dataclass

from drivers.transport import SerialPort


@dataclass(frozen=True, kw_only=True)
class MrzReaderConfig(SerialPort):
    pass
