"""Fingerprint scanner packet protocol, sans-IO (spec: docs/protocols/fingerprint.md).

Modelled on the R30x/ZFM family of optical modules:

    EF 01 | address (4) | packet id (1) | length (2) | payload | checksum (2)

length counts payload + checksum; the checksum is the 16-bit sum of the packet
id, both length bytes and the payload. All integers are big-endian.

One deliberate deviation from the R30x: every acknowledgement carries the
instruction it answers (payload = code, instruction, data...), so a late answer
to a timed-out command is never taken for the answer to the next one.

`PacketParser` turns bytes into `Packet`s and `FramingError`s and resynchronises
on the next header after garbage or a bad packet. `HostProtocol` (the driver's
side) encodes commands and turns packets into typed events; the device side
(the simulator) uses `PacketParser` plus the `ack`/`image_packets` encoders.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER = b"\xef\x01"
BROADCAST = 0xFFFFFFFF
_FIXED = 9  # header 2 + address 4 + pid 1 + length 2
MAX_PAYLOAD = 256


class Pid(IntEnum):
    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END = 0x08


class Instruction(IntEnum):
    CAPTURE = 0x01         # GenImg: take an image of the finger into the image buffer
    UPLOAD_IMAGE = 0x0A    # UpImage: stream the image buffer as DATA packets, then END
    READ_PARAMS = 0x0F     # ReadSysPara: sensor geometry and link settings
    LED = 0x35             # AuraLedConfig: mode, speed, colour, count
    HANDSHAKE = 0x40
    FINGER_DETECT = 0x60   # extension (GT-5x "IsPressFinger"): is a finger on the glass?


class Code(IntEnum):
    OK = 0x00
    PACKET_ERROR = 0x01      # the command packet arrived damaged: send it again
    NO_FINGER = 0x02
    CAPTURE_FAILED = 0x03
    UPLOAD_FAILED = 0x0F
    NO_IMAGE = 0x15          # UPLOAD_IMAGE before a successful CAPTURE
    BAD_PARAMETER = 0x1A
    UNKNOWN_INSTRUCTION = 0xFC


class LedMode(IntEnum):
    BREATHING = 1
    FLASHING = 2
    ON = 3
    OFF = 4


class LedColour(IntEnum):
    RED = 1
    BLUE = 2
    PURPLE = 3
    GREEN = 4


UNREADABLE = 0x00  # instruction echoed in PACKET_ERROR: the damaged command could not be read
PACKET_SIZES = {0: 32, 1: 64, 2: 128, 3: 256}  # READ_PARAMS packet-size code -> DATA payload bytes


def checksum(pid: int, payload: bytes) -> int:
    n = len(payload) + 2
    return (pid + (n >> 8) + (n & 0xFF) + sum(payload)) & 0xFFFF


@dataclass(frozen=True)
class Packet:
    pid: int
    payload: bytes
    address: int = BROADCAST

    def encode(self) -> bytes:
        if not 0 <= len(self.payload) <= MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes; at most {MAX_PAYLOAD}")
        head = HEADER + struct.pack(">IBH", self.address, self.pid, len(self.payload) + 2)
        return head + self.payload + struct.pack(">H", checksum(self.pid, self.payload))


@dataclass(frozen=True)
class FramingError:
    """Bytes that were not a valid packet: `kind` is garbage | checksum | length | pid | address."""
    kind: str
    detail: str


class PacketParser:
    """Bytes -> Packet | FramingError; resynchronises on the next header after any error.

    A bad packet is dropped one byte at a time (not by its length field, which
    may itself be garbage), so a good packet hidden behind a false header is found.
    """

    def __init__(self, address: int = BROADCAST):
        self.address = address
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.checksum_errors = 0
        self.length_errors = 0
        self.other_errors = 0

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Packet | FramingError]:
        self._buf += data
        out: list[Packet | FramingError] = []
        skipped = 0
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0xEF: it may be the first half of a header.
                keep = 1 if self._buf[-1:] == HEADER[:1] else 0
                skipped += len(self._buf) - keep
                del self._buf[:len(self._buf) - keep]
                break
            skipped += start
            del self._buf[:start]
            if len(self._buf) < _FIXED:
                break
            address, pid, length = struct.unpack_from(">IBH", self._buf, 2)
            if not 2 <= length <= MAX_PAYLOAD + 2:
                out.extend(self._flush_garbage(skipped))
                skipped = 0
                self.length_errors += 1
                out.append(FramingError("length", f"length field {length} outside 2..{MAX_PAYLOAD + 2}"))
                del self._buf[:1]
                continue
            if len(self._buf) < _FIXED + length:
                break
            payload = bytes(self._buf[_FIXED:_FIXED + length - 2])
            (received,) = struct.unpack_from(">H", self._buf, _FIXED + length - 2)
            out.extend(self._flush_garbage(skipped))
            skipped = 0
            if received != checksum(pid, payload):
                self.checksum_errors += 1
                out.append(FramingError("checksum", f"pid {pid:#04x}: checksum {received:#06x}, computed {checksum(pid, payload):#06x}"))
                del self._buf[:1]
                continue
            del self._buf[:_FIXED + length]
            if pid not in Pid._value2member_map_:
                self.other_errors += 1
                out.append(FramingError("pid", f"unknown packet id {pid:#04x}"))
            elif address != self.address and self.address != BROADCAST:
                self.other_errors += 1
                out.append(FramingError("address", f"packet for {address:#010x}, we are {self.address:#010x}"))
            else:
                out.append(Packet(pid, payload, address))
        out.extend(self._flush_garbage(skipped))
        return out

    def _flush_garbage(self, skipped: int) -> list[FramingError]:
        if not skipped:
            return []
        self.garbage_bytes += skipped
        return [FramingError("garbage", f"{skipped} bytes skipped before a header")]


# -- encoders ---------------------------------------------------------------------

def command(instruction: Instruction, params: bytes = b"", address: int = BROADCAST) -> bytes:
    return Packet(Pid.COMMAND, bytes([instruction]) + params, address).encode()


def ack(code: Code, instruction: int, data: bytes = b"", address: int = BROADCAST) -> bytes:
    return Packet(Pid.ACK, bytes([code, instruction & 0xFF]) + data, address).encode()


def image_packets(pixels: bytes, packet_size: int = 256, address: int = BROADCAST) -> list[bytes]:
    """The DATA packets of an image upload; the last chunk goes in an END packet."""
    if packet_size not in PACKET_SIZES.values():
        raise ValueError(f"packet size {packet_size}; one of {sorted(PACKET_SIZES.values())}")
    if not pixels:
        raise ValueError("empty image")
    chunks = [pixels[i:i + packet_size] for i in range(0, len(pixels), packet_size)]
    return [Packet(Pid.DATA if i < len(chunks) - 1 else Pid.END, c, address).encode() for i, c in enumerate(chunks)]


@dataclass(frozen=True)
class Params:
    """READ_PARAMS answer: 16 bytes."""
    status: int
    sensor_id: int
    width: int
    height: int
    ppi: int
    address: int
    packet_size: int  # DATA payload bytes

    _FORMAT = ">HHHHHIH"

    def encode(self) -> bytes:
        code = next(k for k, v in PACKET_SIZES.items() if v == self.packet_size)
        return struct.pack(self._FORMAT, self.status, self.sensor_id, self.width, self.height, self.ppi, self.address, code)

    @classmethod
    def decode(cls, data: bytes) -> Params:
        if len(data) != struct.calcsize(cls._FORMAT):
            raise ValueError(f"READ_PARAMS data is {len(data)} bytes, expected {struct.calcsize(cls._FORMAT)}")
        status, sensor_id, width, height, ppi, address, code = struct.unpack(cls._FORMAT, data)
        if code not in PACKET_SIZES or not (width and height and ppi):
            raise ValueError(f"READ_PARAMS: bad geometry {width}x{height}@{ppi} or packet-size code {code}")
        return cls(status, sensor_id, width, height, ppi, address, PACKET_SIZES[code])


# -- host side: typed events ---------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """The device's answer to a command: code OK or a failure code, plus decoded data."""
    instruction: Instruction
    code: int
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


