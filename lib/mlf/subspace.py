"""Training in a random subspace: the intrinsic dimension of a model on a task.

Li et al. (2018) train a model of D parameters in a random d-dimensional subspace of
its parameter space,

    θ^(D) = θ_0^(D) + P θ^(d),

where θ_0 is the starting point (random init, or a pre-trained model), P a fixed random
D x d matrix and only θ^(d) (starting at 0) is trained. The intrinsic dimension d90 of
a task is the smallest d that reaches 90% of the score of training all D parameters
(Aghajanyan et al. 2021 call this fine-tuning "DID", direct intrinsic dimension).

* ``fwht``: the fast Walsh-Hadamard transform, x -> H x with H the Sylvester-ordered
  ±1 Hadamard matrix (``scipy.linalg.hadamard``), in O(L log L);
* ``Fastfood``: P = S H G Π H B (Le et al. 2013) as Li et al. use it: θ^(d) padded
  with zeros to L = 2^ceil(log2 D), B random ±1, Π a random permutation, G Gaussian,
  S keeps the first D outputs (Le et al.'s S is a random diagonal scaling instead,
  which Li et al. drop), one factor scales the columns to unit norm on average;
* ``DenseProjection``: P with N(0, 1) entries and every column scaled to unit norm;
* ``Subspace``: any ``nn.Module`` reparametrised as θ_0 + P θ^(d), through
  ``torch.func.functional_call``; ``said=True`` adds the structure-aware variant
  (SAID) of Aghajanyan et al.: one scalar λ_i per parameter tensor,
  θ_i = θ_0,i + λ_i (P θ^(d-m))_i;
* ``SequenceClassifier``: the book's GPT body, mean-pooled, with a linear head;
* ``d90``: the smallest d of a sweep reaching 90% of the full-training score;
* ``word_order_windows``: a task that needs pre-training, real or shuffled windows;
  ``sentiment_windows``: windows labelled by VADER, a task random init also learns;
* ``train_classifier``, ``accuracy``: Adam on the trainable parameters; evaluation.

Bad arguments raise ``ValueError`` (``TypeError`` for a wrong kind of object) saying
what was wrong and what is expected.
"""
from __future__ import annotations

from functools import cache

import torch
from torch import nn
from torch.func import functional_call

# the decoding chapter's count check, shared rather than copied (same message)
from mlf.decoding import _check_count


def _check_dims(d, D):
    _check_count("d", d, 1)
    _check_count("D", D, 1)
    if d > D:
        raise ValueError(f"the subspace dimension d = {d} exceeds the number of "
                         f"parameters D = {D}: expected 1 <= d <= D")


# --- the Walsh-Hadamard transform -----------------------------------------------------

@cache
def _hadamard(n: int, dtype, device) -> torch.Tensor:
    """Sylvester's ±1 Hadamard matrix of order n (a power of two): H_2n = [[H, H],
    [H, -H]], the order of ``scipy.linalg.hadamard``."""
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def fwht(x: torch.Tensor) -> torch.Tensor:
    """H x along the last axis (length L, a power of two), H the unnormalised ±1
    Hadamard matrix in Sylvester order: H H = L I, so ``fwht(fwht(x)) / L == x``."""
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or not x.is_floating_point():
        raise ValueError("fwht expects a floating-point tensor of at least one axis, "
                         f"got {getattr(x, 'dtype', type(x).__name__)}")
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"the last axis must have a power-of-two length, got {n}")
    factors, rest = [], n
    while rest > 1:
        f = min(rest, 128)
        factors.append(f)
        rest //= f
    lead = x.shape[:-1]
    y = x.reshape(-1, n)  # (N, L)
    pre = 1
    # subtle: H_ab = H_a ⊗ H_b, so instead of log2(L) butterfly passes we multiply
    # by H_f (f <= 128) along each factor: 3 matrix products for L = 2^21
    for f in factors:  # y viewed as (N * pre, f, post): multiply H_f along the middle
        post = n // (pre * f)
        h = _hadamard(f, x.dtype, x.device)
        y = torch.einsum("pfq,gf->pgq", y.reshape(-1, f, post), h)
        pre *= f
    return y.reshape(*lead, n)


