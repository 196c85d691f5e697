"""ISO/IEC 7816-4 command and response APDUs, and status words as typed errors.

`Command` encodes itself in short form when it fits and in extended form when
the data exceed 255 bytes or Le exceeds 256; `Command.decode` is the card-side
inverse (used by the chip simulator). `check` turns a status word into the
typed error a caller can act on, and lets warnings with data (6282) through.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import DeviceError, ParseError

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282          # fewer bytes than Le: end of file reached
SW_AUTH_FAILED = 0x6300          # mutual authentication: wrong key (63Cx: tries left)
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_SM_OBJECTS_MISSING = 0x6987
SW_SM_OBJECTS_INCORRECT = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_PARAMS_OFFSET = 0x6B00  # offset beyond the end of the file
SW_WRONG_LE = 0x6C00             # 6Cxx: xx is the length the card can give
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


class ChipError(DeviceError):
    """The chip or the reader refused, failed or answered nonsense."""


class ChipTimeout(ChipError):
    """The chip or the reader did not answer in time (one exchange, or the whole read)."""


class MalformedApdu(ChipError, ParseError):
    """Bytes that are not a well-formed command or response APDU."""


class StatusError(ChipError):
    """The card answered with an error status word."""

    def __init__(self, sw: int, command: str, detail: str = ""):
        self.sw = sw
        self.command = command
        super().__init__(f"{command}: status {sw:04X}" + (f" ({detail})" if detail else ""))


class WrongLength(StatusError):
    """6700: the card refused Lc or Le; the reader retries with a smaller chunk."""


class WrongLe(StatusError):
    """6Cxx: wrong Le; `exact` is the length the card says it can return."""

    @property
    def exact(self) -> int:
        return (self.sw & 0xFF) or 256


class SecurityNotSatisfied(StatusError):
    """6982: access control not performed (e.g. a plain read of a protected data group)."""


class SmObjectsIncorrect(StatusError):
    """6987/6988: the card rejected the secure-messaging objects (bad MAC, session lost)."""


class AuthenticationFailed(StatusError):
    """6300/63Cx: mutual authentication failed: the document keys (MRZ) are wrong."""


class FileNotFound(StatusError):
    """6A82: the file or application is not on the chip."""


class OffsetBeyondFile(StatusError):
    """6B00: READ BINARY offset past the end of the file."""


_ERRORS: dict[int, tuple[type[StatusError], str]] = {
    SW_WRONG_LENGTH: (WrongLength, "wrong length"),
    SW_SECURITY_NOT_SATISFIED: (SecurityNotSatisfied, "security status not satisfied"),
    SW_SM_OBJECTS_MISSING: (SmObjectsIncorrect, "expected secure-messaging objects missing"),
    SW_SM_OBJECTS_INCORRECT: (SmObjectsIncorrect, "secure-messaging objects incorrect"),
    SW_FILE_NOT_FOUND: (FileNotFound, "file or application not found"),
    SW_WRONG_PARAMS_OFFSET: (OffsetBeyondFile, "offset outside the file"),
    SW_CONDITIONS_NOT_SATISFIED: (StatusError, "conditions of use not satisfied"),
    SW_WRONG_DATA: (StatusError, "incorrect data"),
    SW_WRONG_P1P2: (StatusError, "incorrect P1-P2"),
    SW_INS_NOT_SUPPORTED: (StatusError, "instruction not supported"),
    SW_CLA_NOT_SUPPORTED: (StatusError, "class not supported"),
}


@dataclass(frozen=True, slots=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # expected response length 1..65536; None: no Le field

    @property
    def extended(self) -> bool:
        return len(self.data) > 255 or (self.le is not None and self.le > 256)

    def encode(self) -> bytes:
        if len(self.data) > 65535 or (self.le is not None and not 1 <= self.le <= 65536):
            raise MalformedApdu(f"Lc {len(self.data)} / Le {self.le} out of range")
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.extended:
            out.append(0)
            if self.data:
                out += len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (self.le & 0xFFFF).to_bytes(2, "big")
        else:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if self.le is not None:
                out.append(self.le & 0xFF)
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes) -> Command:
        """Parse any of the seven ISO 7816-4 cases (1, 2S/E, 3S/E, 4S/E)."""
        if len(raw) < 4:
            raise MalformedApdu(f"command of {len(raw)} bytes is shorter than a header")
        head, body = raw[:4], raw[4:]
        data, le = b"", None
        if len(body) == 1:
            le = body[0] or 256
        elif len(body) > 1 and body[0] != 0:
            lc = body[0]
            if len(body) == 1 + lc:
                data = body[1:]
            elif len(body) == 2 + lc:
                data, le = body[1:-1], body[-1] or 256
            else:
                raise MalformedApdu(f"short command: Lc {lc} does not match {len(body) - 1} bytes of body")
        elif len(body) == 3:
            le = int.from_bytes(body[1:], "big") or 65536
        elif len(body) > 3:
            lc = int.from_bytes(body[1:3], "big")
            if len(body) == 3 + lc:
                data = body[3:]
            elif len(body) == 5 + lc:
                data, le = body[3:-2], int.from_bytes(body[-2:], "big") or 65536
            else:
                raise MalformedApdu(f"extended command: Lc {lc} does not match {len(body) - 3} bytes of body")
        elif len(body) == 2:
            raise MalformedApdu("2-byte body is neither short nor extended")
        return cls(head[0], head[1], head[2], head[3], bytes(data), le)


@dataclass(frozen=True, slots=True)
class Response:
    data: bytes
    sw: int

    @classmethod
    def decode(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise MalformedApdu(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")


def check(resp: Response, command: str) -> Response:
    """Return `resp` if its status is success or a warning with data; else raise its typed error."""
    sw = resp.sw
    if sw == SW_OK or sw == SW_END_OF_FILE:
        return resp
    if sw & 0xFF00 == SW_WRONG_LE:
        raise WrongLe(sw, command, f"wrong Le; card offers {(sw & 0xFF) or 256} bytes")
    if sw == SW_AUTH_FAILED or sw & 0xFFF0 == 0x63C0:
        raise AuthenticationFailed(sw, command, "authentication failed: wrong document keys")
    err, detail = _ERRORS.get(sw, (StatusError, "unexpected status"))
    raise err(sw, command, detail)
