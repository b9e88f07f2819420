"""Efficient attentions: the sliding window against full attention under a banded mask
(ours, PyTorch's and Longformer's), Linformer's special cases, FAVOR+'s unbiased kernel
estimate, the exact memory counter, and clear errors for bad input."""
import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import efficient as ef
from mlf import transformer as tf
from torch.nn import functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def randn(*shape, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype)


def qkv(t, d=8, lead=(2, 3), seed=0):
    return [randn(*lead, t, d, seed=seed + i) for i in range(3)]


# --- sliding window ----------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 40), window=st.integers(1, 12), block=st.integers(1, 12),
       causal=st.booleans())
def test_window_equals_full_attention_under_the_band(t, window, block, causal):
    q, k, v = qkv(t, seed=t)
    mask = ef.banded_mask(t, window, causal)
    reference, _ = tf.scaled_dot_product_attention(q, k, v, mask)
    ours = ef.sliding_window_attention(q, k, v, window, causal, block)
    assert torch.allclose(ours, reference, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_window_equals_pytorch_sdpa(causal):
    q, k, v = qkv(37, d=16)  # 37: not a multiple of the block
    mask = ef.banded_mask(37, 5, causal)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(ef.sliding_window_attention(q, k, v, 5, causal), reference,
                          atol=1e-12)


def test_window_wider_than_the_sequence_is_full_attention():
    q, k, v = qkv(6)
    reference, _ = tf.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(ef.sliding_window_attention(q, k, v, 50), reference,
                          atol=1e-12)


def test_banded_mask_pattern():
    assert ef.banded_mask(4, 1).int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0],
                                                   [0, 1, 1, 1], [0, 0, 1, 1]]
    assert ef.banded_mask(3, 1, causal=True).int().tolist() == [[1, 0, 0], [1, 1, 0],
                                                                [0, 1, 1]]


def test_window_gradients_stay_finite_with_a_ragged_last_block():
    q, k, v = (randn(1, 1, 11, 4, seed=i, dtype=torch.float32).requires_grad_()
               for i in range(3))
    ef.sliding_window_attention(q, k, v, 2, block=4).sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))


def test_window_equals_longformer_self_attention():
    from transformers import LongformerConfig
    from transformers.models.longformer.modeling_longformer import (
        LongformerSelfAttention,
    )
    w, t, d, h = 3, 24, 16, 2  # Longformer's attention_window counts both sides: 2w
    config = LongformerConfig(hidden_size=d, num_attention_heads=h,
                              attention_window=[2 * w],
                              attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    hf = LongformerSelfAttention(config, layer_id=0).eval()
    x = torch.randn(2, t, d)
    local = torch.zeros(2, t)  # 0: local attention everywhere, no global tokens
    with torch.no_grad():
        theirs = hf(x, attention_mask=local, is_index_masked=local.bool(),
                    is_index_global_attn=local.bool(), is_global_attn=False)[0]
        q, k, v = (lin(x).view(2, t, h, d // h).transpose(1, 2)
                   for lin in (hf.query, hf.key, hf.value))
        ours = ef.sliding_window_attention(q, k, v, w).transpose(1, 2).reshape(2, t, d)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_window_memory_grows_linearly():
    peaks = []
    for t in (512, 1024, 2048):
        q, k, v = qkv(t, d=8, lead=(1,))
        peaks.append(ef.peak_bytes(
            lambda q=q, k=k, v=v: ef.sliding_window_attention(q, k, v, 8))[0])
    assert ef.loglog_slope([512, 1024, 2048], peaks) < 1.05


# --- Linformer ---------------------------------------------------------------------

def test_linformer_with_identity_projections_is_full_attention():
    q, k, v = qkv(10)
    eye = torch.eye(10, dtype=torch.float64)
    reference, _ = tf.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(ef.linformer_attention(q, k, v, eye, eye), reference,
                          atol=1e-12)


def test_linformer_selecting_keys_is_full_attention_masked_to_them():
    q, k, v = qkv(9)
    keep = torch.tensor([0, 4, 5, 8])
    select = torch.eye(9, dtype=torch.float64)[keep]  # (4, 9): picks 4 positions
    mask = torch.zeros(9, dtype=torch.bool)
    mask[keep] = True
    reference, _ = tf.scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(ef.linformer_attention(q, k, v, select, select), reference,
                          atol=1e-12)


# --- FAVOR+ ------------------------------------------------------------------------

@pytest.mark.parametrize("orthogonal", [False, True])
def test_gaussian_features_have_unit_variance(orthogonal):
    w = ef.gaussian_features(4000, 8, orthogonal, torch.Generator().manual_seed(0))
    assert w.shape == (4000, 8)
    assert abs(w.var().item() - 1) < 0.05 and abs(w.mean().item()) < 0.05


def test_orthogonal_features_are_orthogonal_within_a_block():
    w = ef.gaussian_features(12, 8, True, torch.Generator().manual_seed(1)).double()
    gram = w[:8] @ w[:8].T
    assert torch.allclose(gram - torch.diag(gram.diag()), torch.zeros_like(gram),
                          atol=1e-4)


@pytest.mark.parametrize("orthogonal", [False, True])
def test_positive_features_estimate_the_softmax_kernel_without_bias(orthogonal):
    x, y = randn(16, seed=1) * 0.3, randn(16, seed=2) * 0.3
    gen = torch.Generator().manual_seed(3)
    draws = torch.stack([
        (ef.positive_features(x[None], w) * ef.positive_features(y[None], w)).sum()
        for w in (ef.gaussian_features(16, 16, orthogonal, gen).double()
                  for _ in range(3000))])
    exact = math.exp((x @ y).item())
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) < 3.5 * se  # seed fixed: this draw passes
    assert (draws > 0).all()  # positive features: never a negative estimate


def test_the_unbiasedness_test_catches_fixed_length_features():
    # orthogonal rows all of length sqrt(d) (the Performer code's scaling=1): biased
    x, y = randn(16, seed=1) * 0.3, randn(16, seed=2) * 0.3
    gen = torch.Generator().manual_seed(3)
    w = torch.stack([ef.gaussian_features(16, 16, True, gen).double()
                     for _ in range(3000)])
    w = w / w.norm(dim=-1, keepdim=True) * 4  # |w_i| = sqrt(16)
    draws = (ef.positive_features(x[None], w) * ef.positive_features(y[None], w)).sum(
        (-2, -1))
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - math.exp((x @ y).item())) > 3.5 * se


