"""Gumbel-Softmax: the sampler against F.gumbel_softmax, the Gumbel-max trick against
the categorical (chi-square), the density against RelaxedOneHotCategorical, the VAE's
estimators against exact gradients by enumeration, and the bad-input errors."""
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import RelaxedOneHotCategorical
from torch.nn import functional as F

from mlf import gumbel as gb


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=dtype)


# --- the sampler ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (2,), (3, 7), (2, 4, 6)])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
def test_equals_torch_gumbel_softmax_given_the_same_noise(shape, hard, tau):
    logits = randn(*shape, seed=1).requires_grad_()
    weights = randn(*shape, seed=2)  # a downstream loss, to compare gradients
    torch.manual_seed(7)
    ours = gb.gumbel_softmax(logits, tau, hard=hard)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), logits)
    torch.manual_seed(7)
    theirs = F.gumbel_softmax(logits, tau, hard=hard)
    (g_theirs,) = torch.autograd.grad((theirs * weights).sum(), logits)
    assert torch.equal(ours, theirs)
    assert torch.equal(g_ours, g_theirs)


def test_equals_torch_in_float64_and_with_a_generator():
    logits = randn(4, 5, seed=3, dtype=torch.float64)
    ours = gb.gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(3)
    assert torch.equal(ours, F.gumbel_softmax(logits, 0.5))


def test_straight_through_is_one_hot_forward_and_soft_backward():
    logits = randn(6, 4, seed=4).requires_grad_()
    g = gb.gumbel_noise(logits.detach(), torch.Generator().manual_seed(0))
    y = gb.relax(logits, g, 0.7)
    z = gb.straight_through(y)
    assert torch.equal(z.detach().sum(-1), torch.ones(6))
    assert torch.equal(z.detach().argmax(-1), y.detach().argmax(-1))
    w = randn(6, 4, seed=5)
    (gz,) = torch.autograd.grad((z * w).sum(), logits, retain_graph=True)
    (gy,) = torch.autograd.grad((y * w).sum(), logits)
    assert torch.allclose(gz, gy)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=8), st.floats(-50, 50),
       st.floats(0.05, 20))
def test_relaxed_sample_is_on_the_simplex_and_shift_invariant(values, shift, tau):
    logits = torch.tensor(values, dtype=torch.float64)
    g = gb.gumbel_noise(logits, torch.Generator().manual_seed(0))
    y = gb.relax(logits, g, tau)
    assert bool((y >= 0).all()) and abs(y.sum().item() - 1) < 1e-12
    assert torch.allclose(gb.relax(logits + shift, g, tau), y, atol=1e-10)


@pytest.mark.parametrize("tau", [1.0, 0.1, 1e-2, 1e-3])
def test_relaxed_sample_is_within_its_bound_of_the_gumbel_max_sample(tau):
    # with s = log pi + g and i = argmax s: 1 - y_i = y_i sum_{j != i} exp((s_j - s_i)
    # / tau) <= sum_{j != i} exp((s_j - s_i) / tau), which -> 0 as tau -> 0
    logits = randn(200, 5, seed=6, dtype=torch.float64)
    g = gb.gumbel_noise(logits, torch.Generator().manual_seed(1))
    s = logits + g
    i = s.argmax(-1, keepdim=True)
    y = gb.relax(logits, g, tau)
    assert torch.equal(y.argmax(-1, keepdim=True), i)
    bound = ((s - s.gather(-1, i)) / tau).exp().sum(-1) - 1  # the j = i term is 1
    assert bool((1 - y.gather(-1, i).squeeze(-1) <= bound + 1e-12).all())


def test_ties_and_impossible_classes_as_torch():
    # a tie in y: 1e30 + g rounds to 1e30, so y = (0, 1/2, 1/2); both take the first
    logits = torch.tensor([[0.0, 1e30, 1e30], [0.0, float("-inf"), 1.0]])
    for hard in (False, True):
        torch.manual_seed(0)
        ours = gb.gumbel_softmax(logits, 1.0, hard=hard)
        torch.manual_seed(0)
        assert torch.equal(ours, F.gumbel_softmax(logits, 1.0, hard=hard))
    assert ours[0].tolist() == [0.0, 1.0, 0.0]
    assert ours[1, 1] == 0  # a class of probability 0 is never drawn


