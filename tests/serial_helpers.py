"""Helpers for tests of serial drivers against simulators: wait with a deadline, collect events."""
from __future__ import annotations

import subprocess
import threading
import time


def wait_for(predicate, timeout: float = 5.0, what: str = "condition", interval: float = 0.005):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    done = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        done.wait(interval)


class Recorder:
    """Thread-safe list of everything a driver reported."""

    def __init__(self):
        self.items = []
        self._lock = threading.Lock()

    def __call__(self, *item):
        with self._lock:
            self.items.append(item[0] if len(item) == 1 else item)

    def extend(self, items):
        with self._lock:
            self.items.extend(items)

    def snapshot(self):
        with self._lock:
            return list(self.items)

    def clear(self):
        with self._lock:
            self.items.clear()


def stop_process(proc, timeout: float = 10.0) -> None:
    """SIGTERM a simulator process and wait; if it does not stop, kill it and fail the test."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{proc.args} did not stop on SIGTERM within {timeout}s") from None
    finally:
        if proc.stdout:
            proc.stdout.close()