# --- projections R^d -> R^D ---------------------------------------------------------

class Fastfood(nn.Module):
    """θ^(d) (d,) -> P θ^(d) (D,) with P = S H G Π H B, never stored: O(L log L)
    time, O(L) memory, L = 2^ceil(log2 D).

    The scaling is Li et al.'s: each column of H G Π H B has norm sqrt(L Σ G_i²);
    dividing by that and by sqrt(D / L) (only D of the L rows are kept) gives columns
    of unit norm on average, like ``DenseProjection``'s.

    # orig: one transform for all D parameters, sliced into the tensors, as in Li et
    # al.'s code; public copies of Aghajanyan et al.'s code draw one per tensor.
    """

    def __init__(self, d: int, D: int, generator: torch.Generator | None = None):
        super().__init__()
        _check_dims(d, D)
        self.d, self.D = d, D
        self.L = L = 1 << max(0, (D - 1).bit_length())
        # B: random signs; Π: a permutation; G: Gaussian scales
        self.register_buffer("B", torch.randint(0, 2, (L,), generator=generator)
                             .float() * 2 - 1)
        self.register_buffer("Pi", torch.randperm(L, generator=generator))
        self.register_buffer("G", torch.randn(L, generator=generator))
        self.register_buffer("Pi_inverse", torch.argsort(self.Pi))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        _check_vector(theta_d, self.d)
        x = torch.zeros(self.L, dtype=theta_d.dtype, device=theta_d.device)
        x = torch.cat([theta_d, x[self.d:]])  # pad d -> L with zeros   (L,)
        x = fwht(x * self.B)  # H B x
        x = _Permute.apply(x, self.Pi, self.Pi_inverse)  # Π H B x
        x = fwht(x * self.G)  # H G Π H B x
        scale = (self.D * self.G.pow(2).sum()).rsqrt()  # in G's dtype
        return x[:self.D] * scale  # S: keep D rows, scale                 (D,)

    def matrix(self) -> torch.Tensor:
        """The explicit D x d matrix P (for checks; costs D d memory)."""
        eye = torch.eye(self.d, dtype=self.G.dtype, device=self.G.device)
        return torch.stack([self(e) for e in eye], 1)


class DenseProjection(nn.Module):
    """θ^(d) (d,) -> P θ^(d) (D,) with a stored D x d Gaussian P, columns of unit
    norm. D d numbers: 1.6M parameters x d = 1,000 would be 6.3 GB in float32."""

    def __init__(self, d: int, D: int, generator: torch.Generator | None = None):
        super().__init__()
        _check_dims(d, D)
        self.d, self.D = d, D
        P = torch.randn(D, d, generator=generator)
        self.register_buffer("P", P / P.norm(dim=0, keepdim=True))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        _check_vector(theta_d, self.d)
        return self.P @ theta_d

    def matrix(self) -> torch.Tensor:
        return self.P


def _check_vector(theta_d, d):
    if not isinstance(theta_d, torch.Tensor) or theta_d.shape != (d,):
        raise ValueError(f"θ_d must be a vector of shape ({d},), got "
                         f"{tuple(getattr(theta_d, 'shape', ())) or type(theta_d)}")


class _Permute(torch.autograd.Function):
    """x -> x[Π]; the gradient is g[Π⁻¹], one gather, instead of autograd's
    scatter-add (``index_put``), which is several times slower on a CPU."""

    @staticmethod
    def forward(ctx, x, perm, inverse):
        ctx.save_for_backward(inverse)
        return x[perm]

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad[inverse], None, None


PROJECTIONS = {"fastfood": Fastfood, "dense": DenseProjection}


# --- a model reparametrised in a subspace ---------------------------------------------

