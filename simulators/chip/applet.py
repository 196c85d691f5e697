"""Card side of an eMRTD (ICAO 9303 LDS1 application) with BAC and 3DES secure messaging.

Sans-IO: `EmrtdApplet.process(command bytes) -> response bytes`. It behaves like
a BAC chip: after SELECT of the application only GET CHALLENGE and EXTERNAL
AUTHENTICATE work in plain; data groups need secure messaging (6982 before);
wrong document keys give 6300; a command MAC that does not verify gives 6988
and ends the session, as does any plain command during the session.

The card-side secure messaging is written here from ICAO 9303-11 §9.8, apart
from the terminal's (drivers/emrtd/sm.py), so the two check each other; only
the DES primitives and the key derivation function are shared.
"""
from __future__ import annotations

import hmac
import os
import random
from dataclasses import dataclass

from drivers.emrtd import crypto
from drivers.emrtd.apdu import (SW_AUTH_FAILED, SW_CLA_NOT_SUPPORTED, SW_CONDITIONS_NOT_SATISFIED,
                                SW_END_OF_FILE, SW_FILE_NOT_FOUND, SW_INS_NOT_SUPPORTED, SW_OK,
                                SW_SECURITY_NOT_SATISFIED, SW_SM_OBJECTS_INCORRECT, SW_SM_OBJECTS_MISSING,
                                SW_WRONG_DATA, SW_WRONG_LE, SW_WRONG_LENGTH, SW_WRONG_P1P2,
                                SW_WRONG_PARAMS_OFFSET, Command, MalformedApdu)
from drivers.emrtd.bac import BacKey, session_keys
from icao9303 import lds, tlv
from simulators.faults import Faults

EAC_PROTECTED = {"DG3", "DG4"}  # need terminal authentication (EAC): refused under BAC
SUPPORTED_FAULTS = ("unplug", "slow", "corrupt_crc")


class CardTorn(Exception):
    """The card left the field in the middle of a command (tearing)."""


@dataclass
class ChipProfile:
    """What kind of chip this is: buffer limits and how it treats Le."""

    max_response: int = 65536  # longest plain data per READ BINARY; above it 6700
    extended_length: bool = True
    exact_le: bool = False     # answer 6Cxx instead of 6282 when Le exceeds the rest of the file
    tear_at: tuple[str, int] | None = None  # (file, offset): the card is pulled out when a read reaches it


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """tag -> (value, whole object) for the data objects of a protected command."""
    try:
        parsed = tlv.parse(data, max_depth=0)
    except tlv.TlvError as err:
        raise MalformedApdu(str(err)) from err
    return {o.tag: (o.value, data[o.offset:o.offset + o.header_length + len(o.value)]) for o in parsed}


class _CardSession:
    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: bytes):
        self.ks_enc, self.ks_mac, self.ssc = ks_enc, ks_mac, int.from_bytes(ssc, "big")

    def bump(self) -> bytes:
        self.ssc = (self.ssc + 1) % (1 << 64)
        return self.ssc.to_bytes(8, "big")


