"""Reading an eMRTD chip: application selection, access control, protected file reads.

Transport-agnostic: a `ChipSession` talks through anything with
`transmit(apdu bytes) -> response bytes` (PC/SC in the gate, the simulator's
applet directly in unit tests); a transport that also has `submit(apdu) ->
wait()` lets the reader keep the next READ BINARY in flight while it checks
and decrypts the previous answer (read-ahead), so the cryptography overlaps
the chip's and the link's time instead of adding to it.

READ BINARY adapts its chunk to the chip: Le beyond 231 goes extended, 6700
shrinks the chunk (re-authenticating if the chip dropped the session over an
extended APDU), 6Cxx retries with the exact length the chip offers, 6282 ends
the file, offsets from 32 KB use odd INS B1. Read-ahead only runs once the
file length is known and stops at the first answer that is not a full chunk;
the answers still in flight are then checked (to keep the SSC in step) and
dropped, and the file goes on one command at a time.

Access control follows a policy (`drivers.emrtd.access`): EF.CardAccess is read from the master
file first (SELECT 011C, else READ BINARY by short EF identifier 1C); PACE runs when it offers a
PACEInfo we support and the eMRTD application is then selected under secure messaging; otherwise,
or as the recorded fallback after a failed PACE (policy pace_then_bac), the application is
selected and BAC runs. Active authentication (`drivers.emrtd.aa`) follows the reads when the
chip lists DG15.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core import logs
from core.errors import ParseError
from drivers.emrtd import aa, access, chipauth, pace
from drivers.emrtd.apdu import (SW_END_OF_FILE, SW_OK, ChipError, ChipTimeout, Command, FileNotFound,
                                OffsetBeyondFile, Response, SecurityNotSatisfied, StatusError, WrongLe, WrongLength,
                                check)
from drivers.emrtd.bac import BacKey
from drivers.emrtd.crypto import PaddingError
from drivers.emrtd.groups import GroupError
from drivers.emrtd.sm import MAX_SHORT_LE, SecureMessaging, SmError, split_objects
from icao9303 import lds, secinfo, tlv

log = logs.get("emrtd.reader")

EAC_ONLY = ("DG3", "DG4")  # fingerprints and irises need extended access control: not readable under BAC
B0_MAX_OFFSET = 0x7FFF
MIN_CHUNK = 16
READ_AHEAD = 2  # READ BINARY commands in flight at once (1: none ahead)
CARD_ACCESS_FID = 0x011C
CARD_ACCESS_SFI = 0x1C
HEADER_PROBE = 4  # bytes read first from a chip that refuses a READ BINARY running past the end (tag + 82 xx xx)
# what a failed PACE may raise; anything else (timeouts, card pulled out) is not a reason to try BAC
PACE_FAILURES = (pace.PaceError, GroupError, StatusError, SmError, PaddingError)


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> bytes: ...


class FileTruncated(ChipError):
    """The chip ended a file before the length its TLV header announces."""


@dataclass
class ReadResult:
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)  # per step, in order
    access_control: str = ""            # "PACE" or "BAC": the method that opened the chip
    apdus: int = 0
    access: dict = field(default_factory=dict)  # method, protocol, mapping, domain, cipher, password
    pace_offered: bool | None = None    # EF.CardAccess lists PACE; None: not looked at (bac_only)
    access_note: str = ""               # why this method (e.g. "EF.CardAccess absent")
    fallback: str | None = None         # set when PACE was offered, failed, and BAC opened the chip
    active_auth: object | None = None   # aa.ActiveAuthResult when active authentication was considered
    chip_auth: object | None = None     # chipauth.ChipAuthResult after PACE-CAM
    attempts: int = 1                   # connections it took (read_with_retry: the card left the field)
    cam: object | None = None           # the PACE-CAM result, kept when Chip Authentication then ran


class ChipSession:
    """One inserted chip. `chunk` is the first Le tried; it only shrinks during the session.
    `deadline_s` bounds the whole session: no command is sent after it (`ChipTimeout`)."""

    def __init__(self, transport: Transport, chunk: int = MAX_SHORT_LE, read_ahead: int = READ_AHEAD,
                 deadline_s: float | None = None):
        self.transport = transport
        self.chunk = chunk
        self.read_ahead = max(1, read_ahead)
        self.deadline_s = deadline_s
        self._deadline = None if deadline_s is None else time.monotonic() + deadline_s
        self.sm: SecureMessaging | None = None
        self.access: access.AccessControl | None = None
        self.apdus = 0
        self.sfi_reads = False  # set once the chip refused SELECT of an EF: files are read by short EF id

    # ------------------------------------------------------------- exchange
    def send(self, cmd: Command, what: str) -> Response:
        return self._request(cmd, what)()

    def _request(self, cmd: Command, what: str) -> Callable[[], Response]:
        """Send `cmd` now (protected if a session is up); the returned function waits for the answer,
        checks it and returns it unwrapped."""
        sm = self.sm
        raw_answer = self._submit((sm.protect(cmd) if sm else cmd).encode())
        self.apdus += 1

        def answer() -> Response:
            raw = raw_answer()
            if sm is None:
                return check(Response.decode(raw), what)
            if len(raw) == 2 and raw != b"\x90\x00" and self.sm is sm:
                self.sm = None  # a plain error status: the chip closed the session
            return sm.unprotect(Response.decode(raw), what)
        return answer

    def _submit(self, apdu: bytes) -> Callable[[], bytes]:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise ChipTimeout(f"chip session took longer than {self.deadline_s:.1f}s")
        submit = getattr(self.transport, "submit", None)
        if submit is not None:
            return submit(apdu)
        raw = self.transport.transmit(apdu)
        return lambda: raw

    def _send_plain(self, cmd: Command) -> Response:
        self.apdus += 1
        return Response.decode(self._submit(cmd.encode())())

    # ------------------------------------------------------------------ steps
    def select_application(self, protected: bool = False) -> None:
        """SELECT the eMRTD application: plain before BAC (ending any session), under SM after PACE."""
        if not protected:
            self.sm = None
        self.send(Command(0x00, 0xA4, 0x04, 0x0C, lds.EMRTD_AID), "SELECT eMRTD application")

    def authenticate(self, strategy: access.AccessControl) -> None:
        self.access = strategy
        self.sm = None
        self.sm = strategy.establish(self._send_plain)
        if self.chunk <= MAX_SHORT_LE:  # short reads: the largest Le whose protected answer fits 256 bytes
            self.chunk = min(self.chunk, self.sm.max_short_le)

    def open(self, strategy: access.AccessControl, step: Callable | None = None,
             in_master_file: Callable[[], None] | None = None) -> None:
        """Authenticate with `strategy` and select the application, in the order it needs
        (PACE: in the master file, then SELECT under SM; BAC: SELECT, then BAC).
        `step(label, fn)` times each part; `in_master_file()` runs after PACE, before the
        application is selected (EF.CardSecurity for PACE-CAM)."""
        step = step or (lambda _label, fn: fn())
        if getattr(strategy, "before_select", False):
            step(strategy.name, lambda: self.authenticate(strategy))
            if in_master_file is not None:
                in_master_file()
                if self.sm is None:  # an error status there closed the session
                    self.authenticate(strategy)
            step("select", lambda: self.select_application(protected=True))
        else:
            step("select", self.select_application)
            step(strategy.name, lambda: self.authenticate(strategy))

    def _reopen(self) -> None:
        """The chip dropped secure messaging: select and authenticate again."""
        if self.access is None:
            raise ChipError("secure messaging lost before any access control")
        self.open(self.access)

    def read_card_access(self) -> bytes | None:
        """EF.CardAccess from the master file, plain: SELECT 011C and READ BINARY, or (when the chip
        refuses that SELECT other than with 6A82) READ BINARY by short EF identifier; None if absent."""
        chunk, self.chunk = self.chunk, min(self.chunk, MAX_SHORT_LE)  # a small file: short APDUs, any chip
        try:
            return self._read_card_access()
        finally:
            self.chunk = chunk

    def _read_card_access(self) -> bytes | None:
        """SELECT 011C; when refused (the card may still be in the eMRTD application from an earlier
        session: PC/SC connections do not reset it), SELECT MF and try again; then READ BINARY by
        short EF identifier; None when none of them finds the file."""
        name = "EF.CardAccess"
        select = Command(0x00, 0xA4, 0x02, 0x0C, CARD_ACCESS_FID.to_bytes(2, "big"))
        try:
            self.send(select, f"SELECT {name}")
            return self._read_current(name)
        except (FileNotFound, SecurityNotSatisfied):
            # not there, or the eMRTD application is still selected: look in the MF itself
            try:
                self.send(Command(0x00, 0xA4, 0x00, 0x0C), "SELECT MF")
                self.send(select, f"SELECT {name}")
                return self._read_current(name)
            except FileNotFound:
                return None  # the MF has no EF.CardAccess: a BAC-only chip
            except StatusError:
                pass
        except StatusError:
            pass  # SELECT refused (6986, ...): this chip offers the file by short EF identifier only
        try:
            first = self._sfi_first_read(name, CARD_ACCESS_SFI)
        except StatusError:
            return None
        if not first.data:
            return None
        return self._read_current(name, bytearray(first.data), first.sw)

    def _sfi_first_read(self, name: str, sfi: int) -> Response:
        """READ BINARY by short EF identifier at offset 0 (which also selects the file); a chip that
        refuses a read past the end (6B00, 6700) gets a HEADER_PROBE-byte read instead."""
        what = f"READ BINARY (SFI {sfi:02X}) {name}"
        try:
            return self.send(Command(0x00, 0xB0, 0x80 | sfi, 0x00, le=self.chunk), what)
        except (OffsetBeyondFile, WrongLength):
            if self.sm is None and self.access is not None:
                raise
            return self.send(Command(0x00, 0xB0, 0x80 | sfi, 0x00, le=HEADER_PROBE), what)

    def read_master_file(self, name: str) -> bytes:
        """A file of the master file (EF.CardSecurity) under the session: SELECT by FID, READ BINARY."""
        entry = lds.BY_NAME[name]
        self.send(Command(0x00, 0xA4, 0x02, 0x0C, entry.fid.to_bytes(2, "big")), f"SELECT {name}")
        return self._read_current(name)

    def select_file(self, name: str) -> None:
        entry = lds.BY_NAME.get(name)
        if entry is None or entry.in_mf:
            raise ChipError(f"{name!r} is not a file of the eMRTD application")
        self.send(Command(0x00, 0xA4, 0x02, 0x0C, entry.fid.to_bytes(2, "big")), f"SELECT {name}")

    def _read_request(self, name: str, offset: int, want: int) -> Callable[[], Response]:
        """READ BINARY of `want` bytes at `offset`; the returned function gives the answer (6282: fewer bytes)."""
        if offset <= B0_MAX_OFFSET:
            return self._request(Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=want),
                                 f"READ BINARY {name}@{offset}")
        # odd INS: offset in DO'54', data come back inside DO'53' (up to 4 bytes of header)
        what = f"READ BINARY (B1) {name}@{offset}"
        answer = self._request(Command(0x00, 0xB1, 0x00, 0x00, b"\x54" + _offset_object(offset), le=want + 4), what)

        def unwrapped() -> Response:
            resp = answer()
            objs = split_objects(resp.data)
            if len(objs) != 1 or objs[0][0] != 0x53:
                raise ChipError(f"{what}: answer is not one DO53")
            return Response(objs[0][1], resp.sw)
        return unwrapped

    def _room(self, offset: int) -> int:
        return self.chunk - (4 if offset > B0_MAX_OFFSET else 0)

    def read_file(self, name: str) -> bytes:
        """SELECT by file id and READ BINARY; on a chip that refuses SELECT of an EF (other than with
        6A82 or 6982), READ BINARY by short EF identifier from then on."""
        if not self.sfi_reads:
            try:
                self.select_file(name)
                return self._read_current(name)
            except (FileNotFound, SecurityNotSatisfied):
                raise
            except StatusError as err:
                if self.sm is None:  # the chip closed the session: not a selection problem
                    raise
                log.info("chip_reads_by_sfi", file=name, why=str(err))
                self.sfi_reads = True
        first = self._sfi_first_read(name, lds.BY_NAME[name].sfi)
        return self._read_current(name, bytearray(first.data), first.sw)

    def _read_current(self, name: str, data: bytearray | None = None, first_sw: int = SW_OK) -> bytes:
        """Read the selected file to the end its TLV header announces (from `data`, if some was read)."""
        data = data if data is not None else bytearray()
        total: int | None = _file_length(name, bytes(data[:8])) if data else None
        if data and first_sw == SW_END_OF_FILE and (total is None or len(data) < total):
            raise FileTruncated(f"{name}: chip ended the file at {len(data)} bytes, header says {total}")
        exact: int | None = None
        while total is None or len(data) < total:
            if total is not None and exact is None:
                self._read_ahead(name, data, total)
                if len(data) >= total:
                    break
            offset = len(data)
            want = exact or (self._room(offset) if total is None else min(self._room(offset), total - offset))
            exact = None
            try:
                resp = self._read_request(name, offset, want)()
            except WrongLe as err:
                if err.exact >= want:
                    raise ChipError(f"{name}: chip asks for Le {err.exact} after refusing {want}") from err
                exact = err.exact
                continue
            except (WrongLength, OffsetBeyondFile) as err:
                # a chip that refuses a read past the end while the length is unknown: read the header
                if total is None and want > HEADER_PROBE and (self.sm is not None or self.access is None):
                    exact = HEADER_PROBE
                    continue
                if isinstance(err, OffsetBeyondFile):
                    raise
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

    def _read_ahead(self, name: str, data: bytearray, total: int) -> None:
        """Append full chunks to `data` with `read_ahead` commands in flight; stop at the first other answer."""
        in_flight: deque[tuple[int, Callable[[], Response]]] = deque()
        planned = len(data)
        try:
            while len(data) < total:
                while planned < total and len(in_flight) < self.read_ahead:
                    want = min(self._room(planned), total - planned)
                    in_flight.append((want, self._read_request(name, planned, want)))
                    planned += want
                want, answer = in_flight.popleft()
                resp = answer()
                if resp.sw != SW_OK or len(resp.data) != want:
                    return  # the one-at-a-time loop takes it from here
                data += resp.data
        except StatusError:
            return
        except ChipError:
            in_flight.clear()  # transport or secure messaging broken: nothing left to check
            raise
        finally:
            for _, answer in in_flight:  # check and drop, so the SSC stays in step
                try:
                    answer()
                except StatusError:
                    pass

    def _shrink(self, name: str) -> None:
        if self.chunk <= MIN_CHUNK:
            raise ChipError(f"{name}: chip refuses even {self.chunk}-byte reads")
        short = self.sm.max_short_le if self.sm is not None else MAX_SHORT_LE
        self.chunk = short if self.chunk > short else max(self.chunk // 2, MIN_CHUNK)
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


def read_document(transport: Transport, key: BacKey | pace.Can, names: list[str] | None = None,
                  chunk: int = MAX_SHORT_LE, read_ahead: int = READ_AHEAD,
                  deadline_s: float | None = None, *, policy: str = access.DEFAULT_POLICY,
                  can: pace.Can | None = None, active_auth: bool = True,
                  chip_authentication: bool = True, later: Callable[[ReadResult, Callable[[str], bytes]], None]
                  | None = None) -> ReadResult:
    """Authenticate (PACE or BAC under `policy`), read EF.COM, the data groups and EF.SOD, timing each step;
    then active authentication when the chip lists DG15 (and `active_auth`).

    `names`: the data groups to read; by default every one EF.COM lists that needs no EAC. With
    `active_auth`, DG15 (and DG14, which names the ECDSA hash) are read too when EF.COM lists them,
    so passive authentication can bind the key the chip proved it holds.
    `deadline_s`: the whole read (in the gate: `timeouts.chip_read_s`).
    `later`: called with the result once the files in `names`, EF.SOD and AA are done, and a function
    that reads one more file in the same session (e.g. DG2 after DG1 and EF.SOD were verified).
    `can`: PACE with the Card Access Number instead of the MRZ.
    `chip_authentication`: when EF.COM lists DG14 and PACE-CAM has not already authenticated the
    chip, read DG14 first and run Chip Authentication v1; the rest is then read under its keys (a
    chip that fails it is re-opened with the access method, so the read goes on).
    Timing steps, in order: EF.CardAccess (when the chip has one; the probe of a chip without one is
    counted in "select"), PACE then select, or select then BAC, then each file, then AA.
    """
    session = ChipSession(transport, chunk, read_ahead, deadline_s)
    result = ReadResult({})

    def step(label, fn):
        start = time.perf_counter()
        out = fn()
        result.timings_s[label] = result.timings_s.get(label, 0.0) + time.perf_counter() - start
        return out

    card_access, note, probe_s = None, "", 0.0
    if policy != "bac_only":
        start = time.perf_counter()
        raw = session.read_card_access()
        if raw is None:
            probe_s, note = time.perf_counter() - start, "EF.CardAccess absent"
        else:
            result.timings_s["EF.CardAccess"] = time.perf_counter() - start
            result.files["EF.CardAccess"] = raw
            try:
                card_access = secinfo.parse_card_access(raw)
            except secinfo.SecurityInfoError as err:
                note = f"EF.CardAccess malformed: {err}"
                log.warning("card_access_malformed", error=str(err))
    plan = access.plan(key, card_access, policy, can=can, card_access_note=note)
    result.pace_offered, result.access_note = plan.pace_offered, plan.note
    if probe_s:
        result.timings_s["select"] = probe_s
    strategy = plan.primary

    def cam() -> None:
        """PACE-CAM: EF.CardSecurity (master file, under SM) and the chip-authentication check."""
        if not (isinstance(strategy, pace.Pace) and strategy.info.mapping == "CAM"):
            return
        try:
            data = step("EF.CardSecurity", lambda: session.read_master_file("EF.CardSecurity"))
        except (StatusError, SmError, PaddingError) as err:
            result.chip_auth = result.cam = chipauth.ChipAuthResult("failed", "PACE-CAM",
                                                                    f"EF.CardSecurity unreadable: {err}")
            return
        result.files["EF.CardSecurity"] = data
        result.chip_auth = result.cam = step("CAM", lambda: chipauth.verify_cam(strategy.protocol, data))

    attempt = time.perf_counter()
    try:
        session.open(strategy, step, cam)
    except PACE_FAILURES as err:
        if plan.fallback is None:
            raise
        result.fallback = (f"{strategy.name} failed ({type(err).__name__}: {err}); "
                           f"fell back to {plan.fallback.name}")
        log.warning("pace_fallback", error=f"{type(err).__name__}: {err}", fallback=plan.fallback.name,
                    protocol=access.describe(strategy).get("protocol"))
        for label in (strategy.name, "select", "EF.CardSecurity", "CAM"):
            result.timings_s.pop(label, None)
        result.timings_s[f"{strategy.name} (failed)"] = time.perf_counter() - attempt
        result.chip_auth = result.cam = None
        result.files.pop("EF.CardSecurity", None)
        strategy = plan.fallback
        session.open(strategy, step)
    result.access_control = strategy.name
    result.access = access.describe(strategy)
    result.files["EF.COM"] = step("EF.COM", lambda: session.read_file("EF.COM"))
    listed = [f"DG{n}" for n in lds.parse_com(result.files["EF.COM"]).data_groups]
    if names is None:
        names = [dg for dg in listed if dg not in EAC_ONLY]
    names = list(names)
    if active_auth and "DG15" in listed:
        names += [dg for dg in ("DG14", "DG15") if dg in listed and dg not in names]
    if chip_authentication and "DG14" in listed and not (result.chip_auth is not None and result.chip_auth.passed):
        result.files["DG14"] = step("DG14", lambda: session.read_file("DG14"))
        result.chip_auth = step("CA", lambda: chipauth.authenticate(session, result.files["DG14"]))
        if result.chip_auth.status == "failed":
            log.warning("chip_authentication_failed", reason=result.chip_auth.reason)
            step("reopen", session._reopen)
        names = [dg for dg in names if dg != "DG14"]
    for name in [*names, "EF.SOD"]:
        result.files[name] = step(name, lambda: session.read_file(name))
    if active_auth:
        if "DG15" in result.files:
            result.active_auth = step("AA", lambda: aa.authenticate(session, result.files))
        else:
            result.active_auth = aa.ActiveAuthResult("not_offered", "EF.COM lists no DG15")
    if later is not None:
        # The caller checks what is read so far, then reads more in this session (the gate: DG2
        # while the traveller walks in): `later(result, read)`, `read(name)` timed like the rest.
        result.apdus = session.apdus
        later(result, lambda name: step(name, lambda: session.read_file(name)))
    result.apdus = session.apdus
    return result


def read_with_retry(reader, key: BacKey | pace.Can, names: list[str] | None = None, *, deadline_s: float,
                    **kw) -> ReadResult:
    """`read_document` through `reader` (a `pcsc.PcscReader`), starting again on a new connection when
    the card leaves the field mid-read, an exchange times out or pcscd fails a transaction while the
    slot settles, for as long as `deadline_s` (the
    passage's chip budget) allows; each attempt gets only what is left of it. `ChipTimeout` when
    the budget runs out, naming the last failure; other errors (wrong keys, a forged chip) at once."""
    from drivers.emrtd.pcsc import CardAbsent, PcscFailure
    start = time.monotonic()
    attempts, last = 0, None
    while True:
        left = deadline_s - (time.monotonic() - start)
        if left <= 0:
            raise ChipTimeout(f"chip not read within {deadline_s:.1f}s in {attempts} attempt(s)"
                              + (f"; last: {last}" if last else ""))
        attempts += 1
        try:
            reader.wait_for_card(left)
            with reader.connect() as card:
                result = read_document(card, key, names, deadline_s=deadline_s - (time.monotonic() - start), **kw)
            result.attempts = attempts
            return result
        except (CardAbsent, ChipTimeout, PcscFailure) as exc:  # PcscFailure: pcscd still settling the slot
            last = exc
            log.info("chip_read_retry", attempt=attempts, error=str(exc))
            time.sleep(min(0.1, max(0.0, deadline_s - (time.monotonic() - start))))
