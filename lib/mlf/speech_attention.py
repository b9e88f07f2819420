"""Attention-based speech recognition (Chorowski et al. 2015): content-based vs. location-aware.

The paper's notation: encoder states h_j over L frames, decoder state s_{i-1}, previous
alignment α_{i-1}, location features f_i = F * α_{i-1} (k filters of width r), scores
e_{i,j} = w^T tanh(W s_{i-1} + V h_j + U f_{i,j} + b), glimpse g_i = Σ_j α_{i,j} h_j.
Shapes: B batch, L frames, M mel bands, H hidden size, A attention size, k filters, N phonemes.

The model is the Bahdanau chapter's ``RNNSearch`` with two parts swapped: an encoder that reads
log-mel frames instead of words, and this alignment model. Training and greedy decoding are
``mlf.seq2seq``'s.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mlf.env import seed_everything
from mlf.seq2seq import (AdditiveAttention, Batch, RNNSearch, Vocab, greedy_decode,
                         length_sorted_batches, target_batch, train)
from mlf.speech import Utterance, feature_stats, pad_features


class FeatureEncoder(nn.Module):
    """Normalised log-mel frames through a stack of bidirectional GRUs: (B, L, M) -> h (B, L, 2H)."""

    def __init__(self, n_features: int, hidden_size: int, layers: int = 2, mean=None, std=None):
        super().__init__()
        # per-band statistics of the training frames (buffers: saved with the model, not trained)
        self.register_buffer("mean", torch.zeros(n_features) if mean is None else mean.float())
        self.register_buffer("std", torch.ones(n_features) if std is None else std.float())
        self.rnn = nn.GRU(n_features, hidden_size, num_layers=layers, batch_first=True,
                          bidirectional=True)  # the paper's encoder is deeper and wider

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected frames (B, L, {self.mean.shape[0]}), got {tuple(x.shape)}")
        x = (x - self.mean) / self.std
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return h  # (B, L, 2H), zeros at padded frames


def median_frame(alpha: torch.Tensor) -> torch.Tensor:
    """The frame where α's cumulative mass first reaches 1/2: (B, L) -> (B,)."""
    return (alpha.cumsum(dim=-1) < 0.5).sum(dim=-1).clamp(max=alpha.shape[-1] - 1)


