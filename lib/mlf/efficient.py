"""Three efficient attentions from the survey of Tay et al. (2020), and how to measure
them.

Every function takes queries, keys and values shaped like ``mlf.transformer``'s
``scaled_dot_product_attention``: q (..., T, d_k), k (..., T, d_k), v (..., T, d_v), and
returns the output (..., T, d_v) only (none of them forms the T x T weights).

* ``sliding_window_attention`` (fixed pattern; Longformer's window): query i sees the
  keys j with |i - j| <= window (or 0 <= i - j <= window when causal), computed block by
  block, so time and memory grow as T * window, not T^2. It equals full attention under
  ``banded_mask``.
  # subtle: ``window`` here is the reach on one side. Longformer's (and
  # ``transformers``') ``attention_window`` counts both sides: theirs is 2 * ours.
* ``linformer_attention`` (low rank; Wang et al. 2020): keys and values are projected
  along the length by E, F (k_proj x T) before attention, O(T k_proj).
* ``favor_attention`` (kernel; Choromanski et al. 2021, FAVOR+): exp(q . k / sqrt(d))
  is estimated by phi(q) . phi(k) with positive random features, so attention is
  computed as phi(Q) (phi(K)^T V) in O(T m d); ``favor_features`` makes phi(Q), phi(K).

``peak_bytes`` counts, exactly, the largest number of bytes that tensors created inside
a call hold at one time (on any device); it is how the chapter measures memory.

Bad arguments raise ``ValueError`` (or ``TypeError`` for a wrong kind of object) saying
what was wrong and what is expected.
"""
from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mlf import transformer as tf
from mlf.transformer import _check_positive_int, _describe

KINDS = ("full", "window", "linformer", "performer")


# --- fixed pattern: the sliding window ---------------------------------------------

def banded_mask(t: int, window: int, causal: bool = False, device=None) -> torch.Tensor:
    """(t, t) bool, True where query i may see key j: |i - j| <= window
    (causal: 0 <= i - j <= window). The reference pattern for full attention."""
    _check_positive_int("sequence length", t)
    _check_positive_int("window", window)
    i = torch.arange(t, device=device)
    offset = i[:, None] - i[None, :]  # i - j
    low = 0 if causal else -window
    return (offset >= low) & (offset <= window)


