"""A sparsely-gated mixture-of-experts layer (Shazeer et al. 2017; Fedus et al. 2022).

N feed-forward "experts" share one layer; a small router (the gate) sends each token to
k of them, so the layer holds N times the parameters of one feed-forward block but each
token pays for only k. The pieces:

* ``Router``: logits h(x) = x W_g, in float32 whatever the input's precision (Switch's
  "selective precision"); with ``noisy=True`` and in training, Shazeer's noisy top-k
  gating adds StandardNormal() * Softplus(x W_noise) to them (his eq. 4). The k largest
  probabilities p_i(x) = softmax(h(x))_i pick the experts; their gate values are those
  probabilities (Switch: y = p_i(x) E_i(x)) or, with ``normalize=True``, the same
  renormalised to sum to 1, which is Shazeer's G(x) = Softmax(KeepTopK(h(x), k)) and
  Mixtral's gate.
* ``expert_capacity`` and ``dispatch``: each expert takes at most
  C = ceil(capacity_factor * k * T / N) of a group's T tokens; tokens beyond that are
  dropped: the layer outputs 0 for them, and the residual connection around it carries
  them on unchanged. Priority goes in position order, a token's k choices together, the
  convention of ``transformers``' Switch router (a cumulative sum along the sequence).
* ``load_balancing_loss``: Switch's auxiliary loss N * sum_i f_i P_i, f_i the fraction
  of routing choices that picked expert i (before capacity), P_i the mean router
  probability of expert i; 1 when routing is uniform, N when one expert takes all.
  ``importance_loss`` is Shazeer's CV(Importance)^2.
* ``MoE``: the layer, experts stored as stacked weights and run with one batched matrix
  product each, through the dispatch and combine tensors of GShard and Mesh TensorFlow.
  It maps (B, T, d_model) -> (B, T, d_model) like ``mlf.transformer.FeedForward``, so it
  replaces the feed-forward block of a Transformer (``MoEGPT``); each sequence of the
  batch is one routing group, a (T, d_model) input is one group.

The layer keeps what it measured in its last forward pass: ``aux_loss`` (with its
gradient), ``load`` (routing choices per expert) and ``dropped`` (fraction of choices
over capacity).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from mlf.gpt import GPT, GPTConfig


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_k(k, n_experts):
    _check_positive_int("k", k)
    if k > n_experts:
        raise ValueError(f"k = {k} experts per token, but there are only "
                         f"{n_experts} experts: k must be at most n_experts")


def _check_capacity_factor(capacity_factor):
    if capacity_factor is None:
        return
    if isinstance(capacity_factor, bool) or not isinstance(capacity_factor,
                                                           (int, float)):
        raise TypeError(f"capacity_factor must be a number or None, "
                        f"got {capacity_factor!r}")
    if not capacity_factor > 0 or math.isinf(capacity_factor):
        raise ValueError(f"capacity_factor must be a finite number > 0 (or None for "
                         f"no limit), got {capacity_factor!r}")


def expert_capacity(tokens: int, n_experts: int, k: int = 1,
                    capacity_factor: float | None = 1.0) -> int:
    """C = ceil(capacity_factor * k * tokens / n_experts): slots per expert and group.

    Switch's "expert capacity = (tokens per batch / number of experts) x capacity
    factor", times k as GShard does for top-2. ``None``: no limit (C = tokens).
    """
    _check_positive_int("tokens", tokens)
    _check_positive_int("n_experts", n_experts)
    _check_k(k, n_experts)
    _check_capacity_factor(capacity_factor)
    if capacity_factor is None:
        return tokens
    # subtle: round 1.25 * 64 / 4 = 20.000000000000004 down first, or it becomes 21
    return max(1, math.ceil(round(capacity_factor * k * tokens / n_experts, 9)))


class Router(nn.Module):
    """x (..., d_model) -> gate values and experts (..., k), probabilities (..., N).

    h(x) = x W_g (+ StandardNormal() * Softplus(x W_noise) when ``noisy`` and in
    training), p(x) = softmax(h(x)), all in float32. The k experts with the largest
    p_i(x) are chosen, ties to the lower index (as the argmax of ``transformers``'
    Switch router); their gate values are p_i(x), or p_i(x) / sum of the chosen p_j(x)
    with ``normalize``.
    """

    def __init__(self, d_model: int, n_experts: int, k: int = 1, noisy: bool = False,
                 normalize: bool = False):
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("n_experts", n_experts)
        _check_k(k, n_experts)
        self.k, self.n_experts, self.normalize = k, n_experts, normalize
        # Switch has no bias in the router, nor has Shazeer's W_g
        self.w_g = nn.Linear(d_model, n_experts, bias=False)
        # Shazeer (appendix A): W_g and W_noise start at zero, "no signal and some
        # noise", so that every expert gets an equal share at first
        self.w_noise = nn.Linear(d_model, n_experts, bias=False) if noisy else None
        if noisy:
            nn.init.zeros_(self.w_g.weight)
            nn.init.zeros_(self.w_noise.weight)

    def forward(self, x: torch.Tensor):
        if not isinstance(x, torch.Tensor) or x.ndim < 1 \
                or x.shape[-1] != self.w_g.in_features:
            raise ValueError(f"x must be a tensor (..., d_model = "
                             f"{self.w_g.in_features}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        # selective precision: the softmax over experts is where bfloat16 hurts
        x32 = x.float()
        h = F.linear(x32, self.w_g.weight.float())  # (..., N)
        if self.w_noise is not None and self.training:  # Shazeer's eq. (4)
            scale = F.softplus(F.linear(x32, self.w_noise.weight.float()))
            h = h + torch.randn_like(h) * scale
        probs = h.softmax(-1)  # (..., N) float32
        # subtle: torch.topk breaks ties arbitrarily (expert 2 of 4 for equal p on a
        # CPU); a stable sort takes the lower index, as argmax does. Ties are real:
        # the noisy router's W_g starts at zero, so every p_i(x) is 1/N at first
        gates, experts = probs.sort(dim=-1, descending=True, stable=True)
        gates, experts = gates[..., :self.k], experts[..., :self.k]  # (..., k) each
        if self.normalize:  # = Softmax(KeepTopK(h, k)), Shazeer's eq. (3) and (5)
            # subtle: with k = 1 every gate becomes 1 and the router gets no gradient
            # from the task; Switch keeps p_i(x) for that reason
            gates = gates / gates.sum(-1, keepdim=True)
        return gates, experts, probs


def dispatch(experts: torch.Tensor, n_experts: int, capacity: int):
    """Slots in the experts' buffers: experts (G, T, k) -> slot, keep (G, T, k).

    Within each group (row), the routing choices are taken in position order, a
    token's k choices together; choice j of token t goes to slot ``slot[g, t, j]`` of
    expert ``experts[g, t, j]``'s buffer if fewer than ``capacity`` choices came
    before it, else it is dropped (``keep`` False).

    # subtle: position order keeps the layer causal: whether token t is dropped
    # depends on tokens 0..t only. GShard instead serves every token's first choice
    # before any second choice.
    """
    if not isinstance(experts, torch.Tensor) or experts.ndim != 3 \
            or experts.dtype not in (torch.long, torch.int32, torch.int64):
        raise ValueError(f"experts must be an integer tensor (groups, tokens, k), got "
                         f"{getattr(experts, 'dtype', type(experts).__name__)} "
                         f"{tuple(getattr(experts, 'shape', ()))}")
    _check_positive_int("n_experts", n_experts)
    _check_positive_int("capacity", capacity)
    if experts.numel() and (experts.min() < 0 or experts.max() >= n_experts):
        raise ValueError(f"expert indices must lie in 0..{n_experts - 1}")
    g, t, k = experts.shape
    one_hot = F.one_hot(experts.reshape(g, t * k).long(), n_experts)  # (G, T k, N)
    # slot = how many earlier choices of the group picked the same expert
    slot = ((one_hot.cumsum(1) - 1) * one_hot).sum(-1)  # (G, T k)
    return slot.view(g, t, k), (slot < capacity).view(g, t, k)


def load_balancing_loss(probs: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Switch's auxiliary loss N * sum_i f_i P_i over all tokens (its eq. 4 to 6).

    probs (..., N): the router's probabilities; experts (..., k): the chosen experts.
    f_i is the fraction of the routing choices (k per token) that went to expert i,
    counted before capacity drops; P_i the mean of p_i(x). The result is 1 when both
    are uniform and N when one expert takes every token with probability 1; f_i is not
    differentiable, so the gradient flows through P_i alone. Multiply by alpha
    (Switch: 0.01) before adding it to the task loss.

    # subtle: transformers' Switch averages this over groups (rows of the batch) and
    # its Mixtral version counts f_i per token, so it sums to k: k times ours.
    """
    if not isinstance(probs, torch.Tensor) or not isinstance(experts, torch.Tensor) \
            or probs.ndim < 1 or experts.shape[:-1] != probs.shape[:-1]:
        raise ValueError(f"probs (..., N) and experts (..., k) must share their "
                         f"leading shape, got {tuple(getattr(probs, 'shape', ()))} "
                         f"and {tuple(getattr(experts, 'shape', ()))}")
    n = probs.shape[-1]
    if experts.numel() == 0:
        raise ValueError("no tokens: the loss of an empty batch is undefined")
    _check_k(experts.shape[-1], n)
    chosen = F.one_hot(experts.long(), n).float()  # (..., k, N)
    f = chosen.reshape(-1, n).mean(0)  # fraction of the T k choices, sums to 1
    p = probs.float().reshape(-1, n).mean(0)  # P_i
    return n * (f * p).sum()