def test_gumbel_max_matches_the_categorical():
    probs = torch.tensor([0.4, 0.25, 0.2, 0.1, 0.05])
    z = gb.gumbel_max(probs.log().expand(50_000, 5), torch.Generator().manual_seed(0))
    _, p = gb.chi_square(z.sum(0).long(), probs)
    assert p > 1e-4  # a true sampler fails this one time in 10,000
    # a wrong sampler (Gaussian noise instead of Gumbel) must fail it
    noisy = probs.log() + torch.randn(50_000, 5,
                                      generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(noisy.argmax(-1), minlength=5)
    assert gb.chi_square(counts, probs)[1] < 1e-12


@pytest.mark.parametrize("counts, probs", [
    ([18, 25, 31], [0.2, 0.35, 0.45]),  # k - 1 = 2: P(X > x) = exp(-x/2)
    ([18, 25, 31, 26, 40], [0.1, 0.2, 0.3, 0.2, 0.2]),  # 4: exp(-x/2) (1 + x/2)
])
def test_chi_square_against_closed_forms(counts, probs):
    counts, probs = torch.tensor(counts), torch.tensor(probs, dtype=torch.float64)
    expected = counts.sum() * probs
    x = ((counts - expected) ** 2 / expected).sum().item()
    tail = math.exp(-x / 2) * (1 if len(counts) == 3 else 1 + x / 2)
    assert gb.chi_square(counts, probs) == pytest.approx((x, tail), rel=1e-12)


# --- the density ----------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 5.0])
def test_log_density_equals_relaxed_one_hot_categorical(k, tau):
    logits = randn(k, seed=k, dtype=torch.float64)
    ref = RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64),
                                   logits=logits)
    torch.manual_seed(k)
    y = ref.sample((200,)).clamp_min(1e-300)
    y = y / y.sum(-1, keepdim=True)
    ours = gb.log_density(y, tau, logits=logits)
    assert torch.allclose(ours, ref.log_prob(y), rtol=1e-9, atol=1e-8)
    probs = logits.softmax(-1)
    assert torch.allclose(gb.log_density(y, tau, probs=probs), ours, atol=1e-8)


def test_log_density_near_a_vertex():
    logits = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    for eps in (1e-3, 1e-8, 1e-15, 1e-100):
        y = torch.tensor([eps, 1 - 2 * eps, eps], dtype=torch.float64)
        ref = RelaxedOneHotCategorical(torch.tensor(0.5, dtype=torch.float64),
                                       logits=logits).log_prob(y)
        ours = gb.log_density(y, 0.5, logits=logits)
        assert torch.isfinite(ours)
        assert torch.allclose(ours, ref, rtol=1e-9)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_density_integrates_to_one_for_two_classes(tau):
    # y = (s, 1 - s) with s = sigmoid(u): p(u) = p(y) dy/du = p(y) s (1 - s)
    u = torch.linspace(-80, 80, 400_001, dtype=torch.float64)
    y = torch.stack([torch.sigmoid(u), torch.sigmoid(-u)], -1)  # 1 - s, accurately
    logits = torch.tensor([0.7, -0.4], dtype=torch.float64)
    log_p = gb.log_density(y, tau, logits=logits) + F.logsigmoid(u) + F.logsigmoid(-u)
    assert torch.trapezoid(log_p.exp(), u).item() == pytest.approx(1, abs=1e-6)


# --- the VAE --------------------------------------------------------------------------

def tiny_model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = gb.CategoricalVAE(n_pixels=4, n_latent=2, n_classes=3, hidden=8)
    return model.double()


def exact_objective(model, x):
    """E_q[-log p(x|z)] + KL, and -log p(x), by enumerating all K^N latents."""
    logits = model.encode(x)  # (B, N, K)
    log_q = logits.log_softmax(-1)
    terms, joint = [], []
    for combo in itertools.product(range(model.k), repeat=model.n):
        z = F.one_hot(torch.tensor(combo), model.k).double().expand(len(x), -1, -1)
        lq = (z * log_q).sum((-1, -2))
        nll = model.neg_log_lik(x, z)
        terms.append(lq.exp() * nll)
        joint.append(-nll - model.n * math.log(model.k))
    neg_elbo = torch.stack(terms).sum(0) + model.kl(logits)
    return neg_elbo.mean(), -torch.stack(joint).logsumexp(0)


def test_score_function_is_unbiased_and_gumbel_softmax_biased_at_high_tau():
    model = tiny_model()
    x = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=torch.float64)
    exact, _ = exact_objective(model, x)
    params = list(model.encoder.parameters())
    want = torch.cat([g.flatten() for g in torch.autograd.grad(exact, params)])
    many = x.repeat(100_000, 1)  # the batch mean averages 100,000 estimates
    gen = torch.Generator().manual_seed(0)

    def error(est, tau=1.0, base=0.0):  # |mean estimate - exact| / |exact|
        loss, _ = gb.surrogate_loss(model, many, est, tau, base, gen)
        got = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
        return ((got - want).norm() / want.norm()).item()

    # measured: 0.088 and 0.007; the plain estimator is noisy even over 100,000 draws
    assert error("score-function") < 0.2
    assert error("score-function+baseline", base=3.0) < 0.03
    # measured: 0.19 at tau = 5 and 0.003 at tau = 0.1: the bias vanishes as tau -> 0
    assert error("gumbel-softmax", tau=5.0) > 0.1
    assert error("gumbel-softmax", tau=0.1) < 0.03


def test_bounds_are_ordered():
    model = tiny_model()
    x = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=torch.float64)
    exact_elbo, neg_log_px = exact_objective(model, x)
    neg_elbo, neg_iw = gb.evaluate(model, x, 4000, torch.Generator().manual_seed(0))
    assert neg_log_px.mean().item() < exact_elbo.item()
    assert neg_elbo == pytest.approx(exact_elbo.item(), abs=0.02)
    assert neg_iw == pytest.approx(neg_log_px.mean().item(), abs=0.01)


