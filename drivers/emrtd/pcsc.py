"""PC/SC transport for the chip reader (pyscard's thin `scard` layer over pcscd).

The reader is chosen by a configured name (substring match, never "the first
reader": that can be an empty slot). Every exchange runs on the card's own
I/O thread and the caller waits at most `apdu_timeout_s`: pcsc-lite cannot
abort a transmit, so a chip or reader that stops answering costs the caller
one timeout (`ChipTimeout`) and the card object is then unusable, never a hang.
`CardMonitor` reports insertions and removals from a thread through callbacks
(in the gate, `reactor.call_from_thread`).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from smartcard import scard

from core import logs
from core.component import Component, ComponentStatus
from core.errors import DeviceError
from drivers.emrtd.apdu import ChipError, ChipTimeout
from drivers.emrtd.config import ChipReaderConfig

log = logs.get("emrtd.pcsc")

POLL_MS = 200  # status-change waits are cut into slices this long so stop requests are seen


class ReaderNotFound(DeviceError):
    """No PC/SC reader, or more than one, matches the configured name."""


class CardAbsent(ChipError):
    """No card in the reader, or it was removed during an exchange."""


class PcscFailure(ChipError):
    """pcscd reported an error."""


def _fail(hresult: int, what: str) -> None:
    if hresult == scard.SCARD_S_SUCCESS:
        return
    text = scard.SCardGetErrorMessage(hresult)
    if hresult in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
                   scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_W_UNPOWERED_CARD):
        raise CardAbsent(f"{what}: {text}")
    raise PcscFailure(f"{what}: {text} (0x{hresult & 0xFFFFFFFF:08X})")


def _context() -> int:
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise DeviceError(f"pcscd not reachable: {scard.SCardGetErrorMessage(hresult)}")
    return ctx


def list_readers() -> list[str]:
    ctx = _context()
    try:
        hresult, readers = scard.SCardListReaders(ctx, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _fail(hresult, "list readers")
        return list(readers)
    finally:
        scard.SCardReleaseContext(ctx)


def match_reader(pattern: str, readers: list[str]) -> str:
    """The one reader whose name is `pattern` or contains it."""
    if pattern in readers:
        return pattern
    found = [r for r in readers if pattern in r]
    if len(found) != 1:
        what = "no reader" if not found else f"{len(found)} readers ({', '.join(found)})"
        raise ReaderNotFound(f"{what} match {pattern!r}; readers: {', '.join(readers) or 'none'}")
    return found[0]


class PcscReader(Component):
    """The configured reader. Reading a chip is a blocking call made from a worker thread."""

    name = "chip_reader"

    def __init__(self, name: str, apdu_timeout_s: float = 2.0):
        self.pattern = name
        self.apdu_timeout_s = apdu_timeout_s
        self._reader: str | None = None

    @property
    def reader(self) -> str:
        """The PC/SC name of the one matching reader, looked up when first needed (a reader missing
        at boot is a device to wait for, not a reason to refuse to start); `ReaderNotFound` until then."""
        if self._reader is None:
            self._reader = match_reader(self.pattern, list_readers())
        return self._reader

    @classmethod
    def from_config(cls, cfg: ChipReaderConfig) -> PcscReader:
        return cls(cfg.reader, cfg.apdu_timeout_s)

    def wait_for_card(self, timeout_s: float, present: bool = True) -> None:
        """Return once a card is present (or, with present=False, gone); `CardAbsent` after `timeout_s`."""
        ctx = _context()
        try:
            deadline = time.monotonic() + timeout_s
            state = scard.SCARD_STATE_UNAWARE
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CardAbsent(f"{'no card' if present else 'card still'} in {self.reader!r} after {timeout_s:.1f}s")
                hresult, states = scard.SCardGetStatusChange(ctx, int(min(left, POLL_MS / 1000) * 1000),
                                                             [(self.reader, state)])
                if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                    _fail(hresult, f"status of {self.reader!r}")
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                if bool(state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE) == present:
                    return
        finally:
            scard.SCardReleaseContext(ctx)

    def connect(self) -> PcscCard:
        return PcscCard(self.reader, self.apdu_timeout_s)

    def status(self) -> ComponentStatus:
        try:
            present = self.reader in list_readers()
        except DeviceError as exc:  # pcscd down, or no reader matches yet
            return ComponentStatus(self.name, False, str(exc))
        return ComponentStatus(self.name, present, f"{self.reader}: {'listed' if present else 'not listed'} by pcscd")


class _Exchange:
    __slots__ = ("apdu", "done", "response", "error")

    def __init__(self, apdu: bytes | None):
        self.apdu = apdu
        self.done = threading.Lock()
        self.done.acquire()
        self.response: bytes = b""
        self.error: Exception | None = None


class PcscCard:
    """A connected card; `transmit` is the `Transport` the chip session uses."""

    def __init__(self, reader: str, apdu_timeout_s: float):
        self.reader = reader
        self.timeout_s = apdu_timeout_s
        self.atr = b""
        self._requests: queue.SimpleQueue[_Exchange] = queue.SimpleQueue()
        self._hung = False
        self._thread = threading.Thread(target=self._io, name=f"pcsc-{reader}", daemon=True)
        self._thread.start()
        self._wait(self._queue(None), "connect")

    def transmit(self, apdu: bytes) -> bytes:
        return self.submit(apdu)()

    def submit(self, apdu: bytes) -> Callable[[], bytes]:
        """Queue `apdu` for the card now; the returned function waits (at most the timeout) for its answer."""
        ex = self._queue(apdu)
        return lambda: self._wait(ex, "transmit")

    def close(self) -> None:
        if not self._hung and self._thread.is_alive():
            self._requests.put(_Exchange(b""))  # empty APDU: disconnect and stop
            self._thread.join(self.timeout_s)

    def __enter__(self) -> PcscCard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _queue(self, apdu: bytes | None) -> _Exchange:
        if self._hung:
            raise ChipTimeout(f"{self.reader}: an earlier exchange never finished")
        ex = _Exchange(apdu)
        self._requests.put(ex)
        return ex

    def _wait(self, ex: _Exchange, what: str) -> bytes:
        if not ex.done.acquire(timeout=self.timeout_s):
            self._hung = True
            self._requests.put(_Exchange(b""))  # disconnect as soon as the stuck exchange returns
            raise ChipTimeout(f"{self.reader}: no answer to {what} within {self.timeout_s:.2f}s")
        if ex.error is not None:
            raise ex.error
        return ex.response

    def _io(self) -> None:
        ctx = handle = None
        try:
            ex = self._requests.get()  # the connect request
            try:
                ctx = _context()
                handle, protocol = self._connect(ctx)
            except Exception as exc:  # handed to the caller, who raises it
                ex.error = _typed(exc)
                return
            finally:
                ex.done.release()
            while True:
                ex = self._requests.get()
                if not ex.apdu:
                    return
                if self._hung:  # queued behind an exchange the caller gave up on
                    ex.error = ChipTimeout(f"{self.reader}: dropped after an earlier timeout")
                    ex.done.release()
                    continue
                try:
                    hresult, response = scard.SCardTransmit(handle, protocol, list(ex.apdu))
                    _fail(hresult, "transmit")
                    if not response:  # vpcd's answer when the card left during the exchange
                        raise CardAbsent(f"{self.reader}: card gone during the exchange")
                    ex.response = bytes(response)
                except Exception as exc:
                    ex.error = _typed(exc)
                finally:
                    ex.done.release()
        finally:
            if handle is not None:
                # LEAVE, not RESET: resetting a card that was pulled out leaves pcscd's slot stuck "empty"
                scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            if ctx is not None:
                scard.SCardReleaseContext(ctx)

    def _connect(self, ctx: int) -> tuple[int, int]:
        """Exclusive connection; waits (within the caller's timeout) while an abandoned exchange still holds the card."""
        deadline = time.monotonic() + 0.8 * self.timeout_s
        while True:
            hresult, handle, protocol = scard.SCardConnect(
                ctx, self.reader, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
            if hresult != scard.SCARD_E_SHARING_VIOLATION or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        _fail(hresult, f"connect to the card in {self.reader!r}")
        hresult, _, _, _, atr = scard.SCardStatus(handle)
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            _fail(hresult, "card status")
        self.atr = bytes(atr)
        return handle, protocol


def _typed(exc: Exception) -> ChipError:
    return exc if isinstance(exc, ChipError) else PcscFailure(f"{type(exc).__name__}: {exc}")


class CardMonitor:
    """Watches one reader and calls `on_change(present: bool)` on every insertion and removal."""

    def __init__(self, reader: str, on_change: Callable[[bool], None]):
        self.reader = reader
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pcsc-monitor-{reader}", daemon=True)

    def start(self) -> CardMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * POLL_MS / 1000 + 1)

    def _run(self) -> None:
        ctx = _context()
        try:
            state, present = scard.SCARD_STATE_UNAWARE, None
            while not self._stop.is_set():
                hresult, states = scard.SCardGetStatusChange(ctx, POLL_MS, [(self.reader, state)])
                if hresult == scard.SCARD_E_TIMEOUT:
                    continue
                if hresult != scard.SCARD_S_SUCCESS:
                    log.warning("reader_status_failed", reader=self.reader, error=scard.SCardGetErrorMessage(hresult))
                    self._stop.wait(POLL_MS / 1000)
                    state = scard.SCARD_STATE_UNAWARE
                    continue
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                now = bool(state & scard.SCARD_STATE_PRESENT)
                if now != present:
                    present = now
                    log.info("card_present" if now else "card_absent", reader=self.reader)
                    self.on_change(now)
        finally:
            scard.SCardReleaseContext(ctx)
