"""Door controller wire protocol, sans-IO (spec: docs/protocols/door.md).

Frame:  A5 | LEN | SEQ | TYPE | PAYLOAD[LEN] | CRC_HI CRC_LO
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0; check
value 0x29B1 for b"123456789") over LEN..PAYLOAD, big-endian.

Both ends use the same `Link`: every DATA frame (a command or an event) is
answered with ACK (same SEQ) or NAK (frame damaged: resend). Stop-and-wait: at
most one unacknowledged DATA frame per direction, retransmitted after
`ack_timeout_s`, at most `max_retries` times, then reported as `SendFailed`.
SEQ counts 0..255 and wraps; a receiver drops a DATA frame repeating the SEQ
it accepted last (our ACK was lost, the peer resent) but ACKs it again.
HELLO resets that filter, so a restarted peer is never mistaken for a repeat.
"""
from __future__ import annotations

import binascii
import enum
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from core.errors import ParseError

SYNC = 0xA5
MAX_PAYLOAD = 32
HEADER = 4  # SYNC LEN SEQ TYPE
OVERHEAD = HEADER + 2


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(data, 0xFFFF)


class DoorProtocolError(ParseError):
    """A door frame or message could not be decoded."""


# ---------------------------------------------------------------- framing

@dataclass(frozen=True)
class Frame:
    seq: int
    type: int
    payload: bytes = b""


def encode_frame(seq: int, type_: int, payload: bytes = b"") -> bytes:
    if not 0 <= seq <= 255 or not 0 <= type_ <= 255:
        raise DoorProtocolError(f"seq {seq} / type {type_} out of byte range")
    if len(payload) > MAX_PAYLOAD:
        raise DoorProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes([len(payload), seq, type_]) + payload
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


class FrameDecoder:
    """Finds frames in a byte stream; skips garbage and damaged frames, counting both.

    On a bad CRC or impossible length only the SYNC byte is dropped, so a real
    frame hidden after a false SYNC inside garbage is still found.
    """

    def __init__(self):
        self.buf = bytearray()
        self.errors: Counter[str] = Counter()

    def reset(self) -> None:
        self.buf.clear()

    @property
    def pending(self) -> bool:
        return bool(self.buf)

    def flush_stale(self) -> list[Frame | str]:
        """The line went quiet with a partial frame buffered: its SYNC was false (noise with a
        plausible LEN). Drop it and rescan what follows; whatever is still incomplete after that
        is stale too (the line is silent), so repeat until the buffer is empty."""
        out: list[Frame | str] = []
        while self.buf:
            self.errors["stale_partial"] += 1
            del self.buf[:1]
            out += self.feed(b"")
        return out

    def feed(self, data: bytes) -> list[Frame | str]:
        """Returns frames, and the string "crc" for each damaged frame (the caller NAKs it)."""
        self.buf += data
        out: list[Frame | str] = []
        while True:
            start = self.buf.find(SYNC)
            if start < 0:
                self.errors["garbage_bytes"] += len(self.buf)
                self.buf.clear()
                return out
            if start:
                self.errors["garbage_bytes"] += start
                del self.buf[:start]
            if len(self.buf) < 2:
                return out
            length = self.buf[1]
            if length > MAX_PAYLOAD:
                self.errors["bad_length"] += 1
                del self.buf[:1]
                continue
            end = OVERHEAD + length
            if len(self.buf) < end:
                return out
            body = bytes(self.buf[1:HEADER + length])
            if crc16(body) != int.from_bytes(self.buf[end - 2:end], "big"):
                self.errors["crc"] += 1
                del self.buf[:1]
                out.append("crc")
                continue
            del self.buf[:end]
            out.append(Frame(seq=body[1], type=body[2], payload=body[3:]))


# ---------------------------------------------------------------- messages

class Leaf(enum.IntEnum):
    ENTRY = 0
    EXIT = 1


class Position(enum.IntEnum):
    CLOSED = 0
    OPENING = 1
    OPEN = 2
    CLOSING = 3
    OBSTRUCTED = 4


class Power(enum.IntEnum):
    MAINS = 0
    BATTERY = 1
    BATTERY_LOW = 2


class RejectReason(enum.IntEnum):
    UNKNOWN_COMMAND = 1
    BAD_PAYLOAD = 2
    EMERGENCY = 3  # close/lock refused: emergency input holds the leaves open
    WATCHDOG = 4  # open refused: watchdog tripped, send KEEPALIVE first
    INTERLOCK = 5  # open (or a close that would release a lock) refused: the other leaf is not closed and locked


class NakReason(enum.IntEnum):
    CRC = 1


