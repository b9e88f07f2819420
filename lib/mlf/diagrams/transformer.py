"""The Transformer's figures, redrawn: the model (the paper's Fig. 1) and its attention
(Fig. 2: scaled dot-product attention, and multi-head attention).

Fig. 1 is drawn as the paper draws it, post-norm ("Add & Norm" after each sub-layer),
with the three uses of attention named beside their blocks, and with a mark on the three
places that share one weight matrix: the two embeddings and the pre-softmax layer.
"""
from __future__ import annotations

from mlf.diagrams import arrow, box, canvas


def _line(ax, points, head: bool = True, **kw):
    """A path through ``points``: plain segments, with an arrow head on the last one."""
    xs, ys = zip(*points)
    color = kw.get("color", "black")
    if len(points) > 2 or not head:
        last = -1 if head else len(points)
        ax.plot(xs[:last] if head else xs, ys[:last] if head else ys, color=color,
                linewidth=0.9, solid_capstyle="butt")
    if head:
        arrow(ax, points[-2], points[-1], color=color)


def _plus(ax, x, y, r=0.17):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="black", linewidth=0.9))
    ax.plot([x - r * 0.6, x + r * 0.6], [y, y], color="black", linewidth=0.9)
    ax.plot([x, x], [y - r * 0.6, y + r * 0.6], color="black", linewidth=0.9)


def _wave(ax, x, y, w=0.5, h=0.18):
    """The paper's little sine wave that stands for the positional encoding."""
    import numpy as np

    t = np.linspace(0, 2 * np.pi, 40)
    ax.plot(x + w * t / (2 * np.pi), y + h * np.sin(t), color="black", linewidth=0.9)


