"""The applet as a virtual card in vpcd's reader slot (vsmartcard's vpicc protocol).

vpcd (the pcscd driver) listens on TCP; the card connects to it. Every message
is a 2-byte big-endian length and a payload. A 1-byte payload is a control
code (0 power off, 1 power on, 2 reset, 4 get ATR; only the ATR is answered);
any longer payload is a command APDU, answered with the response APDU.
Connected means "card in the reader", closed means "card removed".

Faults (shared API, simulators/faults.py): `slow` delays every answer,
`corrupt_crc` gives the next `count` protected responses a wrong MAC, `unplug`
takes the card out (for `duration_s`, or until cleared) and puts it back.

Timing (`simulators.chip.timing.ContactlessTiming`): each answer is held back until the time the
exchange would take over the air and on a real chip has passed since the command arrived (the
applet's own computing counts towards it); `ContactlessTiming.zero()` (the default) adds nothing.
"""
from __future__ import annotations

import contextlib
import fcntl
import socket
import threading
import time

from core import logs
from simulators.chip.applet import CardTorn, EmrtdApplet
from simulators.chip.timing import ContactlessTiming

log = logs.get("sim.chip")

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4
ATR = bytes.fromhex("3B80800101")  # T=1, no historical bytes
PORTS = {0: 35963, 1: 35964}
READER_NAMES = {0: "Virtual PCD 00 00", 1: "Virtual PCD 00 01"}
LOCK_PATH = "/tmp/egate-vpcd.lock"


@contextlib.contextmanager
def exclusive_slots(deadline_s: float | None = None):
    """Hold the host-wide lock on vpcd's slots: pcscd and its slots are shared by every process
    on the host, so test runs and benchmarks that plug cards in take turns. Waits `deadline_s`
    (default: $EGATE_VPCD_LOCK_WAIT_S, else 120 s) for another holder."""
    import os
    if deadline_s is None:
        deadline_s = float(os.environ.get("EGATE_VPCD_LOCK_WAIT_S", "120"))
    with open(LOCK_PATH, "a") as lock:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{LOCK_PATH} held by another process for {deadline_s}s") from None
                threading.Event().wait(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class VirtualCard:
    def __init__(self, applet: EmrtdApplet, port: int = PORTS[0], host: str = "127.0.0.1", *,
                 timing: ContactlessTiming | None = None):
        self.applet = applet
        self.timing = timing or ContactlessTiming.zero()
        self.modelled_s = 0.0  # sum of the modelled exchange times (what the timing model added up)
        self.faults = applet.faults
        self.faults.on_change = self._fault_changed
        self.host, self.port = host, port
        self.name, self.path = "chip", f"{host}:{port}"  # as simulators.faults.run_simulator_cli reports them
        self.apdus = 0
        self.inserted = threading.Event()  # connected to vpcd
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> VirtualCard:
        self._thread = threading.Thread(target=self._run, name=f"vpicc-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._drop_socket()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> VirtualCard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def control(self, request: dict) -> dict:
        """One control-socket request (simulators.faults): fault injection only."""
        return self.faults.control(request, {})

    def _fault_changed(self, name: str, params: dict | None) -> None:
        if name == "unplug":
            if params is not None:
                self._drop_socket()
            self._wake.set()

    def _drop_socket(self) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------- serving
    def _run(self) -> None:
        while not self._stop.is_set():
            unplug = self.faults.active("unplug")
            if unplug is not None:
                self._stay_out(unplug.get("duration_s"))
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._wake.wait(0.1)
                continue
            self._serve(sock)

    def _stay_out(self, duration_s: float | None) -> None:
        self._wake.clear()
        if duration_s is None:
            self._wake.wait(0.5)
            return
        self._wake.wait(duration_s)
        self.faults.clear("unplug")

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.applet.reset()
        self.inserted.set()
        log.info("card_inserted", port=self.port)
        try:
            while not self._stop.is_set() and self.faults.active("unplug") is None:
                msg = self._receive(sock)
                if msg is None:
                    break
                arrived = time.monotonic()
                answer = self._answer(msg)
                if answer is not None:
                    self._hold(msg, answer, arrived)
                    delay = self.faults.active("slow")
                    if delay:
                        time.sleep(delay["delay_s"])
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)
        except (OSError, CardTorn) as exc:
            log.info("card_removed", port=self.port, reason=str(exc))
        finally:
            self.inserted.clear()
            self._sock = None
            sock.close()

    def _hold(self, msg: bytes, answer: bytes, arrived: float) -> None:
        """Wait until the modelled contactless exchange time has passed since the command arrived."""
        if len(msg) == 1 or not self.timing.enabled:
            return
        modelled = self.timing.for_apdus(msg, answer, tuple(self.applet.ops))
        self.modelled_s += modelled
        left = arrived + modelled - time.monotonic()
        if left > 0:
            time.sleep(left)

    @staticmethod
    def _receive(sock: socket.socket) -> bytes | None:
        head = _recv_exact(sock, 2)
        if head is None:
            return None
        return _recv_exact(sock, int.from_bytes(head, "big"))

    def _answer(self, msg: bytes) -> bytes | None:
        if len(msg) == 1:
            code = msg[0]
            if code in (CTRL_ON, CTRL_RESET, CTRL_OFF):
                self.applet.reset()
            return ATR if code == CTRL_ATR else None
        self.apdus += 1
        return self.applet.process(msg)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    # Linux clears TCP_QUICKACK after it is used: set it again so our ACKs never wait.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    return bytes(buf)
