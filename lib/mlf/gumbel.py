"""Gumbel-Softmax (Jang, Gu & Poole 2017; the Concrete distribution of Maddison, Mnih &
Teh 2017): a sample from a categorical made differentiable.

Notation follows the paper: class probabilities pi_1..pi_k (or logits log pi_i + c),
Gumbel(0, 1) noise g_i, temperature tau, one-hot sample z, relaxed sample y on the
simplex.

* ``gumbel_noise``: g = -log(E), E ~ Exponential(1), drawn exactly as PyTorch's
  ``F.gumbel_softmax`` draws it, so that after the same ``torch.manual_seed`` both see
  the same noise.
* ``gumbel_max``: z = one_hot(argmax_i [g_i + log pi_i]), the paper's eq. 1.
* ``gumbel_softmax``: y = softmax((log pi + g) / tau), eq. 2; ``hard=True`` is the
  straight-through estimator of section 2.2 (one-hot forward, y's gradient backward).
* ``log_density``: log p_{pi,tau}(y) of eq. 3, the density
  ``torch.distributions.RelaxedOneHotCategorical`` also computes.

>>> logits = torch.log(torch.tensor([0.5, 0.3, 0.2]))
>>> y = gumbel_softmax(logits, tau=0.5, generator=torch.Generator().manual_seed(0))
>>> bool(torch.isclose(y.sum(), torch.tensor(1.0)))     # y lies on the simplex
True
>>> z = gumbel_softmax(logits, tau=0.5, hard=True)
>>> sorted(z.tolist())                                  # one-hot on the way forward
[0.0, 0.0, 1.0]
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# --- the sampler (eqs. 1 and 2) ------------------------------------------------------

def _check_logits(logits, name="logits"):
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be floating point (log-probabilities up to a "
                        f"constant), got {logits.dtype}")
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., k) with k >= 2 categories in "
                         f"the last dimension, got {tuple(logits.shape)}")


def _check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"the temperature tau must be a number, got {tau!r}")
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"the temperature tau must be positive and finite, got "
                         f"{tau!r}")


def gumbel_noise(like: torch.Tensor, generator=None) -> torch.Tensor:
    """Gumbel(0, 1) noise of ``like``'s shape: g = -log E with E ~ Exponential(1).

    The same draw as ``F.gumbel_softmax``'s (``empty_like(...).exponential_().log()``):
    with ``generator=None`` both consume the global generator identically.
    """
    _check_logits(like, "like")
    # subtle: -log(-log U) with U uniform is the textbook form; -log E is the same law
    # (E = -log U), and the form torch uses, so the two samplers share their noise
    e = torch.empty_like(like, memory_format=torch.legacy_contiguous_format)
    return -e.exponential_(generator=generator).log()


def gumbel_max(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """Eq. 1: z = one_hot(argmax_i [g_i + log pi_i]); an exact categorical sample."""
    _check_logits(logits)
    g = gumbel_noise(logits, generator)
    index = (logits + g).argmax(-1, keepdim=True)  # (..., 1)
    return torch.zeros_like(logits).scatter_(-1, index, 1.0)  # (..., k)


def relax(logits: torch.Tensor, g: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 2 given the noise: y_i = exp((log pi_i + g_i)/tau) / sum_j (same): a
    softmax."""
    _check_logits(logits)
    _check_tau(tau)
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"the noise g must be a torch.Tensor, got {type(g).__name__}")
    if g.shape != logits.shape:
        raise ValueError(f"the noise g must have the logits' shape "
                         f"{tuple(logits.shape)}, got {tuple(g.shape)}")
    return ((logits + g) / tau).softmax(-1)  # (..., k), on the simplex


def straight_through(y: torch.Tensor) -> torch.Tensor:
    """One-hot of argmax y on the way forward; dz/dtheta := dy/dtheta on the way
    back."""
    _check_logits(y, "y")
    index = y.max(-1, keepdim=True)[1]  # subtle: torch's tie-break, first maximum
    z = torch.zeros_like(y, memory_format=torch.legacy_contiguous_format)
    z = z.scatter_(-1, index, 1.0)
    return z - y.detach() + y  # value z, gradient of y


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = False,
                   generator=None) -> torch.Tensor:
    """A Gumbel-Softmax sample y (eq. 2), or with ``hard`` the straight-through one-hot.

    Equal to ``F.gumbel_softmax(logits, tau, hard)`` (last dimension) for the same
    noise: seed the global generator alike before each call, or pass ``generator``.
    """
    _check_tau(tau)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be True or False, got {hard!r}")
    y = relax(logits, gumbel_noise(logits, generator), tau)
    return straight_through(y) if hard else y


