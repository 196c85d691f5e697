"""Fingerprint scanner simulator: the device end of docs/protocols/fingerprint.md on a real pty.

It answers the packet protocol like an optical module: a finger is on the glass
only while the scripted traveller holds it there (`place_finger` /
`lift_finger`); every CAPTURE takes a new impression of that finger from the
synthetic generator (impression numbers count up, so two captures are two
genuine mates, never the same image); UPLOAD_IMAGE streams the image buffer as
DATA packets paced at the link's line rate.

Faults (simulators.faults): unplug, garbage, corrupt_crc, slow, drop. `drop`
and `corrupt_crc` apply to every packet, image data included; `slow` delays
each answer (not each image packet, which would make an upload take minutes).

    sim = FingerprintScannerSim(seed=1).start()      # sim.path: the serial port to open
    sim.place_finger(7, {"skin": "dry"})
    sim.faults.inject("drop", count=1)
    python -m simulators.fingerprint_scanner --link /tmp/fp.tty --control /tmp/fp.sock
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections import deque

from drivers.fingerprint.protocol import (
    BROADCAST, UNREADABLE, Code, FramingError, Instruction, LedColour, LedMode, Packet, PacketParser, Params, Pid, ack,
    image_packets,
)
from simulators.faults import add_simulator_args, run_simulator_cli
from simulators.fingerprint_synth import HEIGHT, PPI, WIDTH, FingerGenerator
from simulators.pty_link import PtyLink, SerialSimulator

SENSOR_ID = 0x3001
# timing profile -> (capture seconds, line rate in bytes/s, most image bytes sent per
# tick). "realistic": a USB optical module (≈0.5 s to settle and expose), sent in
# bursts so a new command can interrupt an upload; "zero": as fast as the pty allows.
TIMINGS = {"realistic": (0.5, 1_000_000, 16_384), "zero": (0.0, 1e12, 1 << 20)}
_WRITE_WAIT_S = 1.0


class FlowControlledLink(PtyLink):
    """A PtyLink whose writes wait for room instead of dropping bytes.

    A pty holds only ~18 KB, while the kernel buffers of a real serial port
    never make a module lose part of its own image; so writes wait (up to
    _WRITE_WAIT_S, then count an overrun) while the host has not read yet.
    """

    def write(self, data: bytes) -> None:
        deadline = time.monotonic() + _WRITE_WAIT_S
        rest = memoryview(data)
        while rest:
            with self._lock:
                master = self._master
                if master is None:
                    return  # unplugged: bytes go nowhere
                try:
                    rest = rest[os.write(master, rest):]
                except BlockingIOError:
                    pass
                except OSError:
                    return
            if not rest:
                return
            if time.monotonic() >= deadline:
                self.overruns += len(rest)
                return
            try:
                select.select([], [master], [], 0.01)
            except (OSError, ValueError):
                return


class FingerprintScannerSim(SerialSimulator):
    name = "fingerprint"
    supported_faults = ("unplug", "garbage", "corrupt_crc", "slow", "drop")

    def __init__(self, link_path=None, *, seed: int = 0, timing: str = "zero", generator: FingerGenerator | None = None,
                 packet_size: int = 256, address: int = BROADCAST, first_impression: int = 0):
        super().__init__(link_path, seed=seed)
        self.link.close()
        self.link = FlowControlledLink(link_path)
        if timing not in TIMINGS:
            raise ValueError(f"timing must be one of {sorted(TIMINGS)}, not {timing!r}")
        self.capture_s, self.line_rate, self.burst = TIMINGS[timing]
        self.generator = generator or FingerGenerator(seed)
        self.params = Params(0, SENSOR_ID, WIDTH, HEIGHT, PPI, address, packet_size)
        self.parser = PacketParser(address)
        self.led = (LedMode.OFF, LedColour.BLUE)
        self.captures = 0              # impressions taken
        # The n-th capture is impression first_impression + n: a lane that enrols from
        # impressions 0..k-1 starts the gate at k, so no capture repeats an enrolment image.
        self.first_impression = first_impression
        self.commands: deque[Instruction | int] = deque(maxlen=1000)  # recent commands, for tests and the lane log
        self._finger: tuple[int, dict] | None = None
        self._image: bytes | None = None
        self._capture_due: float | None = None
        self._stream: deque[bytes] = deque()
        self._budget = 0.0
        self._last_tick: float | None = None

    # -- the traveller's hand (any thread) -------------------------------------------
    def place_finger(self, finger_id: int, conditions: dict | None = None) -> None:
        """Put finger `finger_id` on the glass; `conditions` go to FingerGenerator.impression."""
        self.generator.master(finger_id)  # grow the ridges now, not during the capture
        self._finger = (int(finger_id), dict(conditions or {}))

    def lift_finger(self) -> None:
        self._finger = None

    @property
    def finger_present(self) -> bool:
        return self._finger is not None

    def command_table(self):
        return {"place_finger": lambda finger_id, **conditions: self.place_finger(finger_id, conditions),
                "lift_finger": self.lift_finger}

    # -- device model (simulator thread) ------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        for item in self.parser.feed(data):
            if isinstance(item, FramingError):
                if item.kind == "checksum":
                    self._answer(Code.PACKET_ERROR, UNREADABLE)
            elif item.pid == Pid.COMMAND and item.payload:
                self._on_command(item)

    def _on_command(self, packet: Packet) -> None:
        instruction, params = packet.payload[0], packet.payload[1:]
        self.commands.append(Instruction(instruction) if instruction in Instruction._value2member_map_ else instruction)
        self._stream.clear()  # a new command aborts an upload or a capture in progress
        self._capture_due = None
        if instruction == Instruction.HANDSHAKE:
            self._answer(Code.OK, instruction)
        elif instruction == Instruction.READ_PARAMS:
            self._answer(Code.OK, instruction, self.params.encode())
        elif instruction == Instruction.FINGER_DETECT:
            self._answer(Code.OK, instruction, bytes([self.finger_present]))
        elif instruction == Instruction.CAPTURE:
            if not self.finger_present:
                self._answer(Code.NO_FINGER, instruction)
            else:
                self._capture_due = time.monotonic() + self.capture_s
        elif instruction == Instruction.UPLOAD_IMAGE:
            if self._image is None:
                self._answer(Code.NO_IMAGE, instruction)
            else:
                self._answer(Code.OK, instruction)
                self._stream.extend(image_packets(self._image, self.params.packet_size, self.params.address))
        elif instruction == Instruction.LED:
            self._set_led(params)
        else:
            self._answer(Code.UNKNOWN_INSTRUCTION, instruction)

    def _set_led(self, params: bytes) -> None:
        if len(params) != 4 or params[0] not in LedMode._value2member_map_ or params[2] not in LedColour._value2member_map_:
            self._answer(Code.BAD_PARAMETER, Instruction.LED)
            return
        self.led = (LedMode(params[0]), LedColour(params[2]))
        self._answer(Code.OK, Instruction.LED)

    def on_tick(self, now: float) -> None:
        if self._capture_due is not None and now >= self._capture_due:
            self._capture_due = None
            self._finish_capture()
        elapsed = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        if not self._stream:
            self._budget = 0.0
            return
        self._budget = min(self._budget + elapsed * self.line_rate, self.burst)
        while self._stream and len(self._stream[0]) <= self._budget:
            packet = self._stream.popleft()
            self._budget -= len(packet)
            self._send_data(packet)

    def _finish_capture(self) -> None:
        finger = self._finger
        if finger is None:  # lifted while the sensor exposed
            self._answer(Code.NO_FINGER, Instruction.CAPTURE)
            return
        finger_id, conditions = finger
        try:
            img = self.generator.impression(finger_id, self.first_impression + self.captures, **conditions)
        except (TypeError, ValueError):
            self._answer(Code.CAPTURE_FAILED, Instruction.CAPTURE)
            return
        self.captures += 1
        self._image = img.tobytes()
        self._answer(Code.OK, Instruction.CAPTURE)

    def on_replug(self) -> None:
        # Power cycle: buffers and LED are gone.
        self.parser.reset()
        self._stream.clear()
        self._capture_due = None
        self._image = None
        self.led = (LedMode.OFF, LedColour.BLUE)

    def _answer(self, code: Code, instruction: int, data: bytes = b"") -> None:
        self.send(ack(code, instruction, data, self.params.address))

    def _send_data(self, packet: bytes) -> None:
        """Like send(), without the per-frame `slow` delay (see module docstring)."""
        if self.faults.consume("drop"):
            self.frames_dropped += 1
            return
        if self.faults.consume("corrupt_crc"):
            packet = self.corrupt(packet)
        self.link.write(packet)
        self.frames_sent += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.fingerprint_scanner", description=__doc__.split("\n")[0])
    add_simulator_args(parser)
    parser.add_argument("--timing", choices=sorted(TIMINGS), default="realistic")
    parser.add_argument("--first-impression", type=int, default=0, help="impression number of the first capture")
    args = parser.parse_args(argv)
    sim = FingerprintScannerSim(args.link, seed=args.seed, timing=args.timing, first_impression=args.first_impression)
    return run_simulator_cli(sim, args)


if __name__ == "__main__":
    sys.exit(main())