class T(enum.IntEnum):
    """Frame TYPE byte."""
    ACK = 0x06
    NAK = 0x15
    # host -> controller
    HELLO = 0x01
    KEEPALIVE = 0x02
    OPEN = 0x10
    CLOSE = 0x11
    LOCK = 0x12
    QUERY_STATUS = 0x20
    # controller -> host
    STATUS = 0x80
    LEAF = 0x81
    BEAMS = 0x82
    EMERGENCY = 0x83
    TAMPER = 0x84
    POWER = 0x85
    WATCHDOG = 0x86
    REJECT = 0x8F


@dataclass(frozen=True)
class Hello:
    pass


@dataclass(frozen=True)
class KeepAlive:
    period_ms: int


@dataclass(frozen=True)
class Open:
    leaf: Leaf


@dataclass(frozen=True)
class Close:
    leaf: Leaf


@dataclass(frozen=True)
class Lock:
    leaf: Leaf


@dataclass(frozen=True)
class QueryStatus:
    pass


@dataclass(frozen=True)
class LeafState:
    leaf: Leaf
    position: Position
    locked: bool


@dataclass(frozen=True)
class Beams:
    """Beam array: bit i of `low`/`high` set = beam i interrupted (beam 0 at the entry leaf).

    Two rows: `low` at knee height, `high` at 120 cm (the child threshold).
    """
    count: int
    low: int
    high: int


@dataclass(frozen=True)
class Emergency:
    active: bool


@dataclass(frozen=True)
class Tamper:
    active: bool


@dataclass(frozen=True)
class PowerState:
    state: Power


@dataclass(frozen=True)
class Watchdog:
    tripped: bool


@dataclass(frozen=True)
class Status:
    entry: LeafState
    exit: LeafState
    beams: Beams
    emergency: bool
    tamper: bool
    power: Power
    watchdog_tripped: bool


@dataclass(frozen=True)
class Reject:
    command: int
    reason: RejectReason


Message = (Hello | KeepAlive | Open | Close | Lock | QueryStatus | LeafState | Beams | Emergency | Tamper
           | PowerState | Watchdog | Status | Reject)
COMMANDS = (Hello, KeepAlive, Open, Close, Lock, QueryStatus)


def _mask_bytes(count: int) -> int:
    return (count + 7) // 8


def _leaf_bytes(s: LeafState) -> bytes:
    return bytes([Leaf(s.leaf), Position(s.position), int(s.locked)])


def _beam_bytes(b: Beams) -> bytes:
    if not 1 <= b.count <= 255 or b.low < 0 or b.high < 0 or (b.low | b.high) >> b.count:
        raise ValueError(f"beam masks must fit {b.count} beams")
    n = _mask_bytes(b.count)
    return bytes([b.count]) + b.low.to_bytes(n, "little") + b.high.to_bytes(n, "little")


def encode_message(msg: Message) -> tuple[int, bytes]:
    try:
        return _encode(msg)
    except (OverflowError, ValueError, TypeError) as exc:  # a field out of its byte range
        raise DoorProtocolError(f"cannot encode {msg!r}: {exc}") from None


def _encode(msg: Message) -> tuple[int, bytes]:
    match msg:
        case Hello():
            return T.HELLO, b""
        case KeepAlive(period_ms=p):
            if p < 1:
                raise ValueError("watchdog period must be at least 1 ms")
            return T.KEEPALIVE, p.to_bytes(2, "big")
        case Open(leaf=leaf):
            return T.OPEN, bytes([Leaf(leaf)])
        case Close(leaf=leaf):
            return T.CLOSE, bytes([Leaf(leaf)])
        case Lock(leaf=leaf):
            return T.LOCK, bytes([Leaf(leaf)])
        case QueryStatus():
            return T.QUERY_STATUS, b""
        case LeafState():
            return T.LEAF, _leaf_bytes(msg)
        case Beams():
            return T.BEAMS, _beam_bytes(msg)
        case Emergency(active=a):
            return T.EMERGENCY, bytes([int(a)])
        case Tamper(active=a):
            return T.TAMPER, bytes([int(a)])
        case PowerState(state=s):
            return T.POWER, bytes([s])
        case Watchdog(tripped=t):
            return T.WATCHDOG, bytes([int(t)])
        case Status():
            flags = int(msg.emergency) | int(msg.tamper) << 1 | int(msg.watchdog_tripped) << 2
            return T.STATUS, _leaf_bytes(msg.entry) + _leaf_bytes(msg.exit) + bytes([flags, msg.power]) + _beam_bytes(msg.beams)
        case Reject(command=c, reason=r):
            return T.REJECT, bytes([c, r])
    raise DoorProtocolError(f"not a door message: {msg!r}")


def _enum(cls, value: int, what: str):
    try:
        return cls(value)
    except ValueError:
        raise DoorProtocolError(f"{what}: {value} is not a valid {cls.__name__}") from None


