"""The serial console's line discipline, sans-IO: bytes from the terminal in, echo and events out.

pyserial opens a port in raw mode, so nothing but this echoes, erases or ends a line. `feed` is a
generator that consumes one byte at a time and yields events in order, so the session can change
the mode between them (the password typed ahead of its prompt is never echoed):

    Echo(bytes)   what to write back (typed characters, "\\b \\b" for an erase, CR LF, a redraw)
    Line(text)    CR, LF or CR LF ended a line (CR LF is one end)
    Interrupt()   Ctrl-C: the line is dropped (and a command in progress cancelled)
    Break()       a BREAK on the line: the tty layer hands it over as a NUL byte in raw mode
    EndOfInput()  Ctrl-D on an empty line

Editing: backspace (BS or DEL), Ctrl-U (the whole line), Ctrl-W (a word), Ctrl-L (redraw), Tab
(completion through the `complete(line) -> (line, candidates)` callback). Printable ASCII only:
other bytes are garbage, dropped and counted; ANSI escape sequences (arrow keys) are swallowed
whole. A line never grows past `max_line` characters.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

CRLF = b"\r\n"
ERASE = b"\b \b"
BEL = b"\x07"


@dataclass(frozen=True)
class Echo:
    data: bytes


@dataclass(frozen=True)
class Line:
    text: str


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Break:
    pass


@dataclass(frozen=True)
class EndOfInput:
    pass


Event = Echo | Line | Interrupt | Break | EndOfInput


class LineEditor:
    def __init__(self, complete: Callable[[str], tuple[str, list[str]]] | None = None, *, max_line: int = 200):
        self.complete = complete
        self.max_line = max_line
        self.prompt = ""
        self.echo = True
        self.buffer = ""
        self.garbage = 0        # bytes dropped: neither printable nor a key this editor knows
        self.overflow = 0       # characters dropped past max_line
        self._escape = 0        # 0: none, 1: after ESC, 2: inside a CSI / SS3 sequence
        self._after_cr = False

    def reset(self, prompt: str = "", *, echo: bool = True) -> None:
        """A new, empty line under `prompt` (the caller writes the prompt)."""
        self.prompt, self.echo, self.buffer = prompt, echo, ""

    def feed(self, data: bytes) -> Iterator[Event]:
        for byte in data:
            yield from self._byte(byte)

    def _byte(self, b: int) -> Iterator[Event]:
        after_cr, self._after_cr = self._after_cr, False
        if self._escape:
            if self._escape == 1 and b in (0x5B, 0x4F):        # ESC [ or ESC O
                self._escape = 2
                self.garbage += 1
                return
            if self._escape == 2 and 0x20 <= b <= 0x3F:        # parameters and intermediates
                self.garbage += 1
                return
            final = 0x40 <= b <= 0x7E
            self._escape = 0
            if final:
                self.garbage += 1
                return
            # anything else ends the sequence and counts as itself
        if b == 0x0D or (b == 0x0A and not after_cr):
            self._after_cr = b == 0x0D
            text, self.buffer = self.buffer, ""
            yield Echo(CRLF)
            yield Line(text)
        elif b == 0x0A:
            return                                             # the LF of CR LF
        elif 0x20 <= b <= 0x7E:
            if len(self.buffer) >= self.max_line:
                self.overflow += 1
                return
            self.buffer += chr(b)
            if self.echo:
                yield Echo(bytes([b]))
        elif b in (0x08, 0x7F):
            if self.buffer:
                self.buffer = self.buffer[:-1]
                if self.echo:
                    yield Echo(ERASE)
        elif b == 0x00:
            self.buffer = ""
            yield Break()
        elif b == 0x03:
            self.buffer = ""
            yield Echo(b"^C" + CRLF)
            yield Interrupt()
        elif b == 0x04:
            if not self.buffer:
                yield EndOfInput()
        elif b == 0x15:
            yield from self._erase(len(self.buffer))
        elif b == 0x17:
            kept = self.buffer.rstrip()
            kept = kept[:kept.rfind(" ") + 1]
            yield from self._erase(len(self.buffer) - len(kept))
        elif b == 0x0C:
            yield Echo(CRLF + self._shown())
        elif b == 0x09:
            yield from self._tab()
        elif b == 0x1B:
            self._escape = 1
            self.garbage += 1
        else:
            self.garbage += 1

    def _shown(self) -> bytes:
        return (self.prompt + (self.buffer if self.echo else "")).encode("ascii", "replace")

    def _erase(self, n: int) -> Iterator[Event]:
        if n <= 0:
            return
        self.buffer = self.buffer[:-n]
        if self.echo:
            yield Echo(ERASE * n)

    def _tab(self) -> Iterator[Event]:
        if not self.echo or self.complete is None:
            return
        line, options = self.complete(self.buffer)
        line = line[:self.max_line]
        if line != self.buffer:
            common = 0
            while common < min(len(line), len(self.buffer)) and line[common] == self.buffer[common]:
                common += 1
            out = ERASE * (len(self.buffer) - common) + line[common:].encode("ascii", "replace")
            self.buffer = line
            yield Echo(out)
        if len(options) > 1:
            yield Echo(CRLF + "  ".join(options).encode("ascii", "replace") + CRLF + self._shown())
        elif not options:
            yield Echo(BEL)
