"""The Neural Turing Machine's architecture, the paper's Fig. 1, redrawn.

A controller network sits between the external input and the external output; through
read heads and write heads it reads from and writes to a memory matrix. A dashed line
separates the machine from the outside world, as in the paper.
"""
from __future__ import annotations

from mlf.diagrams import arrow, box, canvas


def draw_ntm(rows: int = 6, order: bool = True):
    """Draw Fig. 1 and return the matplotlib figure.

    ``rows`` is how many memory rows to sketch inside the memory box (1 to 12);
    ``order`` adds the numbers of the steps within one time step as this book's
    ``mlf.ntm.NTM`` takes them (controller, write, read, output).
    """
    from matplotlib.patches import Rectangle

    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 12:
        raise ValueError(f"rows must be an integer from 1 to 12, got {rows!r}")
    if not isinstance(order, bool):
        raise TypeError(f"order must be True or False, got {order!r}")
    fig, ax = canvas(10.0, 6.2, scale=0.8)
    # the machine's boundary: everything inside is one differentiable circuit
    ax.add_patch(Rectangle((2.45, 0.15), 5.1, 5.85, fill=False, linestyle="--",
                           edgecolor="0.35", linewidth=1.0))
    ax.text(7.45, 0.3, "Neural Turing Machine", ha="right", va="bottom",
            fontsize=8, color="0.35", style="italic")

    inp = box(ax, 0.1, 4.55, 1.9, 0.9, "External\ninput", kind="input")
    out = box(ax, 8.0, 4.55, 1.9, 0.9, "External\noutput", kind="output")
    ctrl = box(ax, 3.4, 4.3, 3.2, 1.35, "Controller\n(LSTM, or feed-forward)",
               kind="state")
    rh = box(ax, 2.75, 2.45, 2.0, 0.95, "Read heads", kind="attention")
    wh = box(ax, 5.25, 2.45, 2.0, 0.95, "Write heads", kind="attention")
    mem = box(ax, 2.75, 0.6, 4.5, 1.25, "", kind="memory")

    # the memory matrix: N rows (locations) of width M
    x0, y0, w, h = mem
    for i in range(1, rows):
        y = y0 + h * i / rows
        ax.plot([x0 + 0.08, x0 + w - 0.08], [y, y], color="0.45", linewidth=0.6)
    ax.text(x0 + w / 2, y0 + h / 2, r"Memory $\mathbf{M}_t$  ($N$ rows $\times$ $M$)",
            ha="center", va="center", fontsize=9,
            bbox={"facecolor": "#d9ead3", "edgecolor": "none", "pad": 1.5})

    def top(b, f=0.5):
        return (b[0] + b[2] * f, b[1] + b[3])

    def bottom(b, f=0.5):
        return (b[0] + b[2] * f, b[1])

    y_io = inp[1] + inp[3] / 2  # input and output arrows run level
    arrow(ax, (inp[0] + inp[2], y_io), (ctrl[0], y_io))
    arrow(ax, (ctrl[0] + ctrl[2], y_io), (out[0], y_io))
    ax.text((inp[0] + inp[2] + ctrl[0]) / 2, y_io + 0.12, r"$\mathbf{x}_t$",
            ha="center", va="bottom", fontsize=9)
    ax.text((ctrl[0] + ctrl[2] + out[0]) / 2, y_io + 0.12, r"$\mathbf{y}_t$",
            ha="center", va="bottom", fontsize=9)
    # the controller emits each head's parameters
    arrow(ax, bottom(ctrl, 0.22), top(rh, 0.4), r" $\mathbf{k},\beta,g,s,\gamma$")
    arrow(ax, bottom(ctrl, 0.78), top(wh, 0.6), r" $\ldots,\mathbf{e},\mathbf{a}$")
    # the read vector returns to the controller (and to the output)
    arrow(ax, top(rh, 0.12), bottom(ctrl, 0.04))
    ax.text(2.95, 3.9, r"$\mathbf{r}_t$", fontsize=9, ha="right", va="center")
    # heads and memory: write heads change it, read heads read it
    arrow(ax, bottom(wh, 0.5), top(mem, 0.72), r" erase, add")
    arrow(ax, top(mem, 0.22), bottom(rh, 0.3), "")
    arrow(ax, bottom(rh, 0.7), top(mem, 0.38), r" $w_t$")
    ax.text(2.9, 2.1, "read", fontsize=8, ha="left")

    if order:  # this book's order of the steps inside one time step
        marks = (((3.6, 5.42), "1"), ((7.02, 3.17), "2"), ((2.98, 3.17), "3"),
                 ((8.22, 5.22), "4"))
        for (x, y), n in marks:
            ax.text(x, y, n, fontsize=8, ha="center", va="center", color="white",
                    bbox={"boxstyle": "circle,pad=0.2", "facecolor": "#444444",
                          "edgecolor": "none"})
        ax.text(5.0, -0.05, "1 controller  2 write  3 read (sees the write)  4 output",
                ha="center", va="top", fontsize=8, color="0.25")
    ax.set_ylim(-0.35, 6.2)
    ax.set_title("Fig. 1 of the paper, redrawn: the Neural Turing Machine", fontsize=11)
    return fig
