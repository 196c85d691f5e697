"""ICAO 9303-11 §9.8 secure messaging, terminal side: 3DES session keys (BAC, PACE with 3DES)
and AES session keys (PACE, chip authentication).

`protect` wraps a plain command into DO'87' (or DO'85' for odd INS), DO'97'
and DO'8E'; `unprotect` checks the response MAC over DO'87'/DO'85' and DO'99'
and decrypts. The send sequence counter is incremented before each command MAC
and each response MAC and always encoded on the cipher's block size (leading
zeros kept): 8 bytes for 3DES (CBC with a zero IV, retail MAC), 16 bytes for
AES (CBC with IV = E(KS_Enc, SSC), CMAC truncated to 8 bytes). Padding is
ISO/IEC 9797-1 method 2 to the cipher's block, the command header included.
"""
from __future__ import annotations

import hmac
from collections import deque

from drivers.emrtd import crypto
from drivers.emrtd.apdu import ChipError, Command, Response, check

SSC_MASK = (1 << 64) - 1  # 3DES; AES sessions count on 128 bits
MAX_SHORT_LE = 231  # largest plain Le whose protected response still fits 256 bytes (3DES)
MAX_SHORT_LE_AES = 223  # the same with AES's 16-byte padding


class SmError(ChipError):
    """A protected response failed verification: wrong MAC, missing or malformed objects."""


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    raise SmError(f"data object of {n} bytes is too long")


def data_object(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(value)) + value


