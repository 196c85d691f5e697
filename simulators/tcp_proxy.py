"""A loopback TCP proxy that misbehaves on request: the bad network between a gate and central.

It is a real peer: clients connect to its port, it connects to the target and moves bytes both
ways (TLS passes through untouched, so certificates and host names still check end to end). On
request it delays, drops, resets or blackholes, alone or flapping between modes:

    with TcpProxy(target_port=8443) as proxy:       # proxy.port: where clients connect
        proxy.blackhole()      # accepted, nothing forwarded, nothing answered: the client times out
        proxy.reset()          # every open and new connection gets a TCP RST
        proxy.refuse()         # not listening: connect() fails with ECONNREFUSED
        proxy.drop(0.5)        # half the connections, open or new, are cut (RST) after a random
                               #   number of bytes, mid-request or mid-answer
        proxy.delay(0.2, 0.1)  # every chunk waits 0.2 s ± 0.1 s (order kept)
        proxy.flap(0.3, "reset", "pass")   # alternates every ~0.3 s, until another mode is set
        proxy.reset_next(1)    # the next connection only is reset, then pass
        proxy.passthrough()    # a good network again

Leaving blackhole resets the connections whose bytes it swallowed (their streams are broken, as
after a NAT forgot the flow). `stats` counts connections accepted, reset, cut, refused and
blackholed, and the bytes each way.

It runs its own asyncio loop in a daemon thread; every control method may be called from any
thread and returns once the mode is in force. From a shell:

    python -m simulators.tcp_proxy --target 8443 [--listen 9443]
    (then type: pass | delay S [JITTER] | drop [P] | reset | blackhole | refuse | flap S MODE MODE | quit)
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import random
import socket
import struct
import sys
import threading
from dataclasses import dataclass

MODES = ("pass", "delay", "drop", "reset", "blackhole", "refuse")


@dataclass(frozen=True)
class Mode:
    kind: str = "pass"          # one of MODES
    delay_s: float = 0.0        # delay: per chunk
    jitter_s: float = 0.0
    probability: float = 1.0    # drop: share of connections cut
    max_cut_bytes: int = 8192   # drop: a connection is cut after 0..this many bytes


class _Conn:
    def __init__(self, proxy: TcpProxy, client_w: asyncio.StreamWriter):
        self.proxy = proxy
        self.client_w = client_w
        self.server_w: asyncio.StreamWriter | None = None
        self.cut_at: int | None = None
        self.moved = 0
        self.swallowed = False
        self.closed = False
        self.tasks: list[asyncio.Task] = []

    def reset(self) -> None:
        """Abort both sides with an RST (SO_LINGER 0)."""
        if self.closed:
            return
        self.closed = True
        for w in (self.client_w, self.server_w):
            if w is None:
                continue
            sock = w.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            w.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in (self.client_w, self.server_w):
            if w is not None:
                w.transport.close()


class TcpProxy:
    def __init__(self, target_port: int, *, listen_port: int = 0, host: str = "127.0.0.1",
                 target_host: str = "127.0.0.1", seed: int | None = None):
        self.host, self.target = host, (target_host, target_port)
        self.port = listen_port
        self.rng = random.Random(seed)
        self.mode = Mode()
        self.stats: collections.Counter[str] = collections.Counter()
        self._reset_next = 0
        self._conns: set[_Conn] = set()
        self._server: asyncio.base_events.Server | None = None
        self._flapper: asyncio.Task | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"tcp-proxy-{target_port}")

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- modes (any thread) ---------------------------------------------------------------------
    def passthrough(self) -> None:
        self._call(self._set(Mode()))

    def delay(self, seconds: float, jitter: float = 0.0) -> None:
        self._call(self._set(Mode("delay", delay_s=seconds, jitter_s=jitter)))

    def drop(self, probability: float = 1.0, max_cut_bytes: int = 8192) -> None:
        self._call(self._set(Mode("drop", probability=probability, max_cut_bytes=max_cut_bytes)))

    def reset(self) -> None:
        self._call(self._set(Mode("reset")))

    def blackhole(self) -> None:
        self._call(self._set(Mode("blackhole")))

    def refuse(self) -> None:
        self._call(self._set(Mode("refuse")))

    def reset_next(self, n: int = 1) -> None:
        """Pass, except that the next `n` connections are reset as soon as they are accepted."""
        async def go():
            await self._set(Mode())
            self._reset_next = n
        self._call(go())

    def flap(self, period_s: float, *modes: str) -> None:
        """Alternate between the named modes (default: reset and pass), each for period_s ± 30 %."""
        modes = modes or ("reset", "pass")
        for m in modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}")

        async def go():
            await self._set(Mode())
            self._flapper = asyncio.create_task(self._flap(period_s, modes))
        self._call(go())

    @property
    def kind(self) -> str:
        return self.mode.kind

    # -- inside the loop ----------------------------------------------------------------------------
    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True,
                                                      backlog=256)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _shutdown(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
        await self._unlisten()
        for conn in list(self._conns):
            conn.reset()

    async def _set(self, mode: Mode, *, from_flapper: bool = False) -> None:
        if not from_flapper and self._flapper is not None:
            self._flapper.cancel()
            self._flapper = None
        self._reset_next = 0
        old, self.mode = self.mode, mode
        if mode.kind in ("reset", "refuse"):
            for conn in list(self._conns):
                conn.reset()
                self.stats["reset"] += 1
        elif old.kind == "blackhole":
            for conn in list(self._conns):
                if conn.swallowed:
                    conn.reset()
                    self.stats["reset"] += 1
        for conn in self._conns:  # open (kept-alive) connections are as exposed to a lossy link as new ones
            conn.cut_at = None
            if mode.kind == "drop" and self.rng.random() < mode.probability:
                conn.cut_at = conn.moved + self.rng.randint(0, mode.max_cut_bytes)
        if mode.kind == "refuse":
            await self._unlisten()
        else:
            await self._listen()

    async def _flap(self, period_s: float, modes: tuple[str, ...]) -> None:
        i = 0
        while True:
            await self._set(Mode(modes[i % len(modes)]), from_flapper=True)
            await asyncio.sleep(period_s * self.rng.uniform(0.7, 1.3))
            i += 1

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        conn = _Conn(self, client_w)
        self._conns.add(conn)
        self.stats["accepted"] += 1
        try:
            mode = self.mode
            if self._reset_next > 0 or mode.kind in ("reset", "refuse"):
                self._reset_next = max(0, self._reset_next - 1)
                self.stats["reset"] += 1
                conn.reset()
                return
            if mode.kind == "blackhole":
                self.stats["blackholed"] += 1
                conn.swallowed = True
                # Read and forget until the client gives up or the mode changes (then: reset).
                while not conn.closed and await client_r.read(65536):
                    pass
                return
            if mode.kind == "drop" and self.rng.random() < mode.probability:
                conn.cut_at = self.rng.randint(0, mode.max_cut_bytes)
            try:
                server_r, conn.server_w = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
            except (OSError, asyncio.TimeoutError):
                self.stats["target_down"] += 1
                conn.reset()  # what the client would see of a dead host behind a live proxy
                return
            up = asyncio.create_task(self._pipe(conn, client_r, conn.server_w, "up"))
            down = asyncio.create_task(self._pipe(conn, server_r, client_w, "down"))
            conn.tasks = [up, down]
            await asyncio.gather(up, down, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            conn.reset()
        finally:
            conn.close()
            self._conns.discard(conn)

    async def _pipe(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str) -> None:
        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                mode = self.mode
                if mode.kind == "delay":
                    await asyncio.sleep(max(0.0, mode.delay_s + self.rng.uniform(-mode.jitter_s, mode.jitter_s)))
                    mode = self.mode
                if mode.kind == "blackhole":
                    conn.swallowed = True
                    self.stats["swallowed_bytes"] += len(data)
                    continue
                if mode.kind in ("reset", "refuse") or conn.closed:
                    conn.reset()
                    return
                if conn.cut_at is not None and conn.moved + len(data) >= conn.cut_at:
                    part = data[:conn.cut_at - conn.moved]
                    if part:
                        writer.write(part)
                        await writer.drain()
                    self.stats["cut"] += 1
                    conn.reset()
                    return
                conn.moved += len(data)
                self.stats[f"bytes_{way}"] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            conn.reset()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="loopback TCP proxy with faults on command (stdin)")
    ap.add_argument("--target", type=int, required=True, help="port on 127.0.0.1 to forward to")
    ap.add_argument("--listen", type=int, default=0, help="port to listen on (0: any)")
    args = ap.parse_args(argv)
    with TcpProxy(args.target, listen_port=args.listen) as proxy:
        print(f"proxy listening on 127.0.0.1:{proxy.port} -> 127.0.0.1:{args.target}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            cmd, rest = words[0], words[1:]
            try:
                if cmd == "quit":
                    break
                elif cmd == "pass":
                    proxy.passthrough()
                elif cmd == "delay":
                    proxy.delay(*map(float, rest))
                elif cmd == "drop":
                    proxy.drop(*map(float, rest[:1]))
                elif cmd in ("reset", "blackhole", "refuse"):
                    getattr(proxy, cmd)()
                elif cmd == "flap":
                    proxy.flap(float(rest[0]), *rest[1:])
                elif cmd == "stats":
                    print(dict(proxy.stats), flush=True)
                    continue
                else:
                    print(f"? {cmd}", flush=True)
                    continue
            except (ValueError, IndexError, TypeError) as exc:
                print(f"error: {exc}", flush=True)
                continue
            print(f"mode {proxy.kind}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