def test_independent_pixels():
    train = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    test = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # pixel 0 on in every training image: clamped to 1 - 1e-3; pixel 1 half the time
    want = -(math.log(1 - 1e-3) + math.log(1e-3)) / 2 - 2 * math.log(0.5) / 2
    assert gb.independent_pixels(train, test) == pytest.approx(want, rel=1e-5)  # float32


def test_binarised_digits():
    train, test = gb.binarised_digits()
    assert train.shape == (1500, 64) and test.shape == (297, 64)
    assert set(torch.cat([train, test]).unique().tolist()) == {0.0, 1.0}
    again, _ = gb.binarised_digits()
    assert torch.equal(train, again)


def test_train_vae_runs_and_records():
    train, test = gb.binarised_digits()
    model, hist = gb.train_vae("score-function+baseline", train[:200], test[:20], 20,
                               eval_every=10, bar=False)
    assert hist["step"] == [0, 10, 20] and len(hist["test_neg_elbo"]) == 3
    again, _ = gb.train_vae("score-function+baseline", train[:200], test[:20], 20,
                            eval_every=10, bar=False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(),
                                                  again.parameters()))


def test_temperature_schedule():
    assert gb.temperature(0, 1e-3, 100) == 1.0
    assert gb.temperature(199, 1e-3, 100) == pytest.approx(math.exp(-0.1))
    assert gb.temperature(10_000, 1e-3, 100) == 0.5


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0, -1.0, float("nan"), float("inf")])
def test_rejects_a_non_positive_temperature(tau):
    with pytest.raises(ValueError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), tau)
    with pytest.raises(ValueError, match="tau"):
        gb.log_density(torch.full((3,), 1 / 3), tau, logits=torch.zeros(3))


@pytest.mark.parametrize("tau", [True, "1", None])
def test_rejects_a_temperature_that_is_not_a_number(tau):
    with pytest.raises(TypeError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), tau)


def test_rejects_bad_logits():
    with pytest.raises(TypeError, match="floating point"):
        gb.gumbel_softmax(torch.tensor([1, 2, 3]), 1.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        gb.gumbel_max([0.1, 0.2])
    for shape in [(), (4, 1)]:
        with pytest.raises(ValueError, match="k >= 2"):
            gb.gumbel_softmax(torch.zeros(shape), 1.0)
    with pytest.raises(ValueError, match="shape"):
        gb.relax(torch.zeros(2, 3), torch.zeros(3), 1.0)
    with pytest.raises(TypeError, match="noise g"):
        gb.relax(torch.zeros(3), [0.0, 0.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="k >= 2"):
        gb.straight_through(torch.ones(4, 1))
    with pytest.raises(TypeError, match="hard"):
        gb.gumbel_softmax(torch.zeros(3), 1.0, hard=1)


def test_rejects_probabilities_and_points_off_the_simplex():
    y = torch.tensor([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        gb.log_density(y, 1.0, probs=torch.tensor([0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="positive"):
        gb.log_density(y, 1.0, probs=torch.tensor([0.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        gb.log_density(torch.tensor([0.2, 0.3, 0.6]), 1.0, logits=torch.zeros(3))
    with pytest.raises(ValueError, match="k = 3"):
        gb.log_density(torch.tensor([0.5, 0.5]), 1.0, logits=torch.zeros(3))
    with pytest.raises(ValueError, match="exactly one"):
        gb.log_density(y, 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        gb.log_density(y, 1.0, logits=torch.zeros(3), probs=y)
    with pytest.raises(TypeError, match="floating-point"):
        gb.log_density(torch.tensor([0, 1, 0]), 1.0, logits=torch.zeros(3))
    with pytest.raises(ValueError, match="sum to 1"):
        gb.chi_square(torch.tensor([10, 10]), torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="at least 5"):
        gb.chi_square(torch.tensor([3, 1]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="integers"):
        gb.chi_square(torch.tensor([3.0, 1.0]), torch.tensor([0.5, 0.5]))


def test_rejects_bad_vae_settings():
    model = gb.CategoricalVAE()
    x = torch.zeros(2, 64)
    with pytest.raises(ValueError, match="estimator"):
        gb.surrogate_loss(model, x, "reinforce")
    with pytest.raises(ValueError, match="no baseline"):
        gb.surrogate_loss(model, x, "score-function", baseline=1.0)
    with pytest.raises(ValueError, match="samples"):
        gb.evaluate(model, x, 0)
    with pytest.raises(ValueError, match="repeats"):
        gb.encoder_gradients(model, x, "gumbel-softmax", 1)
    with pytest.raises(ValueError, match="n_classes"):
        gb.CategoricalVAE(n_classes=1)
    with pytest.raises(ValueError, match="threshold"):
        gb.binarised_digits(0)
    with pytest.raises(ValueError, match="every"):
        gb.temperature(3, 1e-3, 0)
    with pytest.raises(ValueError, match="non-empty"):
        gb.independent_pixels(torch.zeros(0, 64), torch.zeros(2, 64))
    with pytest.raises(ValueError, match="as many pixels"):
        gb.independent_pixels(torch.zeros(2, 64), torch.zeros(2, 16))
