"""The Transformer of Vaswani et al. 2017, small enough to hold in your head.

Notation follows the paper: d_model, h heads of size d_k = d_v = d_model / h, d_ff for the
feed-forward width, N layers. Three parts are swappable so later chapters can change them
without copying the model:

* the positional scheme: ``pos_encoding`` adds to the embeddings (sinusoidal or learned), and
  ``rotate`` (a callable on queries/keys, e.g. RoPE) acts inside attention;
* key/value head grouping: ``n_kv_heads`` < ``n_heads`` shares each key/value head among a
  group of query heads (grouped-query attention; 1 is multi-query attention);
* the feed-forward block: ``ffn`` is a factory returning any ``nn.Module`` that maps
  (B, T, d_model) to (B, T, d_model), e.g. a mixture of experts.

Layers are post-norm as in the paper: x = LayerNorm(x + Sublayer(x)).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def scaled_dot_product_attention(q, k, v, mask=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, paper eq. (1).

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v); mask: bool, broadcastable to
    (..., T_q, T_k), True where attention is allowed. Returns (output (..., T_q, d_v),
    weights (..., T_q, T_k)).
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}; "
                         "expected q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v)")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    # subtle: a query row that may attend to nothing becomes NaN; F.scaled_dot_product_attention
    # does the same, so callers must never mask a whole row (padding masks only mask keys).
    return weights @ v, weights


def causal_mask(t: int, device=None) -> torch.Tensor:
    """(t, t) bool, True on and below the diagonal: position i may attend to j <= i."""
    if not isinstance(t, int) or t < 1:
        raise ValueError(f"sequence length must be a positive integer, got {t!r}")
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, 1, 1, t) bool, True for real tokens: keys beyond each sequence's length are hidden."""
    if lengths.ndim != 1 or (lengths < 1).any() or (lengths > t).any():
        raise ValueError(f"lengths must be a 1-d tensor of values in 1..{t}, got {lengths.tolist()}")
    return (torch.arange(t, device=lengths.device) < lengths[:, None])[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O with head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, bias: bool = True):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if n_kv_heads < 1 or n_heads % n_kv_heads:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        self.h, self.h_kv, self.d_k = n_heads, n_kv_heads, d_model // n_heads
        self.w_q = nn.Linear(d_model, n_heads * self.d_k, bias=bias)  # all W_i^Q side by side
        self.w_k = nn.Linear(d_model, n_kv_heads * self.d_k, bias=bias)
        self.w_v = nn.Linear(d_model, n_kv_heads * self.d_k, bias=bias)
        self.w_o = nn.Linear(n_heads * self.d_k, d_model, bias=bias)
        self.weights = None  # the last attention weights (B, h, T_q, T_k), for plots

    def forward(self, x_q, x_kv, mask=None, rotate: Callable | None = None):
        """x_q: (B, T_q, d_model), x_kv: (B, T_k, d_model) -> (B, T_q, d_model)."""
        b, t_q, _ = x_q.shape
        q = self.w_q(x_q).view(b, t_q, self.h, self.d_k).transpose(1, 2)  # (B, h, T_q, d_k)
        k = self.w_k(x_kv).view(b, -1, self.h_kv, self.d_k).transpose(1, 2)  # (B, h_kv, T_k, d_k)
        v = self.w_v(x_kv).view(b, -1, self.h_kv, self.d_k).transpose(1, 2)
        if rotate is not None:  # e.g. rotary position embeddings act on queries and keys
            q, k = rotate(q), rotate(k)
        group = self.h // self.h_kv  # query heads sharing one key/value head
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, h, T_k, d_k)
        out, self.weights = scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(out.transpose(1, 2).reshape(b, t_q, self.h * self.d_k))


class LayerNorm(nn.Module):
    """LN(x) = gamma * (x - mean) / sqrt(var + eps) + beta over the last dimension.

    # subtle: var is the biased variance (divide by d, not d - 1), as in nn.LayerNorm;
    # x.std() would use d - 1.
    """

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.gamma, self.beta, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, paper eq. (2), applied at every position."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.w_1, self.w_2, self.dropout = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model), nn.Dropout(dropout)

    def forward(self, x):  # (B, T, d_model) -> (B, T, d_model)
        return self.w_2(self.dropout(F.relu(self.w_1(x))))


