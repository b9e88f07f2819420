"""A small recurrent sequence-to-sequence toolkit (Bahdanau et al. 2014, and its
baseline).

Notation follows the paper: source words x_1..x_Tx, annotations h_j = [h→_j; h←_j],
decoder states s_i, alignment scores e_ij = a(s_{i-1}, h_j), weights α_ij, context
vectors c_i. Shapes: B batch, S source length, T target length, E embedding size (the
paper's m), H hidden size (n), A attention size (n'), V vocabulary size.

The pieces other chapters reuse: ``Vocab``, ``pad_batch``/``make_batch``, ``train``
(any model whose ``forward(src, src_len, tgt_in)`` returns logits), ``greedy_decode``
(any model with ``encode`` and ``decode_step``) and ``corpus_bleu``.

Bad input gets a ``TypeError`` (a wrong kind of object: a str where a list of tokens is
expected, a float tensor where ids are expected) or a ``ValueError`` (a wrong value or
shape: an id outside the vocabulary, a length longer than its tensor), each saying what
was given and what is expected.
"""
from __future__ import annotations

import math
import numbers
import random
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mlf.notebook import progress

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def _is_int(value) -> bool:
    """A Python or NumPy integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(name: str, value) -> None:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_tensor(name: str, value, dims: int | tuple[int, ...], kind: str) -> None:
    """``value`` must be a tensor with ``dims`` dimensions holding ``kind`` numbers.

    ``kind`` is "int" (token ids, lengths), "float" or "bool".
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    dims = (dims,) if isinstance(dims, int) else dims
    if value.dim() not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions, "
                         f"got shape {tuple(value.shape)}")
    is_float, is_bool = value.is_floating_point(), value.dtype == torch.bool
    is_int = not (is_float or is_bool or value.is_complex())
    if not {"int": is_int, "float": is_float, "bool": is_bool}[kind]:
        expected = {"int": "an integer dtype (e.g. torch.long)",
                    "float": "a floating dtype", "bool": "dtype torch.bool"}[kind]
        raise TypeError(f"{name} must have {expected}, got {value.dtype}")


def _check_ids(name: str, ids: torch.Tensor, vocab_size: int) -> None:
    """Every id in the integer tensor ``ids`` must lie in [0, vocab_size)."""
    if ids.numel():
        low, high = (int(v) for v in torch.aminmax(ids))
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} holds ids from {low} to {high}; expected ids in "
                             f"[0, {vocab_size}) (the vocabulary's size)")


def _check_lengths(src: torch.Tensor, src_len) -> None:
    """``src_len`` must be (B,) integers from 1 to S for a source batch (B, S, ...)."""
    _check_tensor("src_len", src_len, 1, "int")
    if src.dim() < 2 or src.shape[0] == 0 or src_len.shape != (src.shape[0],):
        raise ValueError(f"expected src (B, S, ...) with B > 0 and src_len (B,), got "
                         f"{tuple(src.shape)} and {tuple(src_len.shape)}")
    low, high = int(src_len.min()), int(src_len.max())
    if low < 1 or high > src.shape[1]:
        raise ValueError(f"src_len must lie between 1 and the source length S = "
                         f"{src.shape[1]}, got lengths from {low} to {high}")


def _check_tokens(what: str, tokens) -> list[str]:
    """``tokens`` as a list of str; a bare str (an unsplit sentence) is refused."""
    if isinstance(tokens, str) or not hasattr(tokens, "__iter__"):
        raise TypeError(f"{what} expects a sequence of tokens (str), got "
                        f"{type(tokens).__name__} {tokens!r:.40}; a sentence must be "
                        "split into tokens first")
    tokens = list(tokens)
    not_str = [t for t in tokens if not isinstance(t, str)]
    if not_str:
        raise TypeError(f"tokens must be str, got {not_str[0]!r} "
                        f"({type(not_str[0]).__name__})")
    return tokens


