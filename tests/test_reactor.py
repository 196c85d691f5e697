"""The reactor: one loop, thread hand-off, self-check, ordered safe shutdown."""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

from core.component import CheckResult, Component
from gate.reactor import Reactor


class Recorder(Component):
    def __init__(self, name, order, check_ok=True, check_raises=False):
        self.name, self.order, self.check_ok, self.check_raises = name, order, check_ok, check_raises

    def start(self):
        self.order.append(f"start {self.name}")

    def self_check(self):
        if self.check_raises:
            raise OSError("port vanished")
        return CheckResult(self.name, self.check_ok, "ok" if self.check_ok else "no answer")

    def stop(self):
        self.order.append(f"stop {self.name}")


def test_components_stop_in_reverse_order_and_checks_report_failures():
    order = []
    reactor = Reactor()
    for name in ("outbox", "doors", "passage"):
        reactor.add(Recorder(name, order, check_raises=(name == "doors")))
    checks = {}

    async def main():
        for r in await reactor.self_check():
            checks[r.name] = r
        reactor.request_stop()
        await asyncio.sleep(3600)  # cancelled by the stop

    asyncio.run(reactor.run(main))
    assert order == ["start outbox", "start doors", "start passage", "stop passage", "stop doors", "stop outbox"]
    assert checks["outbox"].ok and not checks["doors"].ok and "port vanished" in checks["doors"].detail


def test_worker_threads_reach_the_loop_only_through_call_from_thread():
    reactor = Reactor()
    seen = []

    async def main():
        done = asyncio.Event()

        def worker():
            reactor.call_from_thread(lambda: (seen.append(reactor.in_loop()), done.set()))

        threading.Thread(target=worker).start()
        await asyncio.wait_for(done.wait(), 5)
        seen.append(await reactor.run_blocking(reactor.in_loop))

    asyncio.run(reactor.run(main))
    assert seen == [True, False]


def test_sigterm_runs_the_ordered_shutdown(tmp_path):
    marker = tmp_path / "order.txt"
    script = textwrap.dedent(f"""
        import asyncio, sys
        from core import logs
        from core.component import Component
        from gate.reactor import Reactor
        logs.configure("info", "json")  # logs to stderr; stdout carries the handshake
        class C(Component):
            def __init__(self, name): self.name = name
            def stop(self):
                with open({str(marker)!r}, "a") as fh: fh.write(self.name + "\\n")
        r = Reactor(); r.add(C("outbox")); r.add(C("doors"))
        async def main():
            print("ready", flush=True)
            await asyncio.sleep(3600)
        asyncio.run(r.run(main))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0
    assert marker.read_text().split() == ["doors", "outbox"]


def test_services_end_before_any_component_stops_and_a_failed_service_stops_the_process():
    order = []
    reactor = Reactor()
    reactor.add(Recorder("doors", order))

    async def passage():
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # writing the aborted passage's record takes a moment
            order.append("passage recorded")

    reactor.service("passage", passage)

    async def main():
        checks = {r.name: r.ok for r in await reactor.self_check()}
        assert checks == {"doors": True, "passage": True}

    asyncio.run(reactor.run(main))
    assert order == ["start doors", "passage recorded", "stop doors"]

    order.clear()
    failing = Reactor()
    failing.add(Recorder("doors", order))

    async def broken():
        raise RuntimeError("controller bug")

    failing.service("passage", broken)
    try:
        asyncio.run(failing.run())
    except RuntimeError as exc:
        assert "controller bug" in str(exc)
    else:
        raise AssertionError("a failed service must not leave the process running as if nothing happened")
    assert order == ["start doors", "stop doors"]