# --- the density (eq. 3) --------------------------------------------------------------

def _check_simplex(p, name, k=None):
    if not isinstance(p, torch.Tensor) or not p.is_floating_point():
        what = p.dtype if isinstance(p, torch.Tensor) else type(p).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {what}")
    if p.ndim < 1 or p.shape[-1] < 2 or (k is not None and p.shape[-1] != k):
        want = f"k = {k}" if k is not None else "k >= 2"
        raise ValueError(f"{name} must have shape (..., k) with {want} in the last "
                         f"dimension, got {tuple(p.shape)}")
    if not bool((p > 0).all()):
        raise ValueError(f"{name} must be positive in every category (on the open "
                         "simplex)")
    tol = math.sqrt(torch.finfo(p.dtype).eps)  # 3e-4 in float32, 1.5e-8 in float64
    if not bool(((p.sum(-1) - 1).abs() <= tol).all()):
        worst = (p.sum(-1) - 1).abs().max().item()
        raise ValueError(f"{name} must sum to 1 over the last dimension (to within "
                         f"{tol:.1e}); off by up to {worst:.2e}")


def log_density(y: torch.Tensor, tau: float, *, logits=None, probs=None):
    """log p_{pi,tau}(y), eq. 3, for y on the open simplex (..., k):

    log Gamma(k) + (k-1) log tau - k log sum_i pi_i / y_i^tau
                 + sum_i (log pi_i - (tau + 1) log y_i).

    Give the class probabilities as ``probs`` (positive, summing to 1) or as ``logits``
    (log pi up to a constant). The density is with respect to Lebesgue measure on
    (y_1, .., y_{k-1}), as ``RelaxedOneHotCategorical.log_prob``'s.
    """
    _check_tau(tau)
    if (logits is None) == (probs is None):
        raise ValueError("give exactly one of logits= and probs=")
    if probs is not None:
        _check_simplex(probs, "probs")
        log_pi = probs.log()
    else:
        _check_logits(logits)
        log_pi = logits.log_softmax(-1)  # log pi_i: the constant is irrelevant
    k = log_pi.shape[-1]
    _check_simplex(y, "y", k)
    log_y = y.log()  # subtle: near a vertex keep y in float64, or y_i underflows to 0
    # -k log sum_i pi_i y_i^-tau, in log space so that tiny y_i do not overflow
    norm = -k * (log_pi - tau * log_y).logsumexp(-1)
    return (math.lgamma(k) + (k - 1) * math.log(tau) + norm
            + (log_pi - (tau + 1) * log_y).sum(-1))


def chi_square(counts: torch.Tensor, probs: torch.Tensor):
    """Pearson's chi-square test of ``counts`` (k,) against ``probs`` (k,): returns
    (statistic, p-value), with k - 1 degrees of freedom. The p-value is the upper tail
    of the chi-square law, Q(df/2, x/2) (the regularised upper incomplete gamma)."""
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1:
        raise ValueError("counts must be a 1-d tensor of category counts")
    if counts.is_floating_point() or bool((counts < 0).any()):
        raise ValueError("counts must be non-negative integers")
    _check_simplex(probs, "probs", len(counts))
    expected = counts.sum().double() * probs.double()
    if bool((expected < 5).any()):
        raise ValueError("every expected count must be at least 5 for the chi-square "
                         f"approximation; the smallest is {expected.min().item():.2f}")
    stat = ((counts.double() - expected) ** 2 / expected).sum()
    df = len(counts) - 1
    p = torch.special.gammaincc(torch.tensor(df / 2).double(), stat / 2)
    return stat.item(), p.item()


# --- a categorical VAE on 8x8 digits (section 4.2, scaled down) -----------------------

# seeds, long runs and gradient variances from scripts/gumbel_spread.py
SPREAD = Path(__file__).resolve().parents[2] / "data" / "gumbel" / "spread.json"
ESTIMATORS = ("gumbel-softmax", "st-gumbel-softmax", "score-function",
              "score-function+baseline")


