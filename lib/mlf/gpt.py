"""The book's language model: a small GPT-style decoder-only Transformer.

Built from the layers of ``mlf.transformer`` (no second copy of attention), arranged as
GPT-2 arranges them (Radford et al. 2019, section 2.3):

* decoder only: causal self-attention and a feed-forward block, no encoder and no
  cross-attention; the model predicts token t + 1 from tokens 1..t;
* pre-norm: x = x + Attn(LN(x)), then x = x + FFN(LN(x)), and one more LayerNorm
  after the last block. The Transformer paper is post-norm, x = LN(x + Sublayer(x));
  pre-norm keeps an identity path from the input to the output, which trains without
  warm-up;
* GELU in the feed-forward block, in GPT-2's tanh approximation ("gelu_new");
* weight tying: the output projection is the token embedding matrix, transposed;
* learned positions by default; sinusoidal, rotary (``mlf.rope``) or none by config;
* grouped key/value heads (``n_kv_heads``) and a key/value cache for decoding.

``generate`` decodes with the cache and a pluggable sampler (``greedy``,
``temperature``), or with top-k, top-p (nucleus) sampling or beam search from
``mlf.decoding``; ``to_gpt2`` copies the weights into Hugging Face's
``GPT2LMHeadModel``, which must then give the same logits. The trained checkpoint is
made by ``scripts/train_lm.py``; ``train_steps`` is its recipe (AdamW, warm-up, cosine
decay, random windows of a token stream) for chapters that train or fine-tune a model
briefly, and ``mean_loss`` measures held-out windows.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mlf.bytelevel import ByteLevelBPE
from mlf.decoding import beam_search
from mlf.decoding import sampler as truncated_sampler
from mlf.notebook import progress
from mlf.rope import Rotary
from mlf.transformer import (FeedForward, KVCache, LayerNorm, LearnedPositions,
                             MultiHeadAttention, SinusoidalPositions,
                             sinusoidal_encoding)

CHECKPOINT = Path(__file__).resolve().parents[2] / "data" / "lm" / "shakespeare.pt"
POSITIONS = ("learned", "sinusoidal", "rotary", "none")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 2048
    context: int = 128  # the longest sequence the model reads (GPT-2: 1024)
    d_model: int = 160  # GPT-2 small: 768
    n_heads: int = 8
    n_kv_heads: int | None = None  # None: one key/value head per query head
    n_layers: int = 4  # GPT-2 small: 12
    d_ff: int = 640  # 4 * d_model, as in GPT-2
    dropout: float = 0.0
    positions: str = "learned"
    rope_base: float = 10000.0

    def __post_init__(self):
        for name in ("vocab_size", "context", "d_model", "n_heads", "n_layers",
                     "d_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, "
                             f"got {self.positions!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        # head counts are checked by MultiHeadAttention, head size by Rotary


class Block(nn.Module):
    """One pre-norm decoder block: x + Attn(LN_1(x)), then x + FFN(LN_2(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNorm(cfg.d_model), LayerNorm(cfg.d_model)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads)
        gelu = partial(F.gelu, approximate="tanh")  # GPT-2's "gelu_new"
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout, activation=gelu)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, rotate=None, cache: KVCache | None = None):
        h = self.ln_1(x)  # (B, T, d_model)
        x = x + self.dropout(self.attn(h, h, mask, rotate, cache))
        return x + self.dropout(self.ffn(self.ln_2(x)))