class Subspace(nn.Module):
    """``model`` with every parameter θ = θ_0 + P θ^(d); only θ^(d) is trained.

    θ_0 is a frozen copy of the model's parameters when wrapped; the model's own
    parameters are set to ``requires_grad=False``. With ``said=True``
    (Aghajanyan et al.'s SAID), θ^(d) = (θ^(d-m), λ) where λ holds one scale per
    parameter tensor (m of them) and θ_i = θ_0,i + λ_i (P θ^(d-m))_i.
    """

    def __init__(self, model: nn.Module, d: int, projection: str = "fastfood",
                 generator: torch.Generator | None = None, said: bool = False):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {tuple(PROJECTIONS)}, "
                             f"got {projection!r}")
        named = list(model.named_parameters())  # shared (tied) tensors appear once
        if not named:
            raise ValueError("model has no parameters to reparametrise")
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        D = sum(self.sizes)
        m = len(named) if said else 0
        _check_dims(d, D)
        if d <= m:
            raise ValueError(f"SAID spends {m} of the d dimensions on one scale per "
                             f"parameter tensor: d = {d} must exceed {m}")
        self.d, self.D, self.said = d, D, said
        self.model = model.requires_grad_(False)
        self.register_buffer("theta_0", torch.cat(
            [p.detach().reshape(-1) for _, p in named]).clone())
        self.projection = PROJECTIONS[projection](d - m, D, generator)
        self.theta_d = nn.Parameter(torch.zeros(d - m, device=self.theta_0.device))
        # orig: SAID's λ start is not given; at 0 no gradient reaches θ^(d-m)
        self.lam = nn.Parameter(torch.ones(m, device=self.theta_0.device)) if said \
            else None
        if said:  # parameter tensor of each of the D coordinates
            self.register_buffer("owner", torch.repeat_interleave(
                torch.arange(m), torch.tensor(self.sizes)).to(self.theta_0.device))

    def theta(self) -> torch.Tensor:
        """θ^(D) = θ_0 + P θ^(d), flat (D,)."""
        offset = self.projection(self.theta_d)  # (D,)
        if self.said:
            offset = offset * self.lam[self.owner]
        return self.theta_0 + offset

    def params(self) -> dict[str, torch.Tensor]:
        """The model's parameters at θ^(D), by name, in their shapes."""
        pieces = torch.split(self.theta(), self.sizes)
        return {n: t.view(s) for n, t, s in zip(self.names, pieces, self.shapes)}

    def forward(self, *args, **kwargs):
        return functional_call(self.model, self.params(), args, kwargs)


# --- the downstream model ------------------------------------------------------------

class SequenceClassifier(nn.Module):
    """The book's GPT (``mlf.gpt.GPT``) without its output layer: token ids (N, T) ->
    the final hidden states averaged over the T positions -> class logits (N, k),
    for N sequences and k = n_classes."""

    def __init__(self, body: nn.Module, n_classes: int):
        super().__init__()
        _check_count("n_classes", n_classes, 2)
        for part in ("embed", "blocks", "ln_f", "cfg"):
            if not hasattr(body, part):
                raise TypeError(f"body must be an mlf.gpt.GPT, it has no {part!r}")
        self.body = body
        self.head = nn.Linear(body.cfg.d_model, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)  # GPT-2's init, as the body's
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        body = self.body
        body._check_ids(ids, 0)
        x = body.embed(ids)  # (N, T, d_model)
        if body.pos is not None:
            x = body.pos(x)
        t = ids.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()  # causal
        for block in body.blocks:
            x = block(x, mask, body.rotate)
        return self.head(body.ln_f(x).mean(1))  # (N, k)


# --- the intrinsic dimension ----------------------------------------------------------