class Vocab:
    """Token <-> id maps; ids 0, 1, 2 are padding, begin and end of sentence."""

    def __init__(self, tokens):
        tokens = _check_tokens("Vocab", tokens)
        # sorted: ids do not depend on set order
        tokens = sorted(set(tokens) - {PAD, BOS, EOS})
        if not tokens or not all(tokens):
            raise ValueError("Vocab needs at least one token, and every token must be "
                             "a non-empty str")
        self.itos = [PAD, BOS, EOS] + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.bos, self.eos = 0, 1, 2

    def __len__(self):
        return len(self.itos)

    def encode(self, tokens) -> list[int]:
        tokens = _check_tokens("encode", tokens)
        unknown = [t for t in tokens if t not in self.stoi]
        if unknown:
            raise ValueError(f"tokens not in the vocabulary: {unknown[:5]!r}")
        return [self.stoi[t] for t in tokens]

    def decode(self, ids) -> list[str]:
        """Tokens up to (not including) the first end of sentence; padding and begin
        dropped. ``ids`` is one sequence: a list of ints or a 1-D integer tensor."""
        if isinstance(ids, torch.Tensor):
            _check_tensor("ids", ids, 1, "int")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not _is_int(i):
                raise TypeError(f"decode expects one sequence of integer ids, got the "
                                f"item {i!r:.40} ({type(i).__name__}); decode a batch "
                                "row by row")
            i = int(i)
            if i == self.eos:
                break
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary of size "
                                 f"{len(self.itos)}")
            if i not in (self.pad, self.bos):
                out.append(self.itos[i])
        return out