def test_empty_sequences_give_empty_outputs_like_full_attention():
    q = randn(2, 0, 4)
    reference, _ = tf.scaled_dot_product_attention(q, q, q)
    w = randn(3, 4)
    for causal in (False, True):
        assert ef.sliding_window_attention(q, q, q, 2, causal).shape == reference.shape
        assert ef.favor_attention(q, q, q, w, causal).shape == reference.shape
    e = torch.zeros(3, 0, dtype=torch.float64)
    assert ef.linformer_attention(q, q, q, e, e).shape == reference.shape


@pytest.mark.parametrize("causal", [False, True])
def test_favor_converges_to_softmax_attention(causal):
    q, k, v = (x * 0.5 for x in qkv(12, d=8, lead=(1,)))
    mask = tf.causal_mask(12) if causal else None
    reference, _ = tf.scaled_dot_product_attention(q, k, v, mask)
    gen = torch.Generator().manual_seed(0)
    w = ef.gaussian_features(100_000, 8, generator=gen).double()
    assert torch.allclose(ef.favor_attention(q, k, v, w, causal), reference, atol=0.02)


def test_favor_stabiliser_changes_nothing_and_survives_large_inputs():
    q, k, v = qkv(6, d=4, lead=(1,))
    w = ef.gaussian_features(8, 4, generator=torch.Generator().manual_seed(0)).double()
    scale = 4 ** -0.25
    phi_q = ef.positive_features(q * scale, w)
    phi_k = ef.positive_features(k * scale, w)
    plain = (phi_q @ (phi_k.transpose(-1, -2) @ v)) / (phi_q @ phi_k.sum(-2)[..., None])
    assert torch.allclose(ef.favor_attention(q, k, v, w), plain, atol=1e-10)
    big = [x * 40 for x in (q, k)]
    assert torch.isfinite(ef.favor_attention(*big, v, w)).all()


def test_causal_favor_underflows_when_a_prefix_lies_far_below_the_max():
    # the known limit of one stabiliser for all keys (see favor_attention): the first
    # key is long, its logits sit ~400 below the others', exp underflows in float32
    k = torch.tensor([[[20.0] * 4, [0.5] * 4, [0.1] * 4]])  # (1, T=3, d=4)
    q, v = torch.ones(1, 3, 4), torch.randn(1, 3, 4)
    w = ef.gaussian_features(8, 4, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(ef.favor_attention(q, k, v, w)).all()
    causal = ef.favor_attention(q, k, v, w, causal=True)
    assert torch.isnan(causal[:, 0]).all() and torch.isfinite(causal[:, 1:]).all()


def test_causal_favor_equals_a_loop_over_prefixes():
    q, k, v = qkv(7, d=4, lead=(1,))
    w = ef.gaussian_features(6, 4, generator=torch.Generator().manual_seed(2)).double()
    causal = ef.favor_attention(q, k, v, w, causal=True)
    for i in range(7):
        prefix = ef.favor_attention(q[:, : i + 1], k[:, : i + 1], v[:, : i + 1], w)
        assert torch.allclose(causal[:, i], prefix[:, i], atol=1e-10)


# --- the attention layer and the encoder -------------------------------------------

def test_full_kind_equals_multi_head_attention():
    torch.manual_seed(0)
    ours = ef.EfficientAttention(16, 4, "full")
    reference = tf.MultiHeadAttention(16, 4)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 16)
    assert torch.allclose(ours(x, x), reference(x, x), atol=1e-6)


