"""Re-execute chapters with every explicit seed shifted, to show their asserts hold for any seed.

Usage (``make seeds``, ``make seeds NB=notebooks/04_bpe.ipynb SHIFTS="1 2"``):

    python scripts/seeds.py [NOTEBOOK ...] [--shifts 1 2 3 4 5] [--jobs 2]

For each notebook and each shift, a fresh kernel runs the notebook top to bottom with every
integer seed given to ``random``, NumPy or PyTorch moved by the shift (the IPython start-up
file ``scripts/seed_shift_startup.py``, in a temporary ``IPYTHONDIR`` the kernel inherits).
As in ``make test-lax``, only errors count; outputs are not compared and nothing is written
back. A cell tagged ``seed-exact`` checks that a live run reproduces a stored run bit for bit,
which no other seed can do: its failure is reported as "seed-exact", not as a failure.

The table (notebook x shift) goes to the terminal and to ``_build/seeds.md``; the exit status
is 1 if any notebook failed under any shift.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP = Path(__file__).resolve().parent / "seed_shift_startup.py"
SEED_EXACT = "seed-exact"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_LINE = re.compile(r"^-*>\s*(\d+)\s", re.M)  # IPython marks the failing line "----> 12 ..."


def failing_line(cell, error) -> str:
    """The source line of ``cell`` that raised, from the traceback IPython stored."""
    trace = ANSI.sub("", "\n".join(error.get("traceback", [])))
    lines = cell.source.splitlines()
    match = CELL_LINE.search(trace)
    if match and 0 < int(match.group(1)) <= len(lines):
        return lines[int(match.group(1)) - 1].strip()
    return f"{error.get('ename', 'Error')}: {error.get('evalue', '')}".strip()


def run_one(path: Path) -> dict:
    """Execute one notebook in this process's environment; say what failed, if anything."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # a seed-exact cell may raise without stopping the run
        tags = cell.metadata.setdefault("tags", [])
        if SEED_EXACT in tags:
            tags.append("raises-exception")
    result = {"failed": None, "seed_exact": []}
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError:
        pass
    code = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if not errors:
            continue
        where = f"cell {number}: {failing_line(cell, errors[0])}"
        if SEED_EXACT in cell.metadata.get("tags", []):
            result["seed_exact"].append(where)
        else:
            result["failed"] = where
            break
    return result


def run_shifted(path: Path, shift: int) -> dict:
    """Run one notebook under one shift in a child process with its own IPYTHONDIR."""
    with tempfile.TemporaryDirectory(prefix="mlf-seeds-") as ipython_dir:
        startup = Path(ipython_dir) / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(STARTUP, startup / "00-shift-seeds.py")
        env = dict(os.environ, IPYTHONDIR=ipython_dir, MLF_SEED_SHIFT=str(shift),
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"could not run: {tail}", "seed_exact": [], "seconds": seconds}
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"seconds": seconds}


def verdict(result: dict) -> str:
    if result["failed"]:
        return f"FAILED {result['failed']}"
    if result["seed_exact"]:
        return f"passed; seed-exact differs ({'; '.join(result['seed_exact'])})"
    return "passed"


def table(notebooks: list[Path], shifts: list[int], results: dict) -> str:
    rows = [["notebook"] + [f"shift {s}" for s in shifts] + ["time (s)"]]
    for path in notebooks:
        cells = [verdict(results[path, s]) for s in shifts]
        seconds = sum(results[path, s]["seconds"] for s in shifts)
        rows.append([path.name] + cells + [f"{seconds:.0f}"])
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--shifts", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run side by side")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one.resolve())))
        return 0
    if 0 in args.shifts:
        parser.error("shift 0 is the chapter's own seed, which `make test` already runs")
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"not a notebook: {path}")
    runs = [(p, s) for p in notebooks for s in args.shifts]
    print(f"{len(runs)} runs ({len(notebooks)} notebooks x shifts {args.shifts}), "
          f"{args.jobs} at a time", flush=True)
    results = {}

    def work(run):
        results[run] = run_shifted(*run)
        print(f"  {run[0].name} shift {run[1]}: {verdict(results[run])} "
              f"({results[run]['seconds']:.0f} s)", flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(work, runs))
    text = table(notebooks, args.shifts, results)
    print("\n" + text)
    out = ROOT / "_build" / "seeds.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"(written to {out.relative_to(ROOT)})")
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
