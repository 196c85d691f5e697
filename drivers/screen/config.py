"""Settings of the traveller guidance screen (`devices.screen`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.messages import LANGUAGES
from core.settings import opt

Language = Literal[LANGUAGES]  # a language the whole catalogue is written in


@dataclass(frozen=True, kw_only=True)
class ScreenConfig:
    languages: tuple[Language, ...] = opt(("zh-TW", "en"), doc="the first is shown to every traveller")
    listen: str = opt("127.0.0.1:8480", doc="host:port of the traveller kiosk page",
                      unsupported="the kiosk page is not built yet", honoured="127.0.0.1:8480")