def sliding_window_attention(q, k, v, window: int, causal: bool = False,
                             block: int | None = None):
    """Softmax attention restricted to a band of ``window`` keys on each side
    (causal: the ``window`` keys before and the query itself), block by block.

    The T queries are cut into blocks of ``block`` (default ``window``) positions. A
    block sees its own keys and s = ceil(window / block) blocks on each side (before it
    only, when causal), so it forms a (block, (2s + 1) * block) score matrix instead of
    (block, T): memory and time O(T * window).
    """
    _check_qkv(q, k, v, same_length=True)
    _check_positive_int("window", window)
    block = window if block is None else block
    _check_positive_int("block", block)
    t, d_k = q.shape[-2], q.shape[-1]
    if t == 0:  # no positions: nothing to attend, as in full attention
        return v.new_zeros(v.shape)
    n_blocks = -(-t // block)  # ceil(T / block)
    s = -(-window // block)  # neighbour blocks needed on each side
    after = 0 if causal else s
    span = (s + 1 + after) * block  # keys one query block sees
    pad_q = n_blocks * block - t
    # keys and values padded: s blocks before position 0, the rest after position T-1
    pad = (s * block, pad_q + after * block)
    k_pad = nn.functional.pad(k, (0, 0) + pad)  # (..., s*b + T + pad, d_k)
    v_pad = nn.functional.pad(v, (0, 0) + pad)
    q_blk = nn.functional.pad(q, (0, 0, 0, pad_q))
    q_blk = q_blk.unflatten(-2, (n_blocks, block))  # (..., n_blocks, b, d_k)
    # unfold makes (..., n_blocks, d, span) views; no copy until the matmul
    k_blk = k_pad.unfold(-2, span, block).transpose(-1, -2)  # (.., n_blocks, span, d_k)
    v_blk = v_pad.unfold(-2, span, block).transpose(-1, -2)  # (.., n_blocks, span, d_v)
    scores = q_blk @ k_blk.transpose(-1, -2) / math.sqrt(d_k)  # (.., n_blocks, b, span)
    scores = scores.masked_fill(~_block_mask(t, block, s, after, window, causal,
                                             q.device), float("-inf"))
    out = scores.softmax(dim=-1) @ v_blk  # (..., n_blocks, b, d_v)
    return out.flatten(-3, -2)[..., :t, :]


def _block_mask(t, block, s, after, window, causal, device):
    """(n_blocks, block, span) bool: the key slots each query of each block may see."""
    n_blocks = -(-t // block)
    span = (s + 1 + after) * block
    r = torch.arange(block, device=device)[:, None]  # query's place in its block
    j = torch.arange(span, device=device)[None, :]  # key slot
    offset = r + s * block - j  # i - j, the same for every block
    low = 0 if causal else -window
    band = (offset >= low) & (offset <= window)  # (b, span)
    start = torch.arange(n_blocks, device=device)[:, None] * block - s * block
    key_pos = start + torch.arange(span, device=device)  # (n_blocks, span)
    real_key = (key_pos >= 0) & (key_pos < t)
    query_pos = torch.arange(n_blocks * block, device=device).view(n_blocks, block)
    # subtle: a padded query (position >= T) may see no key at all; its softmax row
    # would be NaN and a NaN poisons the gradients of the real keys it touches. Let it
    # see every slot; its output is cut off anyway.
    padded_query = (query_pos >= t)[..., None]  # (n_blocks, b, 1)
    return (band & real_key[:, None, :]) | padded_query


# --- low rank: Linformer -----------------------------------------------------------

def linformer_attention(q, k, v, e, f):
    """softmax(Q (E K)^T / sqrt(d_k)) (F V), Wang et al. 2020, section 4.

    e, f: (k_proj, T) projections along the length (shared by batch and heads), so the
    score matrix is (T, k_proj) instead of (T, T).
    """
    _check_qkv(q, k, v, same_length=True)
    t = k.shape[-2]
    for name, p in (("e", e), ("f", f)):
        if not isinstance(p, torch.Tensor) or p.ndim != 2 or p.shape[1] != t:
            raise ValueError(f"{name} must be a (k_proj, T={t}) projection along the "
                             f"length, got {_describe(p)}")
    if e.shape[0] != f.shape[0]:
        raise ValueError(f"e and f must project to the same k_proj, got "
                         f"{e.shape[0]} and {f.shape[0]}")
    k_low, v_low = e @ k, f @ v  # (..., k_proj, d_k), (..., k_proj, d_v)
    out, _ = tf.scaled_dot_product_attention(q, k_low, v_low)  # weights (T, k_proj)
    return out


# --- kernels: Performer's FAVOR+ ---------------------------------------------------

def gaussian_features(m: int, d: int, orthogonal: bool = True, generator=None,
                      device=None) -> torch.Tensor:
    """(m, d) random directions w_i, each distributed N(0, I_d).

    ``orthogonal``: rows come in blocks of d exactly orthogonal directions (the last
    block cut short), each row rescaled to the length of an independent N(0, I_d)
    draw, so every w_i is still N(0, I_d) and the estimator stays unbiased
    (Performer's orthogonal random features).
    """
    _check_positive_int("feature count m", m)
    _check_positive_int("d", d)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator, got "
                        f"{_describe(generator)}")
    g = torch.randn(m, d, generator=generator)
    if orthogonal:
        blocks = []
        for start in range(0, m, d):
            a = torch.randn(d, d, generator=generator)
            basis, r = torch.linalg.qr(a)
            basis = basis * torch.sign(torch.diagonal(r))  # a uniformly random rotation
            blocks.append(basis.T[: m - start])  # rows are orthonormal
        g = torch.cat(blocks) * g.norm(dim=1, keepdim=True)  # lengths ~ chi_d
    return g.to(device)


def positive_features(x, w, stabilizer=None):
    """phi(x) = exp(w_i . x - |x|^2 / 2) / sqrt(m), i = 1..m: the Performer's
    positive random features (its Lemma 1). E[phi(x) . phi(y)] = exp(x . y) exactly.

    x: (..., T, d), w: (m, d) -> (..., T, m); a stack of draws w (..., m, d)
    broadcasts against x's leading dimensions. ``stabilizer`` (broadcastable to the
    output) is subtracted inside the exponential; it must cancel in whatever ratio
    the features are used for.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor (..., T, d), got {_describe(x)}")
    if not isinstance(w, torch.Tensor) or w.ndim < 2 or w.shape[-1] != x.shape[-1]:
        raise ValueError(f"w must be (m, d={x.shape[-1]}) random directions, "
                         f"got {_describe(w)}")
    logits = x @ w.transpose(-1, -2) - (x * x).sum(-1, keepdim=True) / 2  # (.., T, m)
    if stabilizer is not None:
        logits = logits - stabilizer
    return logits.exp() / math.sqrt(w.shape[-2])


def favor_features(q, k, w):
    """phi(Q'), phi(K') (..., T, m) for FAVOR+, with Q' = Q / d^(1/4), K' = K / d^(1/4)
    so that phi(q') . phi(k') estimates exp(q . k / sqrt(d)), each stabilised by a
    constant that cancels in D^-1 (phi(Q') (phi(K')^T V))."""
    scale = q.shape[-1] ** -0.25
    q, k = q * scale, k * scale
    # subtle: exp overflows for long vectors. Any constant subtracted inside the
    # exponential cancels between numerator and denominator if it is the same for
    # all the keys (we take their overall max) and for one query's whole row (its own
    # max): the estimate is unchanged. Computed without gradient, as a constant.
    with torch.no_grad():
        k_logits = k @ w.transpose(-1, -2) - (k * k).sum(-1, keepdim=True) / 2
        q_logits = q @ w.transpose(-1, -2) - (q * q).sum(-1, keepdim=True) / 2
        k_max = k_logits.amax(dim=(-2, -1), keepdim=True)
        q_max = q_logits.amax(dim=-1, keepdim=True)
    return positive_features(q, w, q_max), positive_features(k, w, k_max)


def favor_attention(q, k, v, w, causal: bool = False):
    """FAVOR+ attention: D^-1 (phi(Q') (phi(K')^T V)), D = diag(phi(Q') phi(K')^T 1)
    (``favor_features``). Causal: prefix sums over the keys. O(T m d) time and memory.

    w: (m, d_k) from ``gaussian_features``, or a stack of draws (..., m, d_k) that
    broadcasts against the leading dimensions of q, k, v.
    """
    _check_qkv(q, k, v, same_length=True)
    if not isinstance(w, torch.Tensor) or w.ndim < 2 or w.shape[-1] != q.shape[-1]:
        raise ValueError(f"w must be (m, d_k={q.shape[-1]}) random directions, "
                         f"got {_describe(w)}")
    if q.shape[-2] == 0:  # no positions: nothing to attend, as in full attention
        return v.new_zeros(v.shape)
    phi_q, phi_k = favor_features(q, k, w)  # (..., T, m) each
    if causal:  # S_i = sum_{j<=i} phi(k_j) v_j^T, z_i = sum_{j<=i} phi(k_j)
        # subtle: the keys' constant is their overall max, so a prefix whose keys
        # all lie far below it underflows to z_i = 0 and gives NaN (float32: when
        # logits differ by ~100). # orig: the Performer's code takes the same
        # maxima but adds 1e-6 to every feature: D > 0 always, at a small bias.
        s = (phi_k[..., :, None] * v[..., None, :]).cumsum(-3)  # (..., T, m, d_v)
        z = phi_k.cumsum(-2)  # (..., T, m)
        num = (phi_q[..., None, :] @ s).squeeze(-2)  # (..., T, d_v)
        den = (phi_q * z).sum(-1, keepdim=True)  # (..., T, 1)
    else:
        num = phi_q @ (phi_k.transpose(-1, -2) @ v)  # (m, d_v) first: O(T m d)
        den = phi_q @ phi_k.sum(-2)[..., None]  # (..., T, 1)
    return num / den


def kernel_estimates(x, y, m: int, orthogonal: bool, draws: int, generator=None):
    """(draws, n) estimates phi(x_i) . phi(y_i) of exp(x_i . y_i) for n pairs of rows
    of x, y (n, d), each row of the result from a fresh draw of m features."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape != getattr(y, "shape",
                                                                          None):
        raise ValueError(f"x and y must be (n, d) tensors of the same shape, got "
                         f"{_describe(x)} and {_describe(y)}")
    _check_positive_int("draws", draws)
    w = torch.stack([gaussian_features(m, x.shape[1], orthogonal, generator)
                     for _ in range(draws)]).to(x)  # (draws, m, d)
    return (positive_features(x, w) * positive_features(y, w)).sum(-1)