def pad_batch(seqs, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of ids into a (B, T) LongTensor; also return the (B,) lengths."""
    if not _is_int(pad_id) or pad_id < 0:
        raise ValueError(f"pad_id must be a non-negative integer, got {pad_id!r}")
    if isinstance(seqs, (str, torch.Tensor)) or not hasattr(seqs, "__iter__"):
        raise TypeError(f"pad_batch expects a list of id lists, got "
                        f"{type(seqs).__name__}")
    seqs = list(seqs)
    if not seqs:
        raise ValueError("pad_batch got an empty batch; expected at least one sequence")
    for k, s in enumerate(seqs):
        if isinstance(s, (str, torch.Tensor)) or not hasattr(s, "__iter__"):
            raise TypeError(f"pad_batch expects a list of id lists; sequence {k} is a "
                            f"{type(s).__name__} (encode tokens with Vocab.encode)")
    seqs = [list(s) for s in seqs]
    if any(len(s) == 0 for s in seqs):
        raise ValueError("pad_batch got an empty sequence; every sequence needs at "
                         "least one id")
    for k, s in enumerate(seqs):
        bad = [i for i in s if not _is_int(i) or i < 0]
        if bad:
            raise (ValueError if _is_int(bad[0]) else TypeError)(
                f"ids must be non-negative integers; sequence {k} holds {bad[0]!r}")
    lengths = torch.tensor([len(s) for s in seqs])
    B, T = len(seqs), int(lengths.max())
    out = torch.full((B, T), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[b, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def length_sorted_batches(lengths, batch_size: int, seed: int = 0, pool: int = 20):
    """Endless lists of indices, sentences of similar length batched together (the
    paper's trick).

    Each round shuffles, takes ``pool * batch_size`` sentences, sorts them by length,
    cuts them into ``pool`` batches and yields those in random order: little padding,
    still random.
    """
    lengths = list(lengths)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("pool", pool)
    if not all(_is_int(n) and n >= 0 for n in lengths):
        raise ValueError("lengths must be non-negative integers, one per sentence")
    if len(lengths) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} sentences, "
                         f"got {len(lengths)}")
    rng = random.Random(seed)
    order = []
    while True:
        if len(order) < pool * batch_size:
            order += rng.sample(range(len(lengths)), len(lengths))
        chunk, order = order[: pool * batch_size], order[pool * batch_size:]
        chunk.sort(key=lambda k: lengths[k])
        batches = [chunk[k:k + batch_size]
                   for k in range(0, len(chunk) - batch_size + 1, batch_size)]
        rng.shuffle(batches)
        yield from batches


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) source ids, right-padded
    src_len: torch.Tensor  # (B,) true source lengths (kept on the CPU for packing)
    tgt_in: torch.Tensor  # (B, T) <s> y_1 .. y_{T-1}: what the decoder reads
    tgt_out: torch.Tensor  # (B, T) y_1 .. y_T </s>: what it must predict

    def __post_init__(self):
        for name in ("src", "src_len", "tgt_in", "tgt_out"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"Batch.{name} must be a torch.Tensor, "
                                f"got {type(value).__name__}")
        B = self.src.shape[0] if self.src.dim() else None
        if (self.src_len.shape != (B,) or self.tgt_in.shape != self.tgt_out.shape
                or self.tgt_in.dim() != 2 or self.tgt_in.shape[0] != B):
            raise ValueError(
                f"expected src (B, S, ...), src_len (B,), tgt_in and tgt_out (B, T); "
                f"got {tuple(self.src.shape)}, {tuple(self.src_len.shape)}, "
                f"{tuple(self.tgt_in.shape)}, {tuple(self.tgt_out.shape)}")

    def to(self, device) -> "Batch":
        return Batch(self.src.to(device), self.src_len, self.tgt_in.to(device),
                     self.tgt_out.to(device))


def _check_vocab(name: str, vocab) -> None:
    if not isinstance(vocab, Vocab):
        raise TypeError(f"{name} must be a Vocab, got {type(vocab).__name__}")


def target_batch(tgt_seqs, vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded decoder input (<s> in front) and output (</s> behind) of target
    sequences: (B, T) each."""
    _check_vocab("vocab", vocab)
    tgt = [vocab.encode(t) for t in tgt_seqs]
    tgt_in, _ = pad_batch([[vocab.bos] + t for t in tgt], vocab.pad)
    tgt_out, _ = pad_batch([t + [vocab.eos] for t in tgt], vocab.pad)
    return tgt_in, tgt_out


def make_batch(src_seqs, tgt_seqs, src_vocab: Vocab, tgt_vocab: Vocab) -> Batch:
    """Encode and pad token sequences; the target gets <s> in front (input) and </s>
    behind (output)."""
    _check_vocab("src_vocab", src_vocab)
    _check_vocab("tgt_vocab", tgt_vocab)
    src_seqs, tgt_seqs = list(src_seqs), list(tgt_seqs)
    if len(src_seqs) != len(tgt_seqs):
        raise ValueError(f"got {len(src_seqs)} source and {len(tgt_seqs)} target "
                         "sequences; expected one target per source")
    src, src_len = pad_batch([src_vocab.encode(s) for s in src_seqs], src_vocab.pad)
    return Batch(src, src_len, *target_batch(tgt_seqs, tgt_vocab))


class GRUCell(nn.Module):
    """A gated recurrent unit written out, with ``torch.nn.GRU``'s parameter layout.

    Gates are stacked (reset r, update z, candidate) as in ``nn.GRU``, so weights can be
    copied across. ``reset_after=True`` is PyTorch's (and cuDNN's) form, r ∘ (U s + b);
    ``False`` is the paper's, U (r ∘ s), which ``nn.GRU`` cannot express.
    """

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = True):
        super().__init__()
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        self.hidden_size, self.reset_after = hidden_size, reset_after
        self.ih = nn.Linear(input_size, 3 * hidden_size)  # [W_r; W_z; W] (+ C's)
        self.hh = nn.Linear(hidden_size, 3 * hidden_size)  # [U_r; U_z; U]

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # x: (B, input_size), s: (B, H) -> (B, H)
        _check_gru_inputs(self, x, s)
        xr, xz, xn = self.ih(x).chunk(3, dim=-1)  # each (B, H)
        w_r, w_z, w_n = self.hh.weight.chunk(3, dim=0)
        b_r, b_z, b_n = self.hh.bias.chunk(3)
        r = torch.sigmoid(xr + F.linear(s, w_r, b_r))
        z = torch.sigmoid(xz + F.linear(s, w_z, b_z))
        if self.reset_after:
            candidate = torch.tanh(xn + r * F.linear(s, w_n, b_n))
        else:
            candidate = torch.tanh(xn + F.linear(r * s, w_n, b_n))
        # subtle: PyTorch's z keeps the old state; the paper's z_i (= 1 - z) admits
        # the new one
        return z * s + (1 - z) * candidate


def _check_gru_inputs(cell: GRUCell, x, s) -> None:
    _check_tensor("x", x, 2, "float")
    _check_tensor("s", s, 2, "float")
    n_in, H = cell.ih.in_features, cell.hidden_size
    if x.shape[0] != s.shape[0] or x.shape[1] != n_in or s.shape[1] != H:
        raise ValueError(f"GRUCell expects x (B, {n_in}) and s (B, {H}), "
                         f"got {tuple(x.shape)} and {tuple(s.shape)}")
    if x.dtype != cell.ih.weight.dtype or s.dtype != cell.ih.weight.dtype:
        raise TypeError(f"x and s must have the cell's dtype {cell.ih.weight.dtype}, "
                        f"got {x.dtype} and {s.dtype}")


class BiEncoder(nn.Module):
    """Embedding and a bidirectional GRU: annotations h_j = [h→_j; h←_j], (B, S, 2H)."""

    def __init__(self, vocab_size: int, emb_size: int, hidden_size: int,
                 pad_id: int = 0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("emb_size", emb_size),
                            ("hidden_size", hidden_size)):
            _check_positive_int(name, value)
        self.embed = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)  # E
        self.rnn = nn.GRU(emb_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
        _check_tensor("src", src, 2, "int")
        _check_lengths(src, src_len)
        _check_ids("src", src, self.embed.num_embeddings)
        # subtle: packing makes h← start at each sentence's own last word, not at the
        # padding
        packed = pack_padded_sequence(self.embed(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=src.shape[1])
        return h  # (B, S, 2H), zeros at padded positions


class AdditiveAttention(nn.Module):
    """The alignment model a(s_{i-1}, h_j) = v_a^T tanh(W_a s_{i-1} + U_a h_j), softmax
    over j."""

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        for name, value in (("query_size", query_size), ("key_size", key_size),
                            ("attn_size", attn_size)):
            _check_positive_int(name, value)
        self.W_a = nn.Linear(query_size, attn_size, bias=False)
        self.U_a = nn.Linear(key_size, attn_size)  # the tanh layer's bias lives here
        self.v_a = nn.Linear(attn_size, 1, bias=False)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """U_a h_j for all j, once per sentence: it does not depend on i."""
        return self.U_a(h)  # (B, S, 2H) -> (B, S, A)

    def forward(self, s_prev, h, mask, Uh=None, extra=None):
        # s_prev: (B, H); h: (B, S, 2H); mask: (B, S), True at real words
        #   -> c (B, 2H), α (B, S)
        # extra: (B, S, A), one more term inside the tanh (the speech chapter's location
        # features)
        _check_attention_inputs(self, s_prev, h, mask, Uh, extra)
        Uh = self.project(h) if Uh is None else Uh
        pre = self.W_a(s_prev).unsqueeze(1) + Uh  # W_a s_{i-1} + U_a h_j: (B, S, A)
        if extra is not None:
            pre = pre + extra
        e = self.v_a(torch.tanh(pre)).squeeze(-1)  # e_ij: (B, S)
        alpha = self.normalize(e, mask)  # α_ij: (B, S), each row sums to 1
        c = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)  # c_i = Σ_j α_ij h_j: (B, 2H)
        return c, alpha

    def normalize(self, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Softmax of the scores over the real words; padding gets α = 0."""
        return torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)


def _check_attention_inputs(attn, s_prev, h, mask, Uh, extra) -> None:
    _check_tensor("s_prev", s_prev, 2, "float")
    _check_tensor("h", h, 3, "float")
    _check_tensor("mask", mask, 2, "bool")
    Q, K, A = attn.W_a.in_features, attn.U_a.in_features, attn.U_a.out_features
    if (mask.shape != h.shape[:2] or s_prev.shape[0] != h.shape[0]
            or s_prev.shape[1] != Q or h.shape[2] != K):
        raise ValueError(f"expected s_prev (B, {Q}), h (B, S, {K}), mask (B, S); got "
                         f"{tuple(s_prev.shape)}, {tuple(h.shape)}, "
                         f"{tuple(mask.shape)}")
    for name, value in (("Uh", Uh), ("extra", extra)):
        if value is not None and (not isinstance(value, torch.Tensor)
                                  or value.shape != (*h.shape[:2], A)):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise ValueError(f"{name} must be None or a tensor (B, S, A) = "
                             f"{(*h.shape[:2], A)}, got {got!r:.40}")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every row of mask needs at least one True (a sentence with "
                         "no words)")


@dataclass
class Memory:
    """What the decoder needs from the encoder, computed once per source batch."""

    h: torch.Tensor  # (B, S, 2H) annotations
    mask: torch.Tensor  # (B, S) True at real words
    Uh: torch.Tensor | None  # (B, S, A) U_a h_j, or None without attention
    fixed_c: torch.Tensor  # (B, 2H) [h→_Tx; h←_1], the no-attention model's context
    s0: torch.Tensor  # (B, H) s_0 = tanh(W_s h←_1)


class RNNSearch(nn.Module):
    """The paper's encoder-decoder. ``attention=False`` gives its baseline (RNNencdec):
    the same network with c_i fixed to the encoder's final states for every i."""

    def __init__(self, src_vocab: int | None, tgt_vocab: int, emb_size: int = 32,
                 hidden_size: int = 64, attn_size: int = 64, maxout_size: int = 64,
                 attention: bool = True, encoder: nn.Module | None = None,
                 attn: nn.Module | None = None):
        super().__init__()
        if encoder is None and src_vocab is None:
            raise ValueError("RNNSearch needs src_vocab (for its word encoder) or an "
                             "encoder module")
        for name, value in (("tgt_vocab", tgt_vocab), ("emb_size", emb_size),
                            ("hidden_size", hidden_size), ("attn_size", attn_size),
                            ("maxout_size", maxout_size)):
            _check_positive_int(name, value)
        H = hidden_size
        self.attention = attention
        # any encoder mapping (src, src_len) to annotations (B, S, 2H) will do (speech)
        self.encoder = BiEncoder(src_vocab, emb_size, H) if encoder is None else encoder
        self.W_s = nn.Linear(H, H)
        if attention:  # another alignment model may replace a(s, h) (location-aware)
            self.attn = AdditiveAttention(H, 2 * H, attn_size) if attn is None else attn
        else:
            self.attn = None
        self.embed = nn.Embedding(tgt_vocab, emb_size, padding_idx=0)  # target side E
        self.cell = GRUCell(emb_size + 2 * H, H)  # input [E y_{i-1}; c_i]: W and C
        self.maxout_size = maxout_size
        # t̃_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i, one layer on the concatenation
        self.t_tilde = nn.Linear(H + emb_size + 2 * H, 2 * maxout_size)
        self.W_o = nn.Linear(maxout_size, tgt_vocab)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Memory:
        if not isinstance(src, torch.Tensor):
            raise TypeError(f"src must be a torch.Tensor, got {type(src).__name__}")
        if src.dim() not in (2, 3) or src.shape[0] == 0:
            raise ValueError(f"expected src (B, S) or (B, S, features) with B > 0, "
                             f"got {tuple(src.shape)}")
        _check_lengths(src, src_len)
        h = self.encoder(src, src_len)  # (B, S, 2H)
        H = h.shape[-1] // 2
        lengths = src_len.to(src.device)
        mask = torch.arange(src.shape[1], device=src.device) < lengths.unsqueeze(1)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, H)  # index of x_Tx
        forward_last = h[:, :, :H].gather(1, last).squeeze(1)  # h→_Tx: (B, H)
        backward_first = h[:, 0, H:]  # h←_1: (B, H)
        Uh = self.attn.project(h) if self.attention else None
        fixed_c = torch.cat([forward_last, backward_first], dim=-1)  # (B, 2H)
        return Memory(h, mask, Uh, fixed_c, torch.tanh(self.W_s(backward_first)))

    def decode_step(self, memory: Memory, y_prev: torch.Tensor, s_prev: torch.Tensor):
        """One target word: (B,) previous ids and s_{i-1} -> logits (B, V), s_i,
        α_i (B, S) or None."""
        if self.attention:  # c_i: (B, 2H)
            c, alpha = self.attn(s_prev, memory.h, memory.mask, memory.Uh)
        else:
            c, alpha = memory.fixed_c, None
        logits, s = self.emit(y_prev, s_prev, c)
        return logits, s, alpha

    def emit(self, y_prev: torch.Tensor, s_prev: torch.Tensor, c: torch.Tensor):
        """Given the context c_i: logits (B, V) for y_i and the next state s_i
        (B, H)."""
        _check_emit_inputs(self, y_prev, s_prev, c)
        ey = self.embed(y_prev)  # E y_{i-1}: (B, E)
        t = self.t_tilde(torch.cat([s_prev, ey, c], dim=-1))  # t̃_i: (B, 2l)
        t = t.view(-1, self.maxout_size, 2).amax(dim=-1)  # maxout over pairs: (B, l)
        logits = self.W_o(t)  # (B, V); p(y_i | ...) = softmax
        # s_i = f(s_{i-1}, y_{i-1}, c_i)
        s = self.cell(torch.cat([ey, c], dim=-1), s_prev)
        return logits, s

    def forward(self, src, src_len, tgt_in):
        """Teacher forcing: logits (B, T, V) for every target position, and α (B, T, S)
        or None."""
        memory = self.encode(src, src_len)
        _check_tensor("tgt_in", tgt_in, 2, "int")
        if tgt_in.shape[1] == 0 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must be (B, T) with T >= 1 and the source's B, "
                             f"got {tuple(tgt_in.shape)} for a source batch of "
                             f"{src.shape[0]}")
        s, logits, alphas = memory.s0, [], []
        for i in range(tgt_in.shape[1]):
            step_logits, s, alpha = self.decode_step(memory, tgt_in[:, i], s)
            logits.append(step_logits)
            alphas.append(alpha)
        alphas = torch.stack(alphas, dim=1) if self.attention else None
        return torch.stack(logits, dim=1), alphas


