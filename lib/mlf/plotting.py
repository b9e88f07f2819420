"""One plotting style for the whole book: readable on the site's light and dark themes."""
from __future__ import annotations

import matplotlib as mpl

BOOK_STYLE = {
    # an opaque white figure stays readable when the page around it turns dark
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]),
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings to every figure drawn after this call."""
    mpl.rcParams.update(BOOK_STYLE)


def plot_segmentations(rows, labels=None, ax=None, title=None):
    """Draw each row of pieces as a strip of adjacent boxes, one box per piece.

    ``rows`` is a list of segmentations, each a list of non-empty strings (``["low", "est"]``);
    ``labels`` names the rows on the left. Box widths follow the number of characters, so
    the same word segmented differently lines up from row to row.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = [list(r) for r in rows]
    if not rows or any(not r or not all(isinstance(p, str) and p for p in r) for r in rows):
        raise ValueError("rows must be a non-empty list of segmentations, each a non-empty "
                         "list of non-empty strings")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows")
    width = max(sum(len(p) for p in r) for r in rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.22 * width, 14), 0.5 + 0.45 * len(rows)))
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for y, pieces in enumerate(rows):
        x = 0
        for k, piece in enumerate(pieces):
            ax.add_patch(Rectangle((x, -y - 0.4), len(piece), 0.8, facecolor=colors[k % len(colors)],
                                   alpha=0.25, edgecolor="black", linewidth=0.8))
            ax.text(x + len(piece) / 2, -y, piece, ha="center", va="center", family="monospace")
            x += len(piece)
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.set_yticks([-y for y in range(len(rows))], labels if labels is not None else [""] * len(rows))
    ax.set_xticks([])
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return ax
