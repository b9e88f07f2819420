"""Learning from preferences: a Bradley–Terry reward model, PPO against it, and DPO.

RLHF (Christiano et al. 2017; Ouyang et al. 2022) fits a reward model r_φ to
comparisons "y_w is better than y_l", then maximises E[r_φ] − β KL(π ‖ π_ref) with PPO
(Schulman et al. 2017). DPO (Rafailov et al. 2023) solves the same objective in closed
form, π*(y|x) = π_ref(y|x) exp(r(x,y)/β) / Z(x), and trains the policy directly on the
comparisons.

Conventions (those of trl and of the DPO paper's appendix B):

* a sequence's log-probability is the **sum** over the completion's tokens of
  log π(y_t | x, y_<t); the prompt's tokens are left out;
* Bradley–Terry has no intercept: a reward is defined only up to a constant per prompt,
  and only differences r(x, y_1) − r(x, y_2) enter;
* KL(π ‖ π_ref) is measured on π's own samples, summed over the completion's positions
  (the "sequence-level KL" of the DPO paper's Fig. 2).

The closed form on a 3-action bandit: a reward of β log 2 doubles an action's odds.

>>> import torch
>>> kl_regularised_optimum(torch.tensor([0.5, 0.25, 0.25]),
...                        torch.tensor([0.0, 0.0, 0.693147]), 1.0).round(decimals=4)
tensor([0.4000, 0.2000, 0.4000])
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from torch.nn import functional as F

# the scoring chapter's checks and log-probabilities, shared rather than copied
from mlf.decoding import _check_continuation as _check_ids
from mlf.decoding import sequence_logprobs
from mlf.gpt import generate

RLHF_SETUP = {
    "prompt_tokens": 6,  # P: the first 6 BPE tokens of a held-out line
    "completion_tokens": 20,  # L
    "n_train_prompts": 4096,  # the preference pool: 2 completions each
    "n_eval_prompts": 512,  # 2 completions each for the reward model's test
    "eval_prompts": 256,  # first 256 eval prompts: the reward/KL curve
    "eval_seed": 1234,  # one random stream for every checkpoint (common numbers)
    "pool_seed": 0,
    "tau": 0.25,  # rater temperature: P(y1 > y2) = σ((r*(y1) − r*(y2)) / τ)
    "l2": 1.0,  # the reward model's ridge penalty
    "min_count": 5,  # features: tokens seen ≥ 5 times in the pool's completions
    "beta": 0.1,  # the KL weight β, the same for PPO and DPO
    "dpo": {"lr": 1e-4, "batch": 64, "steps": 64,  # 64 × 64 pairs: one pass
            "checkpoints": [8, 16, 32, 48, 64]},
    "ppo": {"lr": 1e-4, "batch": 64, "iters": 16, "epochs": 2, "eps": 0.2,
            "checkpoints": [4, 8, 12, 16]},
    "grad_clip": 1.0,
}


# --- checks -------------------------------------------------------------------------

def _positive(name, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _count(name, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _same_shape(**tensors) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"expected tensors of one shape, got {shapes}")
    if any(v.numel() == 0 for v in tensors.values()):
        raise ValueError(f"expected a non-empty batch, got shapes {shapes}")


# --- prompts, samples, the true reward ----------------------------------------------

def held_out_prompts(bpe, lines, tokens: int = 6, n_eval: int = 512, stride: int = 8):
    """Prompts: the first ``tokens`` ids of each line that has at least ``tokens`` + 4,
    and whose next token starts a new word (a space or punctuation), so a completion
    never finishes a word the prompt cut. Duplicates are dropped, order kept. Every
    ``stride``-th prompt (up to ``n_eval``) is an eval prompt, the rest train prompts:
    a split without randomness. Returns (train (N, P), eval (M, P)) long tensors."""
    _count("tokens", tokens)
    seen, kept = set(), []
    for line in lines:
        ids = bpe.encode(line)
        if len(ids) < tokens + 4:
            continue
        nxt = bpe.decode([ids[tokens]])
        if nxt[:1].isalnum() or tuple(ids[:tokens]) in seen:
            continue
        seen.add(tuple(ids[:tokens]))
        kept.append(ids[:tokens])
    if len(kept) <= n_eval:
        raise ValueError(f"only {len(kept)} prompts survive; need more than {n_eval}")
    is_eval = [i % stride == 0 and i // stride < n_eval for i in range(len(kept))]
    train = [p for p, e in zip(kept, is_eval) if not e]
    test = [p for p, e in zip(kept, is_eval) if e]
    return torch.tensor(train), torch.tensor(test)


def sample_completions(model, prompts, length: int, generator=None):
    """prompts (B, P) -> (B, P + length): pure sampling (temperature 1) from model."""
    return generate(model, prompts, length, temperature=1.0, generator=generator)


_ANALYSER = None


def vader_reward(bpe, ids, start: int) -> torch.Tensor:
    """The true reward r*: VADER's compound score in [-1, 1] of each decoded
    completion ids[:, start:] -> (B,) float32. The prompt is not scored."""
    global _ANALYSER
    _check_ids(ids, start)
    if _ANALYSER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        _ANALYSER = SentimentIntensityAnalyzer()
    texts = [bpe.decode(row) for row in ids[:, start:].tolist()]
    return torch.tensor([_ANALYSER.polarity_scores(t)["compound"] for t in texts])


@torch.no_grad()
def token_kl(policy, ref, ids, start: int) -> torch.Tensor:
    """Σ_t KL(π(·|h_t) ‖ π_ref(·|h_t)) over the completion's positions, exact over the
    vocabulary, on the prefixes h_t of ids -> (B,). On π's own samples its mean is an
    unbiased estimate of the sequence KL(π ‖ π_ref), with less noise than the sampled
    Σ_t log π(y_t|h_t) − log π_ref(y_t|h_t)."""
    _check_ids(ids, start)
    lp = policy(ids[:, :-1]).float().log_softmax(-1)  # (B, T-1, V)
    lq = ref(ids[:, :-1]).float().log_softmax(-1)  # (B, T-1, V)
    kl = (lp.exp() * (lp - lq)).sum(-1)  # (B, T-1): one KL per predicted position
    return kl[:, start - 1:].sum(-1)


# --- preferences and the Bradley–Terry reward model ---------------------------------

def bt_labels(r1, r2, tau: float, generator=None) -> torch.Tensor:
    """Simulated raters: y1 ≻ y2 with probability σ((r1 − r2) / τ) -> (B,) bool.
    Bradley–Terry is then the true model of the labels, with reward r*/τ."""
    _positive("tau", tau)
    _same_shape(r1=r1, r2=r2)
    p = torch.sigmoid((r1.double() - r2.double()) / tau)
    return torch.rand(p.shape, generator=generator, dtype=torch.float64) < p


def bag_of_tokens(ids, start: int, vocab: int, keep=None) -> torch.Tensor:
    """Counts of each token id in the completion ids[:, start:] -> (B, vocab) float64,
    or (B, len(keep)) with only the columns ``keep``."""
    _check_ids(ids, start)
    y = ids[:, start:]
    counts = torch.zeros(ids.shape[0], vocab, dtype=torch.float64)
    counts.scatter_add_(1, y, torch.ones(y.shape, dtype=torch.float64))
    return counts if keep is None else counts[:, keep]


def fit_bradley_terry(diff, l2: float, tol: float = 1e-12, max_iter: int = 100):
    """The linear reward r(y) = w·φ(y) that minimises
    Σ_i −log σ(w·d_i) + (l2/2)‖w‖², d_i = φ(y_w,i) − φ(y_l,i): logistic regression
    without intercept on the difference features (all labels 1), by Newton's method
    in float64. diff (n, d) -> w (d,) numpy."""
    _positive("l2", l2)
    x = np.asarray(diff, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"diff must be a non-empty (pairs, features) array, "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("diff holds NaN or infinite values")
    w = np.zeros(x.shape[1])
    for _ in range(max_iter):
        s = 1.0 / (1.0 + np.exp(x @ w))  # σ(−w·d): the chance the model gets it wrong
        grad = -x.T @ s + l2 * w
        hess = (x.T * (s * (1 - s))) @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() <= tol * (1 + np.abs(w).max()):
            break
    return w


def bt_loss(r_w, r_l) -> torch.Tensor:
    """−mean log σ(r(x, y_w) − r(x, y_l)): the reward model's loss (Christiano et al.
    §2.2.3; InstructGPT eq. 1 with K = 2)."""
    _same_shape(r_w=r_w, r_l=r_l)
    return -F.logsigmoid(r_w - r_l).mean()


# --- the KL-regularised optimum and DPO ---------------------------------------------

def kl_regularised_optimum(ref_probs, reward, beta: float) -> torch.Tensor:
    """argmax_π E_π[r] − β KL(π ‖ π_ref) over K actions: π* = π_ref exp(r/β) / Z,
    computed as softmax(log π_ref + r/β) -> (K,)."""
    _positive("beta", beta)
    _same_shape(ref_probs=ref_probs, reward=reward)
    return torch.softmax(ref_probs.log() + reward / beta, dim=-1)


def dpo_loss(pi_w, pi_l, ref_w, ref_l, beta: float):
    """DPO (Rafailov et al. 2023, eq. 7), per pair:
    −log σ(β [(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]).
    Inputs: sequence log-probs (b,). Returns (losses (b,), r̂_w, r̂_l) with the implicit
    rewards r̂ = β (log π − log π_ref), detached (the paper's appendix B, trl)."""
    _positive("beta", beta)
    _same_shape(pi_w=pi_w, pi_l=pi_l, ref_w=ref_w, ref_l=ref_l)
    logits = (pi_w - pi_l) - (ref_w - ref_l)  # (b,)
    losses = -F.logsigmoid(beta * logits)
    return losses, beta * (pi_w - ref_w).detach(), beta * (pi_l - ref_l).detach()


def ppo_clip_loss(logp_new, logp_old, adv, eps: float = 0.2):
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), negated to minimise:
    −mean min(ρ A, clip(ρ, 1 − ε, 1 + ε) A), ρ = exp(log π_new − log π_old), per token.
    Returns (loss, the fraction of tokens where the clip is active)."""
    _positive("eps", eps)
    _same_shape(logp_new=logp_new, logp_old=logp_old, adv=adv)
    ratio = (logp_new - logp_old).exp()
    clipped = ratio.clamp(1 - eps, 1 + eps)
    loss = -torch.minimum(ratio * adv, clipped * adv).mean()
    active = (ratio * adv > clipped * adv).float().mean()  # min picked the clipped
    return loss, active.item()


# --- training -----------------------------------------------------------------------

def _where(generator):
    return generator.device if generator is not None else "cpu"


def _step(policy, optimiser, loss, clip: float) -> None:
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), clip)
    optimiser.step()


def dpo_train(policy, pairs: dict, *, steps: int, batch: int, beta: float, lr: float,
              generator=None, checkpoints=(), evaluate=None, clip: float = 1.0):
    """DPO on preference pairs, in place: Adam, one pass over a random order of the
    pairs (no pair is seen twice while steps × batch ≤ n). ``pairs``: "chosen" and
    "rejected" ids (n, T), "ref_chosen" and "ref_rejected" sequence log-probs (n,),
    "start". After each step in ``checkpoints``, ``evaluate(policy)`` (a dict) is
    recorded. Returns [{"step", "loss", "accuracy", **evaluate(...)}, ...]."""
    _positive("beta", beta)
    _positive("lr", lr)
    _count("steps", steps)
    _count("batch", batch)
    n, start = pairs["chosen"].shape[0], pairs["start"]
    if n == 0 or pairs["rejected"].shape != pairs["chosen"].shape:
        raise ValueError("pairs must hold chosen and rejected ids of one shape (n, T)"
                         f", n ≥ 1; got {tuple(pairs['chosen'].shape)} and "
                         f"{tuple(pairs['rejected'].shape)}")
    if not torch.equal(pairs["chosen"][:, :start], pairs["rejected"][:, :start]):
        raise ValueError("each pair must share its prompt ids[:, :start]")
    order = torch.randperm(n, generator=generator, device=_where(generator)).cpu()
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    dev, log = next(policy.parameters()).device, []
    for step in range(1, steps + 1):
        idx = order[((step - 1) * batch + torch.arange(batch)) % n]
        w, lo = pairs["chosen"][idx].to(dev), pairs["rejected"][idx].to(dev)
        logp = sequence_logprobs(policy, torch.cat([w, lo]), start).sum(-1)  # (2b,)
        losses, r_w, r_l = dpo_loss(logp[:batch], logp[batch:],
                                    pairs["ref_chosen"][idx].to(dev),
                                    pairs["ref_rejected"][idx].to(dev), beta)
        _step(policy, optimiser, losses.mean(), clip)
        if step in checkpoints:
            row = {"step": step, "loss": losses.mean().item(),
                   "accuracy": (r_w > r_l).float().mean().item()}
            log.append(row | (evaluate(policy) if evaluate else {}))
    return log


def ppo_advantages(score, logp_old, logp_ref, beta: float) -> torch.Tensor:
    """Per-token rewards r_t = −β (log π_old − log π_ref)(y_t), plus the reward model's
    score at the last token (InstructGPT, trl); the return G_t = Σ_{s ≥ t} r_s (γ = 1);
    advantage = G_t whitened over the batch at each position t -> (B, L).
    # orig: PPO and InstructGPT learn a value function and use GAE; here the batch
    # mean at each position is the baseline (no critic)."""
    _positive("beta", beta)
    _same_shape(logp_old=logp_old, logp_ref=logp_ref)
    if score.shape != logp_old.shape[:1] or logp_old.ndim != 2 or len(score) < 2:
        raise ValueError(f"expected score (B,) and log-probs (B, L) with B ≥ 2 (the "
                         f"baseline is a batch mean), got {tuple(score.shape)} and "
                         f"{tuple(logp_old.shape)}")
    rewards = -beta * (logp_old - logp_ref)  # (B, L)
    rewards[:, -1] += score
    returns = rewards.flip(-1).cumsum(-1).flip(-1)  # G_t
    mean, std = returns.mean(0, keepdim=True), returns.std(0, keepdim=True)
    return (returns - mean) / (std + 1e-8)


def ppo_train(policy, ref, reward_fn, prompts, *, iters: int, batch: int,
              beta: float, lr: float, length: int, epochs: int = 2, eps: float = 0.2,
              generator=None, checkpoints=(), evaluate=None, clip: float = 1.0):
    """RLHF's PPO, in place: each iteration samples one completion for each of
    ``batch`` random prompts from π_old (= the policy now), scores it with
    ``reward_fn(ids) -> (B,)`` (the reward model), and takes ``epochs`` Adam steps on
    the clipped surrogate, the whole batch at once (the first step has ρ = 1; the clip
    acts from the second). Returns [{"step", "score", "clip_frac", **evaluate}, ...]."""
    _positive("lr", lr)
    _positive("eps", eps)
    for name, value in (("iters", iters), ("batch", batch), ("length", length),
                        ("epochs", epochs)):
        _count(name, value)
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    dev, log, start = next(policy.parameters()).device, [], prompts.shape[1]
    for it in range(1, iters + 1):
        pick = torch.randperm(prompts.shape[0], generator=generator,
                              device=_where(generator))[:batch].cpu()
        ids = sample_completions(policy, prompts[pick].to(dev), length, generator)
        with torch.no_grad():
            old = sequence_logprobs(policy, ids, start)  # (B, L)
            adv = ppo_advantages(reward_fn(ids).to(dev), old,
                                 sequence_logprobs(ref, ids, start), beta)
        for _ in range(epochs):
            loss, frac = ppo_clip_loss(sequence_logprobs(policy, ids, start), old,
                                       adv, eps)
            _step(policy, optimiser, loss, clip)
        if it in checkpoints:
            row = {"step": it, "score": reward_fn(ids).mean().item(),
                   "clip_frac": frac}
            log.append(row | (evaluate(policy) if evaluate else {}))
    return log


@torch.no_grad()
def evaluate_policy(policy, ref, prompts, bpe, length: int, seed: int,
                    keep_ids: bool = False) -> dict:
    """Sample one completion per prompt with a generator seeded ``seed`` (the same
    random stream at every checkpoint) -> {"reward": mean r*, "reward_se",
    "kl": mean Σ_t KL, "kl_se"}, and the ids if ``keep_ids``."""
    dev = next(policy.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    ids = sample_completions(policy, prompts.to(dev), length, g)
    start, n = prompts.shape[1], prompts.shape[0]
    r, kl = vader_reward(bpe, ids.cpu(), start), token_kl(policy, ref, ids, start)
    out = {"reward": r.mean().item(), "reward_se": (r.std() / n ** 0.5).item(),
           "kl": kl.mean().item(), "kl_se": (kl.std() / n ** 0.5).item()}
    return out | ({"ids": ids.cpu()} if keep_ids else {})


# --- the experiment's pieces: pairs from a pool, the linear reward model ------------

def preference_pairs(pool: dict, tau: float, seed: int, start: int) -> dict:
    """Bradley–Terry labels for the pool's two completions per prompt, drawn with
    ``seed`` -> the pairs dict of ``dpo_train``. pool: "ids" (N, 2, T), "reward"
    (N, 2) true rewards, "ref_logp" (N, 2) π_ref sequence log-probs."""
    ids, r, lp = pool["ids"].long(), pool["reward"], pool["ref_logp"]
    g = torch.Generator().manual_seed(seed)
    first = bt_labels(r[:, 0], r[:, 1], tau, g)  # (N,) y1 ≻ y2
    w, lo = (~first).long(), first.long()  # which of the two won / lost
    take = torch.arange(ids.shape[0])
    return {"chosen": ids[take, w], "rejected": ids[take, lo],
            "ref_chosen": lp[take, w], "ref_rejected": lp[take, lo], "start": start}


def frequent_tokens(pool: dict, start: int, vocab: int, min_count: int):
    """The token ids seen at least ``min_count`` times in the pool's completions: the
    reward model's features."""
    counts = bag_of_tokens(pool["ids"].long().flatten(0, 1), start, vocab).sum(0)
    return torch.nonzero(counts >= min_count)[:, 0]


def reward_model(pairs: dict, keep, vocab: int, l2: float):
    """The linear Bradley–Terry reward model r̂(y) = w · counts(y)[keep], fitted on
    the pairs -> w (len(keep),) numpy float64."""
    start = pairs["start"]
    diff = (bag_of_tokens(pairs["chosen"], start, vocab, keep)
            - bag_of_tokens(pairs["rejected"], start, vocab, keep))  # (n, d)
    return fit_bradley_terry(diff.numpy(), l2)


def rm_scorer(keep, w, start: int, vocab: int):
    """ids (B, T) -> r̂ (B,) float32 on the ids' device: the reward model as a
    function, for ``ppo_train``."""
    wt = torch.from_numpy(np.asarray(w))

    def score(ids):
        feats = bag_of_tokens(ids.cpu(), start, vocab, keep)
        return (feats @ wt).float().to(ids.device)
    return score


def rm_quality(pool: dict, score) -> dict:
    """The reward model against the truth on the eval pool ("eval_ids" (M, 2, T),
    "eval_reward" (M, 2)): Spearman over all completions (average ranks: many r* are
    0), over those with r* ≠ 0, and the accuracy on the pairs whose r* differ."""
    from scipy.stats import spearmanr

    ids, r = pool["eval_ids"].long(), pool["eval_reward"]
    rhat = score(ids.flatten(0, 1)).double().view(-1, 2)
    flat, nz = r.flatten(), r.flatten() != 0
    untied = r[:, 0] != r[:, 1]
    agree = ((rhat[:, 0] - rhat[:, 1]) * (r[:, 0] - r[:, 1]) > 0)[untied]
    return {"spearman": float(spearmanr(rhat.flatten(), flat).statistic),
            "spearman_nonzero": float(spearmanr(rhat.flatten()[nz],
                                                flat[nz]).statistic),
            "pair_accuracy": agree.double().mean().item()}