def _flag(value: int, what: str) -> bool:
    if value not in (0, 1):
        raise DoorProtocolError(f"{what}: flag byte must be 0 or 1, got {value}")
    return bool(value)


def _decode_leaf(p: bytes) -> LeafState:
    return LeafState(_enum(Leaf, p[0], "leaf"), _enum(Position, p[1], "position"), _flag(p[2], "locked"))


def _decode_beams(p: bytes) -> Beams:
    count = p[0]
    n = _mask_bytes(count)
    if count < 1 or len(p) != 1 + 2 * n:
        raise DoorProtocolError(f"beams: {len(p)} bytes do not fit {count} beams")
    low, high = int.from_bytes(p[1:1 + n], "little"), int.from_bytes(p[1 + n:], "little")
    if (low | high) >> count:
        raise DoorProtocolError(f"beams: bits set beyond beam {count - 1}")
    return Beams(count, low, high)


_FIXED_LENGTH = {T.HELLO: 0, T.KEEPALIVE: 2, T.OPEN: 1, T.CLOSE: 1, T.LOCK: 1, T.QUERY_STATUS: 0,
                 T.LEAF: 3, T.EMERGENCY: 1, T.TAMPER: 1, T.POWER: 1, T.WATCHDOG: 1, T.REJECT: 2}


def decode_message(type_: int, p: bytes) -> Message:
    """Typed message from a frame's TYPE and PAYLOAD; DoorProtocolError if malformed."""
    t = _enum(T, type_, "frame type")
    if t in (T.ACK, T.NAK):
        raise DoorProtocolError(f"{t.name} is link control, not a message")
    want = _FIXED_LENGTH.get(t)
    if want is not None and len(p) != want:
        raise DoorProtocolError(f"{t.name}: payload of {len(p)} bytes, expected {want}")
    match t:
        case T.HELLO:
            return Hello()
        case T.KEEPALIVE:
            period = int.from_bytes(p, "big")
            if period == 0:
                raise DoorProtocolError("KEEPALIVE: watchdog period 0 ms")
            return KeepAlive(period)
        case T.OPEN:
            return Open(_enum(Leaf, p[0], "leaf"))
        case T.CLOSE:
            return Close(_enum(Leaf, p[0], "leaf"))
        case T.LOCK:
            return Lock(_enum(Leaf, p[0], "leaf"))
        case T.QUERY_STATUS:
            return QueryStatus()
        case T.LEAF:
            return _decode_leaf(p)
        case T.BEAMS:
            if not p:
                raise DoorProtocolError("BEAMS: empty payload")
            return _decode_beams(p)
        case T.EMERGENCY:
            return Emergency(_flag(p[0], "emergency"))
        case T.TAMPER:
            return Tamper(_flag(p[0], "tamper"))
        case T.POWER:
            return PowerState(_enum(Power, p[0], "power"))
        case T.WATCHDOG:
            return Watchdog(_flag(p[0], "watchdog"))
        case T.STATUS:
            if len(p) < 9:
                raise DoorProtocolError(f"STATUS: payload of {len(p)} bytes, expected at least 9")
            entry, exit_ = _decode_leaf(p[0:3]), _decode_leaf(p[3:6])
            if (entry.leaf, exit_.leaf) != (Leaf.ENTRY, Leaf.EXIT):
                raise DoorProtocolError("STATUS: leaves out of order")
            flags = p[6]
            if flags >> 3:
                raise DoorProtocolError(f"STATUS: unknown flag bits {flags:#04x}")
            return Status(entry, exit_, _decode_beams(p[8:]), bool(flags & 1), bool(flags & 2),
                          _enum(Power, p[7], "power"), bool(flags & 4))
        case T.REJECT:
            return Reject(p[0], _enum(RejectReason, p[1], "reject reason"))
    raise DoorProtocolError(f"{t.name}: no decoder")  # unreachable: every T is matched above


# ---------------------------------------------------------------- link (ARQ)

@dataclass(frozen=True)
class Transmit:
    """Bytes the caller must write to the port now."""
    data: bytes


@dataclass(frozen=True)
class SendFailed:
    """A DATA frame was never acknowledged after all retries."""
    message: Message
    attempts: int


@dataclass(frozen=True)
class Undecodable:
    """A well-framed DATA frame whose content made no sense (ACKed, then dropped)."""
    type: int
    error: str


LinkEvent = Transmit | SendFailed | Undecodable | Message


