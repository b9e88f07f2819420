"""Helpers for showing things inside a chapter: library source and progress bars."""
from __future__ import annotations

import inspect
import sys

from tqdm import tqdm


def show_source(obj):
    """Render the source of a ``lib`` function or class as a highlighted code block.

    Chapters call this instead of copying code, so the page shows exactly what runs.
    """
    from IPython.display import Markdown

    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError):
        raise ValueError("show_source expects a function, class or module defined in "
                         f"Python, got {obj!r}") from None
    return Markdown(f"```python\n{source}```")


def progress(iterable=None, **kwargs) -> tqdm:
    """A text progress bar (not a widget): a saved notebook keeps one clean line."""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("ascii", True)
    kwargs.setdefault("mininterval", 0.5)
    kwargs.setdefault("dynamic_ncols", False)
    kwargs.setdefault("ncols", 80)
    return tqdm(iterable, **kwargs)
