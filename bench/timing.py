"""Timing helpers shared by the benchmarks."""
from __future__ import annotations

import statistics
import time


def timed(fn, n: int) -> float:
    """Median wall time of `n` calls of `fn`, in seconds."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)
