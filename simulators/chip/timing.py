"""A contactless (ISO/IEC 14443) timing model for the simulated chip.

The virtual card (`simulators.chip.vpcd.VirtualCard`) asks `ContactlessTiming.exchange_s` how long
one command/response exchange would take on a real reader and chip, and holds its answer back until
that time has passed since the command arrived (the applet's own computing time counts towards it).

What one exchange costs:

- **Air time.** Each byte is `bits_per_byte` bits (Type A: 8 data bits and a parity bit) at
  `bit_rate_kbps` (106, 212, 424 or 848 kbit/s). An APDU travels in ISO 14443-4 I-blocks of at most
  FSC bytes towards the card and FSD bytes towards the reader, `block_overhead` of them the block's
  own (PCB and CRC); a longer APDU is chained, every block but the last acknowledged by a 3-byte
  R(ACK). Each frame also costs `frame_gap_s` (start/end of frame and the frame delay time).
- **Chip time.** `apdu_s` for decoding a command and the file system, `sm_byte_s` per byte
  deciphered, enciphered and MACed under secure messaging, and per public-key operation the applet
  reports: an EC point multiplication `ec_mul_s` (for a 256-bit field, growing with the square of
  the field size), a DH exponentiation `dh_exp_s` (2048-bit modulus, same growth), a signature for
  Active Authentication `sign_s` (RSA-2048, same growth). When the chip's time runs past the frame waiting time (`fwt_s`,
  FWI 8), each waiting time extension costs an S(WTX) request and its answer.

`realistic()` (424 kbit/s, FSC/FSD 256) makes a BAC read of EF.COM, DG1, a 25 KB DG2 and EF.SOD
with short READ BINARY take about 2 s, PACE about 0.5 s; `zero()` costs nothing (tests, benchmarks
of the host side). The model is deterministic: no jitter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

BIT_RATES_KBPS = (106, 212, 424, 848)
R_BLOCK = 3        # PCB + CRC
WTX_BLOCK = 4      # PCB + WTXM + CRC


@dataclass(frozen=True)
class ContactlessTiming:
    bit_rate_kbps: int = 424
    fsc: int = 256               # longest block the card accepts (bytes, PCB and CRC included)
    fsd: int = 256               # longest block the reader accepts
    block_overhead: int = 3      # PCB + CRC_A (no CID, no NAD)
    bits_per_byte: float = 9.0   # Type A: 8 + parity (Type B: 10, start and stop bits)
    frame_gap_s: float = 100e-6  # SOF/EOF and the frame delay time, per frame
    apdu_s: float = 0.005        # chip: command decoding, file system
    sm_byte_s: float = 16e-6     # chip: per byte under secure messaging (cipher and MAC)
    ec_mul_s: float = 0.080      # chip: one EC point multiplication on a 256-bit field
    dh_exp_s: float = 0.150      # chip: one DH exponentiation with a 2048-bit modulus
    sign_s: float = 0.150        # chip: one Active Authentication signature
    fwt_s: float = 0.0773        # frame waiting time (FWI 8); longer chip work asks for S(WTX)
    enabled: bool = True

    def __post_init__(self):
        if self.enabled:
            if self.bit_rate_kbps <= 0:
                raise ValueError("bit_rate_kbps must be positive")
            if min(self.fsc, self.fsd) <= self.block_overhead:
                raise ValueError("FSC and FSD must exceed the block overhead")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def zero(cls) -> ContactlessTiming:
        """No delay at all: the chip answers as fast as the host computes."""
        return cls(enabled=False)

    @classmethod
    def realistic(cls, bit_rate_kbps: int = 424, **changes) -> ContactlessTiming:
        """A typical passport chip on a desktop reader; `bit_rate_kbps` one of 106/212/424/848."""
        if bit_rate_kbps not in BIT_RATES_KBPS:
            raise ValueError(f"ISO 14443 bit rates are {BIT_RATES_KBPS} kbit/s, not {bit_rate_kbps}")
        return replace(cls(bit_rate_kbps=bit_rate_kbps), **changes)

    # -- the model ---------------------------------------------------------------------------
    def frame_s(self, n_bytes: int) -> float:
        """One frame of `n_bytes` on the air, its gap included."""
        return n_bytes * self.bits_per_byte / (self.bit_rate_kbps * 1000.0) + self.frame_gap_s

    def transfer_s(self, apdu_len: int, block_size: int) -> float:
        """An APDU of `apdu_len` bytes in I-blocks of at most `block_size` bytes, chained, every
        block but the last acknowledged."""
        room = block_size - self.block_overhead
        blocks = max(1, math.ceil(apdu_len / room))
        air = (apdu_len + blocks * self.block_overhead) * self.bits_per_byte / (self.bit_rate_kbps * 1000.0)
        return air + blocks * self.frame_gap_s + (blocks - 1) * self.frame_s(R_BLOCK)

    def chip_s(self, sm_bytes: int = 0, ops=()) -> float:
        """The chip's own time: per APDU, per byte under SM, per public-key operation.
        `ops`: (kind, bits) with kind "ec" (field bits), "dh" (modulus bits) or "sign" (key bits)."""
        t = self.apdu_s + sm_bytes * self.sm_byte_s
        for kind, bits in ops:
            if kind == "ec":
                t += self.ec_mul_s * (bits / 256) ** 2
            elif kind == "dh":
                t += self.dh_exp_s * (bits / 2048) ** 2
            elif kind == "sign":  # RSA; an ECDSA signature is reported as an "ec" multiplication
                t += self.sign_s * (bits / 2048) ** 2
        return t

    def exchange_s(self, command_len: int, response_len: int, *, sm_bytes: int = 0, ops=()) -> float:
        """How long the reader waits from sending a command APDU to holding the whole response."""
        if not self.enabled:
            return 0.0
        chip = self.chip_s(sm_bytes, ops)
        wtx = max(0, math.ceil(chip / self.fwt_s) - 1) if self.fwt_s > 0 else 0
        return (self.transfer_s(command_len, self.fsc) + chip
                + wtx * 2 * self.frame_s(WTX_BLOCK)
                + self.transfer_s(response_len, self.fsd))

    def for_apdus(self, command: bytes, response: bytes, ops=()) -> float:
        """`exchange_s` for these APDUs: a protected command (CLA bit 0C) puts both under SM."""
        if not self.enabled:
            return 0.0
        protected = len(command) >= 4 and command[0] & 0x0C == 0x0C
        sm = len(command) + len(response) if protected else 0
        return self.exchange_s(len(command), len(response), sm_bytes=sm, ops=ops)

    def describe(self) -> str:
        if not self.enabled:
            return "zero (no contactless delays)"
        return (f"{self.bit_rate_kbps} kbit/s, FSC {self.fsc}/FSD {self.fsd}, "
                f"{self.apdu_s * 1000:.1f} ms per APDU, {self.sm_byte_s * 1e6:.0f} us per SM byte, "
                f"EC mul {self.ec_mul_s * 1000:.0f} ms (256-bit)")


class ModelledLink:
    """An in-process transport for `drivers.emrtd.reader.ChipSession` straight to an applet, adding up
    the modelled time of every exchange in `elapsed_s` (without sleeping unless `sleep=True`): the
    timing model without pcscd, for tests and quick estimates."""

    def __init__(self, applet, timing: ContactlessTiming, *, sleep: bool = False):
        self.applet, self.timing, self.sleep = applet, timing, sleep
        self.elapsed_s = 0.0
        self.exchanges = 0

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.applet.process(apdu)
        t = self.timing.for_apdus(apdu, answer, tuple(self.applet.ops))
        self.elapsed_s += t
        self.exchanges += 1
        if self.sleep and t > 0:
            import time
            time.sleep(t)
        return answer