def split_objects(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Split the concatenated one-byte-tag data objects of a protected APDU into (tag, value, whole object)."""
    out, pos, n = [], 0, len(data)
    while pos < n:
        start, tag = pos, data[pos]
        if pos + 1 >= n:
            raise SmError(f"data object {tag:02X} is truncated")
        first = data[pos + 1]
        pos += 2
        if first > 0x80:
            width = first & 0x7F
            if width > 2 or pos + width > n:
                raise SmError(f"data object {tag:02X} has a bad length field")
            length = int.from_bytes(data[pos:pos + width], "big")
            pos += width
        elif first == 0x80:
            raise SmError(f"data object {tag:02X} has an indefinite length")
        else:
            length = first
        if pos + length > n:
            raise SmError(f"data object {tag:02X} declares {length} bytes, {n - pos} present")
        out.append((tag, data[pos:pos + length], data[start:pos + length]))
        pos += length
    return out


def encode_le(le: int) -> bytes:
    """Le inside DO'97': one byte up to 256 (256 is 00), two bytes beyond (65536 is 0000)."""
    return bytes((le & 0xFF,)) if le <= 256 else (le & 0xFFFF).to_bytes(2, "big")


class _Tdes:
    """3DES suite: CBC with a zero IV for every message, retail MAC, 8-byte SSC."""

    block = crypto.BLOCK

    def __init__(self, ks_enc: bytes, ks_mac: bytes):
        self._cipher = crypto.Tdes(ks_enc)
        self._mac = crypto.RetailMac(ks_mac)

    def encrypt(self, data: bytes, ssc: bytes) -> bytes:
        return self._cipher.encrypt(data)

    def decrypt(self, data: bytes, ssc: bytes) -> bytes:
        return self._cipher.decrypt(data)

    def mac(self, padded: bytes) -> bytes:
        return self._mac.mac(padded)


class _Aes:
    """AES suite: CBC with IV = E(KS_Enc, SSC), CMAC truncated to 8 bytes, 16-byte SSC."""

    block = crypto.AES_BLOCK

    def __init__(self, ks_enc: bytes, ks_mac: bytes):
        self._cipher = crypto.Aes(ks_enc)
        self._mac = crypto.AesCmac(ks_mac)

    def encrypt(self, data: bytes, ssc: bytes) -> bytes:
        return self._cipher.encrypt(data, self._cipher.iv_for(ssc))

    def decrypt(self, data: bytes, ssc: bytes) -> bytes:
        return self._cipher.decrypt(data, self._cipher.iv_for(ssc))

    def mac(self, padded: bytes) -> bytes:
        return self._mac.mac(padded)


class SecureMessaging:
    """One session. `protect` takes the SSC of its command and reserves the next for the
    response, so commands can be protected before earlier responses are checked (read-ahead):
    `unprotect` takes the responses in the order the commands were protected.

    `cipher` is "3DES" (BAC, PACE with 3DES) or "AES-128"/"AES-192"/"AES-256" (the key length
    follows the keys given)."""

    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: int, cipher: str = "3DES"):
        if cipher not in crypto.CIPHERS:
            raise SmError(f"no secure messaging with cipher {cipher!r}")
        self.ks_enc = ks_enc
        self.ks_mac = ks_mac
        self.cipher = cipher
        self.ssc = ssc  # the last value taken, by a command or reserved for its response
        self._suite = _Tdes(ks_enc, ks_mac) if cipher == "3DES" else _Aes(ks_enc, ks_mac)
        self._block = self._suite.block
        self._mask = (1 << (8 * self._block)) - 1
        self._due: deque[int] = deque()  # SSCs reserved for responses not yet unprotected
        self.max_short_le = MAX_SHORT_LE if cipher == "3DES" else MAX_SHORT_LE_AES

    def _ssc_bytes(self, ssc: int) -> bytes:
        return ssc.to_bytes(self._block, "big")

    def protect(self, cmd: Command) -> Command:
        cla = cmd.cla | 0x0C
        block = self._block
        header = crypto.pad(bytes((cla, cmd.ins, cmd.p1, cmd.p2)), block)
        command_ssc = self._ssc_bytes((self.ssc + 1) & self._mask)
        body = b""
        if cmd.data:
            cryptogram = self._suite.encrypt(crypto.pad(cmd.data, block), command_ssc)
            body = data_object(0x85, cryptogram) if cmd.ins & 1 else data_object(0x87, b"\x01" + cryptogram)
        if cmd.le is not None:
            body += data_object(0x97, encode_le(cmd.le))
        self.ssc = (self.ssc + 2) & self._mask
        self._due.append(self.ssc)
        mac = self._suite.mac(crypto.pad(command_ssc + header + body, block))
        body += b"\x8e\x08" + mac
        extended = len(body) > 255 or (cmd.le is not None and cmd.le > self.max_short_le)
        return Command(cla, cmd.ins, cmd.p1, cmd.p2, body, 65536 if extended else 256)

    def unprotect(self, resp: Response, command: str) -> Response:
        """Verify and decrypt a protected response; a plain error status is raised as its typed error.

        A chip that answers an error without secure-messaging objects has closed
        the session: the caller must authenticate again.
        """
        if not self._due:
            raise SmError(f"{command}: a response without a protected command")
        ssc = self._due.popleft()
        if not resp.data:
            check(resp, command)
            raise SmError(f"{command}: status {resp.sw:04X} without secure-messaging objects")
        raw = resp.data
        if len(raw) < 10 or raw[-10:-8] != b"\x8e\x08":
            raise SmError(f"{command}: response does not end in an 8-byte MAC object 8E")
        covered = raw[:-10]  # every object before DO'8E' is under the MAC
        ssc_bytes = self._ssc_bytes(ssc)
        if not hmac.compare_digest(self._suite.mac(crypto.pad(ssc_bytes + covered, self._block)), raw[-8:]):
            raise SmError(f"{command}: response MAC does not verify")
        cryptogram, sw = None, None
        for tag, value, _ in split_objects(covered):
            if tag == 0x87:
                if not value or value[0] != 0x01:
                    raise SmError(f"{command}: DO87 without padding-content indicator 01")
                cryptogram = value[1:]
            elif tag == 0x85:
                cryptogram = value
            elif tag == 0x99 and len(value) == 2:
                sw = int.from_bytes(value, "big")
            else:
                raise SmError(f"{command}: unexpected data object {tag:02X} ({len(value)} bytes) in response")
        if sw is None:
            raise SmError(f"{command}: response has no status object 99")
        data = crypto.unpad(self._suite.decrypt(cryptogram, ssc_bytes), self._block) if cryptogram else b""
        return check(Response(data, sw), command)