class EmrtdApplet:
    def __init__(self, files: dict[str, bytes], key: BacKey, profile: ChipProfile | None = None,
                 faults: Faults | None = None, seed: int | None = None):
        """`seed` makes the chip's challenges and keys repeat from every reset (benchmark replays only)."""
        unknown = {name for name in files if name not in lds.BY_NAME or lds.BY_NAME[name].in_mf}
        if unknown:
            raise ValueError(f"files not in the eMRTD application: {sorted(unknown)}")
        self.files = {lds.BY_NAME[name].fid: (name, data) for name, data in files.items()}
        self.k_enc, self.k_mac = key.document_keys()
        self.profile = profile or ChipProfile()
        self.faults = faults or Faults(SUPPORTED_FAULTS)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Power-on state: nothing selected, no session."""
        self.app_selected = False
        self.current: tuple[str, bytes] | None = None
        self.rnd_ic: bytes | None = None
        self.session: _CardSession | None = None
        self.random_bytes = os.urandom if self.seed is None else random.Random(self.seed).randbytes

    # ------------------------------------------------------------- dispatch
    def process(self, raw: bytes) -> bytes:
        try:
            cmd = Command.decode(raw)
        except MalformedApdu:
            return self._abort(SW_WRONG_LENGTH)
        if cmd.extended and not self.profile.extended_length:
            return self._abort(SW_WRONG_LENGTH)
        if cmd.cla & 0x0C == 0x0C:
            return self._protected(cmd, raw)
        if cmd.cla != 0x00:
            return self._abort(SW_CLA_NOT_SUPPORTED)
        if self.session is not None:
            self.session = None  # a plain command ends secure messaging (§9.8.7)
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            return self._select_application(cmd)
        if not self.app_selected:
            return _sw(SW_FILE_NOT_FOUND if cmd.ins == 0xA4 else SW_CONDITIONS_NOT_SATISFIED)
        if cmd.ins == 0x84:
            return self._get_challenge(cmd)
        if cmd.ins == 0x82:
            return self._external_authenticate(cmd)
        if cmd.ins in (0xA4, 0xB0, 0xB1):
            return _sw(SW_SECURITY_NOT_SATISFIED)
        return _sw(SW_INS_NOT_SUPPORTED)

    def _abort(self, sw: int) -> bytes:
        self.session = None
        return _sw(sw)

    def _select_application(self, cmd: Command) -> bytes:
        self.reset()
        if cmd.data != lds.EMRTD_AID:
            return _sw(SW_FILE_NOT_FOUND)
        self.app_selected = True
        return _sw(SW_OK)

    # ------------------------------------------------------------------ BAC
    def _get_challenge(self, cmd: Command) -> bytes:
        if cmd.le != 8 or cmd.p1 or cmd.p2:
            return _sw(SW_WRONG_LENGTH)
        self.rnd_ic = self.random_bytes(8)
        return self.rnd_ic + _sw(SW_OK)

    def _external_authenticate(self, cmd: Command) -> bytes:
        rnd_ic, self.rnd_ic = self.rnd_ic, None  # one challenge, one try
        if rnd_ic is None:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)
        if len(cmd.data) != 40:
            return _sw(SW_WRONG_LENGTH)
        e_ifd, m_ifd = cmd.data[:32], cmd.data[32:]
        if not hmac.compare_digest(crypto.retail_mac(self.k_mac, crypto.pad(e_ifd)), m_ifd):
            return _sw(SW_AUTH_FAILED)
        s = crypto.decrypt(self.k_enc, e_ifd)
        rnd_ifd, echoed, k_ifd = s[:8], s[8:16], s[16:]
        if echoed != rnd_ic:
            return _sw(SW_AUTH_FAILED)
        k_ic = self.random_bytes(16)
        e_ic = crypto.encrypt(self.k_enc, rnd_ic + rnd_ifd + k_ic)
        self.session = _CardSession(*session_keys(k_ifd, k_ic), rnd_ic[4:] + rnd_ifd[4:])
        return e_ic + crypto.retail_mac(self.k_mac, crypto.pad(e_ic)) + _sw(SW_OK)

    # ----------------------------------------------------- secure messaging
    def _protected(self, cmd: Command, raw: bytes) -> bytes:
        s = self.session
        if s is None:
            return _sw(SW_SM_OBJECTS_MISSING)
        try:
            objs = _objects(cmd.data)
        except MalformedApdu:
            return self._abort(SW_SM_OBJECTS_INCORRECT)
        if 0x8E not in objs:
            return self._abort(SW_SM_OBJECTS_MISSING)
        covered = b"".join(objs[t][1] for t in (0x87, 0x85, 0x97) if t in objs)
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2))
        mac = crypto.retail_mac(s.ks_mac, crypto.pad(s.bump() + crypto.pad(header) + covered))
        if not hmac.compare_digest(mac, objs[0x8E][0]):
            return self._abort(SW_SM_OBJECTS_INCORRECT)
        data = b""
        try:
            if 0x87 in objs:
                value = objs[0x87][0]
                if value[:1] != b"\x01":
                    return self._abort(SW_SM_OBJECTS_INCORRECT)
                data = crypto.unpad(crypto.decrypt(s.ks_enc, value[1:]))
            elif 0x85 in objs:
                data = crypto.unpad(crypto.decrypt(s.ks_enc, objs[0x85][0]))
        except crypto.PaddingError:
            return self._abort(SW_SM_OBJECTS_INCORRECT)
        le = None
        if 0x97 in objs:
            value = objs[0x97][0]
            le = int.from_bytes(value, "big") or (256 if len(value) == 1 else 65536)
        inner = Command(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, le)
        payload, sw = self._inner(inner)
        return self._wrap(payload, sw, odd=bool(cmd.ins & 1))

    def _wrap(self, payload: bytes, sw: int, odd: bool) -> bytes:
        s = self.session
        body = b""
        if payload:
            cryptogram = crypto.encrypt(s.ks_enc, crypto.pad(payload))
            body = tlv.encode(0x85, cryptogram) if odd else tlv.encode(0x87, b"\x01" + cryptogram)
        body += b"\x99\x02" + sw.to_bytes(2, "big")
        mac = crypto.retail_mac(s.ks_mac, crypto.pad(s.bump() + body))
        if self.faults.active("corrupt_crc") and self.faults.consume("corrupt_crc"):
            mac = bytes((mac[0] ^ 0x01,)) + mac[1:]
        return body + b"\x8e\x08" + mac + sw.to_bytes(2, "big")

    # ------------------------------------------------------ file commands
    def _inner(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.ins == 0xA4:
            return self._select_file(cmd)
        if cmd.ins in (0xB0, 0xB1):
            return self._read_binary(cmd)
        return b"", SW_INS_NOT_SUPPORTED

    def _select_file(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 != 0x02 or len(cmd.data) != 2:
            return b"", SW_WRONG_P1P2
        entry = self.files.get(int.from_bytes(cmd.data, "big"))
        if entry is None:
            return b"", SW_FILE_NOT_FOUND
        if entry[0] in EAC_PROTECTED:
            return b"", SW_SECURITY_NOT_SATISFIED
        self.current = entry
        return b"", SW_OK

    def _read_binary(self, cmd: Command) -> tuple[bytes, int]:
        if self.current is None:
            return b"", SW_CONDITIONS_NOT_SATISFIED
        if cmd.le is None:
            return b"", SW_WRONG_LENGTH
        name, content = self.current
        if cmd.ins == 0xB0:
            if cmd.p1 & 0x80:
                return b"", SW_WRONG_P1P2  # short EF identifier addressing: not offered
            offset, le = (cmd.p1 << 8) | cmd.p2, cmd.le
        else:
            try:
                objs = _objects(cmd.data)
            except MalformedApdu:
                return b"", SW_WRONG_DATA
            if 0x54 not in objs or not 1 <= len(objs[0x54][0]) <= 3:
                return b"", SW_WRONG_DATA
            offset, le = int.from_bytes(objs[0x54][0], "big"), cmd.le - 4  # room for the 53 82 xx xx header
        if le <= 0 or le > self.profile.max_response:
            return b"", SW_WRONG_LENGTH
        if offset > len(content):
            return b"", SW_WRONG_PARAMS_OFFSET
        tear = self.profile.tear_at
        if tear and tear[0] == name and offset <= tear[1] < offset + le:
            self.profile.tear_at = None  # one tear per setting
            self.faults.inject("unplug")
            raise CardTorn(f"card pulled out while reading {name} at offset {offset}")
        chunk = content[offset:offset + le]
        sw = SW_OK
        if len(chunk) < le:
            if self.profile.exact_le and 0 < len(chunk) < 256:
                return b"", SW_WRONG_LE | len(chunk)
            sw = SW_END_OF_FILE
        return (tlv.encode(0x53, chunk) if cmd.ins == 0xB1 else chunk), sw


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