def binarised_digits(threshold: int = 8):
    """scikit-learn's 8x8 digits (1,797 images, grey levels 0..16), a pixel on when its
    grey level is >= ``threshold``; split once, by a fixed permutation, into 1,500
    training and 297 test images. Returns (train, test), float32 (n, 64) of 0s and
    1s."""
    from sklearn.datasets import load_digits

    if isinstance(threshold, bool) or not isinstance(threshold, int) \
            or not 1 <= threshold <= 16:
        raise ValueError(f"threshold must be an integer grey level in 1..16, got "
                         f"{threshold!r}")
    x = torch.tensor(load_digits().data >= threshold, dtype=torch.float32)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1797))
    return x[order[:1500]], x[order[1500:]]


def independent_pixels(train: torch.Tensor, test: torch.Tensor) -> float:
    """-log p(x) per test image, in nats, of the best model with no latent at all:
    each pixel on independently, with its frequency in ``train`` (clamped to
    [1e-3, 1 - 1e-3] so that a pixel never on in training costs a finite amount).
    A VAE whose q(z|x) carries no information about x cannot beat it."""
    for name, x in (("train", train), ("test", test)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or len(x) == 0:
            raise ValueError(f"{name} must be a non-empty (n, pixels) tensor")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test must have as many pixels, got "
                         f"{train.shape[1]} and {test.shape[1]}")
    on = train.float().mean(0).clamp(1e-3, 1 - 1e-3)  # (pixels,) how often on
    x = test.float()
    return -(x * on.log() + (1 - x) * (1 - on).log()).sum(1).mean().item()


