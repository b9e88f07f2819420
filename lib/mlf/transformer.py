"""The Transformer of Vaswani et al. 2017, small enough to hold in your head.

Notation follows the paper: d_model, h heads of size d_k = d_v = d_model / h, d_ff for
the feed-forward width, N layers. Three parts are swappable so later chapters can change
them without copying the model:

* the positional scheme: ``pos_encoding`` adds to the embeddings (sinusoidal or
  learned), and ``rotate`` (a callable on queries/keys, e.g. RoPE) acts in attention;
* key/value head grouping: ``n_kv_heads`` < ``n_heads`` shares each key/value head among
  a group of query heads (grouped-query attention; 1 is multi-query attention);
* the feed-forward block: ``ffn`` is a factory returning any ``nn.Module`` that maps
  (B, T, d_model) to (B, T, d_model), e.g. a mixture of experts.

For decoding one token at a time (the book's language model, ``mlf.gpt``), attention
takes a ``KVCache`` and positional modules take an ``offset``.

Layers are post-norm as in the paper: x = LayerNorm(x + Sublayer(x)).
``norm_first=True`` gives the pre-norm order x = x + Sublayer(LayerNorm(x)) (as
``nn.TransformerEncoderLayer(norm_first=True)``), with a final LayerNorm after each
stack. ``tie_output`` and ``share_embeddings`` share the embedding matrix with the
pre-softmax layer (paper §3.4).

Bad arguments raise ``ValueError`` (or ``TypeError`` for a wrong kind of object) saying
what was wrong and what is expected, before torch sees them.
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

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v); mask: bool,
    broadcastable to (..., T_q, T_k), True where attention is allowed.
    Returns (output (..., T_q, d_v), weights (..., T_q, T_k)).
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError(f"{name} must be a tensor of at least 2 dimensions "
                             f"(..., T, d), got {_describe(x)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        fits = q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2]
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}; expected q (..., T_q, d_k), "
                         "k (..., T_k, d_k), v (..., T_k, d_v)")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    # subtle: a query row that may attend to nothing becomes NaN here, while
    # F.scaled_dot_product_attention (torch 2.13) returns zeros for it; callers must
    # never mask a whole row (padding masks only mask keys).
    return weights @ v, weights


def causal_mask(t: int, device=None) -> torch.Tensor:
    """(t, t) bool, True on and below the diagonal: position i may attend to j <= i."""
    _check_positive_int("sequence length", t)
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, 1, 1, t) bool, True for real tokens: keys beyond each length are hidden."""
    _check_positive_int("t", t)
    if (not isinstance(lengths, torch.Tensor) or lengths.ndim != 1
            or lengths.is_floating_point() or lengths.dtype == torch.bool
            or (lengths < 1).any() or (lengths > t).any()):
        shown = lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths
        raise ValueError(f"lengths must be a 1-d integer tensor of values in 1..{t}, "
                         f"got {shown!r}")
    return (torch.arange(t, device=lengths.device) < lengths[:, None])[:, None, None, :]


