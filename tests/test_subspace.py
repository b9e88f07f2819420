"""Training in a random subspace: the Walsh-Hadamard transform against scipy, Fastfood
against its explicit matrix, the reparametrised model against the plain one, d90, and
bad input."""
import math

import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf.gpt import GPT, GPTConfig
from mlf.subspace import (
    DenseProjection,
    Fastfood,
    SequenceClassifier,
    Subspace,
    d90,
    fwht,
    word_order_windows,
)
from torch import nn

SMALL = {"vocab_size": 50, "context": 16, "d_model": 16, "n_heads": 2, "n_layers": 1,
         "d_ff": 32}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(0, 15), batch=st.integers(1, 3), seed=st.integers(0, 99))
def test_fwht_equals_scipy_hadamard(k, batch, seed):
    n = 2 ** k
    x = torch.randn(batch, n, generator=gen(seed), dtype=torch.float64)
    if n <= 1024:  # the explicit matrix
        H = torch.tensor(scipy.linalg.hadamard(n), dtype=torch.float64)
        assert torch.allclose(fwht(x), x @ H.T, atol=1e-9)
    # H H = n I: the transform is its own inverse up to n (any length, incl. > 128^2)
    assert torch.allclose(fwht(fwht(x)) / n, x, atol=1e-9)


def test_fwht_large_length_against_the_butterfly():
    x = torch.randn(2 ** 17, generator=gen(), dtype=torch.float64)
    y, h = x.clone(), 1
    while h < len(y):  # the textbook butterfly, log2(n) passes
        y = y.view(-1, 2, h)
        y = torch.stack([y[:, 0] + y[:, 1], y[:, 0] - y[:, 1]], 1).reshape(-1)
        h *= 2
    assert torch.allclose(fwht(x), y, atol=1e-8)


@pytest.mark.parametrize("d,D", [(1, 1), (1, 5), (3, 8), (7, 100), (64, 64), (5, 257)])
def test_fastfood_equals_its_explicit_matrix(d, D):
    ff = Fastfood(d, D, gen(d + D)).double()
    L = ff.L
    assert L >= D and L & (L - 1) == 0 and L < 2 * max(D, 1) + 1
    H = torch.tensor(scipy.linalg.hadamard(L), dtype=torch.float64)
    B, G = torch.diag(ff.B.double()), torch.diag(ff.G.double())
    Pi = torch.eye(L, dtype=torch.float64)[ff.Pi]  # (Π x)_i = x_{Π(i)}
    V = (H @ G @ Pi @ H @ B)[:D, :d] / math.sqrt(D * ff.G.double().pow(2).sum())
    P = ff.matrix()
    assert P.shape == (D, d) and P.dtype == torch.float64
    assert torch.allclose(P, V, rtol=0, atol=1e-12)  # entries ~ 1 / sqrt(D)
    theta = torch.randn(d, generator=gen(1), dtype=torch.float64)
    assert torch.allclose(ff(theta), V @ theta, rtol=0, atol=1e-12)


def test_fastfood_draws_signs_a_permutation_and_gaussians():
    # the explicit-matrix check reuses these buffers, so check them on their own
    ff = Fastfood(10, 3000, gen(2))
    assert ff.L == 4096
    assert set(ff.B.tolist()) == {-1.0, 1.0} and abs(ff.B.mean()) < 0.1
    assert torch.equal(ff.Pi.sort().values, torch.arange(ff.L))
    assert torch.equal(ff.Pi[ff.Pi_inverse], torch.arange(ff.L))
    assert abs(ff.G.mean()) < 0.1 and abs(ff.G.std() - 1) < 0.1
    again = Fastfood(10, 3000, gen(2))
    assert all(torch.equal(a, b) for a, b in zip(ff.buffers(), again.buffers()))


def test_columns_have_unit_norm_on_average():
    P = Fastfood(32, 3000, gen()).matrix()
    norms = P.norm(dim=0)
    assert abs(norms.mean().item() - 1) < 0.05
    assert torch.allclose(DenseProjection(32, 3000, gen()).matrix().norm(dim=0),
                          torch.ones(32), atol=1e-5)


def small_model(seed=0):
    torch.manual_seed(seed)
    return SequenceClassifier(GPT(GPTConfig(**SMALL)), 3)


def ids(b=4, t=10):
    return torch.randint(0, 50, (b, t), generator=gen(5))


