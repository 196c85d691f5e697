"""MRZ reader simulator: the reader end of docs/protocols/mrz_reader.md on a pty.

Place a document (`place(lines)`) and it reports @PRESENT, then after the read
time the MRZ lines (or @READERR for an unreadable one); `remove()` reports
@REMOVED.  It answers ?STATUS, ?VERSION and ?REREAD like the real reader.

  python -m simulators.mrz_reader --link /tmp/mrz.tty --control /tmp/mrz.sock
  python -m simulators.faults /tmp/mrz.sock do place lines='["P<UTO...", "L898902C3..."]'
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from drivers.mrz_reader.protocol import (
    DocumentAbsent, DocumentPresent, DocumentRemoved, MrzLines, MrzReaderProtocol, Query, ReadError, Version,
    encode_message,
)
from simulators.faults import add_simulator_args, run_simulator_cli
from simulators.pty_link import SerialSimulator

READ_TIME_S = {"realistic": 0.4, "zero-latency": 0.0}
FIRMWARE = "SIM-MRZ 1.0"


class MrzReaderSimulator(SerialSimulator):
    name = "mrz_reader"
    supported_faults = ("unplug", "garbage", "corrupt_crc", "slow", "drop")

    def __init__(self, link_path=None, *, profile: str = "realistic", seed: int = 0):
        super().__init__(link_path, seed=seed)
        self.read_time_s = READ_TIME_S[profile]
        self.protocol = MrzReaderProtocol()
        self.queries: Counter[str] = Counter()  # host queries answered, by kind
        self.document: tuple[str, ...] | None = None  # None: nothing on the reader; () unreadable
        self._read_at: float | None = None

    def place(self, lines=None) -> None:
        """Lay a document on the reader; lines=None or [] is a document without a readable MRZ."""
        doc = tuple(lines or ())
        self.run_in_sim_thread(lambda: self._place(doc))

    def remove(self) -> None:
        self.run_in_sim_thread(self._remove)

    def command_table(self):
        return {"place": lambda lines=None: self.place(lines), "remove": self.remove}

    def _place(self, doc: tuple[str, ...]) -> None:
        self.document = doc
        self._send(DocumentPresent())
        self._read_at = time.monotonic() + self.read_time_s

    def _remove(self) -> None:
        if self.document is not None:
            self.document, self._read_at = None, None
            self._send(DocumentRemoved())

    def _send(self, msg) -> None:
        self.send(encode_message(msg))

    def corrupt(self, frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 0x20])  # the BCC

    def on_bytes(self, data: bytes) -> None:
        for msg in self.protocol.feed(data):
            if isinstance(msg, Query):
                self.queries[msg.what] += 1
            match msg:
                case Query(what="STATUS"):
                    self._send(DocumentPresent() if self.document is not None else DocumentAbsent())
                    if self.document:
                        self._read_at = time.monotonic()
                case Query(what="VERSION"):
                    self._send(Version(FIRMWARE))
                case Query(what="REREAD") if self.document is not None:
                    self._read_at = time.monotonic() + self.read_time_s

    def on_tick(self, now: float) -> None:
        if self._read_at is not None and now >= self._read_at:
            self._read_at = None
            self._send(MrzLines(self.document) if self.document else ReadError())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.mrz_reader", description="simulated MRZ reader on a pty")
    add_simulator_args(parser)
    parser.add_argument("--profile", choices=sorted(READ_TIME_S), default="realistic")
    args = parser.parse_args(argv)
    return run_simulator_cli(MrzReaderSimulator(args.link, profile=args.profile, seed=args.seed), args)


if __name__ == "__main__":
    sys.exit(main())
