"""Real services for the lane simulator and the tests: pcscd with vpcd, pty pairs, a PostgreSQL server.

Each helper starts the real program and stops it after. If a service cannot
start, the helper raises `ServiceError` saying why; tests then fail, never skip.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import tty
from pathlib import Path

VPCD_PORTS = (35963, 35964)  # one slot each: "Virtual PCD 00 00" and "Virtual PCD 00 01"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ServiceError(RuntimeError):
    pass


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ServiceError(f"nothing listening on {host}:{port} after {timeout}s: {exc}") from None
            time.sleep(0.05)


def _wait_readers(prefix: str, timeout: float) -> None:
    from smartcard.Exceptions import ListReadersException
    from smartcard.pcsc.PCSCExceptions import EstablishContextException
    from smartcard.System import readers

    deadline = time.monotonic() + timeout
    while True:
        try:
            if any(str(r).startswith(prefix) for r in readers()):
                return
            found = "no such reader"
        except (ListReadersException, EstablishContextException) as exc:  # pcscd still starting
            found = str(exc)
        if time.monotonic() > deadline:
            raise ServiceError(f"pcscd lists no {prefix!r} reader after {timeout}s ({found})")
        time.sleep(0.05)


def _pcscd_running() -> bool:
    return subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0


@contextlib.contextmanager
def pcscd_with_vpcd(timeout: float = 10.0):
    """Run `pcscd --foreground` (vpcd is its reader driver) and wait for vpcd's port.

    Reuses a pcscd that is already running (there can be only one per host).
    Yields the vpcd TCP ports a virtual card connects to.
    """
    exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
    if not Path(exe).exists():
        raise ServiceError("pcscd not installed: apt-get install pcscd vsmartcard-vpcd (make setup does it)")
    if not Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists():
        raise ServiceError("vpcd driver missing: apt-get install vsmartcard-vpcd")
    proc = None
    if not _pcscd_running():
        log = open(tempfile.mktemp(prefix="pcscd-", suffix=".log"), "wb")
        # No --auto-exit: it quits when idle and takes the virtual cards with it.
        proc = subprocess.Popen([exe, "--foreground"], stdout=log, stderr=subprocess.STDOUT)
    try:
        # Ready when pcscd lists vpcd's readers. (Probing vpcd's TCP port instead would look
        # to vpcd like a card being inserted and pulled out, and fails while a card is attached.)
        _wait_readers("Virtual PCD", timeout)
        yield VPCD_PORTS
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def pty_pair():
    """A real pty: the driver opens the slave path with pyserial, the simulator owns the master fd."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd, **kw):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + [str(c) for c in cmd], capture_output=True, text=True, **kw)


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL 15 cluster on loopback. Yields a libpq URL to database `egate`.

    PostgreSQL refuses to run as root, so as root the cluster belongs to `postgres`.
    """
    if not (PG_BIN / "initdb").exists():
        raise ServiceError(f"PostgreSQL 15 not installed ({PG_BIN}/initdb missing): apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="egate-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    r = _as_postgres(PG_BIN / "initdb", "-D", data, "-U", "egate", "--auth=trust", "-E", "UTF8", "--locale=C")
    if r.returncode:
        raise ServiceError(f"initdb failed: {r.stderr.strip()}")
    r = _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", root / "pg.log", "-w", "-t", "30", "start",
                     "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=on")
    if r.returncode:
        log = (root / "pg.log").read_text() if (root / "pg.log").exists() else ""
        raise ServiceError(f"pg_ctl start failed: {r.stderr.strip()} {log[-500:]}")
    try:
        r = _as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "egate", "egate")
        if r.returncode:
            raise ServiceError(f"createdb failed: {r.stderr.strip()}")
        yield f"postgresql://egate@127.0.0.1:{port}/egate"
    finally:
        _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