class Link:
    """One end of the protocol: framing, ACK/NAK, retransmission, duplicate filter. Thread-safe."""

    def __init__(self, *, ack_timeout_s: float = 0.1, max_retries: int = 3, max_queue: int = 64,
                 quiet_gap_s: float = 0.02, clock=time.monotonic):
        self.ack_timeout_s = ack_timeout_s
        self.quiet_gap_s = quiet_gap_s  # silence after which a partial frame is noise (a 38-byte frame takes 3.3 ms at 115200)
        self.max_queue = max_queue
        self.max_retries = max_retries
        self.clock = clock
        self.decoder = FrameDecoder()
        self.counters: Counter[str] = Counter()
        self._next_seq = 0
        self._last_rx_seq: int | None = None
        self._queue: deque[Message] = deque()
        self._outstanding: tuple[Message, bytes, int] | None = None  # message, frame, seq
        self._attempts = 0
        self._deadline = 0.0
        self._last_rx = 0.0
        self._lock = threading.RLock()

    @property
    def errors(self) -> Counter[str]:
        """Everything that went wrong on the wire, by kind."""
        return self.decoder.errors + self.counters

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._outstanding is None and not self._queue

    def reset(self) -> None:
        """Forget partial input and the duplicate filter (new connection)."""
        with self._lock:
            self.decoder.reset()
            self._last_rx_seq = None

    def abandon(self) -> None:
        """Drop every queued and unacknowledged frame (port lost: the state will be resynchronised)."""
        with self._lock:
            self._queue.clear()
            self._outstanding = None

    def send(self, msg: Message) -> list[LinkEvent]:
        with self._lock:
            if isinstance(msg, Hello):
                self._last_rx_seq = None  # whatever the peer sends next is new
            dropped: list[LinkEvent] = []
            if len(self._queue) >= self.max_queue:
                # A peer this far behind resynchronises from STATUS anyway; the drop is reported.
                dropped.append(SendFailed(self._queue.popleft(), 0))
                self.counters["queue_overflow"] += 1
            if isinstance(msg, KeepAlive):
                # The watchdog must not starve behind a backlog: a keep-alive goes first and
                # replaces one still waiting.
                self._queue = deque(m for m in self._queue if not isinstance(m, KeepAlive))
                self._queue.appendleft(msg)
            else:
                self._queue.append(msg)
            return dropped + self._pump()

    def tick(self) -> list[LinkEvent]:
        """Call often (every ~10-20 ms): flushes a stale partial frame, retransmits or gives up."""
        with self._lock:
            out = []
            if self.decoder.pending and self.clock() - self._last_rx > self.quiet_gap_s:
                out = self._received(self.decoder.flush_stale())
            return out + self._retransmit()

    def _retransmit(self) -> list[LinkEvent]:
        if self._outstanding is None or self.clock() < self._deadline:
            return []
        msg, _, _ = self._outstanding
        if self._attempts > self.max_retries:
            self.counters["send_failed"] += 1
            self._outstanding = None
            return [SendFailed(msg, self._attempts), *self._pump()]
        self.counters["retransmissions"] += 1
        return [self._transmit_outstanding()]

    def feed(self, data: bytes) -> list[LinkEvent]:
        with self._lock:
            self._last_rx = self.clock()
            return self._received(self.decoder.feed(data))

    def _received(self, items: list[Frame | str]) -> list[LinkEvent]:
        out: list[LinkEvent] = []
        for item in items:
            if item == "crc":
                out.append(Transmit(encode_frame(0, T.NAK, bytes([NakReason.CRC]))))
            else:
                out.extend(self._receive(item))
        return out

    # -- internals -----------------------------------------------------------
    def _receive(self, frame: Frame) -> list[LinkEvent]:
        if frame.type == T.ACK:
            if self._outstanding is not None and frame.seq == self._outstanding[2]:
                self._outstanding = None
                return self._pump()
            self.counters["stale_ack"] += 1
            return []
        if frame.type == T.NAK:
            self.counters["nak_received"] += 1
            return [self._transmit_outstanding()] if self._outstanding is not None else []
        ack = Transmit(encode_frame(frame.seq, T.ACK))
        if frame.seq == self._last_rx_seq and frame.type != T.HELLO:
            self.counters["duplicates"] += 1
            return [ack]
        self._last_rx_seq = frame.seq
        try:
            return [ack, decode_message(frame.type, frame.payload)]
        except DoorProtocolError as exc:
            self.counters["undecodable"] += 1
            return [ack, Undecodable(frame.type, str(exc))]

    def _pump(self) -> list[LinkEvent]:
        if self._outstanding is not None or not self._queue:
            return []
        msg = self._queue.popleft()
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFF
        self._outstanding = (msg, encode_frame(seq, *encode_message(msg)), seq)
        self._attempts = 0
        return [self._transmit_outstanding()]

    def _transmit_outstanding(self) -> Transmit:
        _, frame, _ = self._outstanding
        self._attempts += 1
        self._deadline = self.clock() + self.ack_timeout_s
        return Transmit(frame)
