"""RLHF and DPO: the Bradley–Terry fit against scikit-learn, DPO's loss and closed
form, PPO's clipped objective against a hand table, log-probs and KL, bad input."""
import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import rlhf
from mlf.decoding import continuation_logprobs
from mlf.gpt import GPT, GPTConfig
from sklearn.linear_model import LogisticRegression

SMALL = {"vocab_size": 50, "context": 16, "d_model": 32, "n_heads": 4, "n_layers": 1,
         "d_ff": 64}


def small(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**SMALL)).eval()


def ids(b=4, t=10, seed=0):
    return torch.randint(0, 50, (b, t), generator=torch.Generator().manual_seed(seed))


# --- the Bradley–Terry reward model against logistic regression -----------------------

def sklearn_bt(diff, l2, flip_seed=0):
    """LogisticRegression on the differences, a random half flipped to label 0 (the
    objective is unchanged: log σ(w·d) = log(1 − σ(w·(−d))))."""
    flip = np.random.default_rng(flip_seed).random(diff.shape[0]) < 0.5
    flip[0], flip[-1] = True, False  # sklearn needs both classes
    x = np.where(flip[:, None], -diff, diff)
    y = (~flip).astype(int)
    lr = LogisticRegression(fit_intercept=False, C=1.0 / l2, solver="newton-cholesky",
                            tol=1e-12, max_iter=1000)
    return lr.fit(x, y).coef_[0]


def counts_diff(n=300, d=12, seed=0):
    g = np.random.default_rng(seed)
    w_true = g.normal(size=d)
    a, b = g.poisson(1.0, (n, d)), g.poisson(1.0, (n, d))
    p = 1 / (1 + np.exp(-(a - b) @ w_true))
    first = g.random(n) < p
    return np.where(first[:, None], a - b, b - a).astype(float)


@pytest.mark.parametrize("l2", [0.1, 1.0, 10.0])
def test_bradley_terry_equals_sklearn(l2):
    diff = counts_diff()
    w = rlhf.fit_bradley_terry(diff, l2)
    assert np.allclose(w, sklearn_bt(diff, l2), atol=1e-6 * (1 + np.abs(w).max()))


def test_bradley_terry_edges_equal_sklearn():
    diff = counts_diff(n=200, d=8, seed=1)
    diff[:, 0] = np.abs(diff[:, 0]) + 1  # a token only in winners: separable, L2 holds
    cases = {"separable": diff,
             "duplicated": np.vstack([diff, diff[:50]]),
             "ties (zero rows)": np.vstack([diff, np.zeros((40, 8))]),
             "two pairs": diff[:2],
             "d > n": counts_diff(n=10, d=30, seed=2)}
    for name, x in cases.items():
        w = rlhf.fit_bradley_terry(x, 1.0)
        ref = sklearn_bt(x, 1.0, flip_seed=3)
        assert np.allclose(w, ref, atol=1e-6 * (1 + np.abs(w).max())), name


def test_bradley_terry_both_orientations_need_half_c():
    """The trap: adding every pair in both orientations doubles the data term."""
    diff = counts_diff()
    w = rlhf.fit_bradley_terry(diff, 1.0)
    x = np.vstack([diff, -diff])
    y = np.r_[np.ones(len(diff)), np.zeros(len(diff))]
    fit = LogisticRegression(fit_intercept=False, C=0.5, solver="newton-cholesky",
                             tol=1e-12).fit(x, y)
    assert np.allclose(w, fit.coef_[0], atol=1e-6)
    wrong = LogisticRegression(fit_intercept=False, C=1.0, solver="newton-cholesky",
                               tol=1e-12).fit(x, y)
    assert not np.allclose(w, wrong.coef_[0], atol=1e-3)