@dataclass
class KVCache:
    """The keys and values one attention layer has seen so far, (B, h_kv, T, d_k) each.

    Each call of ``MultiHeadAttention`` with a cache appends the new keys and values and
    attends over all of them, so a decoder can feed one new token per step.
    """

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """How many positions are cached (the offset of the next one)."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k, v):
        """Add (B, h_kv, T_new, d_k) keys and values; return all of them so far."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None,
                 bias: bool = True):
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("n_heads", n_heads)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads "
                             f"({n_heads})")
        if (isinstance(n_kv_heads, bool) or not isinstance(n_kv_heads, int)
                or n_kv_heads < 1 or n_heads % n_kv_heads):
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads "
                             f"({n_kv_heads!r})")
        self.d_model = d_model
        self.h, self.h_kv, self.d_k = n_heads, n_kv_heads, d_model // n_heads
        # all W_i^Q side by side in one matrix, and likewise W^K, W^V
        self.w_q = nn.Linear(d_model, n_heads * self.d_k, bias=bias)
        self.w_k = nn.Linear(d_model, n_kv_heads * self.d_k, bias=bias)
        self.w_v = nn.Linear(d_model, n_kv_heads * self.d_k, bias=bias)
        self.w_o = nn.Linear(n_heads * self.d_k, d_model, bias=bias)
        self.weights = None  # the last attention weights (B, h, T_q, T_k), for plots

    def forward(self, x_q, x_kv, mask=None, rotate: Callable | None = None,
                cache: KVCache | None = None):
        """x_q: (B, T_q, d_model), x_kv: (B, T_k, d_model) -> (B, T_q, d_model).

        With ``cache``, x_kv holds only the new positions: their keys and values join
        the cached ones, ``rotate(x, offset)`` is told where they start, and ``mask``
        covers (T_q, cached + T_k).
        """
        _check_width("x_q", x_q, self.d_model)
        _check_width("x_kv", x_kv, self.d_model)
        if x_q.shape[0] != x_kv.shape[0]:
            raise ValueError(f"x_q and x_kv must hold the same batch, got "
                             f"{x_q.shape[0]} and {x_kv.shape[0]} sequences")
        b, t_q, _ = x_q.shape
        d_k, h, h_kv = self.d_k, self.h, self.h_kv
        q = self.w_q(x_q).view(b, t_q, h, d_k).transpose(1, 2)  # (B, h, T_q, d_k)
        k = self.w_k(x_kv).view(b, -1, h_kv, d_k).transpose(1, 2)  # (B, h_kv, T_k, d_k)
        v = self.w_v(x_kv).view(b, -1, h_kv, d_k).transpose(1, 2)
        if rotate is not None:  # e.g. rotary position embeddings act on queries, keys
            if cache is None:
                q, k = rotate(q), rotate(k)
            else:  # the new positions start after the cached ones
                q, k = rotate(q, cache.length), rotate(k, cache.length)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, h_kv, cached + T_k, d_k)
        group = h // h_kv  # query heads sharing one key/value head
        k = k.repeat_interleave(group, dim=1)  # (B, h, T_k, d_k)
        v = v.repeat_interleave(group, dim=1)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        self.weights = weights.detach()  # kept for plots, outside the autograd graph
        return self.w_o(out.transpose(1, 2).reshape(b, t_q, h * d_k))


class LayerNorm(nn.Module):
    """LN(x) = gamma * (x - mean) / sqrt(var + eps) + beta over the last dimension.

    # subtle: var is the biased variance (divide by d, not d - 1), as in nn.LayerNorm;
    # x.std() would use d - 1.
    """

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        _check_positive_int("d", d)
        self.gamma = nn.Parameter(torch.ones(d))
        self.beta, self.eps = nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        _check_last_dim("x", x, self.gamma.shape[0])
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, paper eq. (2), at every position.

    ``activation`` replaces max(0, .) (ReLU), e.g. GPT-2's GELU.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0,
                 activation: Callable = F.relu):
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("d_ff", d_ff)
        _check_dropout(dropout)
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {_describe(activation)}")
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.dropout, self.activation = nn.Dropout(dropout), activation

    def forward(self, x):  # (B, T, d_model) -> (B, T, d_model)
        _check_last_dim("x", x, self.w_1.in_features)
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


