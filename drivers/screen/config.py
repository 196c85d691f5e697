"""Settings of the traveller guidance screen (`devices.screen`)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from core.errors import ConfigError
from core.messages import LANGUAGES
from core.settings import opt

Language = Literal[LANGUAGES]  # a language the whole catalogue is written in (a file in core/locales)


@dataclass(frozen=True, kw_only=True)
class ScreenConfig:
    driver: Literal["kiosk", "recording"] = opt(
        "kiosk", doc="`kiosk`: the traveller's page, served on `listen` for the kiosk browser (docs/kiosk.md); "
                     "`recording`: keeps what would be shown (tests, headless benches)")
    languages: tuple[Language, ...] = opt(
        ("zh-TW", "en", "ja", "ko"), doc="offered on the page, one tap each; a traveller starts in their document's "
                                         "issuing state's language when it is offered, else in the first")
    listen: str = opt("127.0.0.1:8480", doc="host:port of the kiosk page and its event stream; loopback only "
                                            "(port 0: any free port)")
    high_contrast: bool = opt(False, doc="start every visit in high-contrast mode (a traveller can switch it either way)")
    large_text: bool = opt(False, doc="start every visit with larger text")
    rating: Literal["off", "cleared", "every_decision"] = opt(
        "cleared", doc="when the three-face satisfaction rating is offered: after a cleared passage, or also "
                       "with a refusal's guidance")
    rating_window_s: float = opt(10.0, min=2, max=120, doc="how long the rating stays offered")
    hold_s: float = opt(4.0, min=0, max=30, doc="a refusal or warning stays on the page at least this long "
                                                "before the welcome replaces it")


def loopback_address(cfg: ScreenConfig, source: str = "(gate config)") -> tuple[str, int]:
    """`listen` as (host, port), refusing anything but a loopback address: the kiosk page is for the
    browser on this machine, never the network."""
    host, sep, port = cfg.listen.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        number, loopback = -1, False
    if not sep or not loopback or not 0 <= number <= 65535:
        raise ConfigError(source, "devices.screen.listen", cfg.listen,
                          "a loopback host:port such as 127.0.0.1:8480 (the page is served to this machine only)")
    return host, number