def cv_squared(x: torch.Tensor) -> torch.Tensor:
    """The squared coefficient of variation, variance / mean^2 (Shazeer's loss)."""
    x = x.float()
    return x.var(unbiased=True) / (x.mean() ** 2 + 1e-10) if x.numel() > 1 \
        else x.new_zeros(())


def importance_loss(gates: torch.Tensor, experts: torch.Tensor,
                    n_experts: int) -> torch.Tensor:
    """Shazeer's L_importance / w_importance = CV(Importance(X))^2, his eq. (6) and (7).

    Importance_i = the sum over the batch of the gate values G(x)_i; gates and
    experts (..., k) as ``Router`` returns them.
    """
    if not isinstance(gates, torch.Tensor) or not isinstance(experts, torch.Tensor) \
            or gates.shape != experts.shape:
        raise ValueError(f"gates and experts must have the same shape (..., k), got "
                         f"{tuple(getattr(gates, 'shape', ()))} and "
                         f"{tuple(getattr(experts, 'shape', ()))}")
    _check_positive_int("n_experts", n_experts)
    importance = torch.zeros(n_experts, device=gates.device).index_add(
        0, experts.reshape(-1).long(), gates.reshape(-1).float())
    return cv_squared(importance)


class MoE(nn.Module):
    """y = sum over the chosen experts i of gate_i(x) E_i(x): (B, T, d) -> (B, T, d).

    E_i(x) = act(x W1_i + b1_i) W2_i + b2_i, each expert a feed-forward block of width
    ``d_ff``, like ``mlf.transformer.FeedForward``. Each row of the batch is a routing
    group (a (T, d) input is one group) with ``expert_capacity(T, N, k,
    capacity_factor)`` slots per expert; ``None`` drops nothing. A dropped choice adds
    nothing to y: a token dropped by all its experts comes out as 0.
    """

    def __init__(self, d_model: int, d_ff: int, n_experts: int, k: int = 1,
                 capacity_factor: float | None = 1.0, noisy: bool = False,
                 normalize: bool = False, activation: Callable = F.relu):
        super().__init__()
        for name, value in (("d_model", d_model), ("d_ff", d_ff),
                            ("n_experts", n_experts)):
            _check_positive_int(name, value)
        _check_k(k, n_experts)
        _check_capacity_factor(capacity_factor)
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {activation!r}")
        self.d_model, self.d_ff, self.n_experts, self.k = d_model, d_ff, n_experts, k
        self.capacity_factor, self.activation = capacity_factor, activation
        self.router = Router(d_model, n_experts, k, noisy, normalize)
        # the N experts' weights stacked, one batched matrix product runs them all;
        # initialised as N separate nn.Linear layers would be
        bound_1, bound_2 = 1 / math.sqrt(d_model), 1 / math.sqrt(d_ff)
        self.w_1 = nn.Parameter(torch.empty(n_experts, d_model, d_ff)
                                .uniform_(-bound_1, bound_1))
        self.b_1 = nn.Parameter(torch.empty(n_experts, d_ff).uniform_(-bound_1,
                                                                      bound_1))
        self.w_2 = nn.Parameter(torch.empty(n_experts, d_ff, d_model)
                                .uniform_(-bound_2, bound_2))
        self.b_2 = nn.Parameter(torch.empty(n_experts, d_model).uniform_(-bound_2,
                                                                         bound_2))
        self.aux_loss = self.load = self.dropped = None

    def expert(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """E_i(x) for one expert: x (..., d_model) -> (..., d_model)."""
        h = self.activation(x @ self.w_1[i] + self.b_1[i])
        return h @ self.w_2[i] + self.b_2[i]

    def capacity(self, tokens: int) -> int:
        """Slots per expert for a group of ``tokens`` tokens."""
        return expert_capacity(tokens, self.n_experts, self.k, self.capacity_factor)

    def route(self, x: torch.Tensor):
        """Routing of x (G, T, d): gates, experts (G, T, k), probs (G, T, N), and the
        slot and keep of ``dispatch`` at this layer's capacity."""
        gates, experts, probs = self.router(x)
        n, (g, t, _) = self.n_experts, x.shape
        capacity = self.capacity(t)
        if self.capacity_factor is None:  # no limit: as many slots as the busiest
            counts = F.one_hot(experts.reshape(g, -1), n).sum(1)  # (G, N)
            capacity = max(1, int(counts.max()))
        slot, keep = dispatch(experts, n, capacity)
        return gates, experts, probs, slot, keep, capacity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3) \
                or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be a (batch, time, d_model = {self.d_model}) or "
                             f"(time, d_model) tensor, got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        one_group = x.ndim == 2
        x = x[None] if one_group else x  # (G, T, d)
        g, _, d = x.shape
        gates, experts, probs, slot, keep, c = self.route(x)
        n = self.n_experts
        # dispatch tensor D[g, t, j, i, s] = 1: choice j of token t goes to slot s of
        # expert i (GShard's "dispatch_mask"); a dropped choice is all zeros
        disp = (F.one_hot(experts, n)[..., None]
                * F.one_hot(slot.clamp(max=c - 1), c)[..., None, :]
                * keep[..., None, None]).to(x.dtype)  # (G, T, k, N, C)
        x_in = torch.einsum("gtjic,gtd->igcd", disp, x).reshape(n, g * c, d)
        h = self.activation(torch.baddbmm(self.b_1[:, None], x_in, self.w_1))
        out = torch.baddbmm(self.b_2[:, None], h, self.w_2)  # (N, G C, d)
        combine = disp * gates.to(x.dtype)[..., None, None]  # gate values in D's place
        y = torch.einsum("gtjic,igcd->gtd", combine, out.view(n, g, c, d))
        self.aux_loss = load_balancing_loss(probs, experts)
        self.load = F.one_hot(experts.detach(), n).reshape(-1, n).sum(0)  # (N,)
        self.dropped = 1.0 - keep.float().mean().item()
        return y[0] if one_group else y