@pytest.mark.parametrize("kind, options", [
    ("full", {}), ("window", {"window": 2}), ("linformer", {"k_proj": 3}),
    ("performer", {"features": 8})])
def test_encoder_runs_and_trains(kind, options):
    torch.manual_seed(0)
    model = ef.Encoder(10, 12, kind, d_model=16, n_heads=2, **options)
    x = torch.randint(0, 10, (3, 12))
    logits = model(x)
    assert logits.shape == (3, 12, 10)
    F.cross_entropy(logits.flatten(0, 1), x.flatten()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.requires_grad)


# --- measuring ---------------------------------------------------------------------

def test_peak_bytes_counts_the_largest_live_set():
    x = torch.zeros(1000)  # made outside: not counted

    def work():
        a = x + 1  # 4,000 bytes
        b = a * 2  # 8,000 live
        del a
        return b + 1  # 8,000 live again: b and the result

    peak, result = ef.peak_bytes(work)
    assert peak == 8000 and result.shape == (1000,)


def test_peak_bytes_of_full_attention_is_quadratic():
    peaks = []
    for t in (256, 512, 1024):
        q, k, v = qkv(t, d=4, lead=(1,))
        peaks.append(ef.peak_bytes(
            lambda q=q, k=k, v=v: tf.scaled_dot_product_attention(q, k, v))[0])
    assert ef.loglog_slope([256, 512, 1024], peaks) > 1.9


def test_loglog_slope_of_a_power_law():
    assert ef.loglog_slope([1, 2, 4, 8], [3 * x**1.5 for x in (1, 2, 4, 8)]) == \
        pytest.approx(1.5)


# --- bad input ---------------------------------------------------------------------

def test_bad_input_is_rejected_clearly():
    q, k, v = qkv(8)
    eye = torch.eye(8, dtype=torch.float64)
    w = torch.randn(4, 8, dtype=torch.float64)
    cases = [
        (lambda: ef.sliding_window_attention(q, k, v, 0), "window must be a positive"),
        (lambda: ef.sliding_window_attention(q, k, v, 2.5), "window must be"),
        (lambda: ef.sliding_window_attention(q, k, v, 2, block=0), "block must be"),
        (lambda: ef.sliding_window_attention(q, k[..., :5, :], v, 2), "do not fit"),
        (lambda: ef.sliding_window_attention(q.long(), k, v, 2), "floating-point"),
        (lambda: ef.banded_mask(0, 1), "sequence length"),
        (lambda: ef.linformer_attention(q, k, v, eye[:, :5], eye), "(k_proj, T=8)"),
        (lambda: ef.linformer_attention(q, k, v, eye[:3], eye[:4]), "same k_proj"),
        (lambda: ef.gaussian_features(0, 8), "feature count m must be"),
        (lambda: ef.gaussian_features(4, 8, generator=3), "torch.Generator"),
        (lambda: ef.favor_attention(q, k, v, w[:, :5]), "(m, d_k=8)"),
        (lambda: ef.positive_features(q, w[:, :3]), "(m, d=8)"),
        (lambda: ef.EfficientAttention(16, 4, "sparse"), "kind must be one of"),
        (lambda: ef.EfficientAttention(16, 4, "window"), "window must be"),
        (lambda: ef.EfficientAttention(16, 4, "linformer", seq_len=8, k_proj=0),
         "projected length"),
        (lambda: ef.EfficientAttention(16, 4, "linformer", seq_len=8, k_proj=2,
                                       causal=True), "no causal form"),
        (lambda: ef.EfficientAttention(16, 4, "performer", features=0),
         "feature count"),
        (lambda: ef.EfficientAttention(16, 3, "full"), "divisible by n_heads"),
        (lambda: ef.Encoder(10, 12)(torch.zeros(2, 5, dtype=torch.long)),
         "length 12"),
        (lambda: ef.peak_bytes(3), "function of no arguments"),
        (lambda: ef.loglog_slope([1, 2], [1]), "equally long"),
        (lambda: ef.loglog_slope([0, 2], [1, 2]), "positive"),
    ]
    for call, message in cases:
        with pytest.raises((ValueError, TypeError)) as err:
            call()
        assert message in str(err.value), (message, str(err.value))


def test_mismatched_head_dimensions_are_rejected():
    q, k, v = qkv(8)
    with pytest.raises(ValueError, match="shapes do not fit"):
        ef.favor_attention(q, k[..., :4], v, torch.randn(4, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="shapes do not fit"):
        ef.linformer_attention(q, k, v[:1], torch.eye(8), torch.eye(8))