class LocationAwareAttention(AdditiveAttention):
    """The paper's hybrid attention; ``n_filters=0`` leaves its content-based baseline.

    Inherited names map to the paper's: W_a is W, U_a is V (its bias is b), v_a is w.
    ``beta`` > 1 sharpens the weights (α ∝ exp(β e)); ``smooth`` replaces exp by the logistic
    sigmoid (α ∝ σ(β e)); ``window`` w keeps only frames within w of the median of α_{i-1}.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int, n_filters: int = 10,
                 width: int = 101, beta: float = 1.0, smooth: bool = False, window: int | None = None):
        super().__init__(query_size, key_size, attn_size)
        if n_filters < 0 or width < 1 or width % 2 == 0:
            raise ValueError(f"need n_filters >= 0 and an odd filter width, got {n_filters} and {width}")
        if beta <= 0 or (window is not None and window < 0):
            raise ValueError(f"need beta > 0 and window >= 0 (or None), got {beta} and {window}")
        self.n_filters, self.beta, self.smooth, self.window = n_filters, beta, smooth, window
        if n_filters:
            self.F = nn.Conv1d(1, n_filters, width, padding=width // 2, bias=False)  # k filters, r = width
            self.U = nn.Linear(n_filters, attn_size, bias=False)

    def location_features(self, alpha_prev: torch.Tensor) -> torch.Tensor:
        """f_i = F * α_{i-1}: (B, L) -> (B, L, k); f_{i,j} looks at α_{i-1} from j - r/2 to j + r/2."""
        # subtle: Conv1d cross-correlates (no kernel flip); the filters are learned, so it is the same model
        return self.F(alpha_prev.unsqueeze(1)).transpose(1, 2)

    def forward(self, s_prev, h, mask, Uh=None, alpha_prev=None):
        # s_prev: (B, H); h: (B, L, 2H); mask, alpha_prev: (B, L) -> g (B, 2H), α (B, L)
        if (self.n_filters or self.window is not None) and (
                alpha_prev is None or alpha_prev.shape != mask.shape):
            raise ValueError(f"location features and windowing need alpha_prev of shape "
                             f"{tuple(mask.shape)}, got {None if alpha_prev is None else tuple(alpha_prev.shape)}")
        if self.window is not None:  # only frames within w of the median of α_{i-1} compete
            m = median_frame(alpha_prev).unsqueeze(1)  # (B, 1)
            frames = torch.arange(mask.shape[1], device=mask.device)
            mask = mask & ((frames - m).abs() <= self.window)
        location = self.U(self.location_features(alpha_prev)) if self.n_filters else None  # U f_{i,j}
        # e_{i,j} = w^T tanh(W s_{i-1} + V h_j + b + U f_{i,j}), normalised below; g_i = Σ_j α_{i,j} h_j
        return super().forward(s_prev, h, mask, Uh, extra=location)

    def normalize(self, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """α_i from the scores e_i over the frames where ``mask`` is True: (B, L) -> (B, L)."""
        if self.smooth:  # α_{i,j} = σ(e_{i,j}) / Σ_j σ(e_{i,j}): many frames can share the mass
            weights = torch.sigmoid(self.beta * e) * mask
            return weights / weights.sum(dim=-1, keepdim=True)
        return super().normalize(self.beta * e, mask)  # α_{i,j} ∝ exp(β e_{i,j})

def to_espnet(attn: LocationAwareAttention):
    """ESPnet's AttLoc, the reference location-aware attention, holding ``attn``'s weights.

    Its names: mlp_dec is W, mlp_enc is V (+ b), loc_conv is F, mlp_att is U, gvec is w (its
    bias, a constant shift of every score, is set to 0). Call it with ``scaling=beta``.
    """
    from espnet.nets.pytorch_backend.rnn.attentions import AttLoc

    if not attn.n_filters:
        raise ValueError("to_espnet needs location features (n_filters > 0)")
    width = attn.F.kernel_size[0]
    ref = AttLoc(attn.U_a.in_features, attn.W_a.in_features, attn.U_a.out_features,
                 attn.n_filters, width // 2).to(attn.U_a.weight.dtype)
    with torch.no_grad():
        ref.mlp_dec.weight.copy_(attn.W_a.weight)
        ref.mlp_enc.weight.copy_(attn.U_a.weight)
        ref.mlp_enc.bias.copy_(attn.U_a.bias)
        ref.loc_conv.weight.copy_(attn.F.weight.view(attn.n_filters, 1, 1, width))  # (k, 1, 1, r)
        ref.mlp_att.weight.copy_(attn.U.weight)
        ref.gvec.weight.copy_(attn.v_a.weight)
        ref.gvec.bias.zero_()
    return ref

class SpeechRecognizer(RNNSearch):
    """Log-mel frames in, phonemes out: RNNSearch with a FeatureEncoder and LocationAwareAttention.

    The decoder's state is the pair (s_i, α_i), since the next alignment needs the last one.
    ``attention_options`` go to LocationAwareAttention: n_filters (0: content-based), width,
    beta, smooth, window.
    """

    def __init__(self, n_features: int, n_phonemes: int, hidden_size: int = 64, attn_size: int = 64,
                 emb_size: int = 16, maxout_size: int = 64, layers: int = 2, mean=None, std=None,
                 **attention_options):
        super().__init__(None, n_phonemes, emb_size, hidden_size, attn_size, maxout_size,
                         encoder=FeatureEncoder(n_features, hidden_size, layers, mean, std),
                         attn=LocationAwareAttention(hidden_size, 2 * hidden_size, attn_size,
                                                     **attention_options))

    def encode(self, src, src_len):
        memory = super().encode(src, src_len)
        alpha0 = torch.zeros(memory.mask.shape, device=src.device)
        alpha0[:, 0] = 1.0  # α_0: all mass on the first frame, so reading starts at the start
        return replace(memory, s0=(memory.s0, alpha0))

    def decode_step(self, memory, y_prev, state):
        s_prev, alpha_prev = state
        g, alpha = self.attn(s_prev, memory.h, memory.mask, memory.Uh, alpha_prev)  # g_i: (B, 2H)
        logits, s = self.emit(y_prev, s_prev, g)
        return logits, (s, alpha), alpha


def speech_batch(utterances: list[Utterance], vocab: Vocab) -> Batch:
    """Padded frames (B, L, M) and phoneme ids with <s> in front (input) and </s> behind (output)."""
    src, src_len = pad_features([u.features for u in utterances])
    return Batch(src, src_len, *target_batch([u.phonemes for u in utterances], vocab))


def max_phonemes(n_frames: int) -> int:
    """Decoding stops here at the latest: one phoneme per 3 frames (60 ms), plus 5.

    A cap from the audio alone; the fastest speech in our data has one phoneme per 3.3 frames.
    """
    return n_frames // 3 + 5


@torch.no_grad()
def recognize(model: SpeechRecognizer, utterances: list[Utterance], vocab: Vocab,
              batch_size: int = 128):
    """Greedy phoneme sequences for every utterance, and their alignments α (steps, L) each.

    Only the frames are used (no transcription needed). Each utterance is held to its own
    ``max_phonemes``: rows of a batch decode independently, so cutting a row's output at its
    cap gives what decoding it alone would.
    """
    device = next(model.parameters()).device
    hyps, alignments = [], []
    for k in range(0, len(utterances), batch_size):
        chunk = utterances[k:k + batch_size]
        src, src_len = pad_features([u.features for u in chunk])
        max_len = max_phonemes(int(src_len.max()))
        ids, alpha = greedy_decode(model, src.to(device), src_len, vocab.bos, vocab.eos, max_len)
        for row, a, u in zip(ids, alpha, chunk):
            cap = max_phonemes(len(u.features))
            hyps.append(vocab.decode(row[:cap]))
            alignments.append(a[: min(len(row) + 1, cap), : len(u.features)].cpu())  # + 1: </s>
    return hyps, alignments



def train_recognizer(config: dict, kind: str, seed: int, vocab: Vocab, train_set: list[Utterance],
                     steps: int | None = None, device: torch.device | str = "cpu"):
    """Build and train one recognizer; returns it and its loss at every step.

    ``config["model"]`` holds the sizes, ``config[kind]`` the attention's (e.g. ``n_filters``),
    and ``config["steps"]``, ``["batch"]``, ``["lr"]`` the training. The seed fixes both the
    initial weights and the order of the batches.
    """
    if kind not in config:
        raise ValueError(f"config has no entry {kind!r}; it has {sorted(config)}")
    seed_everything(seed)
    mean, std = feature_stats(train_set)
    model = SpeechRecognizer(train_set[0].features.shape[1], len(vocab), mean=mean, std=std,
                             **config["model"], **config[kind]).to(device)
    order = length_sorted_batches([len(u.features) for u in train_set], config["batch"], seed=seed)
    losses = train(model, lambda step: speech_batch([train_set[k] for k in next(order)], vocab),
                   steps or config["steps"], lr=config["lr"], desc=f"{kind}, seed {seed}")
    return model, losses
