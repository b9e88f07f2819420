"""One plotting style for the whole book, readable on the light and the dark theme."""
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
    "axes.prop_cycle": mpl.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                         "#9467bd", "#8c564b"]),
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings to every figure drawn after this call."""
    mpl.rcParams.update(BOOK_STYLE)


def plot_segmentations(rows, labels=None, ax=None, title=None):
    """Draw each row of pieces as a strip of adjacent boxes, one box per piece.

    ``rows`` is a list of segmentations, each a list of non-empty strings
    (``["low", "est"]``); ``labels`` names the rows on the left. Box widths follow the
    number of characters, so one word segmented differently lines up from row to row.
    Two colours alternate so that neighbouring pieces stand apart; a colour carries no
    other meaning.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = [list(r) for r in rows]
    if not rows or any(not r or not all(isinstance(p, str) and p for p in r)
                       for r in rows):
        raise ValueError("rows must be a non-empty list of segmentations, each a "
                         "non-empty list of non-empty strings")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows")
    width = max(sum(len(p) for p in r) for r in rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.22 * width, 14),
                                      0.5 + 0.45 * len(rows)))
    # two colours alternate: they only mark where one piece ends and the next begins
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"][:2]
    for y, pieces in enumerate(rows):
        x = 0
        for k, piece in enumerate(pieces):
            ax.add_patch(Rectangle((x, -y - 0.4), len(piece), 0.8,
                                   facecolor=colors[k % len(colors)], alpha=0.25,
                                   edgecolor="black", linewidth=0.8))
            ax.text(x + len(piece) / 2, -y, piece, ha="center", va="center",
                    family="monospace")
            x += len(piece)
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.set_yticks([-y for y in range(len(rows))],
                  labels if labels is not None else [""] * len(rows))
    ax.set_xticks([])
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def plot_alignment(weights, source, target, ax=None, title=None, reference=None):
    """Heatmap of attention weights, the paper's Fig. 3: one row per target word, one
    column per source word, white = 1, black = 0 (the paper's grey scale).

    ``weights`` is a (len(target), len(source)) array; ``reference`` optionally gives,
    per target word, the source position it truly translates (or None), drawn as a red
    outline.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    weights = np.asarray(weights, dtype=float)
    source, target = list(source), list(target)
    if weights.ndim != 2 or weights.shape != (len(target), len(source)):
        raise ValueError(f"weights must have shape (len(target), len(source)) = "
                         f"({len(target)}, {len(source)}), got {weights.shape}")
    if reference is not None and len(reference) != len(target):
        raise ValueError(f"reference has {len(reference)} entries for {len(target)} "
                         "target words")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.3 * len(source) + 2, 0.3 * len(target) + 1.5))
    ax.imshow(weights, cmap="gray", vmin=0, vmax=1, aspect="equal")
    ax.set_xticks(range(len(source)), source, rotation=90)
    ax.set_yticks(range(len(target)), target)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.grid(False)
    for i, j in enumerate(reference or []):
        if j is not None:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                   edgecolor="#d62728", linewidth=1.2))
    ax.set_xlabel("source (English)")
    ax.set_ylabel("output (German)")
    if title:
        ax.set_title(title)
    return ax
