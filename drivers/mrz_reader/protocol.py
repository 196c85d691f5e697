"""MRZ reader serial protocol, sans-IO (spec: docs/protocols/mrz_reader.md).

Like common OCR-B document readers: ASCII messages framed as
    STX <body> ETX BCC
BCC is the XOR of every byte after STX up to and including ETX.  A body
starting with '@' is a status line, a body starting with '?' a host query,
anything else is an MRZ: its lines separated by CR.

Reader -> host:  @PRESENT  @REMOVED  @ABSENT  @READERR  @VER <text>  <MRZ lines>
Host -> reader:  ?STATUS (answered @PRESENT or @ABSENT)  ?VERSION  ?REREAD

Bytes outside a frame are line noise and are counted and skipped; an STX in
the middle of a frame starts the frame again; a frame longer than MAX_BODY or
with a wrong BCC is dropped and counted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import reduce

from core.errors import ParseError

STX, ETX, CR = 0x02, 0x03, 0x0D
MAX_BODY = 256


class MrzReaderProtocolError(ParseError):
    """A reader message could not be built or understood."""


def bcc(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def encode(body: str) -> bytes:
    raw = body.encode("ascii")
    if len(raw) > MAX_BODY or any(b in (STX, ETX) for b in raw):
        raise MrzReaderProtocolError(f"body of {len(raw)} bytes is too long or holds STX/ETX")
    tail = raw + bytes([ETX])
    return bytes([STX]) + tail + bytes([bcc(tail)])


def encode_mrz(lines: list[str]) -> bytes:
    return encode("\r".join(lines))


@dataclass(frozen=True)
class DocumentPresent:
    pass


@dataclass(frozen=True)
class DocumentRemoved:
    pass


@dataclass(frozen=True)
class DocumentAbsent:
    """Answer to ?STATUS when no document lies on the reader."""


@dataclass(frozen=True)
class ReadError:
    """A document is present but its MRZ could not be read (glare, skew, no MRZ)."""


@dataclass(frozen=True)
class Version:
    text: str


@dataclass(frozen=True)
class MrzLines:
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    what: str  # STATUS, VERSION, REREAD


Message = DocumentPresent | DocumentRemoved | DocumentAbsent | ReadError | Version | MrzLines | Query
_STATUS = {"@PRESENT": DocumentPresent(), "@REMOVED": DocumentRemoved(), "@ABSENT": DocumentAbsent(),
           "@READERR": ReadError()}
QUERIES = ("STATUS", "VERSION", "REREAD")


def decode_body(body: bytes) -> Message:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MrzReaderProtocolError("message is not ASCII") from None
    if text in _STATUS:
        return _STATUS[text]
    if text.startswith("@VER "):
        return Version(text[5:])
    if text.startswith("?"):
        if text[1:] not in QUERIES:
            raise MrzReaderProtocolError(f"unknown query {text!r}")
        return Query(text[1:])
    if text.startswith("@"):
        raise MrzReaderProtocolError(f"unknown status {text!r}")
    lines = tuple(text.split("\r"))
    if not all(lines) or not all(c.isupper() or c.isdigit() or c == "<" for line in lines for c in line):
        raise MrzReaderProtocolError("MRZ lines hold characters outside A-Z 0-9 <, or an empty line")
    return MrzLines(lines)


def encode_message(msg: Message) -> bytes:
    match msg:
        case MrzLines(lines=lines):
            return encode_mrz(list(lines))
        case Version(text=t):
            return encode(f"@VER {t}")
        case Query(what=w):
            return encode(f"?{w}")
    for text, status in _STATUS.items():
        if msg == status:
            return encode(text)
    raise MrzReaderProtocolError(f"not a reader message: {msg!r}")


class MrzReaderProtocol:
    """Byte stream -> messages; counts garbage, overflows, bad BCCs and undecodable bodies."""

    def __init__(self):
        self.errors: Counter[str] = Counter()
        self._body: bytearray | None = None  # None: outside a frame
        self._await_bcc = False

    def reset(self) -> None:
        self._body = None
        self._await_bcc = False

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        for b in data:
            if self._await_bcc:
                self._await_bcc = False
                body, self._body = bytes(self._body), None
                if bcc(body + bytes([ETX])) != b:
                    self.errors["bcc"] += 1
                    continue
                try:
                    out.append(decode_body(body))
                except MrzReaderProtocolError:
                    self.errors["undecodable"] += 1
            elif b == STX:
                if self._body is not None:
                    self.errors["truncated"] += 1
                self._body = bytearray()
            elif self._body is None:
                self.errors["garbage_bytes"] += 1
            elif b == ETX:
                self._await_bcc = True
            elif len(self._body) >= MAX_BODY:
                self.errors["overflow"] += 1
                self._body = None
            else:
                self._body.append(b)
        return out