class MoEGPT(GPT):
    """The book's GPT with every block's feed-forward block replaced by an ``MoE``.

    ``mlf.gpt.Block`` computes x + FFN(LN_2(x)); here FFN is a mixture of
    ``n_experts`` experts, each as wide as the dense block (``cfg.d_ff``), so with
    k = 1 a token meets as many feed-forward parameters as in the dense model. In
    training, ``loss`` adds alpha times the layers' mean balancing loss; in eval mode
    it is the plain next-token loss, so ``mlf.gpt.mean_loss`` compares models fairly
    and ``mlf.gpt.train_steps`` trains this model unchanged.
    """

    def __init__(self, cfg: GPTConfig, n_experts: int, k: int = 1,
                 capacity_factor: float | None = 1.25, alpha: float = 0.01,
                 noisy: bool = False, normalize: bool = False):
        super().__init__(cfg)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) \
                or not alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
        self.alpha = alpha
        gelu = partial(F.gelu, approximate="tanh")  # as the dense block's
        for block in self.blocks:
            moe = MoE(cfg.d_model, cfg.d_ff, n_experts, k, capacity_factor, noisy,
                      normalize, activation=gelu)
            # GPT-2's initialisation, as GPT gives its dense blocks: N(0, 0.02), the
            # residual projection W_2 scaled by 1 / sqrt(2 n_layers), zero biases.
            # orig: Switch draws a truncated normal of std sqrt(0.1 / fan_in), its
            # scale s = 1 cut tenfold: 0.025 for d_model = 160, near GPT-2's 0.02
            nn.init.normal_(moe.w_1, std=0.02)
            nn.init.normal_(moe.w_2, std=0.02 / math.sqrt(2 * cfg.n_layers))
            # subtle: mlf.gpt.train_steps decays every parameter with ndim >= 2, so
            # these stacked biases (N, d) are decayed and the dense block's are not:
            # a pull to 0 of at most lr * 0.1 per update (6% over 300 at lr 2e-3)
            nn.init.zeros_(moe.b_1)
            nn.init.zeros_(moe.b_2)
            if not noisy:
                nn.init.normal_(moe.router.w_g.weight, std=0.02)
            block.ffn = moe
        self.n_experts = n_experts

    def moe_layers(self) -> list[MoE]:
        return [block.ffn for block in self.blocks]

    def aux_loss(self) -> torch.Tensor:
        """The mean balancing loss of the layers' last forward pass."""
        return torch.stack([m.aux_loss for m in self.moe_layers()]).mean()

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        task = super().loss(ids)
        if self.training and self.alpha > 0:
            return task + self.alpha * self.aux_loss()
        return task


