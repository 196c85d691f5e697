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
from gate.document import lds, tlv
from gate.errors import ParseError

EAC_ONLY = ("DG3", "DG4")  # fingerprints and irises need extended access control: not readable under BAC
B0_MAX_OFFSET = 0x7FFF
MIN_CHUNK = 16


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> bytes: ...


class FileTruncated(ChipError):
    """The chip ended a file before the length its TLV header announces."""


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
        self.send(Command(0x00, 0xA4, 0x04, 0x0C, lds.EMRTD_AID), "SELECT eMRTD application")

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
        entry = lds.BY_NAME.get(name)
        if entry is None or entry.in_mf:
            raise ChipError(f"{name!r} is not a file of the eMRTD application")
        self.send(Command(0x00, 0xA4, 0x02, 0x0C, entry.fid.to_bytes(2, "big")), f"SELECT {name}")
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
                total = _file_length(name, bytes(data[:8]))
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


def _file_length(name: str, head: bytes) -> int | None:
    try:
        return tlv.total_length(head)
    except ParseError as err:
        raise ChipError(f"{name}: file does not start with a TLV header: {err}") from err


def _offset_object(offset: int) -> bytes:
    value = offset.to_bytes((offset.bit_length() + 7) // 8, "big")
    return bytes((len(value),)) + value


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
    if names is None:
        listed = [f"DG{n}" for n in lds.parse_com(result.files["EF.COM"]).data_groups]
        names = [dg for dg in listed if dg not in EAC_ONLY]
    for name in [*names, "EF.SOD"]:
        result.files[name] = step(name, lambda: session.read_file(name))
    result.apdus = session.apdus
    return result
