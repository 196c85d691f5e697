"""Guidance screen driver interface: show(message_id, language, params).

Message ids and texts live in `core.messages` (one file per language under core/locales); the
screen renders the text in the traveller's language (English when that language lacks the
message). Implementations:
- `RecordingScreen`: keeps everything shown, for tests and the lane simulator;
- `LineScreen`: one JSON line per message over any pyserial URL (a display
  controller on a serial port, or `socket://127.0.0.1:PORT` for a kiosk page
  process); the display answers `{"ack": seq}`.  After a reconnection the
  current message is sent again, so the traveller never sees a stale one;
- `drivers.screen.kiosk.KioskScreen`: the traveller's page itself, served on loopback and driven
  by server-sent events (docs/kiosk.md).

Besides `show`, gate logic tells every screen three things (all optional, none blocks):
- `lane_state(state)`: the lane entered a state. A state in which gate logic shows nothing by
  itself gets its message here (`STATE_MESSAGES`); entering a state of rest ends the
  traveller's visit (their language, their rating offer once it expires);
- `passage(passage_id, issuing_state)`: a traveller's document was read. Their screen switches
  to the language of the document's issuing state when the gate offers it (`core.messages`),
  and a tap on a language button (`choose_language`) wins over both;
- after a passage, the screen offers a one-tap rating (three faces) while it shows
  `passage.proceed` (and, with `rating = "every_decision"`, a refusal); the tap (`rate`) goes to
  gate logic as a `Rating` event through the screen's `EventSink`, carrying only the passage id
  and the face.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core import logs, messages
from core.component import Component, ComponentStatus, EventSink, discard
from core.errors import DeviceError, ParseError
from drivers.transport import SerialTransport

log = logs.get("screen")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

RATINGS = ("good", "neutral", "poor")   # the three faces, best first

# Each lane state (gate.passage.DOORS; a test keeps them in step) and its message: shown by the
# screen itself on entering the state when the flag is True; otherwise gate logic shows it (or a
# more specific one: a refusal's guidance before `returning`, the wrong-way warning before
# `exit_attention`), and the screen must not overwrite that.
STATE_MESSAGES: dict[str, tuple[str, bool]] = {
    "recovering": ("gate.starting", True),
    "idle": ("gate.welcome", False),
    "reading_document": ("document.reading", False),
    "entering": ("passage.enter", False),
    "confirming_occupancy": ("passage.entry_closing", True),
    "face": ("face.look_at_camera", True),
    "finger": ("finger.place", False),
    "deciding": ("passage.wait", True),
    "exiting": ("passage.proceed", False),
    "exit_clear": ("passage.proceed", False),
    "returning": ("passage.step_back", False),
    "entry_attention": ("passage.see_officer", True),
    "exit_attention": ("passage.see_officer", False),
    "out_of_service": ("gate.out_of_service", True),
    "maintenance": ("gate.out_of_service", True),
    "emergency": ("passage.emergency", True),
    "closed": ("gate.out_of_service", True),          # an officer closed the lane
    "releasing": ("passage.wait", True),              # an officer released a refused traveller: the exit opens next
}
# Entering one of these ends a traveller's visit: the next traveller starts afresh.
REST_STATES = ("idle", "recovering", "out_of_service", "maintenance", "closed")
# The messages after which a rating is offered, per `devices.screen.rating`.
RATE_AFTER = {"off": frozenset(), "cleared": frozenset({"passage.proceed"}),
              "every_decision": frozenset({"passage.proceed", "document.rejected", "passage.see_officer",
                                           "passage.step_back"})}
# A new traveller is being let in, or the lane stops serving: an open offer is withdrawn.
WITHDRAW_ON = frozenset({"passage.enter", "gate.out_of_service", "passage.emergency"})
CHOSEN_LANGUAGE_IDLE_S = 60.0   # a language tapped while no passage runs is forgotten after this


class ScreenError(DeviceError, ValueError):
    """A message the screen cannot show: unknown id, bad language tag or parameters."""


@dataclass(frozen=True)
class ScreenMessage:
    message_id: str
    language: str
    params: dict = field(default_factory=dict, compare=True, hash=False)
    text: str = ""


@dataclass(frozen=True)
class Rating:
    """The screen's event: a traveller's one tap after a passage. Only the passage id and the face:
    no image, no document, nothing about the person."""
    passage_id: str
    rating: str        # one of RATINGS
    after_s: float     # seconds from the offer to the tap


@dataclass
class RatingOffer:
    token: str          # what the page sends back: the passage id itself never leaves the gate process
    passage_id: str
    offered_at: float   # monotonic
    until: float        # monotonic
    rating: str | None = None


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
    """What gate logic calls. `show` validates and renders, then displays. Thread-safe."""

    name = "screen"

    def __init__(self, *, languages: tuple[str, ...] | None = None, emit: EventSink = discard,
                 rating: str = "cleared", rating_window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.clock = clock                          # injected: tests move it instead of sleeping
        self.current: ScreenMessage | None = None
        self.languages = tuple(languages or messages.LANGUAGES)   # offered to travellers, one tap each
        self.gate_language = self.languages[0]      # the language gate logic asked for last
        self.state: str | None = None
        self.emit = emit
        self.rating = rating
        self.rating_window_s = rating_window_s
        self.offer: RatingOffer | None = None
        self.ratings = 0
        self._passage_id: str | None = None
        self._issuer_language: str | None = None
        self._chosen: tuple[str, float] | None = None     # (language, monotonic time of the tap)
        self._state_lock = threading.RLock()

    def attach(self, emit: EventSink) -> None:
        """Where `Rating` events go (the gate sets this when it is given a screen)."""
        self.emit = emit

    # -- what gate logic calls --------------------------------------------------------
    def show(self, message_id: str, language: str = "en", params: dict | None = None) -> ScreenMessage:
        with self._state_lock:
            self.gate_language = language
            msg = render(message_id, self.language(), params)
            self.current = msg
            if message_id in WITHDRAW_ON:
                self.offer = None
            if self._passage_id is not None and message_id in RATE_AFTER.get(self.rating, ()):
                if self.offer is None or self.offer.passage_id != self._passage_id:
                    now = self.clock()
                    self.offer = RatingOffer(secrets.token_urlsafe(12), self._passage_id, now,
                                             now + self.rating_window_s)
            self._display(msg)
        self._changed()
        return msg

    def lane_state(self, state: str) -> None:
        """The lane entered `state`: show its message if gate logic shows none there; a state of
        rest ends the traveller's visit."""
        with self._state_lock:
            self.state = state
            if state in REST_STATES:
                if self._passage_id is not None or state != "idle":
                    self._chosen = None     # kept only when tapped at the welcome, before any document
                self._passage_id = None
                self._issuer_language = None
                if state != "idle":
                    self.offer = None       # a lane that stops serving takes the rating offer with it
            message_id, on_entry = STATE_MESSAGES.get(state, (None, False))
        if on_entry:
            try:
                self.show(message_id, self.gate_language)
            except DeviceError as exc:
                log.warning("screen_state_message_failed", state=state, error=str(exc))
        else:
            self._changed()

    def passage(self, passage_id: str, issuing_state: str | None) -> None:
        """A traveller's document was read: their passage id (for the rating) and issuing state
        (for the language)."""
        with self._state_lock:
            if self.offer is not None and self.offer.passage_id != passage_id:
                self.offer = None      # the next traveller is here: the last one's chance has gone
            self._passage_id = passage_id
            self._issuer_language = messages.language_for_issuer(issuing_state, self.languages, self.gate_language)
            self._rerender()
        self._changed()

    # -- what the traveller does ----------------------------------------------------------
    def language(self) -> str:
        """The language the traveller reads now: tapped, else their document's, else the gate's."""
        with self._state_lock:
            if self._chosen is not None:
                lang, at = self._chosen
                if self._passage_id is not None or self.clock() - at < CHOSEN_LANGUAGE_IDLE_S:
                    return lang
                self._chosen = None
            return self._issuer_language or self.gate_language

    def knows_language(self) -> bool:
        """Whether the screen knows which language this traveller reads (tapped, or their document's)."""
        with self._state_lock:
            return self.language() != self.gate_language or self._chosen is not None \
                or self._issuer_language is not None

    def choose_language(self, code: str) -> None:
        """One tap on a language button: the rest of this traveller's visit is in `code`."""
        if code not in self.languages:
            raise ScreenError(f"language {code!r} is not offered here ({', '.join(self.languages)})")
        with self._state_lock:
            self._chosen = (code, self.clock())
            self._rerender()
        self._changed()

    def open_offer(self) -> RatingOffer | None:
        """The rating offer the screen shows now (None when there is none or it has expired)."""
        with self._state_lock:
            if self.offer is not None and self.clock() > self.offer.until:
                self.offer = None
            return self.offer

    def rate(self, token: str, rating: str) -> str:
        """One tap on a face: "recorded", or why not ("unknown" token, "expired", "already_rated").
        The first tap counts; the event goes to gate logic through the sink."""
        if rating not in RATINGS:
            raise ScreenError(f"rating {rating!r} is not one of {', '.join(RATINGS)}")
        with self._state_lock:
            offer = self.open_offer()
            if offer is None or not secrets.compare_digest(str(token), offer.token):
                return "expired" if offer is None else "unknown"
            if offer.rating is not None:
                return "already_rated"
            offer.rating = rating
            offer.until = self.clock() + min(3.0, self.rating_window_s)   # the thanks stays briefly
            event = Rating(offer.passage_id, rating, round(self.clock() - offer.offered_at, 3))
            self.ratings += 1
        try:
            self.emit(event)
        except Exception as exc:  # a sink's failure never reaches the page
            log.error("rating_sink_failed", error=f"{type(exc).__name__}: {exc}")
        self._changed()
        return "recorded"

    # -- for implementations ---------------------------------------------------------------
    def _rerender(self) -> None:
        """The current message again, in the language the traveller reads now (lock held)."""
        if self.current is not None and self.current.language != self.language():
            self.current = render(self.current.message_id, self.language(), self.current.params)
            self._display(self.current)

    def _changed(self) -> None:
        """Something the traveller sees besides the message changed (language, offer)."""

    def _display(self, msg: ScreenMessage) -> None:
        raise NotImplementedError

    def status(self) -> ComponentStatus:
        shown = self.current.message_id if self.current else "nothing"
        return ComponentStatus(self.name, True, f"showing {shown}", self.stats())


class RecordingScreen(Screen):
    def __init__(self, **kw):
        super().__init__(**kw)
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
    def __init__(self, url: str, *, baudrate: int = 115200, **kw):
        super().__init__(**kw)
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
