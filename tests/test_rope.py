"""Rotary position embeddings: rotations, relative positions, the long-term decay bound,
and the two pairings (the paper's and Hugging Face's Llama)."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlf.rope import Rotary, decay_bound, split_halves_order


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_rotation_keeps_norms():
    x = randn(2, 3, 10, 8)
    turned = Rotary(8)(x, offset=5)
    assert torch.allclose(turned.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
def test_score_depends_only_on_relative_position(m, n, shift):
    q, k = randn(1, 16, seed=1), randn(1, 16, seed=2)
    rope = Rotary(16)
    score = (rope(q, m) * rope(k, n)).sum()
    shifted = (rope(q, m + shift) * rope(k, n + shift)).sum()
    assert torch.allclose(score, shifted, atol=1e-4)


def test_equals_the_block_diagonal_matrix_of_eq_15():
    d, m = 6, 7
    rope, x = Rotary(d, base=100.0), randn(d, seed=3)
    blocks = []
    for theta in rope.theta.double():
        c, s = math.cos(m * theta), math.sin(m * theta)
        blocks.append(torch.tensor([[c, -s], [s, c]]))
    matrix = torch.block_diag(*blocks).float()  # R^d_{Theta, m}
    assert torch.allclose(rope(x[None], offset=m)[0], matrix @ x, atol=1e-6)


def test_equals_multiplication_by_complex_exponentials():
    d, t = 8, 5
    rope, x = Rotary(d), randn(t, d, seed=4)
    z = torch.view_as_complex(x.reshape(t, d // 2, 2))  # pair (x_2i, x_2i+1) -> complex
    turned = torch.view_as_real(z * torch.polar(torch.ones(t, d // 2), rope.angles(t)))
    assert torch.allclose(rope(x), turned.reshape(t, d), atol=1e-6)


def test_offset_continues_positions():
    x = randn(1, 2, 6, 4, seed=2)
    rope = Rotary(4)
    assert torch.allclose(rope(x)[..., 2:, :], rope(x[..., 2:, :], offset=2), atol=1e-6)


def test_scale_multiplies_positions():
    x = randn(1, 1, 1, 8, seed=5)
    slow = Rotary(8, scale=0.5)(x, offset=6)  # position 6 * 0.5 = 3
    assert torch.allclose(slow, Rotary(8)(x, offset=3), atol=1e-6)


def test_hugging_face_linear_scaling_is_position_interpolation():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import (LlamaRotaryEmbedding,
                                                          apply_rotary_pos_emb)

    params = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}
    cfg = LlamaConfig(hidden_size=32, num_attention_heads=4, rope_parameters=params)
    x = randn(1, 4, 9, 8, seed=9)
    cos, sin = LlamaRotaryEmbedding(cfg)(x, torch.arange(9)[None])
    theirs, _ = apply_rotary_pos_emb(x, x, cos, sin)
    ours = Rotary(8, interleaved=False, scale=0.5)(x)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_adjacent_pairs_equal_hugging_face_roformer():
    from transformers.models.roformer.modeling_roformer import (
        RoFormerSelfAttention, RoFormerSinusoidalPositionalEmbedding)

    t, d = 7, 12
    table = RoFormerSinusoidalPositionalEmbedding(t, d).create_weight()  # (t, d)
    q, k = randn(2, 3, t, d, seed=10), randn(2, 3, t, d, seed=11)
    q2, k2 = RoFormerSelfAttention.apply_rotary_position_embeddings(table, q, k)
    assert torch.allclose(Rotary(d)(q), q2, atol=1e-5)
    assert torch.allclose(Rotary(d)(k), k2, atol=1e-5)


def test_split_halves_equal_adjacent_pairs_after_a_permutation():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    d, t = 8, 5
    x = randn(1, 1, t, d, seed=3)
    ours = Rotary(d)(x)
    order = split_halves_order(d)  # our pair (2i, 2i+1) -> their (i, i + d/2)
    angles = Rotary(d).angles(t)  # (t, d/2)
    cos = torch.cat([angles.cos(), angles.cos()], -1)[None]
    sin = torch.cat([angles.sin(), angles.sin()], -1)[None]
    theirs, _ = apply_rotary_pos_emb(x[..., order], x[..., order], cos, sin)
    assert torch.allclose(ours[..., order], theirs, atol=1e-6)
    llama = Rotary(d, interleaved=False)
    assert torch.allclose(llama(x[..., order]), theirs, atol=1e-6)
    assert not torch.allclose(llama(x), ours, atol=1e-2)  # the wrong layout


def test_permuted_weights_give_the_same_scores_under_the_other_pairing():
    d, t = 8, 6
    w_q, w_k, x = randn(d, 16, seed=6), randn(d, 16, seed=7), randn(t, 16, seed=8)
    paper, llama, order = Rotary(d), Rotary(d, interleaved=False), split_halves_order(d)
    scores = paper(x @ w_q.T) @ paper(x @ w_k.T).T
    converted = llama(x @ w_q[order].T) @ llama(x @ w_k[order].T).T
    assert torch.allclose(scores, converted, atol=1e-4)
    unconverted = llama(x @ w_q.T) @ llama(x @ w_k.T).T
    assert not torch.allclose(scores, unconverted, atol=1e-2)


def test_decay_bound_matches_its_definition():
    d, base = 16, 10000.0
    theta = [base ** (-2 * k / d) for k in range(d // 2)]
    for r in (0, 1, 7, 100):
        partial_sums = [sum(complex(math.cos(r * t), math.sin(r * t))
                            for t in theta[:j]) for j in range(1, d // 2 + 1)]
        expected = sum(abs(s) for s in partial_sums) / (d // 2)
        assert decay_bound(torch.tensor([r]), d, base).item() == pytest.approx(expected)
    assert decay_bound(torch.tensor([0]), d).item() == pytest.approx((d // 2 + 1) / 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"d": 7}, "even"), ({"d": 0}, "even"), ({"d": 4, "base": 1.0}, "base"),
    ({"d": 4, "base": "big"}, "number"), ({"d": 4, "scale": 0}, "scale"),
    ({"d": 4, "interleaved": "yes"}, "interleaved")])
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rotary(**kwargs)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="d = 4"):
        Rotary(4)(torch.zeros(1, 3, 6))
    with pytest.raises(ValueError, match="floating"):
        Rotary(4)(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="offset"):
        Rotary(4)(torch.zeros(1, 3, 4), offset=-1)
    with pytest.raises(ValueError, match="even"):
        split_halves_order(5)
    with pytest.raises(ValueError, match="even"):
        decay_bound(torch.arange(3), 7)
    with pytest.raises(ValueError, match="base"):
        decay_bound(torch.arange(3), 8, base=0.5)
