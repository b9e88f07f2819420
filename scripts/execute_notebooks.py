"""Re-execute notebooks in place so their stored outputs match the code (``make outputs``).

Usage: python scripts/execute_notebooks.py [NOTEBOOK ...]   (default: every notebook)

Each notebook runs in a fresh kernel with its own folder as working directory, as nbval runs
it. Progress bars are stored as the single line a terminal would show, and no timing or
widget metadata is kept, so a re-run changes the file only where the outputs changed.
"""
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
LAST_UPDATE = re.compile(r"[^\n]*\r(?!\n)")  # text overwritten by a later carriage return


def clean_stream(text: str) -> str:
    return LAST_UPDATE.sub("", text.replace("\r\n", "\n"))


def merge_streams(outputs: list) -> list:
    """Join consecutive outputs of one stream (as Jupyter shows them) and keep final lines.

    A blank piece of a stream that arrives after another stream's output (tqdm's closing
    newline after a print) joins the last piece of its own stream, so the page shows no empty
    box; nbval joins each stream's pieces before comparing, so the comparison is unchanged.
    """
    merged = []
    for out in outputs:
        if out.output_type == "stream":
            same = [m for m in merged if m.output_type == "stream" and m.name == out.name]
            if same and (merged[-1] is same[-1] or not out.text.strip()):
                same[-1].text += out.text
                continue
        merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            out.text = clean_stream(out.text)
    return merged


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
            cell.outputs = merge_streams(cell.outputs)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return seconds


def main(args: list[str]) -> None:
    paths = [Path(a).resolve() for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            sys.exit(f"not a notebook: {path}")
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
