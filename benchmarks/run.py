"""Run every benchmarks/bench_*.py and print one table (``make bench``).

Each module's ``run()`` returns a title and rows of (what, seconds, ratio, note); the ratio is
the row's time over the first row of its group (the mlf implementation), so > 1 means mlf is
faster. The table is also written to _build/benchmarks.md. Benchmarks are not tests: nothing
fails on time.
"""
import importlib.util
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> None:
    """All benchmarks, or those named (``python benchmarks/run.py unigram`` runs bench_unigram.py)."""
    lines = [f"Machine: {platform.machine()}, Python {platform.python_version()}", ""]
    benches = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}
    unknown = set(names) - set(benches)
    if unknown:
        sys.exit(f"no benchmark named {sorted(unknown)}; there are {list(benches)}")
    for name, path in benches.items():
        if names and name not in names:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        title, rows = module.run()
        lines += [f"### {path.stem}: {title}", "",
                  "| what | seconds | time / mlf time | note |", "|---|---:|---:|---|"]
        lines += [f"| {what} | {seconds:.2f} | {ratio} | {note} |" for what, seconds, ratio, note in rows]
        lines.append("")
    table = "\n".join(lines)
    print(table)
    out = HERE.parent / "_build" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table + "\n")
    print(f"(written to {out.relative_to(HERE.parent)})")


if __name__ == "__main__":
    main(sys.argv[1:])
