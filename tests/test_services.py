"""The harness starts the real services the other tests rely on."""
import os
import socket

import psycopg
import serial
from smartcard.System import readers



def test_pcscd_lists_vpcd_readers(vpcd_ports):
    names = [str(r) for r in readers()]
    assert any(n.startswith("Virtual PCD") for n in names), names
    with socket.create_connection(("127.0.0.1", vpcd_ports[0]), timeout=2):
        pass


def test_postgres_accepts_writes(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
        assert conn.execute("SELECT x FROM t").fetchone() == (42,)


def test_pty_carries_bytes_both_ways(pty):
    master, path = pty
    with serial.serial_for_url(path, baudrate=115200, timeout=1) as port:
        port.write(b"\x02ping\x03")
        assert os.read(master, 16) == b"\x02ping\x03"
        os.write(master, b"pong")
        assert port.read(4) == b"pong"