class GPT(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        added = {"learned": LearnedPositions, "sinusoidal": SinusoidalPositions}
        self.pos = added.get(cfg.positions, lambda d, max_len: None)(
            cfg.d_model, max_len=cfg.context)
        head = cfg.d_model // cfg.n_heads
        self.rotate = Rotary(head, cfg.rope_base) if cfg.positions == "rotary" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = LayerNorm(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.apply(self._init)
        # GPT-2: "we scale the weights of residual layers at initialization by
        # 1/sqrt(N)", N the number of residual layers (two per block)
        for block in self.blocks:
            for w in (block.attn.w_o.weight, block.ffn.w_2.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module):  # GPT-2's: N(0, 0.02) weights (embeddings too), zero biases
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache, one entry per block, for incremental decoding."""
        return [KVCache() for _ in self.blocks]

    def forward(self, ids: torch.Tensor, cache: list[KVCache] | None = None):
        """ids (B, T) -> logits (B, T, V). With ``cache``, ids continue the cached
        ones."""
        offset = cache[0].length if cache else 0
        self._check_ids(ids, offset)
        t = ids.shape[1]
        x = self.embed(ids)  # (B, T, d_model); GPT-2 does not scale by √d_model
        if self.pos is not None:
            x = self.pos(x, offset)
        x = self.dropout(x)
        # query i (absolute position offset + i) may attend to keys 0 .. offset + i
        keys = torch.arange(offset + t, device=ids.device)
        mask = keys[None, :] <= (offset + torch.arange(t, device=ids.device))[:, None]
        for k, block in enumerate(self.blocks):
            x = block(x, mask, self.rotate, cache[k] if cache else None)
        return self.ln_f(x) @ self.embed.weight.T  # tied output projection (B,T,V)

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) over ids (B, T): predict ids[:, 1:]."""
        logits = self(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               ids[:, 1:].reshape(-1))

    def _check_ids(self, ids, offset):
        if (not isinstance(ids, torch.Tensor) or ids.ndim != 2
                or ids.dtype != torch.long):
            raise ValueError("ids must be a (batch, time) tensor of dtype torch.long, "
                             "got "
                             f"{getattr(ids, 'dtype', type(ids).__name__)} "
                             f"{tuple(getattr(ids, 'shape', ()))}")
        if ids.shape[1] < 1:
            raise ValueError("ids must hold at least one token per sequence")
        if offset + ids.shape[1] > self.cfg.context:
            raise ValueError(f"{offset} cached + {ids.shape[1]} new tokens exceed the "
                             f"model's context of {self.cfg.context} tokens")
        if ids.min() < 0 or ids.max() >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in 0..{self.cfg.vocab_size - 1}, "
                             f"got {ids.min().item()}..{ids.max().item()}")


# --- decoding -----------------------------------------------------------------------
# A sampler maps the last position's logits (B, V) and a torch.Generator to ids (B,).

def greedy(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """The most probable token (ties: the lowest id, as argmax)."""
    return logits.argmax(-1)


def temperature(t: float):
    """Sample from softmax(logits / t): t < 1 sharpens, t > 1 flattens, t = 1 samples
    the model's own distribution."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
        raise ValueError(f"temperature must be a positive number, got {t!r}")

    def sample(logits, generator=None):
        probs = (logits.float() / t).softmax(-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    return sample


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, sampler=greedy,
             generator: torch.Generator | None = None, use_cache: bool = True, *,
             temperature: float | None = None, top_k: int | None = None,
             top_p: float | None = None, beams: int | None = None):
    """Extend ``prompt`` (B, T0) by ``max_new_tokens`` sampled ids -> (B, T0 + new).

    With ``use_cache`` each step feeds only the newest token and reuses the keys and
    values of the earlier ones; without it each step runs the whole sequence again. Both
    give the same logits (up to float rounding), so the same tokens under greedy
    decoding.

    Instead of a ``sampler``: ``temperature``, ``top_k`` and ``top_p`` sample with
    ``mlf.decoding.sampler`` (temperature 1 unless given); ``beams`` runs
    ``mlf.decoding.beam_search`` of that width (each prompt of the batch its own).
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, "
                         f"got {max_new_tokens!r}")
    if not callable(sampler):
        raise TypeError("sampler must be a function (logits, generator) -> ids")
    total = prompt.shape[-1] + max_new_tokens if prompt.ndim == 2 else None
    if total is not None and total > model.cfg.context:
        raise ValueError(f"prompt ({prompt.shape[-1]} tokens) + max_new_tokens "
                         f"({max_new_tokens}) exceed the context of "
                         f"{model.cfg.context} tokens")
    sampling = (temperature, top_k, top_p) != (None, None, None)
    if (sampling or beams is not None) and sampler is not greedy:
        raise ValueError("pass either a sampler or temperature/top_k/top_p/beams, "
                         "not both")
    if sampling and beams is not None:
        raise ValueError("beam search does not sample: pass beams, or "
                         "temperature/top_k/top_p, not both")
    if beams is not None:
        return beam_search(model, prompt, max_new_tokens, beams)[0]
    if sampling:
        sampler = truncated_sampler(1.0 if temperature is None else temperature,
                                    top_k, top_p)
    was_training = model.training
    model.eval()
    out = prompt
    cache = model.new_cache() if use_cache else None
    logits = model(prompt, cache)[:, -1] if max_new_tokens else None
    for step in range(max_new_tokens):
        nxt = sampler(logits, generator)[:, None]  # (B, 1)
        out = torch.cat([out, nxt], dim=1)
        if step + 1 < max_new_tokens:
            logits = model(nxt, cache)[:, -1] if use_cache else model(out)[:, -1]
    model.train(was_training)
    return out


# --- brief training -----------------------------------------------------------------

def random_windows(stream: torch.Tensor, batch: int, length: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch`` windows of ``length`` consecutive ids of a 1-d ``stream``, each
    starting at a random position drawn with ``generator`` -> (batch, length)."""
    if not isinstance(stream, torch.Tensor) or stream.ndim != 1 \
            or stream.dtype != torch.long:
        raise ValueError(f"stream must be a 1-d tensor of token ids (torch.long), got "
                         f"{getattr(stream, 'dtype', type(stream).__name__)} "
                         f"{tuple(getattr(stream, 'shape', ()))}")
    for name, value in (("batch", batch), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(stream) <= length:
        raise ValueError(f"stream holds {len(stream)} tokens, too few for windows "
                         f"of {length}")
    starts = torch.randint(0, len(stream) - length, (batch,), generator=generator)
    return torch.stack([stream[s:s + length] for s in starts.tolist()])


def cosine_rate(step: int, steps: int, lr: float, warmup: int = 0,
                floor: float = 0.1) -> float:
    """The learning rate of update ``step`` (from 0) of ``steps``: linear warm-up over
    ``warmup`` updates, then cosine decay from ``lr`` to ``floor * lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    done = (step - warmup) / max(1, steps - warmup)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done)))