@pytest.mark.parametrize("projection", ["fastfood", "dense"])
@pytest.mark.parametrize("said", [False, True])
def test_subspace_at_zero_is_the_model_and_moves_only_theta_d(projection, said):
    model = small_model()
    sub = Subspace(model, 40, projection, gen(), said=said)
    x = ids()
    assert torch.equal(sub(x), model(x))  # θ_d = 0: θ = θ_0
    trainable = [p for p in sub.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == 40
    assert sub.D == sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(trainable, lr=0.5)
    before = {n: p.clone() for n, p in model.named_parameters()}
    loss = nn.functional.cross_entropy(sub(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    assert sub.theta_d.abs().sum() > 0
    # the wrapped model's own tensors never change; the effective ones do
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    theta = sub.theta()
    expected = sub.theta_0 + sub.projection(sub.theta_d) * (
        sub.lam[sub.owner] if said else 1)
    assert torch.allclose(theta, expected)
    # equal to a plain model loaded with those parameters
    plain = small_model()
    with torch.no_grad():
        for (_, p), q in zip(plain.named_parameters(),
                             torch.split(theta, sub.sizes)):
            p.copy_(q.view_as(p))
    assert torch.allclose(sub(x), plain(x), atol=1e-5)


def test_tied_weights_count_once():
    body = GPT(GPTConfig(**SMALL))  # output projection tied to the embedding
    sub = Subspace(body, 8, generator=gen())
    assert sub.D == sum(p.numel() for p in body.parameters())
    x = ids()
    assert torch.equal(sub(x), body(x))


def test_d90():
    dims = [10, 100, 1000]
    assert d90(dims, [0.5, 0.8, 0.95], 0.9) == 1000  # 0.8 < 0.9 x 0.9
    assert d90(dims, [0.5, 0.80, 0.95], 0.88) == 100  # 0.8 >= 0.792
    assert d90(dims, [0.5, 0.6, 0.7], 0.9) is None
    assert d90(dims, [0.95, 0.6, 0.99], 0.9) == 10
    # above chance: target 0.5 + 0.9 x (0.9 - 0.5) = 0.86
    assert d90(dims, [0.6, 0.85, 0.95], 0.9, chance=0.5) == 1000
    assert d90(dims, [0.6, 0.87, 0.95], 0.9, chance=0.5) == 100


class ToyBPE:
    """Characters as token ids: enough for the window builders."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))


def test_word_order_windows():
    from mlf.corpora import shakespeare_text, shakespeare_titles

    titles = shakespeare_titles()[:1]
    ids, labels = word_order_windows(ToyBPE(), titles, 200, 12, gen(3))
    assert ids.shape == (200, 12) and labels.shape == (200,)
    assert labels.sum() == 100  # balanced
    stream = torch.tensor(ToyBPE().encode(shakespeare_text(titles)))
    windows = stream[: len(stream) // 12 * 12].view(-1, 12)
    source = windows[torch.linspace(0, len(windows) - 1, 200).long()]
    assert torch.equal(ids[labels == 1], source[labels == 1])  # real: untouched
    shuffled, original = ids[labels == 0], source[labels == 0]
    assert torch.equal(shuffled.sort(1).values, original.sort(1).values)  # same tokens
    assert (shuffled != original).any(1).float().mean() > 0.9  # order changed
    again = word_order_windows(ToyBPE(), titles, 200, 12, gen(3))
    assert torch.equal(again[0], ids) and torch.equal(again[1], labels)


def test_classifier_mean_pools_the_gpt_body():
    model = small_model()
    x = ids()
    body = model.body
    h = body.embed(x) + body.pos.pe.weight[:10]
    mask = torch.ones(10, 10, dtype=torch.bool).tril()
    for block in body.blocks:
        h = block(h, mask)
    expected = model.head(body.ln_f(h).mean(1))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(6))
    with pytest.raises(ValueError, match="floating-point"):
        fwht(torch.zeros(8, dtype=torch.long))
    for d, D in [(0, 10), (-1, 10), (11, 10)]:
        with pytest.raises(ValueError, match="d"):
            Fastfood(d, D)
        with pytest.raises(ValueError, match="d"):
            DenseProjection(d, D)
    with pytest.raises(ValueError, match="1 <= d <= D"):
        Fastfood(11, 10)
    with pytest.raises(ValueError, match="integer"):
        Fastfood(2.5, 10)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        Fastfood(4, 10)(torch.zeros(5))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        DenseProjection(4, 10)(torch.zeros(4, 1))
    model = small_model()
    with pytest.raises(ValueError, match="exceeds"):
        Subspace(model, 10 ** 7)
    with pytest.raises(ValueError, match="d must be an integer"):
        Subspace(model, 0)
    with pytest.raises(ValueError, match="projection"):
        Subspace(model, 4, "sparse")
    with pytest.raises(TypeError, match="nn.Module"):
        Subspace(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="SAID"):
        Subspace(model, 3, said=True)
    with pytest.raises(ValueError, match="no parameters"):
        Subspace(nn.ReLU(), 1)
    with pytest.raises(TypeError, match="GPT"):
        SequenceClassifier(nn.Linear(3, 3), 2)
    with pytest.raises(ValueError, match="n_classes"):
        SequenceClassifier(GPT(GPTConfig(**SMALL)), 1)
    with pytest.raises(ValueError, match="equally long"):
        d90([1, 2], [0.5], 1.0)
    with pytest.raises(ValueError, match="fraction"):
        d90([1], [0.5], 1.0, fraction=1.5)
    with pytest.raises(ValueError, match="exceed chance"):
        d90([1], [0.5], 0.5, chance=0.5)
    with pytest.raises(ValueError, match="fewer than count"):
        word_order_windows(ToyBPE(), ["hamlet"], 10 ** 7)
    with pytest.raises(ValueError, match="count must be an integer"):
        word_order_windows(ToyBPE(), ["hamlet"], 1)


def test_fastfood_gradient_is_the_transpose():
    ff = Fastfood(6, 40, gen(3)).double()
    theta = torch.randn(6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(40, generator=gen(4), dtype=torch.float64)
    (ff(theta) @ g).backward()
    assert torch.allclose(theta.grad, ff.matrix().T @ g, atol=1e-10)
    assert torch.autograd.gradcheck(ff, (theta.detach().requires_grad_(),))


def test_training_helpers_reject_bad_input():
    from mlf.subspace import accuracy, train_classifier

    model = small_model()
    x, y = ids(), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="do not match"):
        train_classifier(model, x, y[:3], 1, 1e-3)
    with pytest.raises(ValueError, match="do not match"):
        accuracy(model, x[0], y)
    with pytest.raises(ValueError, match="learning rate"):
        train_classifier(model, x, y, 1, 0.0)
    with pytest.raises(ValueError, match="steps"):
        train_classifier(model, x, y, 0, 1e-3)
    with pytest.raises(ValueError, match="no trainable"):
        train_classifier(model.requires_grad_(False), x, y, 1, 1e-3)


def test_training_in_the_subspace_learns_and_reports_progress():
    from mlf.subspace import accuracy, train_classifier

    model = small_model()
    x = torch.randint(0, 50, (64, 6), generator=gen(7))
    y = (x[:, 0] < 25).long()  # the first token decides
    seen = []

    def loop(steps):
        for k in steps:
            seen.append(k)
            yield k

    sub = Subspace(model, 200, generator=gen())
    losses = train_classifier(sub, x, y, 60, 0.1, 16, gen(1), loop)
    assert seen == list(range(60)) and len(losses) == 60
    assert sum(losses[-10:]) < sum(losses[:10])  # it learns, through θ_d alone
    assert accuracy(sub, x, y) > 0.6


def test_sentiment_windows_are_balanced_and_follow_vader():
    from mlf.subspace import sentiment_windows
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    bpe, vader = ToyBPE(), SentimentIntensityAnalyzer()
    ids, labels = sentiment_windows(bpe, ["hamlet"], 64, 0.3, 200)
    assert ids.shape == (200, 64) and labels.sum() == 100
    for w, y in zip(ids[::10], labels[::10]):
        score = vader.polarity_scores(bpe.decode(w.tolist()))["compound"]
        assert score > 0.3 if y == 1 else score < -0.3
    with pytest.raises(ValueError, match="threshold"):
        sentiment_windows(bpe, ["hamlet"], 64, 1.0)
    with pytest.raises(ValueError, match="no positive or no negative"):
        sentiment_windows(bpe, ["hamlet"], 64, 0.999)
