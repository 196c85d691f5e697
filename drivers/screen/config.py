"""Settings of the traveller guidance screen (`devices.screen`)."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class ScreenConfig:
    languages: tuple[str, ...] = opt(("zh-TW", "en"), doc="the first is shown to every traveller")
    listen: str = opt("127.0.0.1:8480", doc="host:port of the traveller kiosk page",
                      unsupported="the kiosk page is not built yet", honoured="127.0.0.1:8480")