def favor_errors(q, k, v, ms, orthogonal: bool, draws: int, generator=None):
    """Mean |FAVOR+ - exact softmax attention| over the output's entries and over
    ``draws`` feature draws, for each feature count in ``ms``."""
    _check_positive_int("draws", draws)
    exact, _ = tf.scaled_dot_product_attention(q, k, v)
    errors = []
    for m in ms:
        total = 0.0
        for _ in range(draws):
            w = gaussian_features(m, q.shape[-1], orthogonal, generator).to(q)
            total += (favor_attention(q, k, v, w) - exact).abs().mean().item()
        errors.append(total / draws)
    return errors


# --- one attention layer with a swappable kernel ----------------------------------

class EfficientAttention(tf.MultiHeadAttention):
    """``mlf.transformer.MultiHeadAttention`` (same W^Q, W^K, W^V, W^O) with the
    attention of heads computed by one of ``KINDS``:

    * ``full``: ``scaled_dot_product_attention`` (optionally under ``mask``);
    * ``window``: ``sliding_window_attention`` with ``window`` and ``causal``;
    * ``linformer``: learned E, F (``k_proj`` x ``seq_len``), shared by all heads (the
      paper's headwise sharing), initialised as ``nn.Linear``'s weights;
    * ``performer``: FAVOR+ with ``features`` orthogonal random features, drawn once
      from ``seed``. # orig: the Performer redraws them from time to time in training.
    """

    def __init__(self, d_model: int, n_heads: int, kind: str = "full", *,
                 window: int | None = None, seq_len: int | None = None,
                 k_proj: int | None = None, features: int | None = None,
                 causal: bool = False, seed: int = 0):
        super().__init__(d_model, n_heads)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.causal, self.window = kind, causal, window
        if kind == "window":
            _check_positive_int("window", window)
        if kind == "linformer":
            _check_positive_int("seq_len", seq_len)
            _check_positive_int("projected length k_proj", k_proj)
            if causal:
                raise ValueError("Linformer mixes all positions in E K: it has no "
                                 "causal form; use causal=False")
            self.e = nn.Linear(seq_len, k_proj, bias=False)  # E: (k_proj, T)
            self.f = nn.Linear(seq_len, k_proj, bias=False)  # F: (k_proj, T)
        if kind == "performer":
            _check_positive_int("feature count", features)
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("w", gaussian_features(features, self.d_k,
                                                        generator=gen))

    def attend(self, q, k, v, mask=None):  # (B, h, T, d_k) each -> (B, h, T, d_k)
        if self.kind == "full":
            if self.causal:
                mask = tf.causal_mask(q.shape[-2], q.device)
            out, self.weights = tf.scaled_dot_product_attention(q, k, v, mask)
            return out
        if mask is not None:
            raise ValueError(f"{self.kind} attention takes no mask")
        if self.kind == "window":
            return sliding_window_attention(q, k, v, self.window, self.causal)
        if self.kind == "linformer":
            return linformer_attention(q, k, v, self.e.weight, self.f.weight)
        return favor_attention(q, k, v, self.w, self.causal)

    def forward(self, x_q, x_kv, mask=None, rotate=None, cache=None):
        """x_q, x_kv: (B, T, d_model) -> (B, T, d_model); self-attention only."""
        if rotate is not None or cache is not None:
            raise ValueError("EfficientAttention takes neither rotate nor cache")
        tf._check_width("x_q", x_q, self.d_model)
        tf._check_width("x_kv", x_kv, self.d_model)
        b, t, _ = x_q.shape
        split = (b, -1, self.h, self.d_k)
        q = self.w_q(x_q).view(split).transpose(1, 2)  # (B, h, T, d_k)
        k = self.w_k(x_kv).view(split).transpose(1, 2)
        v = self.w_v(x_kv).view(split).transpose(1, 2)
        out = self.attend(q, k, v, mask)  # (B, h, T, d_k)
        return self.w_o(out.transpose(1, 2).reshape(b, t, self.h * self.d_k))