class CategoricalVAE(nn.Module):
    """q(z|x): an MLP to N categorical latents of K classes; p(x|z): an MLP from the
    N one-hot (or relaxed) vectors to 64 Bernoulli pixels; p(z) uniform (orig: the
    paper's text says a learned categorical prior; the authors' released notebook
    fixes it to uniform, as here)."""

    def __init__(self, n_pixels: int = 64, n_latent: int = 8, n_classes: int = 8,
                 hidden: int = 128):
        super().__init__()
        for name, v in (("n_pixels", n_pixels), ("n_latent", n_latent),
                        ("n_classes", n_classes), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n, self.k = n_latent, n_classes
        self.encoder = nn.Sequential(nn.Linear(n_pixels, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_latent * n_classes))
        self.decoder = nn.Sequential(nn.Linear(n_latent * n_classes, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_pixels))

    def encode(self, x):  # (B, 64) -> logits of q(z|x), (B, N, K)
        return self.encoder(x).view(len(x), self.n, self.k)

    def neg_log_lik(self, x, z):  # -log p(x|z), (B,); z (B, N, K)
        logits = self.decoder(z.flatten(-2))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def kl(self, logits):  # KL(q(z|x) || uniform), (B,): exact, summed over N latents
        log_q = logits.log_softmax(-1)
        return (log_q.exp() * (log_q + math.log(self.k))).sum((-1, -2))


def surrogate_loss(model: CategoricalVAE, x: torch.Tensor, estimator: str,
                   tau: float = 1.0, baseline: float = 0.0, generator=None):
    """A loss whose gradient is the chosen estimator of the gradient of the negative
    ELBO, E_q[f(z)] + KL(q || p), with f(z) = -log p(x|z). Returns (loss, f) with f the
    cost of each image's sample, (B,), detached.

    The KL term is exact for every estimator; they differ in the gradient of E_q[f]:
    Gumbel-Softmax differentiates f(y) through the relaxed sample y (eq. 4), the
    straight-through version feeds the one-hot z forward; the score function uses
    (f(z) - b) grad log q(z|x) (eqs. 5 and 7, with b a constant: no mu_b to add back).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "score-function" and baseline != 0:
        raise ValueError("the plain score function has no baseline; use "
                         "'score-function+baseline'")
    logits = model.encode(x)  # (B, N, K)
    kl = model.kl(logits)
    if estimator.startswith("score-function"):
        z = gumbel_max(logits.detach(), generator)  # a true categorical sample
        log_q = (z * logits.log_softmax(-1)).sum((-1, -2))  # log q(z|x), (B,)
        f = model.neg_log_lik(x, z)  # its gradient trains the decoder
        score = (f.detach() - baseline) * log_q  # eq. 7: (f - b) grad log q
        return (f + score + kl).mean(), f.detach()
    y = gumbel_softmax(logits, tau, hard=estimator == "st-gumbel-softmax",
                       generator=generator)
    f = model.neg_log_lik(x, y)  # differentiable in y, hence in the encoder
    return (f + kl).mean(), f.detach()


def temperature(step: int, rate: float, every: int, floor: float = 0.5) -> float:
    """The paper's schedule, tau = max(floor, exp(-r t)), with t updated every N
    steps."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    if not rate >= 0 or not floor > 0:
        raise ValueError(f"need rate >= 0 and floor > 0, got {rate!r}, {floor!r}")
    return max(floor, math.exp(-rate * (step // every) * every))


@torch.no_grad()
def evaluate(model: CategoricalVAE, x: torch.Tensor, samples: int = 100,
             generator=None, chunk: int = 20):
    """Bounds on -log p(x) per image with discrete samples z ~ q(z|x), as the paper
    evaluates: the negative ELBO, -E[log w], and the importance-weighted bound
    -log (1/m) sum_j w_j, with w = p(x|z) p(z) / q(z|x) and m = ``samples``.
    Returns the two means over ``x``, in nats."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    log_q_all = model.encode(x).log_softmax(-1)  # (B, N, K)
    log_prior = -model.n * math.log(model.k)  # uniform p(z)
    log_w = []
    for start in range(0, samples, chunk):
        m = min(chunk, samples - start)
        lq = log_q_all.unsqueeze(1).expand(-1, m, -1, -1)  # (B, m, N, K)
        z = gumbel_max(lq, generator)
        xs = x.unsqueeze(1).expand(-1, m, -1).reshape(-1, x.shape[-1])
        nll = model.neg_log_lik(xs, z.flatten(0, 1)).view(len(x), m)
        log_w.append(-nll + log_prior - (z * lq).sum((-1, -2)))
    log_w = torch.cat(log_w, 1)  # (B, samples)
    iw = log_w.logsumexp(1) - math.log(samples)
    return -log_w.mean().item(), -iw.mean().item()


def encoder_gradients(model: CategoricalVAE, x: torch.Tensor, estimator: str,
                      repeats: int, tau: float = 1.0, baseline: float = 0.0,
                      generator=None) -> torch.Tensor:
    """(repeats, P): the estimator's gradient of the batch loss with respect to the
    encoder's P parameters, drawn ``repeats`` times at the same parameters and batch,
    only the noise changing. Its variance across rows is the estimator's variance."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an integer >= 2, got {repeats!r}")
    params = list(model.encoder.parameters())
    rows = []
    for _ in range(repeats):
        loss, _ = surrogate_loss(model, x, estimator, tau, baseline, generator)
        grads = torch.autograd.grad(loss, params)
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


def train_vae(estimator: str, train: torch.Tensor, test: torch.Tensor, steps: int,
              seed: int = 0, lr: float = 1e-3, batch: int = 100, rate: float = 1e-3,
              every: int = 100, eval_every: int = 100, eval_samples: int = 10,
              bar: bool = True, **model_kwargs):
    """Train a ``CategoricalVAE`` with one estimator (Adam; orig: SGD with momentum 0.9
    and a grid of rates). tau follows ``temperature(step, rate, every)``; the baseline
    of 'score-function+baseline' is a moving average of f, NVIL's first baseline.
    Returns (model, history): every ``eval_every`` steps the test negative ELBO with
    ``eval_samples`` discrete samples per image, and the temperature."""
    from mlf.notebook import progress

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    device = train.device
    with torch.random.fork_rng(devices=[]):  # the initialisation, apart from the rest
        torch.manual_seed(seed)
        model = CategoricalVAE(**model_kwargs).to(device)
    noise = torch.Generator(device).manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"step": [], "test_neg_elbo": [], "tau": []}
    baseline = None

    def record(step):  # the test negative ELBO, with discrete samples
        history["step"].append(step)
        history["test_neg_elbo"].append(evaluate(model, test, eval_samples, noise)[0])
        history["tau"].append(temperature(step, rate, every))

    for step in progress(range(steps), desc=estimator, disable=not bar):
        if step % eval_every == 0:
            record(step)
        idx = torch.randint(len(train), (batch,), generator=order).to(device)
        b = baseline if (estimator == "score-function+baseline"
                         and baseline is not None) else 0.0
        loss, f = surrogate_loss(model, train[idx], estimator,
                                 temperature(step, rate, every), b, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mean_f = f.mean().item()
        baseline = mean_f if baseline is None else 0.9 * baseline + 0.1 * mean_f
    if steps % eval_every == 0:
        record(steps)
    return model, history
