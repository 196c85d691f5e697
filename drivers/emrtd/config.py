"""Settings of the contactless chip reader (`devices.chip_reader`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class ChipReaderConfig:
    reader: str = opt(doc="PC/SC reader name (substring match); never readers()[0]")
    apdu_timeout_s: float = opt(2.0, min=0.05, max=30.0)
    access_policy: Literal["pace_then_bac", "pace_only", "bac_only"] = opt(
        "pace_then_bac", doc="PACE when EF.CardAccess offers it; a fallback to BAC is logged and recorded")
