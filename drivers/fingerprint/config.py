"""Settings of the fingerprint scanner (`devices.fingerprint`)."""
from __future__ import annotations

from dataclasses import dataclass

from drivers.transport import SerialPort


@dataclass(frozen=True, kw_only=True)
class FingerprintConfig(SerialPort):
    pass
