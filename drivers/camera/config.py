"""Settings of the face camera (`devices.camera`)."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    source: str = opt(doc="device index, file path or stream URL")
    width: int = opt(640, min=160, max=4096)
    height: int = opt(480, min=120, max=4096)