@dataclass(frozen=True)
class FingerState:
    present: bool


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: bytes  # row-major 8-bit grey, width * height bytes


@dataclass(frozen=True)
class ImageIncomplete:
    received: int
    expected: int


@dataclass(frozen=True)
class Unexpected:
    """A well-formed packet nobody asked for (a late answer, a stray data packet)."""
    detail: str


class HostProtocol:
    """Driver side: commands -> bytes; bytes -> Answer / FingerState / Params / Image / errors.

    One command is outstanding at a time (the device is half-duplex). Answers to
    any other instruction are reported as `Unexpected` and otherwise ignored.
    """

    def __init__(self, address: int = BROADCAST):
        self.address = address
        self.parser = PacketParser(address)
        self.params: Params | None = None
        self.pending: Instruction | None = None
        self.unexpected = 0
        self.incomplete_images = 0
        self._image: bytearray | None = None  # collecting DATA packets after an OK to UPLOAD_IMAGE

    def reset(self) -> None:
        self.parser.reset()
        self.pending = None
        self._image = None

    # commands
    def _command(self, instruction: Instruction, params: bytes = b"") -> bytes:
        self.pending = instruction
        self._image = None
        return command(instruction, params, self.address)

    def handshake(self) -> bytes:
        return self._command(Instruction.HANDSHAKE)

    def read_params(self) -> bytes:
        return self._command(Instruction.READ_PARAMS)

    def finger_detect(self) -> bytes:
        return self._command(Instruction.FINGER_DETECT)

    def capture(self) -> bytes:
        return self._command(Instruction.CAPTURE)

    def upload_image(self) -> bytes:
        return self._command(Instruction.UPLOAD_IMAGE)

    def led(self, mode: LedMode, colour: LedColour = LedColour.BLUE, speed: int = 0x80, count: int = 0) -> bytes:
        return self._command(Instruction.LED, bytes([LedMode(mode), speed & 0xFF, LedColour(colour), count & 0xFF]))

    # bytes in
    def feed(self, data: bytes) -> list:
        events = []
        for item in self.parser.feed(data):
            events.extend([item] if isinstance(item, FramingError) else self._on_packet(item))
        return events

    def _on_packet(self, packet: Packet) -> list:
        if packet.pid == Pid.ACK:
            return self._on_ack(packet.payload)
        if packet.pid in (Pid.DATA, Pid.END):
            return self._on_image_data(packet)
        return self._unexpected(f"packet id {packet.pid:#04x} from the device")

    def _on_ack(self, payload: bytes) -> list:
        if len(payload) < 2:
            return self._unexpected(f"acknowledgement of {len(payload)} bytes")
        code, instruction, data = payload[0], payload[1], payload[2:]
        if code == Code.PACKET_ERROR and instruction == 0 and self.pending is not None:
            instruction = self.pending  # the device could not read which command it was
        if self.pending is None or instruction != self.pending:
            return self._unexpected(f"answer to {instruction:#04x} while waiting for {self.pending!r}")
        pending, self.pending = self.pending, None
        if code != Code.OK:
            return [Answer(pending, code, data)]
        if pending == Instruction.FINGER_DETECT:
            if len(data) != 1 or data[0] > 1:
                return self._unexpected(f"finger state {data.hex()}")
            return [FingerState(bool(data[0]))]
        if pending == Instruction.READ_PARAMS:
            try:
                self.params = Params.decode(data)
            except ValueError as exc:
                return self._unexpected(str(exc))
            return [self.params]
        if pending == Instruction.UPLOAD_IMAGE:
            self._image = bytearray()
        return [Answer(pending, code, data)]

    def _on_image_data(self, packet: Packet) -> list:
        if self._image is None:
            return self._unexpected("image data with no upload in progress")
        self._image += packet.payload
        if packet.pid == Pid.DATA:
            return []
        pixels, self._image = bytes(self._image), None
        expected = self.params.width * self.params.height if self.params else len(pixels)
        if len(pixels) != expected:
            self.incomplete_images += 1
            return [ImageIncomplete(len(pixels), expected)]
        width, height = (self.params.width, self.params.height) if self.params else (len(pixels), 1)
        return [Image(width, height, pixels)]

    def _unexpected(self, detail: str) -> list:
        self.unexpected += 1
        return [Unexpected(detail)]