class Encoder(nn.Module):
    """Tokens -> one class per position: embeddings + learned positions, ``n_layers``
    pre-norm ``mlf.transformer.EncoderLayer``s whose attention is an
    ``EfficientAttention`` of ``kind``, a final LayerNorm and a linear read-out."""

    def __init__(self, vocab: int, seq_len: int, kind: str = "full", d_model: int = 64,
                 n_heads: int = 4, n_layers: int = 1, seed: int = 0, **attention):
        super().__init__()
        for name, value in (("vocab", vocab), ("seq_len", seq_len),
                            ("n_layers", n_layers)):
            _check_positive_int(name, value)
        self.seq_len = seq_len
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = tf.LearnedPositions(d_model, seq_len)
        self.layers = nn.ModuleList()
        for i in range(n_layers):
            ffn = tf.FeedForward(d_model, 4 * d_model)
            layer = tf.EncoderLayer(d_model, n_heads, ffn, norm_first=True)
            if kind == "linformer":
                attention["seq_len"] = seq_len
            # layer i draws its random features (Performer) from seed + i
            layer.attn = EfficientAttention(d_model, n_heads, kind, seed=seed + i,
                                            **attention)
            self.layers.append(layer)
        self.norm = tf.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab)

    def forward(self, x):  # (B, T) token ids -> (B, T, vocab) logits
        tf._check_ids("x", x, self.embed.num_embeddings)
        if x.shape[1] != self.seq_len:
            raise ValueError(f"x must hold sequences of length {self.seq_len}, "
                             f"got {x.shape[1]}")
        h = self.pos(self.embed(x))
        for layer in self.layers:
            h = layer(h)
        return self.out(self.norm(h))


