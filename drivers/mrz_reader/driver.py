"""MrzReader: host side of the MRZ reader (docs/protocols/mrz_reader.md).

Events to gate logic (through its `EventSink`): DocumentPresent, DocumentRemoved,
MrzRead (lines plus the parsed `icao9303.mrz.Mrz`, or the parse error),
ReadError, Version, LinkUp, LinkDown.  On each (re)connection the driver asks
?STATUS so a document placed while the port was down is not missed.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from drivers.mrz_reader.protocol import (
    DocumentAbsent, DocumentPresent, DocumentRemoved, MrzLines, MrzReaderProtocol, Query, encode_message,
)
from core import logs
from core.component import CheckResult, Component, ComponentStatus, EventSink, LinkDown, LinkUp, discard
from core.errors import DeviceError
from drivers.transport import SerialTransport
from icao9303 import mrz as mrz_parser

log = logs.get("mrz_reader")


@dataclass(frozen=True)
class MrzRead:
    lines: tuple[str, ...]
    mrz: mrz_parser.Mrz | None  # parsed with strict=False: check-digit verdicts inside
    error: str | None  # not an MRZ at all (wrong shape, bad characters)
    # How the page scanner (drivers.page_scanner) read it: "device" is this reader's own OCR;
    # agree | single | conflict come from its two engines (icao9303.mrz_ocr).
    agreement: str = "device"
    alternatives: tuple[mrz_parser.Mrz, ...] = ()  # other candidates to try against the chip, ranked
    partial: bool = False      # glare hid a line: only the lines with the key were read

    @property
    def printed_agreed(self) -> bool:
        """May the chip's DG1 be compared with this printed MRZ? Only for a whole MRZ both engines
        (or the reader's own OCR) read alike."""
        return self.agreement in ("device", "agree") and not self.partial


class MrzReader(Component):
    name = "mrz_reader"

    def __init__(self, url: str, *, emit: EventSink = discard, baudrate: int = 115200):
        self.emit = emit
        self.protocol = MrzReaderProtocol()
        self.transport = SerialTransport(url, self.protocol, self._on_messages, self._on_port,
                                         baudrate=baudrate, name="mrz_reader")
        self.document_present = False
        self.counters: Counter[str] = Counter()

    @classmethod
    def from_config(cls, cfg, **kw) -> MrzReader:
        return cls(cfg.port, baudrate=cfg.baudrate, **kw)

    def start(self) -> None:
        self.transport.start()

    def stop(self) -> None:
        self.transport.stop()

    def stats(self) -> Counter[str]:
        return self.protocol.errors + self.counters + Counter(port_losses=self.transport.stats.losses)

    def status(self) -> ComponentStatus:
        up = self.transport.connected
        return ComponentStatus(self.name, up, f"{self.transport.url}: {'link up' if up else 'link down'}", self.stats())

    def reread(self) -> None:
        """Ask the reader to read the document on it again (e.g. after a failed check digit)."""
        self._query("REREAD")

    def _query(self, what: str) -> None:
        try:
            self.transport.write(encode_message(Query(what)))
        except DeviceError as exc:
            self.counters["write_failed"] += 1
            log.warning("mrz_reader_write_failed", error=str(exc))

    def _on_port(self, up: bool, reason: str) -> None:
        if up:
            self._emit(LinkUp())
            self._query("STATUS")
        else:
            self._emit(LinkDown(reason))

    def _on_messages(self, messages) -> None:
        for msg in messages:
            match msg:
                case DocumentPresent():
                    self.document_present = True
                case DocumentAbsent():  # answer to ?STATUS after a reconnection
                    if not self.document_present:
                        continue
                    self.document_present = False
                    msg = DocumentRemoved()  # taken away while the port was down
                case DocumentRemoved():
                    self.document_present = False
                case MrzLines(lines=lines):
                    self.document_present = True
                    msg = self._parse(lines)
                case Query():
                    self.counters["unexpected_query"] += 1
                    continue
            self._emit(msg)

    def _parse(self, lines: tuple[str, ...]) -> MrzRead:
        try:
            return MrzRead(lines, mrz_parser.parse(list(lines), strict=False), None)
        except mrz_parser.MrzError as exc:
            self.counters["mrz_invalid"] += 1
            return MrzRead(lines, None, str(exc))

    def _emit(self, ev) -> None:
        try:
            self.emit(ev)
        except Exception as exc:  # a consumer's bug must not stop the reader
            self.counters["handler_errors"] += 1
            log.error("mrz_event_handler_failed", event=type(ev).__name__, error=f"{type(exc).__name__}: {exc}")