def sinusoidal_encoding(t: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...).

    Returns a (t, d_model) tensor.
    """
    _check_positive_int("t", t)
    _check_positive_int("d_model", d_model)
    if d_model % 2:
        raise ValueError(f"d_model must be even for sinusoidal encodings, "
                         f"got {d_model}")
    pos = torch.arange(t, dtype=torch.float32)[:, None]  # (t, 1)
    i2 = torch.arange(0, d_model, 2)  # 2i
    inv_freq = torch.exp(-math.log(10000.0) * i2 / d_model)  # (d_model/2,)
    pe = torch.zeros(t, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * inv_freq), torch.cos(pos * inv_freq)
    return pe


class SinusoidalPositions(nn.Module):
    """Adds the fixed sinusoidal encodings (no parameters)."""

    def __init__(self, d_model: int, max_len: int = 1024):
        super().__init__()
        _check_positive_int("max_len", max_len)
        pe = sinusoidal_encoding(max_len, d_model)  # (max_len, d_model)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x, offset: int = 0):  # (B, T, d_model), positions offset..
        _check_width("x", x, self.pe.shape[1])
        _check_offset(offset, x.shape[1], self.pe.shape[0])
        return x + self.pe[offset: offset + x.shape[1]]


class LearnedPositions(nn.Module):
    """Adds a learned embedding per position (the paper's Table 3, row E).

    The vectors start as PyTorch's N(0, 1) draw times ``std`` (default 1): the same
    random numbers at any ``std``, so runs that differ only in the starting scale are
    paired.
    """

    def __init__(self, d_model: int, max_len: int = 1024, std: float = 1.0):
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("max_len", max_len)
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not std >= 0:
            raise ValueError(f"std must be a non-negative number, got {std!r}")
        self.pe = nn.Embedding(max_len, d_model)
        if std != 1.0:
            with torch.no_grad():
                self.pe.weight.mul_(std)

    def forward(self, x, offset: int = 0):  # (B, T, d_model), positions offset..
        _check_width("x", x, self.pe.embedding_dim)
        _check_offset(offset, x.shape[1], self.pe.num_embeddings)
        return x + self.pe(torch.arange(offset, offset + x.shape[1], device=x.device))


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward; each wrapped as
    LayerNorm(x + Dropout(Sublayer(x))) (post-norm, the paper), or
    x + Dropout(Sublayer(LayerNorm(x))) if ``norm_first``. ``eps`` is the LayerNorms'
    epsilon (BERT uses 1e-12)."""

    def __init__(self, d_model, n_heads, ffn: nn.Module, dropout=0.0, n_kv_heads=None,
                 norm_first: bool = False, eps: float = 1e-5):
        super().__init__()
        _check_module("ffn", ffn)
        _check_dropout(dropout)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.ffn = ffn
        self.norm1, self.norm2 = LayerNorm(d_model, eps), LayerNorm(d_model, eps)
        self.dropout, self.norm_first = nn.Dropout(dropout), norm_first

    def forward(self, x, mask=None, rotate=None):  # (B, T, d_model)
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.attn(h, h, mask, rotate))
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attn(x, x, mask, rotate)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention, encoder-decoder attention, feed-forward; post-norm
    residuals (or pre-norm if ``norm_first``)."""

    def __init__(self, d_model, n_heads, ffn: nn.Module, dropout=0.0, n_kv_heads=None,
                 norm_first: bool = False):
        super().__init__()
        _check_module("ffn", ffn)
        _check_dropout(dropout)
        self.self_attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.ffn, self.dropout, self.norm_first = ffn, nn.Dropout(dropout), norm_first
        self.norm1, self.norm2 = LayerNorm(d_model), LayerNorm(d_model)
        self.norm3 = LayerNorm(d_model)

    def forward(self, y, memory, self_mask=None, memory_mask=None, rotate=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attn(h, h, self_mask, rotate))
            y = y + self.dropout(self.cross_attn(self.norm2(y), memory, memory_mask))
            return y + self.dropout(self.ffn(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attn(y, y, self_mask, rotate)))
        y = self.norm2(y + self.dropout(self.cross_attn(y, memory, memory_mask)))
        return self.norm3(y + self.dropout(self.ffn(y)))


class Transformer(nn.Module):
    """Encoder-decoder Transformer (paper Fig. 1).

    Embeddings are drawn from N(0, 1/d_model) and multiplied by sqrt(d_model), so they
    start at unit rms. ``norm_first`` switches every layer to pre-norm and adds a final
    LayerNorm to each stack. ``tie_output`` makes the pre-softmax layer use the target
    embedding matrix; ``share_embeddings`` shares one matrix among the source embedding,
    the target embedding and the pre-softmax layer, as the paper does (it needs one
    joint vocabulary, src_vocab == tgt_vocab).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64,
                 n_heads: int = 4, d_ff: int = 128, n_layers: int = 2,
                 dropout: float = 0.1, n_kv_heads: int | None = None,
                 pos_encoding: Callable[[int], nn.Module] = SinusoidalPositions,
                 ffn: Callable[[], nn.Module] | None = None,
                 rotate: Callable | None = None,
                 norm_first: bool = False, tie_output: bool = False,
                 share_embeddings: bool = False):
        super().__init__()
        for name, value in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab),
                            ("d_model", d_model), ("n_heads", n_heads), ("d_ff", d_ff),
                            ("n_layers", n_layers)):
            _check_positive_int(name, value)
        _check_dropout(dropout)
        for name, value in (("pos_encoding", pos_encoding), ("ffn", ffn),
                            ("rotate", rotate)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, got {_describe(value)}")
        if share_embeddings and src_vocab != tgt_vocab:
            raise ValueError("share_embeddings needs one joint vocabulary, got "
                             f"src_vocab={src_vocab} and tgt_vocab={tgt_vocab}")
        ffn = ffn or (lambda: FeedForward(d_model, d_ff, dropout))
        self.d_model, self.rotate = d_model, rotate
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.src_pos, self.tgt_pos = pos_encoding(d_model), pos_encoding(d_model)
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, n_heads, ffn(), dropout, n_kv_heads, norm_first)
            for _ in range(n_layers))
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, n_heads, ffn(), dropout, n_kv_heads, norm_first)
            for _ in range(n_layers))
        # pre-norm leaves each stack's output un-normalised: one LayerNorm closes it
        self.encoder_norm = LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = LayerNorm(d_model) if norm_first else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.generator = nn.Linear(d_model, tgt_vocab)
        if share_embeddings:  # paper §3.4: one matrix for the embeddings and the output
            self.src_embed.weight = self.tgt_embed.weight
        if share_embeddings or tie_output:  # logits = y E^T + b
            self.generator.weight = self.tgt_embed.weight
        # Paper §3.4: "In the embedding layers, we multiply those weights by
        # sqrt(d_model)"; it does not say how they start. The authors' tensor2tensor
        # code (and fairseq after it) draws them from N(0, 1/d_model), so that
        # E * sqrt(d_model) has unit variance, the order of the sinusoids (rms 0.71).
        # orig (PyTorch's nn.Embedding): N(0, 1), i.e. rms sqrt(d_model) after the
        # scaling, which drowns the positional encodings (position is 1.5% of the
        # input's variance at d_model = 32).
        # subtle: redrawn last, after nn.Embedding's own N(0, 1) draw, so every other
        # parameter gets the same random numbers as it would with PyTorch's default
        # (seeded results elsewhere stay comparable).
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, mean=0.0, std=d_model ** -0.5)

    def encode(self, src, src_mask=None):  # src (B, S) token ids -> (B, S, d_model)
        _check_ids("src", src, self.src_embed.num_embeddings)
        x = self.src_embed(src) * math.sqrt(self.d_model)
        x = self.dropout(self.src_pos(x))
        for layer in self.encoder:
            x = layer(x, src_mask, self.rotate)
        return self.encoder_norm(x)

    def decode(self, tgt, memory, src_mask=None):  # tgt (B, T) -> (B, T, tgt_vocab)
        _check_ids("tgt", tgt, self.tgt_embed.num_embeddings)
        y = self.tgt_embed(tgt) * math.sqrt(self.d_model)
        y = self.dropout(self.tgt_pos(y))
        self_mask = causal_mask(tgt.shape[1], tgt.device)
        for layer in self.decoder:
            y = layer(y, memory, self_mask, src_mask, self.rotate)
        return self.generator(self.decoder_norm(y))

    def forward(self, src, tgt, src_mask=None):
        return self.decode(tgt, self.encode(src, src_mask), src_mask)


