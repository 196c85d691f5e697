"""Reading an eMRTD chip: application selection, access control, protected file reads.

Transport-agnostic: a `ChipSession` talks through anything with
`transmit(apdu bytes) -> response bytes` (PC/SC in the gate, the simulator's
applet directly in unit tests). READ BINARY adapts its chunk to the chip:
Le beyond 231 goes extended, 6700 shrinks the chunk (re-authenticating if the
chip dropped the session over an extended APDU), 6Cxx retries with the exact
length the chip offers, 6282 ends the file, offsets from 32 KB use odd INS B1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from drivers.emrtd import access
from drivers.emrtd.apdu import (SW_END_OF_FILE, SW_OK, ChipError, Command, Response, WrongLe, WrongLength,
                                check)
from drivers.emrtd.bac import BacKey
from drivers.emrtd.sm import MAX_SHORT_LE, SecureMessaging, split_objects

AID = bytes.fromhex("A0000002471001")
FILE_IDS = {"EF.COM": 0x011E, "EF.SOD": 0x011D, **{f"DG{n}": 0x0100 + n for n in range(1, 17)}}
EF_COM_TAGS = {0x61: "DG1", 0x75: "DG2", 0x63: "DG3", 0x76: "DG4", 0x65: "DG5", 0x66: "DG6", 0x67: "DG7",
               0x68: "DG8", 0x69: "DG9", 0x6A: "DG10", 0x6B: "DG11", 0x6C: "DG12", 0x6D: "DG13",
               0x6E: "DG14", 0x6F: "DG15", 0x70: "DG16"}
EAC_ONLY = ("DG3", "DG4")  # fingerprints and irises need extended access control: not readable under BAC
B0_MAX_OFFSET = 0x7FFF
MIN_CHUNK = 16


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> bytes: ...


class FileTruncated(ChipError):
    """The chip ended a file before the length its TLV header announces."""


def tlv_header(head: bytes) -> tuple[int, int, int] | None:
    """(tag, header length, value length) of the BER-TLV object starting `head`; None until enough bytes."""
    if not head:
        return None
    pos = 1
    if head[0] & 0x1F == 0x1F:
        while pos < len(head) and head[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= len(head):
        return None
    tag, first = int.from_bytes(head[:pos], "big"), head[pos]
    if first < 0x80:
        return tag, pos + 1, first
    width = first & 0x7F
    if width == 0 or width > 3:
        raise ChipError(f"file header has an unsupported length field {first:02X}")
    if pos + 1 + width > len(head):
        return None
    return tag, pos + 1 + width, int.from_bytes(head[pos + 1:pos + 1 + width], "big")


def tlv_extent(head: bytes) -> int | None:
    """Total length (header + value) of the object starting `head`; None until enough bytes."""
    parsed = tlv_header(head)
    return None if parsed is None else parsed[1] + parsed[2]


@dataclass
class ReadResult:
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)  # per step, in order
    access_control: str = ""
    apdus: int = 0


class ChipSession:
    """One inserted chip. `chunk` is the first Le tried; it only shrinks during the session."""

    def __init__(self, transport: Transport, chunk: int = MAX_SHORT_LE):
        self.transport = transport
        self.chunk = chunk
        self.sm: SecureMessaging | None = None
        self.access: access.AccessControl | None = None
        self.apdus = 0
        self._selected: str | None = None

    # ------------------------------------------------------------- exchange
    def send(self, cmd: Command, what: str) -> Response:
        sm = self.sm
        if sm is None:
            self.apdus += 1
            return check(Response.decode(self.transport.transmit(cmd.encode())), what)
        raw = self.transport.transmit(sm.protect(cmd).encode())
        self.apdus += 1
        if len(raw) == 2 and raw != b"\x90\x00":
            self.sm = None  # a plain error status: the chip closed the session
        return sm.unprotect(Response.decode(raw), what)

    def _send_plain(self, cmd: Command) -> Response:
        self.apdus += 1
        return Response.decode(self.transport.transmit(cmd.encode()))

    # ------------------------------------------------------------------ steps
    def select_application(self) -> None:
        self.sm, self._selected = None, None
        self.send(Command(0x00, 0xA4, 0x04, 0x0C, AID), "SELECT eMRTD application")

    def authenticate(self, strategy: access.AccessControl) -> None:
        self.access = strategy
        self.sm = strategy.establish(self._send_plain)

    def _reopen(self) -> None:
        """The chip dropped secure messaging: select and authenticate again."""
        if self.access is None:
            raise ChipError("secure messaging lost before any access control")
        self.select_application()
        self.authenticate(self.access)

    def select_file(self, name: str) -> None:
        fid = FILE_IDS.get(name)
        if fid is None:
            raise ChipError(f"{name!r} is not an LDS file; known: {', '.join(FILE_IDS)}")
        self.send(Command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")), f"SELECT {name}")
        self._selected = name

    def _read_binary(self, name: str, offset: int, want: int) -> Response:
        if offset <= B0_MAX_OFFSET:
            cmd = Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=want)
            return self.send(cmd, f"READ BINARY {name}@{offset}")
        # odd INS: offset in DO'54', data come back inside DO'53' (up to 4 bytes of header)
        cmd = Command(0x00, 0xB1, 0x00, 0x00, b"\x54" + _offset_object(offset), le=want + 4)
        resp = self.send(cmd, f"READ BINARY (B1) {name}@{offset}")
        objs = split_objects(resp.data)
        if len(objs) != 1 or objs[0][0] != 0x53:
            raise ChipError(f"READ BINARY (B1) {name}@{offset}: answer is not one DO53")
        return Response(objs[0][1], resp.sw)

    def read_file(self, name: str) -> bytes:
        self.select_file(name)
        data = bytearray()
        total: int | None = None
        exact: int | None = None
        while total is None or len(data) < total:
            offset = len(data)
            room = self.chunk - (4 if offset > B0_MAX_OFFSET else 0)
            want = exact or (room if total is None else min(room, total - offset))
            exact = None
            try:
                resp = self._read_binary(name, offset, want)
            except WrongLe as err:
                if err.exact >= want:
                    raise ChipError(f"{name}: chip asks for Le {err.exact} after refusing {want}") from err
                exact = err.exact
                continue
            except WrongLength:
                self._shrink(name)
                continue
            if not resp.data:
                raise FileTruncated(f"{name}: chip returned no data at offset {offset}")
            data += resp.data
            if total is None:
                total = tlv_extent(bytes(data[:8]))
            if resp.sw == SW_END_OF_FILE and (total is None or len(data) < total):
                raise FileTruncated(f"{name}: chip ended the file at {len(data)} bytes, header says {total}")
        return bytes(data[:total])

    def _shrink(self, name: str) -> None:
        if self.chunk <= MIN_CHUNK:
            raise ChipError(f"{name}: chip refuses even {self.chunk}-byte reads")
        self.chunk = MAX_SHORT_LE if self.chunk > MAX_SHORT_LE else max(self.chunk // 2, MIN_CHUNK)
        if self.sm is None:  # the chip closed the session over the refused APDU
            self._reopen()
            self.select_file(name)


def _offset_object(offset: int) -> bytes:
    value = offset.to_bytes((offset.bit_length() + 7) // 8, "big")
    return bytes((len(value),)) + value


def data_groups(ef_com: bytes) -> list[str]:
    """Data groups listed in EF.COM's tag list: 60 L { 5F01 version, 5F36 Unicode version, 5C tags }."""
    outer = tlv_header(ef_com[:8])
    if outer is None or outer[0] != 0x60 or outer[1] + outer[2] > len(ef_com):
        raise ChipError("EF.COM is not one complete tag-60 object")
    pos, end = outer[1], outer[1] + outer[2]
    while pos < end:
        inner = tlv_header(ef_com[pos:pos + 8])
        if inner is None or pos + inner[1] + inner[2] > end:
            break
        tag, head, length = inner
        if tag == 0x5C:
            return [EF_COM_TAGS[t] for t in ef_com[pos + head:pos + head + length] if t in EF_COM_TAGS]
        pos += head + length
    raise ChipError("EF.COM has no complete tag list (5C)")


def read_document(transport: Transport, key: BacKey, names: list[str] | None = None,
                  chunk: int = MAX_SHORT_LE) -> ReadResult:
    """Select, authenticate (strategy per document), read EF.COM, the data groups and EF.SOD, timing each step.

    `names`: the data groups to read; by default every one EF.COM lists that BAC can open.
    """
    session = ChipSession(transport, chunk)
    result = ReadResult({})

    def step(label, fn):
        start = time.perf_counter()
        out = fn()
        result.timings_s[label] = time.perf_counter() - start
        return out

    step("select", session.select_application)
    strategy = access.for_document(key)
    step(strategy.name, lambda: session.authenticate(strategy))
    result.access_control = strategy.name
    result.files["EF.COM"] = step("EF.COM", lambda: session.read_file("EF.COM"))
    wanted = names if names is not None else [dg for dg in data_groups(result.files["EF.COM"]) if dg not in EAC_ONLY]
    for name in [*wanted, "EF.SOD"]:
        result.files[name] = step(name, lambda: session.read_file(name))
    result.apdus = session.apdus
    return result