def test_bradley_terry_bad_input():
    with pytest.raises(ValueError, match="l2"):
        rlhf.fit_bradley_terry(np.ones((3, 2)), 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        rlhf.fit_bradley_terry(np.zeros((0, 2)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        rlhf.fit_bradley_terry(np.array([[np.nan, 1.0]]), 1.0)
    with pytest.raises(ValueError, match="one shape"):
        rlhf.bt_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="non-empty"):
        rlhf.bt_loss(torch.zeros(0), torch.zeros(0))


def test_bt_labels_follow_sigmoid_and_reject_bad_tau():
    r1, r2 = torch.full((20000,), 0.3), torch.zeros(20000)
    first = rlhf.bt_labels(r1, r2, 0.25, torch.Generator().manual_seed(0))
    p = torch.sigmoid(torch.tensor(0.3 / 0.25)).item()
    assert abs(first.double().mean().item() - p) < 4 * (p * (1 - p) / 20000) ** 0.5
    for tau in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="tau"):
            rlhf.bt_labels(r1, r2, tau)
    with pytest.raises(ValueError, match="one shape"):
        rlhf.bt_labels(r1, r2[:5], 0.25)


def test_bag_of_tokens_counts_the_completion_only():
    x = torch.tensor([[1, 2, 3, 3, 4], [0, 0, 1, 1, 1]])
    bag = rlhf.bag_of_tokens(x, 2, 6)
    assert bag[0].tolist() == [0, 0, 0, 2, 1, 0] and bag[1].tolist() == [0, 3, 0, 0,
                                                                           0, 0]
    assert rlhf.bag_of_tokens(x, 2, 6, keep=torch.tensor([3, 1])).tolist() == \
        [[2, 0], [0, 3]]


# --- DPO ------------------------------------------------------------------------------

finite = st.floats(-20, 20, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(finite, finite, finite, finite, st.floats(0.01, 5), finite)
def test_dpo_loss_laws(pw, pl, rw, rl, beta, c):
    t = [torch.tensor([v], dtype=torch.float64) for v in (pw, pl, rw, rl)]
    loss = rlhf.dpo_loss(*t, beta)[0]
    # the same constant added to both policy (or both reference) log-probs: no change
    shifted = rlhf.dpo_loss(t[0] + c, t[1] + c, t[2], t[3], beta)[0]
    assert torch.allclose(loss, shifted, atol=1e-9)
    shifted = rlhf.dpo_loss(t[0], t[1], t[2] + c, t[3] + c, beta)[0]
    assert torch.allclose(loss, shifted, atol=1e-9)
    # swapping winner and loser: loss(w, l) − loss(l, w) = −β · logit
    swapped = rlhf.dpo_loss(t[1], t[0], t[3], t[2], beta)[0]
    logit = (pw - pl) - (rw - rl)
    assert torch.allclose(loss - swapped, torch.tensor([-beta * logit],
                                                       dtype=torch.float64),
                          atol=1e-7 * (1 + abs(beta * logit)))


def test_dpo_loss_small_beta_is_log2_and_rewards():
    t = [torch.tensor([v]) for v in (-3.0, -5.0, -4.0, -4.5)]
    log2 = torch.tensor([float(np.log(2.0))])
    assert torch.allclose(rlhf.dpo_loss(*t, 1e-8)[0], log2)
    _, r_w, r_l = rlhf.dpo_loss(*t, 0.5)
    assert torch.allclose(r_w, torch.tensor([0.5])) and \
        torch.allclose(r_l, torch.tensor([-0.25]))


def test_dpo_gradient_identity():
    """∇L = −β σ(r̂_l − r̂_w) (∇ log π(y_w) − ∇ log π(y_l)), DPO section 4."""
    model, ref = small(0), small(1)
    w, lo, start, beta = ids(1, 10, 1), ids(1, 10, 2), 4, 0.3
    lo[:, :start] = w[:, :start]
    with torch.no_grad():
        ref_w = rlhf.sequence_logprobs(ref, w, start).sum(-1)
        ref_l = rlhf.sequence_logprobs(ref, lo, start).sum(-1)
    params = list(model.parameters())
    pi_w = rlhf.sequence_logprobs(model, w, start).sum(-1)
    pi_l = rlhf.sequence_logprobs(model, lo, start).sum(-1)
    loss, r_w, r_l = rlhf.dpo_loss(pi_w, pi_l, ref_w, ref_l, beta)
    g = torch.autograd.grad(loss.sum(), params, retain_graph=True)
    gw = torch.autograd.grad(pi_w.sum(), params, retain_graph=True)
    gl = torch.autograd.grad(pi_l.sum(), params)
    scale = -beta * torch.sigmoid(r_l - r_w)
    for a, b, c in zip(g, gw, gl):
        assert torch.allclose(a, scale * (b - c), atol=1e-6)


def test_dpo_loss_bad_input():
    x = torch.zeros(3)
    for beta in (0, -0.1, float("inf"), "1"):
        with pytest.raises(ValueError, match="beta"):
            rlhf.dpo_loss(x, x, x, x, beta)
    with pytest.raises(ValueError, match="one shape"):
        rlhf.dpo_loss(x, torch.zeros(2), x, x, 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        e = torch.zeros(0)
        rlhf.dpo_loss(e, e, e, e, 0.1)


# --- the closed form on a bandit -----------------------------------------------------

@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_bandit_closed_form_three_ways(beta):
    g = torch.Generator().manual_seed(0)
    k = 8
    ref = torch.softmax(torch.randn(k, generator=g, dtype=torch.float64), 0)
    r = torch.rand(k, generator=g, dtype=torch.float64)
    star = rlhf.kl_regularised_optimum(ref, r, beta)
    # (iii) β log π*/π_ref − r is one constant (−β log Z) for every action
    gap = beta * (star / ref).log() - r
    assert torch.allclose(gap, gap.mean().expand(k), atol=1e-12)
    # (i) direct maximisation of E_π[r] − β KL(π‖π_ref) over logits
    z = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], lr=1, max_iter=500, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        p = torch.softmax(z, 0)
        loss = -(p @ r - beta * (p * (p / ref).log()).sum())
        loss.backward()
        return loss
    opt.step(objective)
    assert torch.allclose(torch.softmax(z, 0), star, atol=1e-6)
    # (ii) the population DPO loss: all pairs, weight π_ref(y1) π_ref(y2), soft
    # labels σ(r1 − r2) (Bradley–Terry with reward r); its minimiser is π* again
    u = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u], lr=1, max_iter=500, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")
    weight = ref[:, None] * ref[None, :]
    label = torch.sigmoid(r[:, None] - r[None, :])  # P(y1 ≻ y2), BT with reward r

    def population_dpo():
        opt.zero_grad()
        logpi = torch.log_softmax(u, 0)
        h = beta * ((logpi - ref.log())[:, None] - (logpi - ref.log())[None, :])
        loss = -(weight * (label * torch.nn.functional.logsigmoid(h)
                           + (1 - label) * torch.nn.functional.logsigmoid(-h))).sum()
        loss.backward()
        return loss
    opt.step(population_dpo)
    assert torch.allclose(torch.softmax(u, 0), star, atol=1e-6)


def test_optimum_bad_input():
    p = torch.full((3,), 1 / 3)
    with pytest.raises(ValueError, match="beta"):
        rlhf.kl_regularised_optimum(p, torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="one shape"):
        rlhf.kl_regularised_optimum(p, torch.zeros(4), 1.0)


# --- PPO's clipped objective --------------------------------------------------------

# (ρ, A) -> min(ρA, clip(ρ, 0.8, 1.2)A) and whether the gradient is zero (clip active)
HAND = [(0.5, 1.0, 0.5, False), (1.1, 1.0, 1.1, False), (1.5, 1.0, 1.2, True),
        (0.5, -1.0, -0.8, True), (0.9, -1.0, -0.9, False), (1.5, -1.0, -1.5, False)]


@pytest.mark.parametrize("rho,adv,want,clipped", HAND)
def test_ppo_clip_hand_table(rho, adv, want, clipped):
    new = torch.tensor([np.log(rho)], dtype=torch.float64, requires_grad=True)
    old = torch.zeros(1, dtype=torch.float64)
    loss, frac = rlhf.ppo_clip_loss(new, old, torch.tensor([adv],
                                                           dtype=torch.float64), 0.2)
    assert abs(-loss.item() - want) < 1e-12 and frac == float(clipped)
    loss.backward()
    assert (new.grad.item() == 0.0) == clipped
    # trl's form: max(−Aρ, −A clip(ρ)) is the same number
    assert abs(loss.item() - max(-adv * rho, -adv * min(max(rho, 0.8), 1.2))) < 1e-12


def test_ppo_clip_at_ratio_one_is_reinforce():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(5, 7, generator=g, requires_grad=True)
    adv = torch.randn(5, 7, generator=g)
    loss, _ = rlhf.ppo_clip_loss(logp, logp.detach(), adv)
    (grad,) = torch.autograd.grad(loss, logp)
    (reinforce,) = torch.autograd.grad(-(logp * adv).mean(), logp)
    assert torch.allclose(grad, reinforce)


def test_ppo_bad_input():
    x = torch.zeros(2, 3)
    for eps in (0, -0.2, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            rlhf.ppo_clip_loss(x, x, x, eps)
    with pytest.raises(ValueError, match="one shape"):
        rlhf.ppo_clip_loss(x, torch.zeros(2, 4), x)
    with pytest.raises(ValueError, match="non-empty"):
        e = torch.zeros(0, 3)
        rlhf.ppo_clip_loss(e, e, e)


def test_ppo_advantages_whitened_per_position():
    g = torch.Generator().manual_seed(0)
    old, ref = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    adv = rlhf.ppo_advantages(torch.randn(8, generator=g), old, ref, 0.1)
    assert torch.allclose(adv.mean(0), torch.zeros(5), atol=1e-6)
    assert torch.allclose(adv.std(0), torch.ones(5), atol=1e-5)


# --- log-probs, KL -------------------------------------------------------------------

def test_sequence_logprobs_match_decoding_and_carry_gradients():
    model, x = small(), ids()
    ours = rlhf.sequence_logprobs(model, x, 4)
    assert torch.allclose(ours, continuation_logprobs(model, x, 4), atol=1e-6)
    ours.sum().backward()
    assert model.embed.weight.grad is not None


def test_token_kl_zero_for_same_model_and_matches_monte_carlo():
    policy, ref = small(0), small(1)
    x = ids(1, 3)
    assert torch.allclose(rlhf.token_kl(policy, copy.deepcopy(policy), x, 3 - 1),
                          torch.zeros(1), atol=1e-6)
    prompts = ids(2000, 3, seed=5)
    y = rlhf.sample_completions(policy, prompts, 6, torch.Generator().manual_seed(0))
    exact = rlhf.token_kl(policy, ref, y, 3)
    with torch.no_grad():
        mc = (rlhf.sequence_logprobs(policy, y, 3)
              - rlhf.sequence_logprobs(ref, y, 3)).sum(-1)
    se = (mc.var() / len(mc)).sqrt()
    assert abs(exact.mean() - mc.mean()) < 4 * se


def test_ids_bad_input():
    model = small()
    with pytest.raises(ValueError, match="start"):
        rlhf.sequence_logprobs(model, ids(), 0)
    with pytest.raises(ValueError, match="start"):
        rlhf.token_kl(model, model, ids(), 10)
    with pytest.raises(ValueError, match="torch.long"):
        rlhf.bag_of_tokens(ids().float(), 2, 50)
    with pytest.raises(ValueError, match="at least one"):
        rlhf.sequence_logprobs(model, torch.zeros(0, 5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="context"):  # the model's own check
        rlhf.sample_completions(model, ids(2, 10), 10)


# --- training loops: they move the policy, and reject bad pairs ---------------------

def pairs_for(model, n=8, start=3):
    w, lo = ids(n, 8, 1), ids(n, 8, 2)
    lo[:, :start] = w[:, :start]
    with torch.no_grad():
        return {"chosen": w, "rejected": lo, "start": start,
                "ref_chosen": rlhf.sequence_logprobs(model, w, start).sum(-1),
                "ref_rejected": rlhf.sequence_logprobs(model, lo, start).sum(-1)}


def test_dpo_train_raises_the_margin():
    ref = small()
    pairs = pairs_for(ref)
    policy = copy.deepcopy(ref)
    log = rlhf.dpo_train(policy, pairs, steps=20, batch=8, beta=0.5, lr=1e-2,
                         generator=torch.Generator().manual_seed(0),
                         checkpoints=[1, 20])
    assert log[0]["loss"] == pytest.approx(np.log(2), abs=1e-6)  # π = π_ref at step 1
    assert log[-1]["loss"] < 0.5 and log[-1]["accuracy"] == 1.0


def test_dpo_train_rejects_bad_pairs():
    ref = small()
    pairs = pairs_for(ref)
    bad = pairs | {"rejected": pairs["rejected"][:, :-1]}
    with pytest.raises(ValueError, match="one shape"):
        rlhf.dpo_train(ref, bad, steps=1, batch=2, beta=0.1, lr=1e-3)
    other = pairs["rejected"].clone()
    other[:, 0] = (other[:, 0] + 1) % 50
    with pytest.raises(ValueError, match="prompt"):
        rlhf.dpo_train(ref, pairs | {"rejected": other}, steps=1, batch=2, beta=0.1,
                       lr=1e-3)
    empty = {k: (v[:0] if torch.is_tensor(v) else v) for k, v in pairs.items()}
    with pytest.raises(ValueError, match="n ≥ 1"):
        rlhf.dpo_train(ref, empty, steps=1, batch=2, beta=0.1, lr=1e-3)
    with pytest.raises(ValueError, match="beta"):
        rlhf.dpo_train(ref, pairs, steps=1, batch=2, beta=0.0, lr=1e-3)


def test_ppo_train_raises_a_token_reward():
    """Reward: how often token 7 appears. PPO must make it more frequent."""
    ref = small().requires_grad_(False)
    policy = copy.deepcopy(ref).requires_grad_(True)
    prompts = ids(64, 3, seed=9)

    def reward(x):
        return (x[:, 3:] == 7).float().sum(-1)
    log = rlhf.ppo_train(policy, ref, reward, prompts, iters=15, batch=32, beta=0.01,
                         lr=1e-2, length=6, generator=torch.Generator().manual_seed(0),
                         checkpoints=[1, 15])
    assert log[-1]["score"] > log[0]["score"] + 0.5
    with pytest.raises(ValueError, match="eps"):
        rlhf.ppo_train(policy, ref, reward, prompts, iters=1, batch=2, beta=0.1,
                       lr=1e-3, length=2, eps=0)


def test_training_loops_reject_bad_counts():
    ref = small().requires_grad_(False)
    pairs, prompts = pairs_for(ref), ids(8, 3, seed=9)
    with pytest.raises(ValueError, match="batch"):
        rlhf.dpo_train(ref, pairs, steps=1, batch=0, beta=0.1, lr=1e-3)
    with pytest.raises(ValueError, match="steps"):
        rlhf.dpo_train(ref, pairs, steps=0, batch=2, beta=0.1, lr=1e-3)
    for bad in ({"epochs": 0}, {"batch": 0}, {"iters": 1.5}):
        kw = {"iters": 1, "batch": 2, "length": 2, "epochs": 1} | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            rlhf.ppo_train(ref, ref, lambda x: x[:, 0].float(), prompts, beta=0.1,
                           lr=1e-3, **kw)
    with pytest.raises(ValueError, match="B ≥ 2"):  # one sample: no batch baseline
        rlhf.ppo_advantages(torch.zeros(1), torch.zeros(1, 4), torch.zeros(1, 4), 0.1)
    with pytest.raises(ValueError, match="score"):
        rlhf.ppo_advantages(torch.zeros(3), torch.zeros(2, 4), torch.zeros(2, 4), 0.1)