def train_steps(model: GPT, stream: torch.Tensor, steps: int, *, batch: int = 16,
                lr: float = 1e-3, warmup: int = 0, weight_decay: float = 0.1,
                floor: float = 0.1, params=None,
                generator: torch.Generator | None = None, desc: str | None = None,
                callback=None) -> list[float]:
    """Train ``model`` for ``steps`` AdamW updates on random windows of ``stream``
    (1-d token ids, on the CPU), each ``model.cfg.context + 1`` tokens long; return
    the training loss of every update.

    The recipe of ``scripts/train_lm.py``: betas (0.9, 0.95), weight decay on matrices
    only, gradients clipped to norm 1, ``cosine_rate`` down to ``floor`` * ``lr``.
    ``params`` (default: all of
    the model's) are the ones trained, e.g. only adapters. ``desc`` shows a progress
    bar; ``callback(step, model)``, if given, runs after each update (step from 1),
    e.g. to evaluate on the way.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    params = list(model.parameters() if params is None else params)
    if not params:
        raise ValueError("params is empty: there is nothing to train")
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.95))
    device, span = next(model.parameters()).device, model.cfg.context + 1
    was_training, losses = model.training, []
    model.train()
    bar = progress(range(steps), desc=desc, disable=desc is None)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cosine_rate(step, steps, lr, warmup, floor)
        loss = model.loss(random_windows(stream, batch, span, generator).to(device))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step + 1, model)
        if step % 10 == 9:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.train(was_training)
    return losses


def _check_windows(windows) -> None:
    if not isinstance(windows, torch.Tensor) or windows.ndim != 2 \
            or windows.shape[1] < 2:
        raise ValueError("windows must be an (N, T + 1) tensor of token ids, T >= 1, "
                         f"got {tuple(getattr(windows, 'shape', ()))}")


@torch.no_grad()
def mean_loss(model: GPT, windows: torch.Tensor, batch: int = 16) -> float:
    """Mean next-token loss (nats per token) of ``model`` over ``windows`` (N, T + 1),
    in eval mode, ``batch`` windows at a time."""
    _check_windows(windows)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = sum(model.loss(windows[i:i + batch].to(device)).item()
                * len(windows[i:i + batch]) for i in range(0, len(windows), batch))
    model.train(was_training)
    return total / len(windows)


@torch.no_grad()
def loss_by_position(model: GPT, windows: torch.Tensor) -> torch.Tensor:
    """Next-token loss (nats) at each position t = 0 .. T-1 of ``windows`` (N, T + 1),
    averaged over the windows -> (T,). Position t predicts token t + 1 from 0..t."""
    _check_windows(windows)
    was_training = model.training
    model.eval()
    windows = windows.to(next(model.parameters()).device)
    logits = model(windows[:, :-1])  # (N, T, V)
    loss = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none")
    model.train(was_training)
    return loss.mean(0).cpu()


def with_context(model: GPT, context: int, rope_scale: float | None = None) -> GPT:
    """A copy of ``model`` that reads up to ``context`` tokens, for inputs longer (or
    shorter) than it was trained on.

    Rotary, sinusoidal and position-free models have a rule for every position;
    learned positions end at the trained context (a ValueError beyond it).
    ``rope_scale`` (rotary models only) multiplies every position: 0.5 is position
    interpolation by a factor 2, which keeps 2x longer inputs within the angles seen in
    training (Chen et al. 2023).
    """
    cfg = model.cfg
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive integer, got {context!r}")
    if cfg.positions == "learned" and context > cfg.context:
        raise ValueError(f"learned positions stop at the trained context of "
                         f"{cfg.context}: there is no vector for position "
                         f"{cfg.context} and on, so no context of {context}")
    if rope_scale is not None and cfg.positions != "rotary":
        raise ValueError(f"rope_scale needs rotary positions, got {cfg.positions!r}")
    new = copy.deepcopy(model)
    new.cfg = replace(cfg, context=context)
    if cfg.positions == "sinusoidal":
        # the same sinusoids, longer; a rescaled table keeps its scale
        old = model.pos.pe
        ratio = old.norm() / sinusoidal_encoding(*old.shape).to(old.device).norm()
        new.pos = SinusoidalPositions(cfg.d_model, max_len=context).to(old.device)
        new.pos.pe.mul_(ratio)
    if rope_scale is not None:
        rotate = model.rotate
        new.rotate = Rotary(rotate.d, rotate.base, rotate.interleaved, rope_scale)
        new.rotate.to(rotate.theta.device)
    return new


# --- the trained checkpoint ---------------------------------------------------------

def pack_tokenizer(bpe: ByteLevelBPE) -> dict:
    """The tokenizer as tensors and a string, for ``torch.load(weights_only=True)``."""
    tokens = sorted(bpe.ranks, key=bpe.ranks.get)
    if [bpe.ranks[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError("ranks must be 0 .. V-1 to be packed")
    return {"bytes": torch.tensor(list(b"".join(tokens)), dtype=torch.uint8),
            "lengths": torch.tensor([len(t) for t in tokens]), "pattern": bpe.pattern}


def unpack_tokenizer(packed: dict) -> ByteLevelBPE:
    data, ranks, start = bytes(packed["bytes"].tolist()), {}, 0
    for rank, n in enumerate(packed["lengths"].tolist()):
        ranks[data[start:start + n]] = rank
        start += n
    return ByteLevelBPE(ranks, packed["pattern"])


def save_checkpoint(path: Path, model: GPT, bpe: ByteLevelBPE, extra: dict) -> None:
    """Weights in float16 (to stay small), config, tokenizer and ``extra``
    (curves...)."""
    state = {k: v.detach().to("cpu", torch.float16)
             for k, v in model.state_dict().items()}
    torch.save({"config": asdict(model.cfg), "state": state,
                "tokenizer": pack_tokenizer(bpe), **extra}, path)


def load_book_lm(path: Path = CHECKPOINT, device=None):
    """The book's trained model (float32, eval mode), its tokenizer and the stored
    record."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing; `make checkpoints` trains it "
                                "(scripts/train_lm.py)")
    record = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**record["config"]))
    model.load_state_dict({k: v.float() for k, v in record.pop("state").items()})
    model.to(device or "cpu").eval()
    return model, unpack_tokenizer(record.pop("tokenizer")), record


