"""Wall-clock timing for benchmarks and chapters that compare implementations side by side."""
from __future__ import annotations

import time


def best_of(fn, repeats: int = 3):
    """Call ``fn()`` ``repeats`` times; return the smallest wall time in seconds and the last result.

    The minimum is the least disturbed run: other work on the machine only ever adds time.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result
