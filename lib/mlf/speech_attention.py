"""Attention-based speech recognition (Chorowski et al. 2015): content-based vs.
location-aware.

The paper's notation: encoder states h_j over L frames, decoder state s_{i-1}, previous
alignment α_{i-1}, location features f_i = F * α_{i-1} (k filters of width r), scores
e_{i,j} = w^T tanh(W s_{i-1} + V h_j + U f_{i,j} + b), glimpse g_i = Σ_j α_{i,j} h_j.
Shapes: B batch, L frames, M mel bands, H hidden size, A attention size, k filters,
N phonemes.

The model is the Bahdanau chapter's ``RNNSearch`` with two parts swapped: an encoder
that reads log-mel frames instead of words, and this alignment model. Training and
greedy decoding are ``mlf.seq2seq``'s.

The authors' code, where this module follows it (Theano "attention-lvcsr",
github.com/rizar/attention-lvcsr, ``lvsr/bricks/attention.py``,
``SequenceContentAndConvAttention``): α_0 is one-hot on the first frame
(``initial_glimpses``); the score gets a bias of its own only when the normaliser is not
the softmax (``use_bias=self.energy_normalizer != 'softmax'``); their TIMIT filters
span 2 * 100 + 1 frames of 10 ms, ±1 s (``conv_n: 100`` in
``lvsr/configs/timit_bothgru_conv.yaml``).
"""
from __future__ import annotations

import math
from dataclasses import replace
from numbers import Integral, Real

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mlf.env import seed_everything
from mlf.seq2seq import (AdditiveAttention, Batch, RNNSearch, Vocab, greedy_decode,
                         length_sorted_batches, target_batch, train)
from mlf.speech import Utterance, feature_stats, pad_features


def _check_int(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")


def _check_encoder_options(n_features, hidden_size, layers, mean, std) -> None:
    for name, value in (("n_features", n_features), ("hidden_size", hidden_size),
                        ("layers", layers)):
        _check_int(name, value, 1)
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and (not isinstance(value, torch.Tensor)
                                  or value.shape != (n_features,)):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise ValueError(f"{name} must be None or a tensor ({n_features},), "
                             f"one value per mel band; got {got!r:.40}")
    if std is not None and not bool((std > 0).all()):
        raise ValueError("std must be positive in every band")


def _check_frames(x, lengths, M: int) -> None:
    """Frames (B, L, M), finite, and lengths (B,) from 1 to L."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"frames must be a floating-point tensor (B, L, {M})")
    if x.dim() != 3 or x.shape[-1] != M or x.shape[0] == 0:
        raise ValueError(f"expected frames (B, L, {M}) with B > 0, got "
                         f"{tuple(x.shape)}")
    if (not isinstance(lengths, torch.Tensor) or lengths.is_floating_point()
            or lengths.dtype == torch.bool or lengths.shape != (x.shape[0],)):
        raise ValueError(f"lengths must be an integer tensor ({x.shape[0]},), one "
                         f"length per utterance")
    if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
        raise ValueError(f"lengths must lie between 1 and L = {x.shape[1]}, got "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("frames hold NaN or infinite values; expected finite "
                         "log-mel features")


def _check_attention_options(n_filters, width, beta, smooth, window) -> None:
    _check_int("n_filters", n_filters, 0)
    _check_int("width", width, 1)
    if width % 2 == 0:
        raise ValueError(f"need n_filters >= 0 and an odd filter width, got "
                         f"{n_filters} and {width}")
    if (isinstance(beta, bool) or not isinstance(beta, Real)
            or not math.isfinite(beta) or beta <= 0):
        raise ValueError(f"need beta > 0 (finite), got {beta!r}")
    if window is not None:
        _check_int("window", window, 0)
    if not isinstance(smooth, bool):
        raise TypeError(f"smooth must be True or False, got {smooth!r}")


class FeatureEncoder(nn.Module):
    """Normalised log-mel frames through a stack of bidirectional GRUs:
    (B, L, M) -> h (B, L, 2H)."""

    def __init__(self, n_features: int, hidden_size: int, layers: int = 2, mean=None,
                 std=None):
        super().__init__()
        _check_encoder_options(n_features, hidden_size, layers, mean, std)
        # per-band statistics of the training frames (buffers: saved, not trained)
        self.register_buffer("mean", torch.zeros(n_features) if mean is None
                             else mean.float())
        self.register_buffer("std", torch.ones(n_features) if std is None
                             else std.float())
        # the paper's encoder is deeper and wider
        self.rnn = nn.GRU(n_features, hidden_size, num_layers=layers, batch_first=True,
                          bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _check_frames(x, lengths, self.mean.shape[0])
        x = (x - self.mean) / self.std
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return h  # (B, L, 2H), zeros at padded frames


def median_frame(alpha: torch.Tensor) -> torch.Tensor:
    """The frame where α's cumulative mass first reaches 1/2: (B, L) -> (B,)."""
    if not isinstance(alpha, torch.Tensor) or alpha.dim() < 1 or alpha.shape[-1] == 0:
        got = tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha)
        raise ValueError(f"expected alignments (..., L) with L >= 1, got {got}")
    return (alpha.cumsum(dim=-1) < 0.5).sum(dim=-1).clamp(max=alpha.shape[-1] - 1)


