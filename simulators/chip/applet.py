"""Card side of an eMRTD (ICAO 9303 LDS1 application): BAC, PACE (Generic Mapping), 3DES and AES
secure messaging, Active Authentication.

Sans-IO: `EmrtdApplet.process(command bytes) -> response bytes`. It behaves like
a BAC chip: after SELECT of the application only GET CHALLENGE and EXTERNAL
AUTHENTICATE work in plain; data groups need secure messaging (6982 before);
wrong document keys give 6300; a command MAC that does not verify gives 6988
and ends the session, as does any plain command during the session.

With EF.CardAccess among its files it is also a PACE chip: in the master file
EF.CardAccess can be selected (011C) or read by short EF identifier (1C) in
plain, MSE:Set AT and the four General Authenticate steps run PACE
(`card_auth.CardPace`), and the eMRTD application is then selected under the
new secure messaging (AES or 3DES, SSC from 0). `ChipProfile.bac=False` makes a
PACE-only chip. With an `aa` signer it answers INTERNAL AUTHENTICATE (88) under
secure messaging.

The card-side secure messaging is written here from ICAO 9303-11 §9.8, apart
from the terminal's (drivers/emrtd/sm.py), so the two check each other; only
the cipher primitives and the key derivation function are shared.
"""
from __future__ import annotations

import hashlib
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
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from drivers.emrtd import groups
from drivers.emrtd.bac import BacKey, session_keys
from icao9303 import lds, secinfo, tlv
from simulators.chip.card_auth import AaSigner, CardPace
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
    tear_back_after_s: float | None = None  # ... and put back after this long (None: until cleared)
    bac: bool = True           # False: a PACE-only chip (GET CHALLENGE / EXTERNAL AUTHENTICATE: 6D00)
    pace_fault: str | None = None  # "bad_token" or "refuse": PACE fails (terminal fallback tests)
    card_access_select: bool = True  # False: SELECT 011C refused (6986), only the SFI read works
    card_access_sfi: bool = True     # False: READ BINARY by SFI 1C refused (6A82), only SELECT 011C works
    past_end: str = "6282"     # a READ BINARY whose Le runs past the end: "6282" (the rest and 6282),
                               # "6B00" or "6700" (refused: the reader must know the length from the header)
    ef_select: bool = True     # False: SELECT of an EF by file id refused (6A81): only SFI reads work
    sfi_reads: bool = True     # False: READ BINARY by short EF identifier refused (6A86): SELECT first
    mf_select: bool = True     # False: SELECT MF (00 A4 00 0C [3F00]) refused with 6D00, as some chips do


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """tag -> (value, whole object) for the data objects of a protected command."""
    try:
        parsed = tlv.parse(data, max_depth=0)
    except tlv.TlvError as err:
        raise MalformedApdu(str(err)) from err
    return {o.tag: (o.value, data[o.offset:o.offset + o.header_length + len(o.value)]) for o in parsed}


class _CardSession:
    """Card-side SM keys and counter: 3DES (8-byte SSC, zero IV, retail MAC) or AES (16-byte SSC,
    IV = E(KS_Enc, SSC), CMAC/8)."""

    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: bytes, cipher: str = "3DES"):
        self.ks_enc, self.ks_mac, self.ssc = ks_enc, ks_mac, int.from_bytes(ssc, "big")
        self.aes = cipher != "3DES"
        self.block = 16 if self.aes else 8

    def bump(self) -> bytes:
        self.ssc = (self.ssc + 1) % (1 << (8 * self.block))
        return self.ssc.to_bytes(self.block, "big")

    def pad(self, data: bytes) -> bytes:
        return crypto.pad(data, self.block)

    def unpad(self, data: bytes) -> bytes:
        return crypto.unpad(data, self.block)

    def mac(self, data: bytes) -> bytes:
        if not self.aes:
            return crypto.retail_mac(self.ks_mac, data)
        c = CMAC(algorithms.AES(self.ks_mac))
        c.update(data)
        return c.finalize()[:8]

    def _iv(self) -> bytes:
        # the SSC of the message being processed (already bumped for its MAC)
        return Cipher(algorithms.AES(self.ks_enc), modes.ECB()).encryptor().update(self.ssc.to_bytes(16, "big"))

    def encrypt(self, data: bytes) -> bytes:
        if not self.aes:
            return crypto.encrypt(self.ks_enc, data)
        return Cipher(algorithms.AES(self.ks_enc), modes.CBC(self._iv())).encryptor().update(data)

    def decrypt(self, data: bytes) -> bytes:
        if len(data) % self.block or not data:
            raise crypto.PaddingError("cryptogram is not whole blocks")
        if not self.aes:
            return crypto.decrypt(self.ks_enc, data)
        return Cipher(algorithms.AES(self.ks_enc), modes.CBC(self._iv())).decryptor().update(data)


