"""Guidance screen driver interface: show(message_id, language, params).

Message ids and texts live in `core.messages`; the screen renders the text in
the traveller's language (English when that language lacks the message).
Implementations:
- `RecordingScreen`: keeps everything shown, for tests and the lane simulator;
- `LineScreen`: one JSON line per message over any pyserial URL (a display
  controller on a serial port, or `socket://127.0.0.1:PORT` for a kiosk page
  process); the display answers `{"ack": seq}`.  After a reconnection the
  current message is sent again, so the traveller never sees a stale one.
The kiosk page itself (HTML) comes with the passage work.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from core import logs, messages
from core.component import Component, ComponentStatus
from core.errors import DeviceError, ParseError
from drivers.transport import SerialTransport

log = logs.get("screen")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class ScreenError(DeviceError, ValueError):
    """A message the screen cannot show: unknown id, bad language tag or parameters."""


@dataclass(frozen=True)
class ScreenMessage:
    message_id: str
    language: str
    params: dict = field(default_factory=dict, compare=True, hash=False)
    text: str = ""


def render(message_id: str, language: str = "en", params: dict | None = None) -> ScreenMessage:
    params = dict(params or {})
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise ScreenError(f"language {language!r} is not a language tag like 'en' or 'zh-TW'")
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)) or isinstance(value, bytes):
            raise ScreenError(f"parameter {key!r}: only text and numbers may be shown, got {type(value).__name__}")
    try:
        text = messages.text(message_id, language, **params)
    except messages.UnknownMessage as exc:
        raise ScreenError(str(exc)) from None
    except (KeyError, IndexError) as exc:
        raise ScreenError(f"message {message_id!r} needs parameter {exc}") from None
    return ScreenMessage(message_id, language, params, text)


class Screen(Component):
    """What gate logic calls. `show` validates and renders, then displays."""

    name = "screen"

    def __init__(self):
        self.current: ScreenMessage | None = None

    def show(self, message_id: str, language: str = "en", params: dict | None = None) -> ScreenMessage:
        msg = render(message_id, language, params)
        self.current = msg
        self._display(msg)
        return msg

    def _display(self, msg: ScreenMessage) -> None:
        raise NotImplementedError

    def status(self) -> ComponentStatus:
        shown = self.current.message_id if self.current else "nothing"
        return ComponentStatus(self.name, True, f"showing {shown}", self.stats())


class RecordingScreen(Screen):
    def __init__(self):
        super().__init__()
        self.shown: list[ScreenMessage] = []
        self._lock = threading.Lock()

    def _display(self, msg: ScreenMessage) -> None:
        with self._lock:
            self.shown.append(msg)

    def stats(self) -> dict[str, int]:
        return {"shown": len(self.shown)}

    def ids(self) -> list[str]:
        with self._lock:
            return [m.message_id for m in self.shown]


# ------------------------------------------------------------------ line protocol

def encode_line(msg: ScreenMessage, seq: int) -> bytes:
    body = {"seq": seq, "id": msg.message_id, "lang": msg.language, "params": msg.params, "text": msg.text}
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"


class ScreenLineError(ParseError):
    pass


def decode_line(line: bytes) -> dict:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScreenLineError(f"not a JSON line: {exc}") from None
    if not isinstance(obj, dict):
        raise ScreenLineError("a screen line is a JSON object")
    return obj


class AckProtocol:
    """Display -> host: `{"ack": seq}` lines; anything else is counted and skipped."""

    MAX_LINE = 4096

    def __init__(self):
        self.buf = b""
        self.errors = 0

    def reset(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[int]:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        if len(self.buf) > self.MAX_LINE:
            self.errors += 1
            self.buf = b""
        acks = []
        for line in lines:
            try:
                seq = decode_line(line).get("ack")
            except ScreenLineError:
                seq = None
            if isinstance(seq, int):
                acks.append(seq)
            else:
                self.errors += 1
        return acks


class LineScreen(Screen):
    def __init__(self, url: str, *, baudrate: int = 115200):
        super().__init__()
        self.protocol = AckProtocol()
        self.transport = SerialTransport(url, self.protocol, self._on_acks, self._on_port,
                                         baudrate=baudrate, name="screen")
        self.seq = 0
        self.acked = -1
        self._lock = threading.Lock()

    def start(self) -> None:
        self.transport.start()

    def stop(self) -> None:
        self.transport.stop()

    def stats(self) -> dict[str, int]:
        return {"sent": self.seq, "acked": max(self.acked, 0), "bad_lines": self.protocol.errors,
                "port_losses": self.transport.stats.losses}

    def status(self) -> ComponentStatus:
        up = self.transport.connected
        return ComponentStatus(self.name, up, f"{self.transport.url}: {'link up' if up else 'link down'}", self.stats())

    def _display(self, msg: ScreenMessage) -> None:
        with self._lock:
            self.seq += 1
            line = encode_line(msg, self.seq)
        try:
            self.transport.write(line)
        except DeviceError as exc:  # shown again on reconnection
            log.warning("screen_write_failed", error=str(exc), message_id=msg.message_id)

    def _on_port(self, up: bool, reason: str) -> None:
        if up and self.current is not None:
            self._display(self.current)

    def _on_acks(self, acks: list[int]) -> None:
        self.acked = max([self.acked, *acks])