def draw_transformer(annotate: bool = True):
    """Fig. 1, the encoder-decoder Transformer; returns the matplotlib figure.

    ``annotate`` names the three uses of attention and marks the weight matrix E that
    the two embeddings and the pre-softmax linear layer share.
    """
    from matplotlib.patches import FancyBboxPatch

    if not isinstance(annotate, bool):
        raise TypeError(f"annotate must be True or False, got {annotate!r}")
    fig, ax = canvas(13.4, 12.6, scale=0.6)
    w = 3.2  # width of a block
    enc_x, dec_x = 2.4, 7.5  # left edges of the two columns
    ex, dx = enc_x + w / 2, dec_x + w / 2  # their centres

    def frame(x, y0, y1, label, label_y, side):
        ax.add_patch(FancyBboxPatch((x - 0.35, y0), w + 0.7, y1 - y0,
                                    boxstyle="round,pad=0.02,rounding_size=0.2",
                                    facecolor="#f4f4f4", edgecolor="0.3",
                                    linewidth=1.0))
        lx = x - 0.5 if side == "left" else x + w + 0.5
        ax.text(lx, label_y, label, ha="right" if side == "left" else "left",
                va="center", fontsize=12)

    def sublayer(x, y, text, kind, h=0.75):
        """A sub-layer and the Add & Norm above it, with the residual path around both;
        the stream it reads branches off 0.5 below it."""
        body = box(ax, x, y, w, h, text, kind=kind)
        norm = box(ax, x, y + h + 0.35, w, 0.45, "Add & Norm", kind="norm")
        side = x - 0.2  # the residual connection runs left of the block
        _line(ax, [(x + w / 2, y - 0.5), (side, y - 0.5), (side, norm[1] + 0.22),
                   (x, norm[1] + 0.22)])
        arrow(ax, (x + w / 2, y + h), (x + w / 2, norm[1]))
        return body, norm

    def fan(x, y, from_y):
        """Queries, keys and values: three copies of one stream enter self-attention."""
        arrow(ax, (x + w / 2, y - 0.55), (x + w / 2, from_y), style="-")
        for f in (0.2, 0.5, 0.8):
            arrow(ax, (x + w / 2, from_y), (x + w * f, y))

    def embedding(x, text, label):
        ax.text(x + w / 2, 0.5, label, ha="center", va="top", fontsize=10)
        b = box(ax, x, 0.85, w, 0.6, text, kind="input")
        arrow(ax, (x + w / 2, 0.55), (x + w / 2, b[1]))
        _plus(ax, x + w / 2, 2.05)
        arrow(ax, (x + w / 2, b[1] + b[3]), (x + w / 2, 2.05 - 0.17))
        return b

    def positions(x_wave, x_plus, x_text):
        _wave(ax, x_wave, 2.05)
        arrow(ax, (x_wave + 0.6 if x_wave < x_plus else x_wave - 0.1, 2.05),
              (x_plus, 2.05))
        ax.text(x_text, 2.35, "Positional\nEncoding", ha="center", va="bottom",
                fontsize=8)

    # --- encoder: N x (self-attention, feed-forward) ---------------------------------
    emb_in = embedding(enc_x, "Input Embedding", "Inputs")
    positions(enc_x - 1.5, ex - 0.17, enc_x - 1.2)
    frame(enc_x, 2.5, 7.25, r"$N\times$", 5.9, "left")
    enc_attn, enc_n1 = sublayer(enc_x, 3.3, "Multi-Head\nAttention", "attention")
    arrow(ax, (ex, 2.22), (ex, 2.8), style="-")
    fan(enc_x, enc_attn[1], 3.0)
    enc_ff, enc_n2 = sublayer(enc_x, 5.5, "Feed\nForward", "memory")
    arrow(ax, (ex, enc_n1[1] + enc_n1[3]), (ex, enc_ff[1]))

    # --- decoder: N x (masked self-attention, cross-attention, feed-forward) --------
    emb_out = embedding(dec_x, "Output Embedding", "Outputs\n(shifted right)")
    positions(dec_x + w + 0.9, dx + 0.17, dec_x + w + 1.2)
    frame(dec_x, 2.5, 9.45, r"$\times N$", 8.1, "right")
    self_attn, d_n1 = sublayer(dec_x, 3.3, "Masked\nMulti-Head Attention", "attention")
    arrow(ax, (dx, 2.22), (dx, 2.8), style="-")
    fan(dec_x, self_attn[1], 3.0)
    cross, d_n2 = sublayer(dec_x, 5.5, "Multi-Head\nAttention", "attention")
    # queries from the decoder below; keys and values from the encoder's output
    _line(ax, [(dx, d_n1[1] + d_n1[3]), (dx, 5.2), (dec_x + w * 0.8, 5.2),
               (dec_x + w * 0.8, cross[1])])
    _line(ax, [(ex, enc_n2[1] + enc_n2[3]), (ex, 7.75), (6.6, 7.75), (6.6, 5.2),
               (dec_x + w * 0.35, 5.2), (dec_x + w * 0.35, cross[1])])
    arrow(ax, (dec_x + w * 0.12, 5.2), (dec_x + w * 0.12, cross[1]))
    ffn, d_n3 = sublayer(dec_x, 7.7, "Feed\nForward", "memory")
    arrow(ax, (dx, d_n2[1] + d_n2[3]), (dx, ffn[1]))
    lin = box(ax, dec_x, 9.85, w, 0.55, "Linear", kind="output")
    arrow(ax, (dx, d_n3[1] + d_n3[3]), (dx, lin[1]))
    soft = box(ax, dec_x, 10.75, w, 0.55, "Softmax", kind="output")
    arrow(ax, (dx, lin[1] + lin[3]), (dx, soft[1]))
    arrow(ax, (dx, soft[1] + soft[3]), (dx, 11.8))
    ax.text(dx, 11.85, "Output\nProbabilities", ha="center", va="bottom", fontsize=10)

    if annotate:
        note = dict(fontsize=8, style="italic", color="#7a1f1f", va="center")
        ax.text(enc_x - 0.45, enc_attn[1] + 0.38, "(1) encoder\nself-attention",
                ha="right", **note)
        ax.text(dec_x + w + 0.5, self_attn[1] + 0.38, "(2) masked decoder\n"
                "self-attention:\nposition i sees j ≤ i", ha="left", **note)
        ax.text(dec_x + w + 0.5, cross[1] + 0.38, "(3) encoder-decoder\nattention: "
                "queries from\nthe decoder, keys and\nvalues from the encoder",
                ha="left", **note)
        # paper §3.4: one matrix for both embeddings and the pre-softmax linear layer
        blue = "#1f4e79"
        for b in (emb_in, emb_out, lin):
            ax.text(b[0] + b[2] - 0.05, b[1] + b[3] - 0.02, "E", fontsize=7,
                    ha="center", va="center", color="white", weight="bold",
                    bbox={"boxstyle": "circle,pad=0.15", "facecolor": blue,
                          "edgecolor": "none"})
        ax.text(0.3, 10.6, "E: one weight matrix, shared by\nthe two embeddings "
                r"(used as $E\sqrt{d_{model}}$)" "\nand the pre-softmax Linear "
                r"(logits $y\,E^\top$)", ha="left", va="center", fontsize=8,
                color=blue)
    return fig