# --- measuring ---------------------------------------------------------------------

class _PeakBytes(TorchDispatchMode):
    """Adds the bytes of each new storage an operation returns; subtracts them when
    the storage is freed; remembers the highest total."""

    def __init__(self):
        super().__init__()
        self.live, self.peak, self.seen = 0, 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in tree_flatten(out)[0]:
            if isinstance(x, torch.Tensor):
                storage = x.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size == 0 or key in self.seen:  # a view of a storage we know
                    continue
                self.seen.add(key)
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, key, size)
        return out

    def _free(self, key, size):
        self.live -= size
        self.seen.discard(key)


def peak_bytes(fn):
    """Call ``fn()``; return (the most bytes held at once by tensors created during
    the call, fn's result). Inputs made before the call are not counted; the result
    is. Exact and the same on every machine (a count of tensor sizes, not a reading
    of the process's memory)."""
    if not callable(fn):
        raise TypeError(f"peak_bytes measures a function of no arguments, got {fn!r}")
    with _PeakBytes() as counter:
        result = fn()
    return counter.peak, result


def cpu_seconds(fn, repeats: int = 3) -> float:
    """The least CPU time (s) of ``repeats`` calls of ``fn()``, on the CPU only.

    CPU time (``time.process_time``) leaves out the time other programs hold the
    processor, so it varies far less on a busy machine than wall time; the minimum is
    the least disturbed call (caches, page faults only add time).
    """
    if not callable(fn):
        raise TypeError(f"cpu_seconds times a function of no arguments, got {fn!r}")
    _check_positive_int("repeats", repeats)
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def loglog_slope(xs, ys) -> float:
    """The least-squares slope of log(y) against log(x): the exponent p in y ~ x^p."""
    xs, ys = list(xs), list(ys)
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"need two equally long lists of at least 2 values, got "
                         f"{len(xs)} and {len(ys)}")
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError("log-log slope needs positive values")
    lx = torch.tensor(xs, dtype=torch.float64).log()
    ly = torch.tensor(ys, dtype=torch.float64).log()
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