class LocationAwareAttention(AdditiveAttention):
    """The paper's hybrid attention; ``n_filters=0`` leaves its content-based baseline.

    Inherited names map to the paper's: W_a is W, U_a is V (its bias is b), v_a is w.
    ``beta`` > 1 sharpens the weights (α ∝ exp(β e)); ``smooth`` replaces exp by the
    logistic sigmoid (α ∝ σ(β (e + b_e)), with a learned energy bias b_e); ``window`` w
    keeps only frames within w of the median of α_{i-1}.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int,
                 n_filters: int = 10, width: int = 101, beta: float = 1.0,
                 smooth: bool = False, window: int | None = None):
        super().__init__(query_size, key_size, attn_size)
        _check_attention_options(n_filters, width, beta, smooth, window)
        self.n_filters, self.beta = n_filters, beta
        self.smooth, self.window = smooth, window
        if n_filters:  # k filters, r = width
            self.F = nn.Conv1d(1, n_filters, width, padding=width // 2, bias=False)
            self.U = nn.Linear(n_filters, attn_size, bias=False)
        if smooth:
            # subtle: softmax ignores a constant added to every e_{i,j}; σ does not. The
            # authors' code gives the score a bias only for the logistic normaliser. It
            # sets where σ works: b_e << 0 gives σ ≈ exp (the softmax again), b_e >> 0
            # saturates σ at 1 (uniform weights). Starts at 0 as their biases do.
            self.energy_bias = nn.Parameter(torch.zeros(1))

    def location_features(self, alpha_prev: torch.Tensor) -> torch.Tensor:
        """f_i = F * α_{i-1}: (B, L) -> (B, L, k); f_{i,j} looks at α_{i-1} from j - r/2
        to j + r/2."""
        # subtle: Conv1d cross-correlates (no kernel flip); F is learned: the same model
        return self.F(alpha_prev.unsqueeze(1)).transpose(1, 2)

    def forward(self, s_prev, h, mask, Uh=None, alpha_prev=None):
        # s_prev: (B, H); h: (B, L, 2H); mask, alpha_prev: (B, L) -> g (B, 2H), α (B, L)
        if (self.n_filters or self.window is not None) and (
                not isinstance(alpha_prev, torch.Tensor)
                or alpha_prev.shape != mask.shape):
            got = (tuple(alpha_prev.shape) if isinstance(alpha_prev, torch.Tensor)
                   else None)
            raise ValueError(f"location features and windowing need alpha_prev of "
                             f"shape {tuple(mask.shape)}, got {got}")
        if self.window is not None:  # only frames within w of α_{i-1}'s median compete
            m = median_frame(alpha_prev).unsqueeze(1)  # (B, 1)
            frames = torch.arange(mask.shape[1], device=mask.device)
            mask = mask & ((frames - m).abs() <= self.window)
        location = None
        if self.n_filters:  # U f_{i,j}: (B, L, A)
            location = self.U(self.location_features(alpha_prev))
        # e_{i,j} = w^T tanh(W s_{i-1} + V h_j + b + U f_{i,j}); g_i = Σ_j α_{i,j} h_j
        return super().forward(s_prev, h, mask, Uh, extra=location)

    def normalize(self, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """α_i from the scores e_i over the frames where ``mask`` is True: (B, L) ->
        (B, L)."""
        if self.smooth:
            # α_{i,j} = σ(x_j) / Σ_j' σ(x_j'), x = β (e + b_e): frames share the mass.
            # (the paper's smooth focus has no β: β = 1 is its form, β != 1 ours)
            # Computed as softmax(log σ(x)): the same ratio, and never 0 / 0.
            x = self.beta * (e + self.energy_bias)
            return super().normalize(torch.nn.functional.logsigmoid(x), mask)
        return super().normalize(self.beta * e, mask)  # α_{i,j} ∝ exp(β e_{i,j})


def to_espnet(attn: LocationAwareAttention):
    """ESPnet's AttLoc, the reference location-aware attention, holding ``attn``'s
    weights.

    Its names: mlp_dec is W, mlp_enc is V (+ b), loc_conv is F, mlp_att is U, gvec is w
    (its bias, a constant shift of every score, is set to 0). Call it with
    ``scaling=beta``. AttLoc normalises with a softmax over all frames: it has no
    smoothing and no window.
    """
    from espnet.nets.pytorch_backend.rnn.attentions import AttLoc

    if not isinstance(attn, LocationAwareAttention):
        raise TypeError(f"to_espnet needs a LocationAwareAttention, got "
                        f"{type(attn).__name__}")
    if not attn.n_filters:
        raise ValueError("to_espnet needs location features (n_filters > 0)")
    if attn.smooth or attn.window is not None:
        raise ValueError("AttLoc has no smoothing and no window; to_espnet needs "
                         "smooth=False and window=None")
    width = attn.F.kernel_size[0]
    ref = AttLoc(attn.U_a.in_features, attn.W_a.in_features, attn.U_a.out_features,
                 attn.n_filters, width // 2).to(attn.U_a.weight.dtype)
    with torch.no_grad():
        ref.mlp_dec.weight.copy_(attn.W_a.weight)
        ref.mlp_enc.weight.copy_(attn.U_a.weight)
        ref.mlp_enc.bias.copy_(attn.U_a.bias)
        # (k, 1, r) -> AttLoc's (k, 1, 1, r)
        ref.loc_conv.weight.copy_(attn.F.weight.view(attn.n_filters, 1, 1, width))
        ref.mlp_att.weight.copy_(attn.U.weight)
        ref.gvec.weight.copy_(attn.v_a.weight)
        ref.gvec.bias.zero_()
    return ref


class SpeechRecognizer(RNNSearch):
    """Log-mel frames in, phonemes out: RNNSearch with a FeatureEncoder and
    LocationAwareAttention.

    The decoder's state is the pair (s_i, α_i), since the next alignment needs the last
    one. ``attention_options`` go to LocationAwareAttention: n_filters (0:
    content-based), width, beta, smooth, window.
    """

    def __init__(self, n_features: int, n_phonemes: int, hidden_size: int = 64,
                 attn_size: int = 64, emb_size: int = 16, maxout_size: int = 64,
                 layers: int = 2, mean=None, std=None, **attention_options):
        super().__init__(None, n_phonemes, emb_size, hidden_size, attn_size,
                         maxout_size,
                         encoder=FeatureEncoder(n_features, hidden_size, layers, mean,
                                                std),
                         attn=LocationAwareAttention(hidden_size, 2 * hidden_size,
                                                     attn_size, **attention_options))

    def encode(self, src, src_len):
        memory = super().encode(src, src_len)
        alpha0 = torch.zeros(memory.mask.shape, device=src.device)
        # α_0: all mass on the first frame, so reading starts at the start (as in the
        # authors' code, attention-lvcsr's initial_glimpses)
        alpha0[:, 0] = 1.0
        return replace(memory, s0=(memory.s0, alpha0))

    def decode_step(self, memory, y_prev, state):
        s_prev, alpha_prev = state
        # g_i: (B, 2H)
        g, alpha = self.attn(s_prev, memory.h, memory.mask, memory.Uh, alpha_prev)
        logits, s = self.emit(y_prev, s_prev, g)
        return logits, (s, alpha), alpha


def speech_batch(utterances: list[Utterance], vocab: Vocab) -> Batch:
    """Padded frames (B, L, M) and phoneme ids with <s> in front (input) and </s> behind
    (output)."""
    src, src_len = pad_features([u.features for u in utterances])
    return Batch(src, src_len, *target_batch([u.phonemes for u in utterances], vocab))


def max_phonemes(n_frames: int) -> int:
    """Decoding stops here at the latest: one phoneme per 3 frames (60 ms), plus 5.

    A cap from the audio alone; the fastest speech in our data has one phoneme per 3.3
    frames.
    """
    _check_int("n_frames", n_frames, 1)
    return n_frames // 3 + 5


@torch.no_grad()
def recognize(model: SpeechRecognizer, utterances: list[Utterance], vocab: Vocab,
              batch_size: int = 128):
    """Greedy phoneme sequences for every utterance, and their alignments α (steps, L)
    each.

    Only the frames are used (no transcription needed). Each utterance is held to its
    own ``max_phonemes``: rows of a batch decode independently, so cutting a row's
    output at its cap gives what decoding it alone would.
    """
    if not isinstance(model, SpeechRecognizer):
        raise TypeError(f"recognize needs a SpeechRecognizer, got "
                        f"{type(model).__name__}")
    _check_int("batch_size", batch_size, 1)
    utterances = list(utterances)
    device = next(model.parameters()).device
    hyps, alignments = [], []
    for k in range(0, len(utterances), batch_size):
        chunk = utterances[k:k + batch_size]
        src, src_len = pad_features([u.features for u in chunk])
        max_len = max_phonemes(int(src_len.max()))
        ids, alpha = greedy_decode(model, src.to(device), src_len, vocab.bos, vocab.eos,
                                   max_len)
        for row, a, u in zip(ids, alpha, chunk):
            cap = max_phonemes(len(u.features))
            hyps.append(vocab.decode(row[:cap]))
            # + 1: the step that said </s>
            alignments.append(a[: min(len(row) + 1, cap), : len(u.features)].cpu())
    return hyps, alignments


def train_recognizer(config: dict, kind: str, seed: int, vocab: Vocab,
                     train_set: list[Utterance], steps: int | None = None,
                     device: torch.device | str = "cpu"):
    """Build and train one recognizer; returns it and its loss at every step.

    ``config["model"]`` holds the sizes, ``config[kind]`` the attention's (e.g.
    ``n_filters``), and ``config["steps"]``, ``["batch"]``, ``["lr"]`` the training. The
    seed fixes both the initial weights and the order of the batches.
    """
    if kind not in config:
        raise ValueError(f"config has no entry {kind!r}; it has {sorted(config)}")
    missing = [key for key in ("model", "steps", "batch", "lr") if key not in config]
    if missing:
        raise ValueError(f"config lacks {missing}; it needs model, steps, batch and lr")
    steps = config["steps"] if steps is None else steps
    _check_int("steps", steps, 1)
    train_set = list(train_set)
    seed_everything(seed)
    mean, std = feature_stats(train_set)
    model = SpeechRecognizer(train_set[0].features.shape[1], len(vocab), mean=mean,
                             std=std, **config["model"], **config[kind]).to(device)
    order = length_sorted_batches([len(u.features) for u in train_set], config["batch"],
                                  seed=seed)
    losses = train(model, lambda step: speech_batch([train_set[k] for k in next(order)],
                                                    vocab),
                   steps, lr=config["lr"], desc=f"{kind}, seed {seed}")
    return model, losses
