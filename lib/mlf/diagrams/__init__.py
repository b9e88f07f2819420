"""Architecture diagrams the papers are known by, redrawn with matplotlib.

Each paper's diagram lives in a module of its own (``mlf.diagrams.rnnsearch``, ...) and
is drawn from the three primitives here, so every diagram in the book looks alike: a
canvas in data units, labelled boxes, and arrows between points.
"""
from __future__ import annotations

# soft fills that keep black text legible; a colour names a kind of block
COLORS = {"input": "#dbe9f6", "state": "#fde2c8", "attention": "#f8d0d0",
          "memory": "#d9ead3", "output": "#e6dcf0", "norm": "#fff2b3",
          "plain": "#eeeeee"}


def canvas(width: float, height: float, scale: float = 0.9):
    """A blank axes ``width`` x ``height`` data units, no ticks, equal aspect."""
    import matplotlib.pyplot as plt

    if width <= 0 or height <= 0:
        raise ValueError("canvas needs a positive width and height, "
                         f"got {width} x {height}")
    fig, ax = plt.subplots(figsize=(width * scale, height * scale))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, x: float, y: float, w: float, h: float, text: str = "", kind: str = "plain",
        fontsize: float = 9, **text_kw):
    """A rounded box, lower-left corner at (x, y), filled by ``kind``, text centred."""
    from matplotlib.patches import FancyBboxPatch

    if kind not in COLORS:
        raise ValueError(f"unknown box kind {kind!r}; expected one of {sorted(COLORS)}")
    ax.add_patch(FancyBboxPatch((x, y), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLORS[kind], edgecolor="black",
                                linewidth=0.8))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                **text_kw)
    return (x, y, w, h)


def arrow(ax, start, end, text: str = "", color: str = "black", style: str = "-|>",
          fontsize: float = 8, **kw):
    """An arrow from point ``start`` to point ``end``, with an optional label midway."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10,
                                 color=color, linewidth=0.9, shrinkA=0, shrinkB=0,
                                 **kw))
    if text:
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        ax.text(mid[0], mid[1], text, fontsize=fontsize, ha="left", va="center",
                color=color)