def attention_call(kind: str, q, k, v, *, window=None, k_proj=None, w=None,
                   generator=None):
    """A function of no arguments that runs attention of ``kind`` on (q, k, v),
    non-causal; Linformer's E, F are drawn here, N(0, 1/T)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "full":
        return lambda: tf.scaled_dot_product_attention(q, k, v)[0]
    if kind == "window":
        _check_positive_int("window", window)
        return lambda: sliding_window_attention(q, k, v, window)
    if kind == "linformer":
        _check_positive_int("projected length k_proj", k_proj)
        t = k.shape[-2]
        e, f = (torch.randn(k_proj, t, generator=generator).to(k) / math.sqrt(t)
                for _ in range(2))
        return lambda: linformer_attention(q, k, v, e, f)
    return lambda: favor_attention(q, k, v, w)


# --- a task where distance matters --------------------------------------------------

@dataclass(frozen=True)
class CopyTask:
    """y_i = x_(i + distance mod length): copy the token ``distance`` places ahead.

    A one-layer model of any kind is trained on fresh random sequences for ``steps``
    AdamW updates and scored on 512 sequences it never saw (chance: 1 / vocab).
    """

    length: int = 32
    vocab: int = 16
    d_model: int = 32
    n_heads: int = 2
    batch: int = 32
    steps: int = 150
    lr: float = 0.01
    window: int = 4
    k_proj: int = 8
    features: int = 32

    def batch_of(self, n: int, distance: int, generator):
        """(n, length) random tokens x and their targets y."""
        _check_positive_int("n", n)
        if isinstance(distance, bool) or not isinstance(distance, int) or not (
                0 < distance < self.length):
            raise ValueError(f"distance must be an integer in 1..{self.length - 1}, "
                             f"got {distance!r}")
        x = torch.randint(0, self.vocab, (n, self.length), generator=generator)
        return x, torch.roll(x, -distance, dims=1)  # y_i = x_(i+distance)

    def options(self, kind: str) -> dict:
        """The attention options of ``kind`` under this task's settings."""
        return {"full": {}, "window": {"window": self.window},
                "linformer": {"k_proj": self.k_proj},
                "performer": {"features": self.features}}[kind]

    def train(self, kind: str, distance: int, seed: int, device=None) -> dict:
        """Train one model; return its test accuracy and its last training loss."""
        torch.manual_seed(seed)
        data = torch.Generator().manual_seed(10_000 + seed)  # the training stream
        model = Encoder(self.vocab, self.length, kind, self.d_model, self.n_heads,
                        seed=seed, **self.options(kind)).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr)
        for _ in range(self.steps):
            x, y = (a.to(device) for a in self.batch_of(self.batch, distance, data))
            loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        test = torch.Generator().manual_seed(99)  # the same test set for every model
        x, y = (a.to(device) for a in self.batch_of(512, distance, test))
        with torch.no_grad():
            accuracy = (model(x).argmax(-1) == y).float().mean().item()
        return {"accuracy": accuracy, "loss": loss.item()}


# --- checks ------------------------------------------------------------------------

def _check_qkv(q, k, v, same_length=False):
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor (..., T, d), "
                             f"got {_describe(x)}")
    fits = (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2])
    if same_length:
        fits = fits and q.shape[-2] == k.shape[-2]
    if not fits:
        what = "T" if same_length else "T_q"
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}; expected q (..., {what}, d_k), "
                         "k (..., T, d_k), v (..., T, d_v) with the same leading "
                         "dimensions")
