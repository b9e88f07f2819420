"""Tests for mlf.ntm: addressing laws, cross-checks with torch, the heads and the copy task."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mlf.ntm import (NTM, LSTMBaseline, address, bit_errors, content_weights, copy_batch,
                     copy_cost_bits, interpolate, read, sharpen, shift, train_copy, write)


def _dist(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(b, n, generator=g, dtype=torch.float64), -1)


def _one_hot(b, n, i):
    w = torch.zeros(b, n, dtype=torch.float64)
    w[:, i] = 1
    return w


def test_content_weights_match_cosine_similarity_softmax():
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    key = torch.randn(3, 5, generator=g, dtype=torch.float64)
    beta = torch.tensor([0.0, 1.5, 20.0], dtype=torch.float64)
    expected = torch.softmax(beta[:, None] * F.cosine_similarity(memory, key[:, None], dim=-1), -1)
    torch.testing.assert_close(content_weights(memory, key, beta), expected, rtol=0, atol=1e-12)


def test_beta_zero_gives_uniform_weights():
    memory = torch.randn(2, 6, 4)
    w = content_weights(memory, torch.randn(2, 4), torch.zeros(2))
    torch.testing.assert_close(w, torch.full((2, 6), 1 / 6))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 12), k=st.integers(0, 1), seed=st.integers(0, 1000))
def test_shift_equals_sum_of_rolls(n, k, seed):
    w = _dist(2, n, seed)
    s = _dist(2, 2 * k + 1, seed + 1)
    expected = sum(s[:, j : j + 1] * torch.roll(w, j - k, dims=-1) for j in range(2 * k + 1))
    torch.testing.assert_close(shift(w, s), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("i", [0, 3, 7])
def test_one_hot_shift_moves_one_hot_weighting_by_one_slot(i):
    w = _one_hot(1, 8, i)
    forward = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)  # shifts -1, 0, +1
    backward = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(shift(w, forward), _one_hot(1, 8, (i + 1) % 8))
    assert torch.equal(shift(w, backward), _one_hot(1, 8, (i - 1) % 8))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 10), seed=st.integers(0, 1000))
def test_shift_preserves_a_distribution(n, seed):
    out = shift(_dist(3, n, seed), _dist(3, 3, seed + 7))
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(3, dtype=torch.float64))


def test_large_gamma_sharpens_to_one_hot():
    w = torch.tensor([[0.1, 0.5, 0.3, 0.1]], dtype=torch.float64)
    out = sharpen(w, torch.tensor([200.0], dtype=torch.float64))
    torch.testing.assert_close(out, _one_hot(1, 4, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(sharpen(w, torch.ones(1, dtype=torch.float64)), w, rtol=0, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(gamma=st.floats(1.0, 30.0), seed=st.integers(0, 1000))
def test_sharpen_matches_power_formula_and_keeps_the_argmax(gamma, seed):
    w = _dist(2, 6, seed)
    expected = w ** gamma / (w ** gamma).sum(-1, keepdim=True)
    out = sharpen(w, torch.full((2,), gamma, dtype=torch.float64))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)
    assert torch.equal(out.argmax(-1), w.argmax(-1))


def test_interpolation_endpoints():
    w_c, w_prev = _dist(2, 5, 1), _dist(2, 5, 2)
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.ones(2, dtype=torch.float64)), w_c)
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.zeros(2, dtype=torch.float64)), w_prev)


def test_address_location_only_walks_one_slot():
    memory = torch.randn(1, 8, 4, dtype=torch.float64)
    w_prev = _one_hot(1, 8, 2)
    w = address(memory, w_prev, torch.randn(1, 4, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                torch.zeros(1, dtype=torch.float64), torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64),
                torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(w, _one_hot(1, 8, 3), rtol=0, atol=1e-7)  # sharpening's log guard


def test_write_then_read_one_hot_recovers_the_vector():
    memory = torch.randn(2, 5, 3)
    w = torch.zeros(2, 5)
    w[:, 4] = 1
    a = torch.randn(2, 3)
    new = write(memory, w, torch.ones(2, 3), a)  # full erase, then add
    torch.testing.assert_close(read(new, w), a)
    torch.testing.assert_close(new[:, :4], memory[:, :4])  # other rows untouched


def test_write_with_zero_erase_adds():
    memory, w = torch.randn(1, 4, 3), _dist(1, 4).float()
    a = torch.randn(1, 3)
    new = write(memory, w, torch.zeros(1, 3), a)
    torch.testing.assert_close(new, memory + w[..., None] * a[:, None])


@pytest.mark.parametrize("call, message", [
    (lambda: content_weights(torch.randn(2, 4, 3), torch.randn(2, 3), -torch.ones(2)), "beta"),
    (lambda: content_weights(torch.randn(2, 4, 3), torch.randn(2, 5), torch.ones(2)), "key"),
    (lambda: content_weights(torch.randn(0, 4, 3), torch.randn(0, 3), torch.ones(0)), "empty"),
    (lambda: sharpen(_dist(2, 4), torch.full((2,), 0.5, dtype=torch.float64)), "gamma"),
    (lambda: sharpen(_dist(2, 4), torch.ones(3, dtype=torch.float64)), "gamma"),
    (lambda: interpolate(_dist(2, 4), _dist(2, 4), torch.full((2,), 1.5, dtype=torch.float64)), "g"),
    (lambda: interpolate(_dist(2, 4), _dist(2, 5), torch.ones(2, dtype=torch.float64)), "same shape"),
    (lambda: shift(_dist(2, 4), _dist(2, 2)), "odd"),
    (lambda: shift(_dist(2, 4), _dist(2, 5)), "do not fit"),
    (lambda: read(torch.randn(2, 4, 3), torch.ones(2, 5)), "locations"),
    (lambda: write(torch.randn(2, 4, 3), torch.ones(2, 4), torch.ones(2, 2), torch.ones(2, 3)), "e must"),
    (lambda: copy_batch(0, 3, 4), "batch"),
    (lambda: copy_cost_bits(torch.zeros(2, 3), torch.zeros(2, 4)), "differ"),
    (lambda: NTM(0, 4), "input_size"),
    (lambda: NTM(5, 4)(torch.zeros(0, 3, 5)), "empty"),
    (lambda: train_copy(NTM(5, 4), 0, 4, 3), "steps"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_copy_batch_layout():
    x, y = copy_batch(3, 4, 5, torch.Generator().manual_seed(0))
    assert x.shape == (3, 9, 6) and y.shape == (3, 4, 5)
    torch.testing.assert_close(x[:, :4, :5], y)
    assert (x[:, 4, 5] == 1).all() and x[:, 4, :5].sum() == 0 and x[:, 5:].sum() == 0


def test_cost_in_bits_and_bit_errors():
    target = torch.tensor([[[1.0, 0.0]]])
    assert copy_cost_bits(torch.zeros(1, 1, 2), target).item() == pytest.approx(2.0)  # 1 bit each
    assert bit_errors(torch.tensor([[[3.0, 2.0]]]), target).item() == 1


def test_models_shapes_and_weightings_are_distributions():
    torch.manual_seed(0)
    x, _ = copy_batch(2, 3, 4)
    ntm = NTM(5, 4, controller_size=16, memory_rows=8, memory_width=6)
    logits, reads, writes = ntm(x, return_weights=True)
    assert logits.shape == (2, 7, 4) and reads.shape == writes.shape == (2, 7, 8)
    torch.testing.assert_close(reads.sum(-1), torch.ones(2, 7))
    assert LSTMBaseline(5, 4, hidden_size=8)(x).shape == (2, 7, 4)


def test_train_copy_is_deterministic_and_lowers_the_cost():
    def run():
        torch.manual_seed(0)
        model = NTM(4, 3, controller_size=16, memory_rows=8, memory_width=6)
        return train_copy(model, 60, bits=3, max_len=3, batch=8, lr=3e-3, seed=1, desc="test")
    first, second = run(), run()
    assert first == second
    assert sum(first[-10:]) / 10 < sum(first[:10]) / 10
    assert all(math.isfinite(c) for c in first)
