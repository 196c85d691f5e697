"""Settings of the page scanner (`devices.page_scanner`): a document camera or flatbed-style reader
that delivers page images, read by the two-engine MRZ pipeline."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class PageScannerConfig:
    source: str = opt(doc="device index, file path or stream URL (OpenCV capture, like the face camera)")
    width: int = opt(1600, min=320, max=8192, doc="asked of a local device; files and streams come as they are")
    height: int = opt(1600, min=240, max=8192)
    presence: float = opt(0.10, min=0.01, max=0.9,
                          doc="share of bright pixels that means a page lies on the glass (the empty glass is dark)")
    attempts: int = opt(3, min=1, max=10, doc="frames read before a present page is reported unreadable")