def draw_attention():
    """Fig. 2: scaled dot-product attention (left) and multi-head attention (right)."""
    fig, ax = canvas(12.0, 7.6, scale=0.62)
    # --- scaled dot-product attention ----------------------------------------------
    x0, w = 1.0, 2.6
    cx = x0 + w / 2
    ax.text(cx, 7.2, "Scaled Dot-Product Attention", ha="center", fontsize=10,
            weight="bold")
    for x, label in ((x0 + 0.3, "Q"), (x0 + 1.1, "K"), (x0 + w + 0.25, "V")):
        ax.text(x, 0.25, label, ha="center", va="bottom", fontsize=10)
    mm1 = box(ax, x0, 1.1, w - 0.8, 0.5, "MatMul", kind="attention")
    arrow(ax, (x0 + 0.3, 0.6), (x0 + 0.3, mm1[1]))
    arrow(ax, (x0 + 1.1, 0.6), (x0 + 1.1, mm1[1]))
    steps = [(r"Scale $1/\sqrt{d_k}$", "plain"), ("Mask (opt.)", "norm"),
             ("SoftMax", "output")]
    prev, y = mm1, 2.1
    for text, kind in steps:
        b = box(ax, x0, y, w - 0.8, 0.5, text, kind=kind)
        arrow(ax, (prev[0] + prev[2] / 2, prev[1] + prev[3]), (b[0] + b[2] / 2, b[1]))
        prev, y = b, y + 1.0
    mm2 = box(ax, x0 + 0.4, y, w - 0.4, 0.5, "MatMul", kind="attention")
    mid = prev[0] + prev[2] / 2
    arrow(ax, (mid, prev[1] + prev[3]), (mid, mm2[1]))
    _line(ax, [(x0 + w + 0.25, 0.6), (x0 + w + 0.25, y - 0.3), (x0 + w - 0.2, y - 0.3),
               (x0 + w - 0.2, mm2[1])])
    arrow(ax, (mm2[0] + mm2[2] / 2, mm2[1] + mm2[3]), (mm2[0] + mm2[2] / 2, y + 0.95))
    ax.text(cx + 0.3, 6.75, r"$\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$", ha="center",
            va="center", fontsize=9)

    # --- multi-head attention ------------------------------------------------------
    x1, w1 = 6.4, 4.6
    ax.text(x1 + w1 / 2, 7.2, "Multi-Head Attention", ha="center", fontsize=10,
            weight="bold")
    cols = [(x1 + 0.05, "V"), (x1 + 1.65, "K"), (x1 + 3.25, "Q")]
    for x, label in cols:
        ax.text(x + 0.6, 0.25, label, ha="center", va="bottom", fontsize=10)
        for k in (2, 1, 0):  # h stacked copies, one per head
            box(ax, x + 0.12 * k, 1.1 + 0.12 * k, 1.2, 0.5, "Linear" if k == 0 else "",
                kind="input")
        arrow(ax, (x + 0.6, 0.6), (x + 0.6, 1.1))
    for k in (2, 1, 0):
        sdpa = box(ax, x1 + 0.12 * k, 2.6 + 0.12 * k, w1 - 0.1, 0.8,
                   "Scaled Dot-Product\nAttention" if k == 0 else "", kind="attention")
    for x, _ in cols:
        arrow(ax, (x + 0.6, 1.6), (x + 0.6, sdpa[1]))
    ax.text(x1 + w1 + 0.2, 3.0, "h", fontsize=11, va="center")
    concat = box(ax, x1 + 1.0, 4.3, w1 - 2.0, 0.5, "Concat", kind="plain")
    arrow(ax, (x1 + w1 / 2, sdpa[1] + sdpa[3]), (x1 + w1 / 2, concat[1]))
    out = box(ax, x1 + 1.0, 5.3, w1 - 2.0, 0.5, r"Linear  $W^O$", kind="input")
    arrow(ax, (x1 + w1 / 2, concat[1] + concat[3]), (x1 + w1 / 2, out[1]))
    arrow(ax, (x1 + w1 / 2, out[1] + out[3]), (x1 + w1 / 2, 6.4))
    ax.text(x1 + w1 / 2, 6.75, r"head $i$: its own $W_i^Q, W_i^K, W_i^V$, width "
            r"$d_k = d_{model}/h$", ha="center", va="center", fontsize=9)
    return fig
