"""Wall-clock timing for benchmarks, and for chapters that compare implementations."""
from __future__ import annotations

import time


def best_of(fn, repeats: int = 3):
    """Call ``fn()`` ``repeats`` times; return the least wall time (s) and last result.

    The minimum is the least disturbed run: other work on the machine only adds time.
    """
    if not callable(fn):
        raise TypeError(f"best_of times a function of no arguments, got {fn!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result
