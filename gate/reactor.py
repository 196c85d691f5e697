"""The gate process's single event loop.

Like klippy's reactor: all gate logic runs on one asyncio loop. Blocking device I/O runs in
worker threads that reach the loop only through `call_from_thread`. Components (the drivers and
stores, `core.component.Component`) start in order of registration; then the services (long-lived
coroutines such as the passage controller) run. Shutdown cancels and awaits the services first,
then stops the components in reverse order (devices registered first are stopped last), so the
passage is aborted and recorded first, doors go to their safe state next and the passage store
is closed last.
"""
from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable

from core import logs
from core.component import CheckResult, Component

log = logs.get("reactor")

STOP_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 10.0


class Reactor:
    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.components: list[Component] = []
        self.services: dict[str, Callable[[], Awaitable[None]]] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self._stopping: asyncio.Event | None = None
        self._loop_thread: int | None = None

    def add(self, component: Component) -> Component:
        self.components.append(component)
        return component

    def service(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A coroutine that runs from start-up until shutdown; if it ends or fails, the process stops."""
        self.services[name] = run

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
                results.append(await asyncio.wait_for(self.run_blocking(c.self_check), CHECK_TIMEOUT_S))
            except Exception as exc:  # a failing check is a result, not a crash
                results.append(CheckResult(c.name, False, f"{type(exc).__name__}: {exc}"))
        for name, task in self.tasks.items():
            results.append(CheckResult(name, not task.done(), "running" if not task.done() else "ended"))
        for r in results:
            log.info("self_check", component=r.name, ok=r.ok, detail=r.detail)
        return results

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, main: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start everything, run the services (and `main`, e.g. a one-shot check) until a stop is
        requested, `main` returns or a service ends; then shut down in order."""
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
                c.start()
                started.append(c)
            self.tasks = {name: asyncio.create_task(run(), name=name) for name, run in self.services.items()}
            await self.self_check()
            main_task = asyncio.create_task(main()) if main else None
            stop_wait = asyncio.create_task(self._stopping.wait())
            waits = {stop_wait, *self.tasks.values()} | ({main_task} if main_task else set())
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for t in waits - done:
                t.cancel()
            await asyncio.gather(*(waits - done), return_exceptions=True)  # services end before devices stop
            for t in done:
                if t is not stop_wait and t.exception():
                    raise t.exception()
        finally:
            for c in reversed(started):
                try:
                    await asyncio.wait_for(self.run_blocking(c.stop), STOP_TIMEOUT_S)
                    log.info("stopped", component=c.name)
                except Exception as exc:
                    log.error("stop_failed", component=c.name, error=f"{type(exc).__name__}: {exc}")
