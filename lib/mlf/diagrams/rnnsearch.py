"""RNNsearch, Bahdanau, Cho & Bengio's Fig. 1, redrawn: one decoder step t.

From the bottom up: the source words x_1 .. x_T; a forward and a backward RNN over them,
whose states are joined into one annotation h_j = [h→_j; h←_j] per word; the weights
α_{t,j} that mix the annotations into the context c_t = Σ_j α_{t,j} h_j; and the
decoder, whose new state s_t reads s_{t-1}, the previous word y_{t-1} and c_t, and emits
y_t.
The weights are computed from the previous state s_{t-1} (dashed arrow), so every output
word gets its own mixture of the source.
"""
from __future__ import annotations

from mlf.diagrams import arrow, box, canvas


def draw_rnnsearch(columns: int = 4, scores: bool = True):
    """Draw Fig. 1 for one target position t and return the matplotlib figure.

    ``columns`` is how many source positions to draw (2 to 6): 1, 2, ... and the last
    one, T, after an ellipsis. ``scores`` adds the dashed arrow from s_{t-1} into the
    weights, e_{t,j} = a(s_{t-1}, h_j), which the paper's figure leaves implicit.
    """
    is_int = isinstance(columns, int) and not isinstance(columns, bool)
    if not is_int or not 2 <= columns <= 6:
        raise ValueError(f"columns must be an integer from 2 to 6, got {columns!r}")
    if not isinstance(scores, bool):
        raise TypeError(f"scores must be True or False, got {scores!r}")
    names = [str(j) for j in range(1, columns)] + ["T"]
    step, w, half = 1.55, 1.2, 0.6  # column spacing, column width, one RNN box's width
    xs = [step * k for k in range(columns - 1)]
    xs.append(xs[-1] + 2.5)  # x_T comes after an ellipsis
    shift = max(0.35, 4.4 - (xs[-1] + w) / 2)  # leave room for the decoder on the left
    xs = [x + shift for x in xs]
    width = xs[-1] + w + 1.6  # room on the right for the rows' names
    fig, ax = canvas(width, 8.3, scale=0.75)

    # each column: x_j; h→_j (left) and h←_j (right), staggered so no arrow crosses a
    # box; the annotation h_j = [h→_j; h←_j] above them
    x_box, fwd, bwd, ann = [], [], [], []
    for x, j in zip(xs, names):
        x_box.append(box(ax, x, 0.25, w, 0.6, f"$x_{{{j}}}$", kind="input"))
        fwd.append(box(ax, x, 1.35, half, 0.6, rf"$\overrightarrow{{h}}_{{{j}}}$",
                       kind="state"))
        bwd.append(box(ax, x + w - half, 2.3, half, 0.6,
                       rf"$\overleftarrow{{h}}_{{{j}}}$", kind="state"))
        ann.append(box(ax, x, 3.35, w, 0.6, f"$h_{{{j}}}$", kind="memory"))
    dots_x = (xs[-2] + w + xs[-1]) / 2
    for y in (0.55, 1.65, 2.6, 3.65):
        ax.text(dots_x, y, r"$\cdots$", ha="center", va="center", fontsize=11)

    def centre(b):
        return (b[0] + b[2] / 2, b[1] + b[3] / 2)

    for k, (xb, f, b, a) in enumerate(zip(x_box, fwd, bwd, ann)):
        left, right = f[0] + half / 2, b[0] + half / 2
        arrow(ax, (left, xb[1] + xb[3]), (left, f[1]))  # x_j into the forward RNN
        arrow(ax, (right, xb[1] + xb[3]), (right, b[1]))  # ... and the backward one
        arrow(ax, (left, f[1] + f[3]), (left, a[1]))  # both halves make h_j
        arrow(ax, (right, b[1] + b[3]), (right, a[1]))
        if k + 2 < columns:  # to the next column (the last one comes after the dots)
            nf, nb = fwd[k + 1], bwd[k + 1]
            arrow(ax, (f[0] + half, centre(f)[1]), (nf[0], centre(nf)[1]))  # rightward
            arrow(ax, (nb[0], centre(nb)[1]), (b[0] + half, centre(b)[1]))  # leftward
    y_f, y_b = centre(fwd[0])[1], centre(bwd[0])[1]
    arrow(ax, (fwd[-2][0] + half, y_f), (dots_x - 0.3, y_f))
    arrow(ax, (dots_x + 0.3, y_f), (fwd[-1][0], y_f))
    arrow(ax, (bwd[-1][0], y_b), (dots_x + 0.3, y_b))
    arrow(ax, (dots_x - 0.3, y_b), (bwd[-2][0] + half, y_b))
    for name, y in (("source words", 0.55), ("forward RNN", y_f), ("backward RNN", y_b),
                    ("annotations", 3.65)):
        ax.text(xs[-1] + w + 0.15, y, name, ha="left", va="center", fontsize=8,
                color="0.35", style="italic")

    # the weights α_{t,j} mix the annotations into one context vector
    mid = (xs[0] + xs[-1] + w) / 2  # the decoder stands over the middle of the source
    ctx = box(ax, mid - 1.65, 4.85, 3.3, 0.75, r"$c_t = \sum_j \alpha_{t,j}\, h_j$",
              kind="attention", fontsize=10)
    for k, (a, j) in enumerate(zip(ann, names)):
        start = (centre(a)[0], a[1] + a[3])
        end = (ctx[0] + ctx[2] * (k + 0.5) / columns, ctx[1])
        arrow(ax, start, end, color="#b03030")
        at = 0.3  # the label sits 30% of the way up its arrow
        x = start[0] + at * (end[0] - start[0]) + 0.06
        y = start[1] + at * (end[1] - start[1])
        ax.text(x, y, rf"$\alpha_{{t,{j}}}$", fontsize=8, color="#b03030", ha="left",
                va="center")

    # the decoder: s_t = f(s_{t-1}, y_{t-1}, c_t), and y_t from it
    left = mid - 4.0
    s_prev = box(ax, left, 6.35, 1.3, 0.65, "$s_{t-1}$", kind="state")
    s_t = box(ax, mid - 0.65, 6.35, 1.3, 0.65, "$s_t$", kind="state")
    y_prev = box(ax, left, 7.45, 1.3, 0.6, "$y_{t-1}$", kind="output")
    y_t = box(ax, mid - 0.65, 7.45, 1.3, 0.6, "$y_t$", kind="output")
    arrow(ax, (s_prev[0] + s_prev[2], centre(s_prev)[1]), (s_t[0], centre(s_t)[1]))
    arrow(ax, (centre(s_prev)[0], s_prev[1] + s_prev[3]),
          (centre(y_prev)[0], y_prev[1]))
    arrow(ax, (y_prev[0] + y_prev[2], y_prev[1] + 0.1), (s_t[0], s_t[1] + s_t[3] - 0.1))
    arrow(ax, (centre(ctx)[0], ctx[1] + ctx[3]), (centre(s_t)[0], s_t[1]))
    arrow(ax, (centre(s_t)[0], s_t[1] + s_t[3]), (centre(y_t)[0], y_t[1]))
    ax.text(s_t[0] + s_t[2] + 0.15, centre(s_t)[1],
            r"$s_t = f(s_{t-1}, y_{t-1}, c_t)$", fontsize=9, va="center")
    if scores:  # e_{t,j} = a(s_{t-1}, h_j): the previous state asks, each h_j answers
        arrow(ax, (centre(s_prev)[0], s_prev[1]), (ctx[0], centre(ctx)[1]),
              color="0.35", linestyle="--")
        ax.text(ctx[0] + ctx[2] + 0.2, centre(ctx)[1],
                r"$e_{t,j} = a(s_{t-1}, h_j)$" + "\n"
                r"$\alpha_{t,j} = \mathrm{softmax}_j\, e_{t,j}$",
                fontsize=8, color="0.25", va="center")
    return fig