def sinusoidal_encoding(t: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...); shape (t, d_model)."""
    if d_model % 2:
        raise ValueError(f"d_model must be even for sinusoidal encodings, got {d_model}")
    pos = torch.arange(t, dtype=torch.float32)[:, None]  # (t, 1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)  # (d_model/2,)
    pe = torch.zeros(t, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * inv_freq), torch.cos(pos * inv_freq)
    return pe


class SinusoidalPositions(nn.Module):
    """Adds the fixed sinusoidal encodings (no parameters)."""

    def __init__(self, d_model: int, max_len: int = 1024):
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)

    def forward(self, x):  # (B, T, d_model)
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of length {x.shape[1]} exceeds max_len {self.pe.shape[0]}")
        return x + self.pe[: x.shape[1]]


class LearnedPositions(nn.Module):
    """Adds a learned embedding per position (the paper's Table 3, row E)."""

    def __init__(self, d_model: int, max_len: int = 1024):
        super().__init__()
        self.pe = nn.Embedding(max_len, d_model)

    def forward(self, x):
        if x.shape[1] > self.pe.num_embeddings:
            raise ValueError(f"sequence of length {x.shape[1]} exceeds max_len {self.pe.num_embeddings}")
        return x + self.pe(torch.arange(x.shape[1], device=x.device))


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward; each wrapped as LayerNorm(x + Dropout(Sublayer(x)))."""

    def __init__(self, d_model, n_heads, ffn: nn.Module, dropout=0.0, n_kv_heads=None):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.ffn, self.norm1, self.norm2 = ffn, LayerNorm(d_model), LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None, rotate=None):  # (B, T, d_model)
        x = self.norm1(x + self.dropout(self.attn(x, x, mask, rotate)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention, encoder-decoder attention, feed-forward; post-norm residuals."""

    def __init__(self, d_model, n_heads, ffn: nn.Module, dropout=0.0, n_kv_heads=None):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.ffn, self.dropout = ffn, nn.Dropout(dropout)
        self.norm1, self.norm2, self.norm3 = LayerNorm(d_model), LayerNorm(d_model), LayerNorm(d_model)

    def forward(self, y, memory, self_mask=None, memory_mask=None, rotate=None):
        y = self.norm1(y + self.dropout(self.self_attn(y, y, self_mask, rotate)))
        y = self.norm2(y + self.dropout(self.cross_attn(y, memory, memory_mask)))
        return self.norm3(y + self.dropout(self.ffn(y)))


class Transformer(nn.Module):
    """Encoder-decoder Transformer (paper Fig. 1).

    Embeddings are drawn from N(0, 1/d_model) and multiplied by sqrt(d_model), so they start at unit rms.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, n_heads: int = 4, d_ff: int = 128,
                 n_layers: int = 2, dropout: float = 0.1, n_kv_heads: int | None = None,
                 pos_encoding: Callable[[int], nn.Module] = SinusoidalPositions,
                 ffn: Callable[[], nn.Module] | None = None, rotate: Callable | None = None):
        super().__init__()
        ffn = ffn or (lambda: FeedForward(d_model, d_ff, dropout))
        self.d_model, self.rotate = d_model, rotate
        self.src_embed, self.tgt_embed = nn.Embedding(src_vocab, d_model), nn.Embedding(tgt_vocab, d_model)
        self.src_pos, self.tgt_pos = pos_encoding(d_model), pos_encoding(d_model)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_heads, ffn(), dropout, n_kv_heads) for _ in range(n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, n_heads, ffn(), dropout, n_kv_heads) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)
        self.generator = nn.Linear(d_model, tgt_vocab)
        # Paper §3.4: "In the embedding layers, we multiply those weights by sqrt(d_model)"; it does not
        # say how they start. The authors' tensor2tensor code (and fairseq after it) draws them from
        # N(0, 1/d_model), so that E * sqrt(d_model) has unit variance, the order of the sinusoids (rms 0.71).
        # orig (PyTorch's nn.Embedding): N(0, 1), i.e. rms sqrt(d_model) after the scaling, which drowns
        # the positional encodings (position is 1.5% of the input's variance at d_model = 32).
        # subtle: redrawn last, after nn.Embedding's own N(0, 1) draw, so every other parameter gets the
        # same random numbers as it would with PyTorch's default (seeded results elsewhere stay comparable).
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, mean=0.0, std=d_model ** -0.5)

    def encode(self, src, src_mask=None):  # src: (B, S) token ids -> memory (B, S, d_model)
        x = self.dropout(self.src_pos(self.src_embed(src) * math.sqrt(self.d_model)))
        for layer in self.encoder:
            x = layer(x, src_mask, self.rotate)
        return x

    def decode(self, tgt, memory, src_mask=None):  # tgt: (B, T) -> logits (B, T, tgt_vocab)
        y = self.dropout(self.tgt_pos(self.tgt_embed(tgt) * math.sqrt(self.d_model)))
        self_mask = causal_mask(tgt.shape[1], tgt.device)
        for layer in self.decoder:
            y = layer(y, memory, self_mask, src_mask, self.rotate)
        return self.generator(y)

    def forward(self, src, tgt, src_mask=None):
        return self.decode(tgt, self.encode(src, src_mask), src_mask)


@dataclass
class TranslatorMemory:
    memory: torch.Tensor  # (B, S, d_model), the encoder's output
    src_mask: torch.Tensor  # (B, 1, 1, S), True at real source tokens
    s0: torch.Tensor  # (B, 0): the decoder's "state" is the prefix generated so far


class Translator(nn.Module):
    """A Transformer behind the interface of ``mlf.seq2seq`` (``train``, ``greedy_decode``).

    ``forward(src, src_len, tgt_in)`` returns (logits (B, T, V), None); ``decode_step`` feeds the
    whole prefix again (no key/value cache: simple, and fast enough at our lengths) and returns
    the last layer's encoder-decoder attention, averaged over heads, as the alignment.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, **kwargs):
        super().__init__()
        self.net = Transformer(src_vocab, tgt_vocab, **kwargs)

    def forward(self, src, src_len, tgt_in):
        mask = padding_mask(src_len.to(src.device), src.shape[1])
        return self.net(src, tgt_in, mask), None

    def encode(self, src, src_len) -> TranslatorMemory:
        mask = padding_mask(src_len.to(src.device), src.shape[1])
        empty = torch.empty(src.shape[0], 0, dtype=torch.long, device=src.device)
        return TranslatorMemory(self.net.encode(src, mask), mask, empty)

    def decode_step(self, memory: TranslatorMemory, y_prev, prefix):
        prefix = torch.cat([prefix, y_prev[:, None]], dim=1)  # (B, t)
        logits = self.net.decode(prefix, memory.memory, memory.src_mask)[:, -1]  # (B, V)
        alpha = self.net.decoder[-1].cross_attn.weights[:, :, -1].mean(1)  # (B, S)
        return logits, prefix, alpha


def noam_rate(step: int, d_model: int, warmup: int = 4000) -> float:
    """lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), paper eq. (3); step counts from 1."""
    if step < 1 or warmup < 1:
        raise ValueError(f"step and warmup must be >= 1, got step={step}, warmup={warmup}")
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def label_smoothing_loss(logits, target, eps: float, ignore_index: int | None = None):
    """Cross-entropy against the smoothed target q = (1 - eps) one_hot + eps / V (uniform over all V).

    # subtle: this is PyTorch's CrossEntropyLoss(label_smoothing=eps) definition. The Annotated
    # Transformer instead spreads eps over V - 2 classes (not the true class, not padding).
    logits: (N, V), target: (N,) -> mean loss over non-ignored targets.
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, V) and target (N,), got {tuple(logits.shape)} and {tuple(target.shape)}")
    logp = logits.log_softmax(-1)  # (N, V)
    keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    nll = -logp.gather(1, target.clamp(min=0)[:, None]).squeeze(1)  # (N,)
    uniform = -logp.mean(-1)  # (N,): cross-entropy with the uniform distribution
    loss = (1 - eps) * nll + eps * uniform
    return loss[keep].mean()


def _check_mask(mask, scores_shape):
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the attention "
                         f"scores' shape {tuple(scores_shape)} (batch, heads, T_q, T_k)")
