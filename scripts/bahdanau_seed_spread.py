"""Run the Bahdanau chapter under its own seed and five shifted ones; store its numbers.

Usage: python scripts/bahdanau_seed_spread.py [--shifts 0 1 2 3 4 5]

The chapter trains each model once, with one seed. To know which of its results hold
for any seed (and so where its asserts may put their margins), this script executes
``notebooks/01_bahdanau.ipynb`` top to bottom in a fresh kernel for each shift, as
``scripts/seeds.py`` does (every explicit seed moved by the shift, through
``scripts/seed_shift_startup.py``), then reads the chapter's own results from the
kernel: BLEU and exact matches per length bucket, overall BLEU, the attention inside
German compounds and the annotation probe. Shift 0 is the chapter as it stands.
Nothing is recomputed here, so the stored numbers are the chapter's, seed by seed. (The
chapter's cells that read the stored result are left out of these runs.)

The result goes to ``data/bahdanau/seed_spread.json`` (a few kB), which the chapter
reads to show the spread. About 45 s per shift on a quiet 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_bahdanau.ipynb"
OUT = ROOT / "data" / "bahdanau" / "seed_spread.json"
STARTUP = ROOT / "scripts" / "seed_shift_startup.py"
MARK = "MLF-SEED-SPREAD "
# run after the chapter's last cell, in its kernel: the names are the chapter's own
REPORT = f"""
import json as _json
print({MARK!r} + _json.dumps({{
    "buckets": list(buckets),
    "bleu": {{name: [float(b) for b in values] for name, values in bleu.items()}},
    "exact": {{name: [float(e) for e in values] for name, values in exact.items()}},
    "overall": {{name: float(value) for name, value in overall.items()}},
    "window_mass": float(np.mean(window_mass)),
    "uniform_mass": float(np.mean(uniform_mass)),
    "compound": {{key: float(value) for key, value in compound.items()}},
    "probe": {{key: float(value) for key, value in probe_accuracy.items()}},
}}))
"""


def run_one() -> None:
    """In the child process: execute the chapter plus REPORT, print REPORT's line."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the cells that show this script's stored result are left out: they read OUT
    nb.cells = [c for c in nb.cells if OUT.name not in c.source]
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    for output in nb.cells[-1].outputs:
        if output.get("name") == "stdout" and MARK in output.text:
            print(output.text[output.text.index(MARK):].strip())
            return
    raise RuntimeError("the report cell printed nothing")


def run_shifted(shift: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlf-spread-") as ipython_dir:
        startup = Path(ipython_dir) / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(STARTUP, startup / "00-shift-seeds.py")
        env = dict(os.environ, IPYTHONDIR=ipython_dir, MLF_SEED_SHIFT=str(shift),
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        done = subprocess.run([sys.executable, __file__, "--one"], env=env,
                              capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"shift {shift} failed: {tail}")
    return json.loads(lines[-1][len(MARK):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one()
        return 0
    import torch

    results = {}
    for shift in args.shifts:
        start = time.perf_counter()
        results[str(shift)] = run_shifted(shift)
        print(f"shift {shift}: done in {time.perf_counter() - start:.0f} s", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "made_by": "python scripts/bahdanau_seed_spread.py --shifts "
                   + " ".join(map(str, args.shifts)),
        "torch": torch.__version__, "machine": platform.machine(),
        "shifts": results}, indent=1) + "\n")
    print(f"written to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
