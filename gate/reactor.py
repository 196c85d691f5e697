"""The gate process's single event loop.

Like klippy's reactor: all gate logic runs on one asyncio loop. Blocking device
I/O runs in worker threads that reach the loop only through `call_from_thread`.
Shutdown runs the registered stop hooks in reverse order of registration
(devices registered first are stopped last), so the passage is finished or
aborted first, doors go to their safe state next and the outbox is flushed last.
"""
from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gate import logs

log = logs.get("reactor")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Component:
    """What the reactor knows of a device or store: a name, a self-check, a safe stop."""

    name = "component"

    async def start(self) -> None:
        pass

    async def self_check(self) -> CheckResult:
        return CheckResult(self.name, True, "no check defined")

    async def stop(self) -> None:
        pass


class Reactor:
    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.components: list[Component] = []
        self._stopping: asyncio.Event | None = None
        self._loop_thread: int | None = None

    def add(self, component: Component) -> Component:
        self.components.append(component)
        return component

    # -- thread boundary ---------------------------------------------------
    def call_from_thread(self, fn: Callable, *args) -> None:
        """The only way a worker thread hands something to gate logic."""
        assert self.loop is not None, "reactor not running"
        self.loop.call_soon_threadsafe(fn, *args)

    def in_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    async def run_blocking(self, fn: Callable, *args):
        """Run blocking device I/O in a worker thread and await its result."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # -- lifecycle ---------------------------------------------------------
    async def self_check(self) -> list[CheckResult]:
        results = []
        for c in self.components:
            try:
                results.append(await asyncio.wait_for(c.self_check(), timeout=10))
            except Exception as exc:  # a failing check is a result, not a crash
                results.append(CheckResult(c.name, False, f"{type(exc).__name__}: {exc}"))
        for r in results:
            log.info("self_check", component=r.name, ok=r.ok, detail=r.detail)
        return results

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, main: Callable[[], Awaitable[None]] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        started: list[Component] = []
        try:
            for c in self.components:
                await c.start()
                started.append(c)
            await self.self_check()
            task = asyncio.create_task(main()) if main else None
            stop_wait = asyncio.create_task(self._stopping.wait())
            waits = {stop_wait} | ({task} if task else set())
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for t in waits - done:
                t.cancel()
            if task and task in done and task.exception():
                raise task.exception()
        finally:
            for c in reversed(started):
                try:
                    await asyncio.wait_for(c.stop(), timeout=10)
                    log.info("stopped", component=c.name)
                except Exception as exc:
                    log.error("stop_failed", component=c.name, error=f"{type(exc).__name__}: {exc}")
