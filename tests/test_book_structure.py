"""Every chapter keeps the book's contract: listed, carded, asserted, executed, self-contained."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CARD_FIELDS = ["Paper", "Authors", "Year", "Link", "Claim we reproduce", "CPU runtime"]
IGNORE_TAG = "nbval-ignore-output"
SEED_EXACT_TAG = "seed-exact"  # make seeds: this cell checks a stored run bit for bit


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


def source(cell):
    return "".join(cell["source"])


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).strip()]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, json.loads(request.param.read_text())


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


def test_toc_entries_exist():
    for entry in toc_files():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in ("", ".md", ".ipynb")), entry


def test_notebook_is_in_toc(notebook):
    path, _ = notebook
    assert path.relative_to(ROOT).with_suffix("").as_posix() in toc_files()


def test_paper_card(notebook):
    _, nb = notebook
    first = source(nb["cells"][0])
    assert nb["cells"][0]["cell_type"] == "markdown" and "Paper card" in first
    for field in CARD_FIELDS:
        assert re.search(rf"\*\*{re.escape(field)}\*\*\s*\|\s*\S", first), f"paper card lacks {field}"
    assert re.search(r"\*\*Link\*\*\s*\|\s*<?https?://", first), "paper card link is not a URL"


def test_has_asserts_and_figure(notebook):
    _, nb = notebook
    assert any(re.search(r"^\s*assert\b", source(c), re.M) for c in code_cells(nb))
    assert any("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c["outputs"])


def test_stored_outputs_are_complete(notebook):
    _, nb = notebook
    cells = code_cells(nb)
    assert all(c["execution_count"] is not None for c in cells), "run `make outputs`"
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "outputs come from one top-to-bottom run"
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert "widgets" not in nb["metadata"]


@pytest.mark.parametrize("tag", [IGNORE_TAG, SEED_EXACT_TAG])
def test_tagged_cells_say_why(notebook, tag):
    _, nb = notebook
    for cell in code_cells(nb):
        if tag in cell["metadata"].get("tags", []):
            assert re.search(rf"#\s*{tag}:\s*\S", source(cell)), \
                f"a cell tagged {tag} needs a '# {tag}: <why>' comment"


def test_installs_and_writes_nothing(notebook):
    _, nb = notebook
    for cell in code_cells(nb):
        text = source(cell)
        assert not re.search(r"^\s*[!%]\s*(pip|conda|apt|uv)\b|pip install", text, re.M), text[:80]
        if "tempfile" not in text:
            assert not re.search(r"open\([^)]*['\"][wa]b?['\"]|\.savefig\(|\.to_csv\(|torch\.save\(",
                                 text), f"writes a file outside a temporary folder: {text[:80]}"


def test_no_machine_paths_in_notebooks(notebook):
    path, _ = notebook
    assert not re.search(r"/(work|tmp|home|root)/", path.read_text())


def reading_list(path):
    rows = re.findall(r"^\| (\d+) \|(.*)\|$", path.read_text(), re.M)
    return {int(n): rest for n, rest in rows}


@pytest.mark.parametrize("page", ["intro.md", "README.md"])
def test_reading_list_links_every_chapter(page):
    rows = reading_list(ROOT / page)
    assert sorted(rows) == list(range(1, 30)), f"{page} must list the 29 reading-list items"
    for nb in NOTEBOOKS:
        number = int(nb.name.split("_")[0])
        assert f"notebooks/{nb.name}" in rows[number], f"{page}: item {number} should link {nb.name}"
    for number, rest in rows.items():
        chapter = re.search(r"\(notebooks/([^)]+)\)", rest)
        if chapter:
            assert (ROOT / "notebooks" / chapter.group(1)).exists(), f"{page}: broken link {chapter.group(1)}"
        else:
            assert "planned" in rest, f"{page}: item {number} has neither a chapter nor 'planned'"


# The page shows about 88 characters of code per line; longer lines hide behind a scroll bar.
MAX_LINE = 88
LIB_FILES = sorted((ROOT / "lib" / "mlf").rglob("*.py"))


def long_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > MAX_LINE]


def test_notebook_code_fits_the_page(notebook):
    _, nb = notebook
    wide = [line for cell in code_cells(nb) for line in long_lines(source(cell))]
    assert not wide, f"{len(wide)} code lines over {MAX_LINE} characters, e.g. {wide[0]!r}"


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_code_fits_the_page(path):
    wide = long_lines(path.read_text())  # what show_source renders in a chapter
    assert not wide, f"{len(wide)} lines over {MAX_LINE} characters, e.g. {wide[0]!r}"