# --- the reference: Hugging Face's GPT-2 --------------------------------------------

def to_gpt2(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` holding ``model``'s weights (learned
    positions, one key/value head per query head).

    # subtle: GPT-2 keeps its projections in ``Conv1D`` modules, which compute
    # x @ W + b with W of shape (in, out): the transpose of nn.Linear's (out, in).
    # Its ``c_attn`` is W_Q, W_K and W_V side by side, (d_model, 3 d_model).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg
    if cfg.positions != "learned" or (cfg.n_kv_heads or cfg.n_heads) != cfg.n_heads:
        raise ValueError("GPT-2 has learned positions and one key/value head per "
                         f"query head; this model has positions={cfg.positions!r}, "
                         f"n_kv_heads={cfg.n_kv_heads}")
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.context, n_embd=cfg.d_model,
        n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
        tie_word_embeddings=True))
    sd = {"transformer.wte.weight": model.embed.weight,
          "transformer.wpe.weight": model.pos.pe.weight,
          "transformer.ln_f.weight": model.ln_f.gamma,
          "transformer.ln_f.bias": model.ln_f.beta}
    for i, b in enumerate(model.blocks):
        p, a = f"transformer.h.{i}.", b.attn
        sd |= {p + "ln_1.weight": b.ln_1.gamma, p + "ln_1.bias": b.ln_1.beta,
               p + "ln_2.weight": b.ln_2.gamma, p + "ln_2.bias": b.ln_2.beta,
               p + "attn.c_attn.weight": torch.cat([a.w_q.weight, a.w_k.weight,
                                                    a.w_v.weight]).T,
               p + "attn.c_attn.bias": torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]),
               p + "attn.c_proj.weight": a.w_o.weight.T,
               p + "attn.c_proj.bias": a.w_o.bias,
               p + "mlp.c_fc.weight": b.ffn.w_1.weight.T,
               p + "mlp.c_fc.bias": b.ffn.w_1.bias,
               p + "mlp.c_proj.weight": b.ffn.w_2.weight.T,
               p + "mlp.c_proj.bias": b.ffn.w_2.bias}
    sd["lm_head.weight"] = model.embed.weight
    missing, unexpected = hf.load_state_dict(
        {k: v.detach().clone() for k, v in sd.items()}, strict=False)
    if unexpected or [k for k in missing if not k.endswith(".attn.bias")]:
        raise RuntimeError(f"weights did not map: missing {missing}, "
                           f"unexpected {unexpected}")
    return hf.to(next(model.parameters()).device).eval()