def _check_emit_inputs(model: RNNSearch, y_prev, s_prev, c) -> None:
    _check_tensor("y_prev", y_prev, 1, "int")
    _check_tensor("s_prev", s_prev, 2, "float")
    _check_tensor("c", c, 2, "float")
    H = model.cell.hidden_size
    C = model.cell.ih.in_features - model.embed.embedding_dim
    B = y_prev.shape[0]
    if s_prev.shape != (B, H) or c.shape != (B, C):
        raise ValueError(f"expected y_prev (B,), s_prev (B, {H}) and c (B, {C}); got "
                         f"{tuple(y_prev.shape)}, {tuple(s_prev.shape)}, "
                         f"{tuple(c.shape)}")
    _check_ids("y_prev", y_prev, model.embed.num_embeddings)


def sequence_loss(logits: torch.Tensor, tgt_out: torch.Tensor, pad_id: int = 0,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy per target token, padding excluded. logits (B, T, V),
    tgt_out (B, T).

    ``label_smoothing`` ε trains against (1 - ε) one-hot + ε / V (PyTorch's definition).
    """
    _check_tensor("logits", logits, 3, "float")
    _check_tensor("tgt_out", tgt_out, 2, "int")
    if logits.shape[:2] != tgt_out.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets "
                         f"{tuple(tgt_out.shape)} disagree on (B, T)")
    _check_label_smoothing(label_smoothing)
    _check_ids("tgt_out", tgt_out, logits.shape[2])
    if not bool((tgt_out != pad_id).any()):
        raise ValueError(f"tgt_out holds only padding (id {pad_id}); expected at least "
                         "one target token")
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=pad_id,
                           label_smoothing=label_smoothing)


def _check_label_smoothing(value) -> None:
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got {value!r}")


def _check_train_args(model, next_batch, steps, lr, clip, schedule, label_smoothing,
                      betas, eps) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if next(model.parameters(), None) is None:
        raise ValueError("model has no parameters to train")
    if not callable(next_batch):
        raise TypeError(f"next_batch must be a function of the step, got "
                        f"{next_batch!r:.40}")
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be None or a function of the step, got "
                        f"{schedule!r:.40}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    for name, value in (("lr", lr), ("clip", clip)):
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not is_number or not value > 0:  # a NaN is not > 0 either
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    _check_label_smoothing(label_smoothing)
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas)):
        raise ValueError(f"betas must be a pair (β1, β2) of numbers in [0, 1), "
                         f"got {betas!r}")
    if not isinstance(eps, numbers.Real) or not 0.0 <= eps < math.inf:
        raise ValueError(f"eps must be a non-negative finite number, got {eps!r}")


def train(model: nn.Module, next_batch, steps: int, lr: float = 3e-3, clip: float = 1.0,
          desc: str = "training", schedule=None, label_smoothing: float = 0.0,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> list[float]:
    """Adam on ``sequence_loss`` for ``steps`` updates; ``next_batch(step)`` returns a
    Batch.

    The gradient norm is clipped at ``clip`` as in the paper. ``schedule(step)``, if
    given, multiplies ``lr`` at each step (steps count from 1), e.g. the Transformer's
    warm-up. ``betas`` (β1, β2) and ``eps`` (ε) are Adam's; the defaults are PyTorch's.
    Returns the loss of every step.
    """
    _check_train_args(model, next_batch, steps, lr, clip, schedule, label_smoothing,
                      betas, eps)
    device = next(model.parameters()).device
    # orig: Adadelta (ε=1e-6, ρ=0.95)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas), eps=eps)
    if schedule is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule(1)
    model.train()
    losses = []
    bar = progress(range(steps), desc=desc)
    for step in bar:
        batch = next_batch(step)
        if not isinstance(batch, Batch):
            raise TypeError(f"next_batch({step}) must return a Batch, "
                            f"got {type(batch).__name__}")
        batch = batch.to(device)
        logits, _ = model(batch.src, batch.src_len, batch.tgt_in)
        loss = sequence_loss(logits, batch.tgt_out, label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if schedule is not None:  # the rate for the next step
            for group in optimizer.param_groups:
                group["lr"] = lr * schedule(step + 2)
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return losses


@torch.no_grad()
def greedy_decode(model: nn.Module, src: torch.Tensor, src_len: torch.Tensor, bos: int,
                  eos: int, max_len: int):
    """Pick the most probable word at every step until </s> (or ``max_len`` words).

    Returns one id list per sentence (without </s>) and, for attention models, α as a
    (B, steps, S) tensor (rows after a sentence's </s> are meaningless), else None.
    """
    if not _is_int(max_len) or max_len < 1:
        raise ValueError(f"max_len must be an integer of at least 1, got {max_len!r}")
    if not (_is_int(bos) and _is_int(eos) and bos >= 0 and eos >= 0):
        raise ValueError(f"bos and eos must be non-negative token ids, got {bos!r} "
                         f"and {eos!r}")
    if not isinstance(src, torch.Tensor):
        raise TypeError(f"src must be a torch.Tensor, got {type(src).__name__}")
    _check_lengths(src, src_len)
    model.eval()
    memory = model.encode(src, src_len)
    B = src.shape[0]
    y = torch.full((B,), bos, dtype=torch.long, device=src.device)
    s, out, alphas = memory.s0, [], []
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, s, alpha = model.decode_step(memory, y, s)
        y = logits.argmax(dim=-1)  # (B,)
        out.append(y)
        alphas.append(alpha)
        done |= y == eos
        if bool(done.all()):
            break
    ids = torch.stack(out, dim=1).tolist()  # (B, steps)
    hyps = [row[: row.index(eos)] if eos in row else row for row in ids]
    return hyps, (torch.stack(alphas, dim=1) if alphas[0] is not None else None)


def _token_lists(name: str, corpus) -> list[list]:
    """A corpus as a list of token lists; a str in place of a token list is refused."""
    if isinstance(corpus, str) or not hasattr(corpus, "__iter__"):
        raise TypeError(f"{name} must be a list of sentences (token lists), got "
                        f"{type(corpus).__name__}")
    corpus = list(corpus)
    for k, sentence in enumerate(corpus):
        if isinstance(sentence, str) or not hasattr(sentence, "__iter__"):
            raise TypeError(f"{name}[{k}] must be a list of tokens, got "
                            f"{type(sentence).__name__} {sentence!r:.40}; split the "
                            "sentence into tokens first")
    return [list(sentence) for sentence in corpus]


def corpus_bleu(hypotheses, references, max_n: int = 4) -> float:
    """Corpus-level BLEU (Papineni et al. 2002) in percent, one reference per sentence.

    n-gram precisions are clipped counts summed over the corpus; their geometric mean is
    multiplied by the brevity penalty exp(1 - r/c) when the output is shorter (c < r).
    There is no smoothing: a corpus with no matching n-gram for some n scores 0. This is
    sacrebleu's ``BLEU(tokenize="none", smooth_method="none")`` on the tokens joined by
    spaces (``tests/test_seq2seq.py`` checks that the two agree).
    """
    _check_positive_int("max_n", max_n)
    hypotheses = _token_lists("hypotheses", hypotheses)
    references = _token_lists("references", references)
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses and {len(references)} "
                         "references; expected one reference per hypothesis")
    if not hypotheses:
        raise ValueError("corpus_bleu needs at least one sentence pair")
    matches, totals = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            hyp_ngrams = Counter(tuple(hyp[k:k + n]) for k in range(len(hyp) - n + 1))
            ref_ngrams = Counter(tuple(ref[k:k + n]) for k in range(len(ref) - n + 1))
            matches[n - 1] += sum((hyp_ngrams & ref_ngrams).values())  # clipped counts
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    c, r = sum(map(len, hypotheses)), sum(map(len, references))
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return 100 * brevity * math.exp(log_precision)
