"""Test-session set-up shared by the library tests and the notebooks (run under nbval).

* Notebook kernels inherit OMP_NUM_THREADS=1: on a 2-core machine two notebooks run side by
  side, and more threads would only fight over the cores.
* Hypothesis keeps no example database, so a test run writes nothing into the checkout.
* At the end, a table of wall time per notebook (also written to _build/notebook-times.md).
* A notebook or test that leaves a new or changed file in the checkout fails the session.
"""
import os
import subprocess
from collections import defaultdict
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
settings.register_profile("book", database=None, deadline=None)
settings.load_profile("book")

_seconds = defaultdict(float)
_failed = set()
_git_before = None


def _git_status():
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout: nothing to compare
    return set(out.splitlines())


def _is_controller(config):
    return not hasattr(config, "workerinput")  # xdist workers have workerinput


def pytest_sessionstart(session):
    global _git_before
    if _is_controller(session.config):
        _git_before = _git_status()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration
        if report.failed:
            _failed.add(path)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _seconds or not _is_controller(config):
        return
    rows = [("notebook", "wall time (s)", "result")]
    rows += [(p, f"{s:.1f}", "failed" if p in _failed else "passed") for p, s in sorted(_seconds.items())]
    rows.append(("total", f"{sum(_seconds.values()):.1f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    terminalreporter.write_sep("=", "wall time per notebook (kernel start included)")
    for line in lines:
        terminalreporter.write_line(line)
    out = ROOT / "_build" / "notebook-times.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"(written to {out.relative_to(ROOT)})")


def pytest_sessionfinish(session, exitstatus):
    if not _is_controller(session.config) or _git_before is None:
        return
    new = sorted((_git_status() or set()) - _git_before)
    if new:
        print("\nThe test run wrote into the checkout (a notebook or test must not):")
        for line in new:
            print("   ", line)
        session.exitstatus = 1