def d90(dims, scores, full: float, fraction: float = 0.9, chance: float = 0.0):
    """The smallest d of ``dims`` whose score reaches the target chance + ``fraction``
    x (``full`` - chance), ``full`` the score of training all parameters; None when
    none does (d90 > max(dims)). chance = 0 is the paper's 90% of full; chance = 0.5
    on a balanced binary task asks for 90% of the gain above guessing."""
    dims, scores = list(dims), list(scores)
    if len(dims) != len(scores) or not dims:
        raise ValueError(f"dims and scores must be equally long and not empty, got "
                         f"{len(dims)} and {len(scores)}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if not full > chance:
        raise ValueError(f"full = {full!r} must exceed chance = {chance!r}: with no "
                         "gain over chance there is no 90% of it to reach")
    target = chance + fraction * (full - chance)
    reached = [d for d, s in zip(dims, scores) if s >= target]
    return min(reached) if reached else None


# --- the downstream task and its training ---------------------------------------------

def sentiment_windows(bpe, titles, length: int = 16, threshold: float = 0.3,
                      limit: int | None = None):
    """A small sentiment task: consecutive windows of ``length`` tokens of the plays
    ``titles``, labelled 1 (positive) when VADER's compound score of the window's text
    is above ``threshold``, 0 (negative) below -``threshold``; neutral windows are
    dropped. Classes are balanced (the first k of each, in play order, k at most
    ``limit`` / 2) -> ids (2k, length), labels (2k,)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from mlf.corpora import shakespeare_text

    _check_count("length", length, 1)
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}")
    stream = torch.tensor(bpe.encode(shakespeare_text(list(titles))))
    windows = stream[: len(stream) // length * length].view(-1, length)
    vader = SentimentIntensityAnalyzer()
    score = torch.tensor([vader.polarity_scores(bpe.decode(w.tolist()))["compound"]
                          for w in windows])
    pos, neg = windows[score > threshold], windows[score < -threshold]
    k = min(len(pos), len(neg), (limit or len(windows)) // 2)
    if k < 1:
        raise ValueError("no positive or no negative window: use more plays")
    return torch.cat([pos[:k], neg[:k]]), torch.cat([torch.ones(k), torch.zeros(k)]
                                                    ).long()


def word_order_windows(bpe, titles, count: int, length: int = 16,
                       generator: torch.Generator | None = None):
    """A task that needs what a language model learnt: ``count`` windows of ``length``
    tokens spread evenly over the plays ``titles``; a random half keep their order
    (label 1), the tokens of the other half are shuffled (label 0). -> ids (count,
    length), labels (count,)."""
    from mlf.corpora import shakespeare_text

    _check_count("count", count, 2)
    _check_count("length", length, 2)
    stream = torch.tensor(bpe.encode(shakespeare_text(list(titles))))
    windows = stream[: len(stream) // length * length].view(-1, length)
    if len(windows) < count:
        raise ValueError(f"the plays hold {len(windows)} windows of {length} tokens, "
                         f"fewer than count = {count}: use more plays")
    ids = windows[torch.linspace(0, len(windows) - 1, count).long()]  # (count, T)
    labels = (torch.randperm(count, generator=generator) < count // 2).long()
    order = torch.rand(ids.shape, generator=generator).argsort(1)  # a shuffle per row
    # subtle: a shuffle can leave a window as it was (repeated tokens); rare at T = 16
    ids = torch.where(labels[:, None] == 1, ids, ids.gather(1, order))
    return ids, labels


def _check_pairs(ids, labels):
    if (not isinstance(ids, torch.Tensor) or not isinstance(labels, torch.Tensor)
            or ids.ndim != 2 or labels.shape != ids.shape[:1] or not len(ids)):
        raise ValueError("ids (N, T) and labels (N,) do not match: "
                         f"{tuple(getattr(ids, 'shape', ()))} and "
                         f"{tuple(getattr(labels, 'shape', ()))}")


def train_classifier(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor,
                     steps: int, lr: float, batch: int = 32,
                     generator: torch.Generator | None = None,
                     progress=None) -> list[float]:
    """Adam on ``model``'s trainable parameters (all of them, or only θ^(d) of a
    ``Subspace``), ``steps`` updates on random batches of (ids, labels) with the
    cross-entropy loss; returns the loss of each update. ``progress`` wraps the loop
    over update numbers (e.g. ``mlf.notebook.progress``)."""
    _check_count("steps", steps, 1)
    _check_count("batch", batch, 1)
    _check_pairs(ids, labels)
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    opt = torch.optim.Adam(params, lr=lr)
    device = params[0].device
    losses = []
    for _ in (progress or iter)(range(steps)):
        pick = torch.randint(0, len(ids), (batch,), generator=generator)
        logits = model(ids[pick].to(device))
        loss = nn.functional.cross_entropy(logits, labels[pick].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor,
             batch: int = 500) -> float:
    """The fraction of ``ids`` whose arg-max class is ``labels``."""
    _check_pairs(ids, labels)
    device = next(model.buffers(), next(model.parameters())).device
    right = sum((model(ids[i:i + batch].to(device)).argmax(-1).cpu()
                 == labels[i:i + batch]).sum().item()
                for i in range(0, len(ids), batch))
    return right / len(ids)