@dataclass
class TranslatorMemory:
    memory: torch.Tensor  # (B, S, d_model), the encoder's output
    src_mask: torch.Tensor  # (B, 1, 1, S), True at real source tokens
    s0: torch.Tensor  # (B, 0): the decoder's "state" is the prefix generated so far


class Translator(nn.Module):
    """A Transformer behind the interface of ``mlf.seq2seq``'s ``train`` and
    ``greedy_decode``.


    ``forward(src, src_len, tgt_in)`` returns (logits (B, T, V), None); ``decode_step``
    feeds the whole prefix again (no key/value cache: simple, and fast enough at our
    lengths) and returns the last layer's encoder-decoder attention, averaged over
    heads, as the alignment.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, **kwargs):
        super().__init__()
        self.net = Transformer(src_vocab, tgt_vocab, **kwargs)

    def _src_mask(self, src, src_len):
        _check_ids("src", src, self.net.src_embed.num_embeddings)
        if not isinstance(src_len, torch.Tensor) or src_len.shape != src.shape[:1]:
            raise ValueError(f"src_len must be a tensor of {src.shape[0]} lengths, one "
                             f"per source sentence, got {_describe(src_len)}")
        return padding_mask(src_len.to(src.device), src.shape[1])

    def forward(self, src, src_len, tgt_in):
        return self.net(src, tgt_in, self._src_mask(src, src_len)), None

    def encode(self, src, src_len) -> TranslatorMemory:
        mask = self._src_mask(src, src_len)
        empty = torch.empty(src.shape[0], 0, dtype=torch.long, device=src.device)
        return TranslatorMemory(self.net.encode(src, mask), mask, empty)

    def decode_step(self, memory: TranslatorMemory, y_prev, prefix):
        prefix = torch.cat([prefix, y_prev[:, None]], dim=1)  # (B, t)
        logits = self.net.decode(prefix, memory.memory, memory.src_mask)  # (B, t, V)
        logits = logits[:, -1]  # (B, V)
        alpha = self.net.decoder[-1].cross_attn.weights[:, :, -1].mean(1)  # (B, S)
        return logits, prefix, alpha


def noam_rate(step: int, d_model: int, warmup: int = 4000) -> float:
    """lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), paper eq. (3).

    ``step`` counts from 1.
    """
    if step < 1 or warmup < 1:
        raise ValueError(f"step and warmup must be >= 1, got step={step}, "
                         f"warmup={warmup}")
    if (isinstance(d_model, bool) or not isinstance(d_model, (int, float))
            or d_model <= 0):
        raise ValueError(f"d_model must be a positive number, got {d_model!r}")
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def label_smoothing_loss(logits, target, eps: float, ignore_index: int | None = None):
    """Cross-entropy against the smoothed target q = (1 - eps) one_hot + eps / V
    (uniform over all V).

    # subtle: this is PyTorch's CrossEntropyLoss(label_smoothing=eps) definition. The
    # Annotated Transformer instead spreads eps over V - 2 classes (not the true class,
    # not padding).
    logits: (N, V), target: (N,) -> mean loss over non-ignored targets.
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, V) and target (N,), got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got {target.dtype}")
    n_classes = logits.shape[1]
    keep = (torch.ones_like(target, dtype=torch.bool) if ignore_index is None
            else target != ignore_index)
    bad = keep & ((target < 0) | (target >= n_classes))
    if bad.any():
        raise ValueError(f"target holds class {target[bad][0].item()}, outside 0.."
                         f"{n_classes - 1} (logits have {n_classes} classes) and not "
                         f"ignore_index ({ignore_index})")
    logp = logits.log_softmax(-1)  # (N, V)
    safe = target.masked_fill(~keep, 0)  # ignored targets may lie outside 0..V-1
    nll = -logp.gather(1, safe[:, None]).squeeze(1)  # (N,)
    uniform = -logp.mean(-1)  # (N,): cross-entropy with the uniform distribution
    loss = (1 - eps) * nll + eps * uniform
    return loss[keep].mean()


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_dropout(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")


def _check_module(name, module):
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be an nn.Module mapping (B, T, d_model) to "
                        f"(B, T, d_model), got {_describe(module)}")


def _check_last_dim(name, x, d):
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] != d:
        raise ValueError(f"{name} must end in a dimension of size {d}, "
                         f"got {_describe(x)}")


def _check_width(name, x, d_model):
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name} must be a (batch, length, d_model={d_model}) tensor, "
                         f"got {_describe(x)}")


def _check_offset(offset, t, max_len):
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    if offset + t > max_len:
        raise ValueError(f"positions {offset}..{offset + t - 1} exceed max_len "
                         f"{max_len} (a sequence of length {t} at offset {offset})")


def _check_ids(name, ids, vocab):
    if (not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point()
            or ids.dtype == torch.bool or ids.is_complex()):
        raise ValueError(f"{name} must be a (batch, length) tensor of integer token "
                         f"ids, got {_describe(ids)}")
    if ids.numel():
        low, high = torch.aminmax(ids)
        if low < 0 or high >= vocab:
            bad = (low if low < 0 else high).item()
            raise ValueError(f"{name} holds token id {bad}, outside the vocabulary "
                             f"0..{vocab - 1}")


def _check_mask(mask, scores_shape):
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor (True = may attend), got {got}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the "
                         f"attention scores' shape {tuple(scores_shape)} "
                         "(batch, heads, T_q, T_k)")
