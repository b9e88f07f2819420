"""Wall-clock timing for benchmarks, and for chapters that compare implementations."""
from __future__ import annotations

import time


def _check_repeats(repeats) -> int:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    return repeats


def best_of(fn, repeats: int = 3):
    """Call ``fn()`` ``repeats`` times; return the least wall time (s) and last result.

    The minimum is the least disturbed run: other work on the machine only adds time.
    """
    if not callable(fn):
        raise TypeError(f"best_of times a function of no arguments, got {fn!r}")
    times, result = [], None
    for _ in range(_check_repeats(repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def best_of_each(*fns, repeats: int = 5):
    """``best_of`` for several functions called in turns: [(least time, last result)].

    Taking turns spreads a burst of other work on the machine over all of them, so the
    ratio of their times is fairer than when each is timed in its own block.
    """
    if not fns:
        raise ValueError("best_of_each needs at least one function to time")
    rounds = [[best_of(fn, 1) for fn in fns] for _ in range(_check_repeats(repeats))]
    return [(min(r[i][0] for r in rounds), rounds[-1][i][1]) for i in range(len(fns))]