MF_FILES = ("EF.CardAccess", "EF.CardSecurity")


class EmrtdApplet:
    def __init__(self, files: dict[str, bytes], key: BacKey, profile: ChipProfile | None = None,
                 faults: Faults | None = None, seed: int | None = None, *, can: str | None = None,
                 aa: AaSigner | None = None, cam_key=None, ca_key=None):
        """`seed` makes the chip's challenges and keys repeat from every reset and every MSE:Set AT
        (benchmark replays only).
        `files` may hold EF.CardAccess (a PACE chip) and EF.CardSecurity; `can` adds the CAN as a PACE
        password; `aa` is the Active Authentication key (INTERNAL AUTHENTICATE); `cam_key` the static
        chip-authentication private key for PACE-CAM (an EC private key or its scalar); `ca_key` the
        DG14 chip-authentication private key (Chip Authentication v1, an EC private key)."""
        unknown = {name for name in files
                   if name not in lds.BY_NAME or (lds.BY_NAME[name].in_mf and name not in MF_FILES)}
        if unknown:
            raise ValueError(f"files not in the eMRTD application: {sorted(unknown)}")
        self.files = {lds.BY_NAME[name].fid: (name, data) for name, data in files.items()
                      if not lds.BY_NAME[name].in_mf}
        self.mf_files = {lds.BY_NAME[name].fid: (name, data) for name, data in files.items()
                         if lds.BY_NAME[name].in_mf}
        self.k_enc, self.k_mac = key.document_keys()
        self.passwords = {0x01: hashlib.sha1(key.mrz_information().encode("ascii")).digest()}
        if can:
            self.passwords[0x02] = can.encode("ascii")
        card_access = files.get("EF.CardAccess")
        self.card_access = secinfo.parse_card_access(card_access) if card_access else None
        self.aa = aa
        self.cam_key = cam_key.private_numbers().private_value if hasattr(cam_key, "private_numbers") else cam_key
        self.dg14 = secinfo.parse_dg14(files["DG14"]) if "DG14" in files else None
        self.ca_key = self.ca_curve = None
        if ca_key is not None and hasattr(ca_key, "curve"):
            self.ca_key = ca_key.private_numbers().private_value
            self.ca_curve = groups.CURVES_BY_NAME[ca_key.curve.name]
        elif ca_key is not None:  # a DH key (Chip Authentication with DH)
            numbers = ca_key.private_numbers()
            pn = numbers.public_numbers.parameter_numbers
            self.ca_key, self.ca_curve = numbers.x, groups.dh_group(pn.p, pn.g, pn.q)
        self._next_session = None
        self.ops: list[tuple[str, int]] = []  # public-key operations of the last command (timing model)
        self.profile = profile or ChipProfile()
        self.faults = faults or Faults(SUPPORTED_FAULTS)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Power-on state: nothing selected, no session."""
        self.app_selected = False
        self.current: tuple[str, bytes] | None = None
        self.mf_current: tuple[str, bytes] | None = None
        self.rnd_ic: bytes | None = None
        self.session: _CardSession | None = None
        self.pace: CardPace | None = None
        self.random_bytes = os.urandom if self.seed is None else random.Random(self.seed).randbytes

    # ------------------------------------------------------------- dispatch
    def process(self, raw: bytes) -> bytes:
        self.ops.clear()
        try:
            cmd = Command.decode(raw)
        except MalformedApdu:
            return self._abort(SW_WRONG_LENGTH)
        if cmd.extended and not self.profile.extended_length:
            return self._abort(SW_WRONG_LENGTH)
        if cmd.cla & 0x0C == 0x0C:
            return self._protected(cmd, raw)
        if cmd.cla != 0x00 and not (cmd.cla == 0x10 and cmd.ins == 0x86):  # 10: command chaining (PACE)
            return self._abort(SW_CLA_NOT_SUPPORTED)
        if self.session is not None:
            self.session = None  # a plain command ends secure messaging (§9.8.7)
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            return self._select_application(cmd)
        if cmd.ins == 0xA4 and cmd.p1 == 0x00 and cmd.data in (b"", b"\x3f\x00"):
            if not self.profile.mf_select:
                return _sw(SW_INS_NOT_SUPPORTED)
            self.app_selected, self.current, self.mf_current = False, None, None  # back to the master file
            return _sw(SW_OK)
        if cmd.ins == 0x22 and cmd.p1 == 0xC1 and cmd.p2 == 0xA4 and self.card_access is not None:
            return self._mse_set_at(cmd)
        if cmd.ins == 0x86 and self.card_access is not None:
            return self._general_authenticate(cmd, raw)
        if not self.app_selected:
            if cmd.ins == 0xA4 and cmd.p1 in (0x00, 0x02) and self.mf_files:
                return self._select_mf_file(cmd)
            if cmd.ins == 0xB0 and self.mf_files:
                return self._read_mf_file(cmd)
            return _sw(SW_FILE_NOT_FOUND if cmd.ins == 0xA4 else SW_CONDITIONS_NOT_SATISFIED)
        if cmd.ins in (0x84, 0x82) and not self.profile.bac:
            return _sw(SW_INS_NOT_SUPPORTED)
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

    # ----------------------------------------------------------- master file
    def _select_mf_file(self, cmd: Command) -> bytes:
        return b"".join(_pair(*self._mf_select(cmd)))

    def _read_mf_file(self, cmd: Command) -> bytes:
        return b"".join(_pair(*self._mf_read(cmd)))

    def _mf_select(self, cmd: Command) -> tuple[bytes, int]:
        """SELECT in the master file: EF.CardAccess always, EF.CardSecurity only under SM (after PACE)."""
        if len(cmd.data) != 2:
            return b"", SW_WRONG_P1P2
        entry = self.mf_files.get(int.from_bytes(cmd.data, "big"))
        if entry is None or (entry[0] == "EF.CardSecurity" and self.session is None):
            return b"", SW_FILE_NOT_FOUND
        if entry[0] == "EF.CardAccess" and not self.profile.card_access_select:
            return b"", 0x6986  # command not allowed: this chip only reads EF.CardAccess by SFI
        self.mf_current = entry
        return b"", SW_OK

    def _mf_read(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 & 0x80:
            sfi = cmd.p1 & 0x1F
            entry = next((e for e in self.mf_files.values() if lds.BY_NAME[e[0]].sfi == sfi
                          and (e[0] != "EF.CardSecurity" or self.session is not None)), None)
            if entry is None or (entry[0] == "EF.CardAccess" and not self.profile.card_access_sfi):
                return b"", SW_FILE_NOT_FOUND
            self.mf_current, offset = entry, cmd.p2
        elif self.mf_current is None:
            return b"", SW_CONDITIONS_NOT_SATISFIED
        else:
            offset = (cmd.p1 << 8) | cmd.p2
        content = self.mf_current[1]
        le = cmd.le or 0
        if le <= 0:
            return b"", SW_WRONG_LENGTH
        if offset > len(content):
            return b"", SW_WRONG_PARAMS_OFFSET
        chunk = content[offset:offset + le]
        if len(chunk) < le and self.profile.past_end != "6282":
            return b"", int(self.profile.past_end, 16)
        return chunk, (SW_OK if len(chunk) == le else SW_END_OF_FILE)

    # ----------------------------------------------------------------- PACE
    def _mse_set_at(self, cmd: Command) -> bytes:
        self.app_selected, self.current = False, None
        if self.seed is not None:  # a replayed PACE gets the same chip randoms (benchmark replays)
            self.random_bytes = random.Random(self.seed).randbytes
        self.pace = CardPace(self.card_access, self.passwords, self.random_bytes, self.profile.pace_fault,
                             self.cam_key, ops=self.ops)
        return _sw(self.pace.set_at(cmd.data))

    def _general_authenticate(self, cmd: Command, raw: bytes) -> bytes:
        if self.pace is None:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)
        data, sw = self.pace.general_authenticate(cmd.cla, cmd.data)
        if sw == SW_OK and self.pace.result is not None:
            ks_enc, ks_mac, cipher = self.pace.result
            self.pace = None
            self.session = _CardSession(ks_enc, ks_mac, bytes(16 if cipher != "3DES" else 8), cipher)
        elif sw != SW_OK:
            self.pace = None
        return data + _sw(sw)

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
        mac = s.mac(s.pad(s.bump() + s.pad(header) + covered))
        if not hmac.compare_digest(mac, objs[0x8E][0]):
            return self._abort(SW_SM_OBJECTS_INCORRECT)
        data = b""
        try:
            if 0x87 in objs:
                value = objs[0x87][0]
                if value[:1] != b"\x01":
                    return self._abort(SW_SM_OBJECTS_INCORRECT)
                data = s.unpad(s.decrypt(value[1:]))
            elif 0x85 in objs:
                data = s.unpad(s.decrypt(objs[0x85][0]))
        except crypto.PaddingError:
            return self._abort(SW_SM_OBJECTS_INCORRECT)
        le = None
        if 0x97 in objs:
            value = objs[0x97][0]
            le = int.from_bytes(value, "big") or (256 if len(value) == 1 else 65536)
        inner = Command(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, le)
        self._next_session = None
        payload, sw = self._inner(inner)
        answer = self._wrap(payload, sw, odd=bool(cmd.ins & 1))
        if self._next_session is not None:  # chip authentication: answered under the old keys, then switch
            self.session, self._next_session = self._next_session, None
        if not cmd.extended and len(answer) - 2 > 256:  # a short command's answer holds 256 bytes at most
            return self._abort(SW_WRONG_LENGTH)
        return answer

    def _wrap(self, payload: bytes, sw: int, odd: bool) -> bytes:
        s = self.session
        ssc = s.bump()  # the response's SSC: its IV (AES) and its MAC
        body = b""
        if payload:
            cryptogram = s.encrypt(s.pad(payload))
            body = tlv.encode(0x85, cryptogram) if odd else tlv.encode(0x87, b"\x01" + cryptogram)
        body += b"\x99\x02" + sw.to_bytes(2, "big")
        mac = s.mac(s.pad(ssc + body))
        if self.faults.active("corrupt_crc") and self.faults.consume("corrupt_crc"):
            mac = bytes((mac[0] ^ 0x01,)) + mac[1:]
        return body + b"\x8e\x08" + mac + sw.to_bytes(2, "big")

    # ------------------------------------------------------ file commands
    def _inner(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            if cmd.data != lds.EMRTD_AID:
                return b"", SW_FILE_NOT_FOUND
            self.app_selected, self.current = True, None
            return b"", SW_OK
        if not self.app_selected:  # the master file, under PACE's secure messaging
            if cmd.ins == 0xA4 and cmd.p1 in (0x00, 0x02):
                return self._mf_select(cmd)
            if cmd.ins == 0xB0:
                return self._mf_read(cmd)
            return b"", SW_CONDITIONS_NOT_SATISFIED
        if cmd.ins == 0xA4:
            return self._select_file(cmd)
        if cmd.ins == 0x88:
            return self._internal_authenticate(cmd)
        if cmd.ins == 0x22 and cmd.p1 == 0x41 and cmd.p2 == 0xA4:
            return self._ca_set_at(cmd)
        if cmd.ins == 0x86:
            return self._ca_general_authenticate(cmd)
        if cmd.ins in (0xB0, 0xB1):
            return self._read_binary(cmd)
        return b"", SW_INS_NOT_SUPPORTED

    # ----------------------------------------------------- chip authentication v1 (DG14)
    def _ca_set_at(self, cmd: Command) -> tuple[bytes, int]:
        self.ca_pending = None
        if self.ca_key is None or self.dg14 is None:
            return b"", SW_INS_NOT_SUPPORTED
        try:
            objs = {o.tag: o.value for o in tlv.parse(cmd.data, max_depth=0)}
        except tlv.TlvError:
            return b"", SW_WRONG_DATA
        offered = {secinfo.encode_oid(i.protocol): i for i in self.dg14.chip_auth}
        if not offered:  # a key without ChipAuthenticationInfo: id-CA-(EC)DH-3DES-CBC-CBC
            offered = {secinfo.encode_oid(secinfo.ID_CA + (".1.1" if self.ca_curve.kind == "DH" else ".2.1")): None}
        if objs.get(0x80) not in offered:
            return b"", 0x6A88
        info = offered[objs[0x80]]
        key_id = info.key_id if info else None
        if 0x84 in objs and (key_id is None or int.from_bytes(objs[0x84], "big") != key_id):
            return b"", 0x6A88
        self.ca_pending = info.cipher if info else "3DES"
        return b"", SW_OK

    def _ca_general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        cipher, self.ca_pending = getattr(self, "ca_pending", None), None
        if cipher is None:
            return b"", SW_CONDITIONS_NOT_SATISFIED
        try:
            top = tlv.parse_single(cmd.data, 0x7C, max_depth=1, allow_trailing=False)
            pk = next(o.value for o in top.children or () if o.tag == 0x80)
            point = self.ca_curve.decode(pk)
        except (tlv.TlvError, StopIteration, groups.GroupError):
            return b"", SW_WRONG_DATA
        k = self.ca_curve.shared_secret(self.ca_curve.mul(self.ca_key, point))
        self.ops.append(("dh" if self.ca_curve.kind == "DH" else "ec", self.ca_curve.p.bit_length()))
        block = 8 if cipher == "3DES" else 16
        self._next_session = _CardSession(crypto.kdf(k, crypto.ENC_COUNTER, cipher),
                                          crypto.kdf(k, crypto.MAC_COUNTER, cipher), bytes(block), cipher)
        return b"\x7C\x00", SW_OK

    def _internal_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.aa is None:
            return b"", SW_INS_NOT_SUPPORTED
        if len(cmd.data) != 8 or cmd.p1 or cmd.p2:
            return b"", SW_WRONG_DATA
        self.ops.append(self.aa.cost())
        return self.aa.sign(cmd.data, self.random_bytes), SW_OK

    def _select_file(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 != 0x02 or len(cmd.data) != 2:
            return b"", SW_WRONG_P1P2
        if not self.profile.ef_select:
            return b"", 0x6A81  # function not supported: this chip reads EFs by short EF identifier
        entry = self.files.get(int.from_bytes(cmd.data, "big"))
        if entry is None:
            return b"", SW_FILE_NOT_FOUND
        if entry[0] in EAC_PROTECTED:
            return b"", SW_SECURITY_NOT_SATISFIED
        self.current = entry
        return b"", SW_OK

    def _read_binary(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.le is None:
            return b"", SW_WRONG_LENGTH
        if cmd.ins == 0xB0 and cmd.p1 & 0x80:  # short EF identifier: selects the file, offset in P2
            if not self.profile.sfi_reads:
                return b"", SW_WRONG_P1P2
            entry = next((e for e in self.files.values() if lds.BY_NAME[e[0]].sfi == cmd.p1 & 0x1F), None)
            if entry is None:
                return b"", SW_FILE_NOT_FOUND
            if entry[0] in EAC_PROTECTED:
                return b"", SW_SECURITY_NOT_SATISFIED
            self.current = entry
            cmd = Command(cmd.cla, cmd.ins, 0x00, cmd.p2, cmd.data, cmd.le)
        if self.current is None:
            return b"", SW_CONDITIONS_NOT_SATISFIED
        name, content = self.current
        if cmd.ins == 0xB0:
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
            if self.profile.tear_back_after_s is None:
                self.faults.inject("unplug")
            else:
                self.faults.inject("unplug", duration_s=self.profile.tear_back_after_s)
            raise CardTorn(f"card pulled out while reading {name} at offset {offset}")
        chunk = content[offset:offset + le]
        sw = SW_OK
        if len(chunk) < le:
            if self.profile.exact_le and 0 < len(chunk) < 256:
                return b"", SW_WRONG_LE | len(chunk)
            if self.profile.past_end != "6282":
                return b"", int(self.profile.past_end, 16)
            sw = SW_END_OF_FILE
        return (tlv.encode(0x53, chunk) if cmd.ins == 0xB1 else chunk), sw


def _pair(data: bytes, sw: int) -> tuple[bytes, bytes]:
    return data, _sw(sw)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