# --- a task with several latent modes -----------------------------------------------

def modes_task(n: int, d: int = 8, n_modes: int = 4, width: int = 32,
               spread: float = 3.0, noise: float = 0.5,
               generator: torch.Generator | None = None, teacher=None):
    """A regression task whose input's cluster decides which function applies.

    Mode c has a centre mu_c ~ N(0, spread^2 I) and a random teacher network
    f_c(x) = tanh(x U_c) V_c of ``width`` hidden units; an example draws c uniformly,
    x = mu_c + N(0, noise^2 I), y = f_c(x). Returns x (n, d), y (n, d), the modes
    (n,) and the teacher (centres and weights), to draw a test set from the same
    task: ``modes_task(..., teacher=teacher)``.
    """
    for name, value in (("n", n), ("d", d), ("n_modes", n_modes), ("width", width)):
        _check_positive_int(name, value)
    if teacher is None:
        teacher = {"mu": spread * torch.randn(n_modes, d, generator=generator),
                   "u": torch.randn(n_modes, d, width, generator=generator)
                   / math.sqrt(d),
                   "v": torch.randn(n_modes, width, d, generator=generator)
                   / math.sqrt(width)}
    modes = torch.randint(0, n_modes, (n,), generator=generator)
    x = teacher["mu"][modes] + noise * torch.randn(n, d, generator=generator)
    hidden = torch.tanh(torch.einsum("nd,ndw->nw", x, teacher["u"][modes]))
    y = torch.einsum("nw,nwd->nd", hidden, teacher["v"][modes])
    return x, y, modes, teacher


def fit_modes(model: nn.Module, teacher: dict, steps: int = 400, batch: int = 256,
              lr: float = 3e-3, alpha: float = 0.0,
              generator: torch.Generator | None = None) -> list[float]:
    """Train ``model`` (a ``MoE`` or a dense ``FeedForward``) by Adam on fresh batches
    of ``modes_task`` with ``teacher``, loss MSE + alpha * balancing loss (MoE only);
    return the training MSE of every step. A batch is one routing group.

    The batches are drawn on the CPU (``generator`` and ``teacher`` live there, so
    every device sees the same data) and moved to the device of the model's weights.
    """
    _check_positive_int("steps", steps)
    _check_positive_int("batch", batch)
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise TypeError(f"model must be an nn.Module with parameters, got {model!r}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    d, n_modes = teacher["mu"].shape[1], teacher["mu"].shape[0]
    device = next(model.parameters()).device
    model.train()
    losses = []
    for _ in range(steps):
        x, y, _, _ = modes_task(batch, d, n_modes, generator=generator,
                                teacher=teacher)
        mse = F.mse_loss(model(x.to(device)), y.to(device))
        loss = mse + alpha * model.aux_loss if isinstance(model, MoE) and alpha else mse
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(mse.item())
    model.eval()
    return losses
