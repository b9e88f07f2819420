"""mlf.transformer against PyTorch's own modules, with copied weights and dropout off."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from mlf.transformer import (EncoderLayer, FeedForward, LayerNorm, LearnedPositions, MultiHeadAttention,
                             SinusoidalPositions, Transformer, causal_mask, label_smoothing_loss, noam_rate,
                             padding_mask, scaled_dot_product_attention, sinusoidal_encoding)

TOL = dict(atol=1e-5, rtol=1e-5)  # float32 agreement with PyTorch's kernels


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_attention_equals_torch_sdpa_with_masks():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    keys = padding_mask(torch.tensor([7, 4]), 7)  # (2, 1, 1, 7)
    for mask in (None, keys, keys & causal_mask(7)[-5:]):
        ours, weights = scaled_dot_product_attention(q, k, v, mask)
        assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
        assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5), **TOL)


def test_multi_head_attention_equals_nn_multiheadattention():
    d, h = 16, 4
    ours, ref = MultiHeadAttention(d, h), nn.MultiheadAttention(d, h, batch_first=True)
    with torch.no_grad():  # nn.MultiheadAttention stacks W^Q, W^K, W^V in one in_proj matrix
        w_q, w_k, w_v = ref.in_proj_weight.chunk(3)
        b_q, b_k, b_v = ref.in_proj_bias.chunk(3)
        for lin, w, b in [(ours.w_q, w_q, b_q), (ours.w_k, w_k, b_k), (ours.w_v, w_v, b_v),
                          (ours.w_o, ref.out_proj.weight, ref.out_proj.bias)]:
            lin.weight.copy_(w)
            lin.bias.copy_(b)
    x, mem = torch.randn(3, 5, d), torch.randn(3, 6, d)
    expected, expected_w = ref(x, mem, mem, average_attn_weights=False)
    assert torch.allclose(ours(x, mem), expected, **TOL)
    assert torch.allclose(ours.weights, expected_w, **TOL)
    # a causal mask: PyTorch's bool attn_mask marks positions that may NOT attend
    expected, _ = ref(x, x, x, attn_mask=~causal_mask(5))
    assert torch.allclose(ours(x, x, causal_mask(5)), expected, **TOL)


def test_grouped_kv_heads_equal_repeated_full_heads():
    d, h, g = 16, 4, 2
    grouped, full = MultiHeadAttention(d, h, n_kv_heads=g), MultiHeadAttention(d, h)
    with torch.no_grad():
        full.w_q.load_state_dict(grouped.w_q.state_dict())
        full.w_o.load_state_dict(grouped.w_o.state_dict())
        for big, small in [(full.w_k, grouped.w_k), (full.w_v, grouped.w_v)]:
            # each key/value head serves h // g consecutive query heads
            big.weight.copy_(small.weight.view(g, -1, d).repeat_interleave(h // g, 0).reshape(-1, d))
            big.bias.copy_(small.bias.view(g, -1).repeat_interleave(h // g, 0).reshape(-1))
    x = torch.randn(2, 5, d)
    assert torch.allclose(grouped(x, x), full(x, x), **TOL)


def test_layer_norm_equals_nn_layernorm_biased_variance():
    x = torch.randn(4, 6, 10) * 3 + 1
    ours, ref = LayerNorm(10), nn.LayerNorm(10)
    with torch.no_grad():
        ref.weight.uniform_()
        ref.bias.uniform_()
        ours.gamma.copy_(ref.weight)
        ours.beta.copy_(ref.bias)
    assert torch.allclose(ours(x), ref(x), **TOL)


def test_encoder_layer_equals_nn_transformerencoderlayer():
    d, h, d_ff = 16, 4, 32
    ref = nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, batch_first=True)  # post-norm, ReLU
    ours = EncoderLayer(d, h, FeedForward(d, d_ff), dropout=0.0)
    with torch.no_grad():
        w_q, w_k, w_v = ref.self_attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = ref.self_attn.in_proj_bias.chunk(3)
        pairs = [(ours.attn.w_q, w_q, b_q), (ours.attn.w_k, w_k, b_k), (ours.attn.w_v, w_v, b_v),
                 (ours.attn.w_o, ref.self_attn.out_proj.weight, ref.self_attn.out_proj.bias),
                 (ours.ffn.w_1, ref.linear1.weight, ref.linear1.bias), (ours.ffn.w_2, ref.linear2.weight, ref.linear2.bias)]
        for lin, w, b in pairs:
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        for mine, theirs in [(ours.norm1, ref.norm1), (ours.norm2, ref.norm2)]:
            mine.gamma.copy_(theirs.weight)
            mine.beta.copy_(theirs.bias)
    ref.eval()  # its fast path is for inference; results are the same math
    x = torch.randn(2, 7, d)
    keep = padding_mask(torch.tensor([7, 5]), 7)
    expected = ref(x, src_key_padding_mask=~keep[:, 0, 0, :])
    assert torch.allclose(ours(x, keep)[0], expected[0], **TOL)
    assert torch.allclose(ours(x, keep)[1, :5], expected[1, :5], **TOL)  # padded rows are undefined in ref


@given(st.floats(0.0, 0.9), st.booleans())
@settings(max_examples=25)
def test_label_smoothing_equals_cross_entropy(eps, ignore):
    logits, target = torch.randn(9, 6), torch.randint(0, 6, (9,))
    target[0] = 2
    ref = nn.CrossEntropyLoss(label_smoothing=eps, ignore_index=2 if ignore else -100)
    ours = label_smoothing_loss(logits, target, eps, ignore_index=2 if ignore else None)
    assert torch.allclose(ours, ref(logits, target), **TOL)


def test_sinusoidal_encoding_matches_the_formula():
    pe = sinusoidal_encoding(50, 16)
    pos, i = 37, 3
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-5)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-5)


def test_noam_rate_peaks_at_warmup():
    rates = [noam_rate(s, 512, 4000) for s in range(1, 20001)]
    assert max(range(len(rates)), key=rates.__getitem__) + 1 == 4000
    assert math.isclose(rates[3999], 512 ** -0.5 * 4000 ** -0.5)


def test_transformer_shapes_and_swappable_parts():
    for pos in (SinusoidalPositions, LearnedPositions):
        model = Transformer(11, 13, d_model=16, n_heads=4, d_ff=32, n_layers=2, n_kv_heads=2, pos_encoding=pos)
        src, tgt = torch.randint(0, 11, (3, 7)), torch.randint(0, 13, (3, 5))
        assert model(src, tgt, padding_mask(torch.tensor([7, 6, 2]), 7)).shape == (3, 5, 13)


def test_decoder_is_causal():
    model = Transformer(11, 13, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout=0.0).eval()
    src, tgt = torch.randint(0, 11, (1, 6)), torch.randint(0, 13, (1, 5))
    changed = tgt.clone()
    changed[0, 3] = (tgt[0, 3] + 1) % 13
    a, b = model(src, tgt), model(src, changed)
    assert torch.allclose(a[0, :3], b[0, :3], **TOL) and not torch.allclose(a[0, 3], b[0, 3])


@pytest.mark.parametrize("call, message", [
    (lambda: MultiHeadAttention(10, 3), "divisible by n_heads"),
    (lambda: MultiHeadAttention(16, 4, n_kv_heads=3), "multiple of n_kv_heads"),
    (lambda: scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 5)), "shapes do not fit"),
    (lambda: scaled_dot_product_attention(torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 4),
                                          torch.ones(3, 4, dtype=torch.bool)), "does not broadcast"),
    (lambda: scaled_dot_product_attention(torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 4),
                                          torch.ones(3, 5)), "bool tensor"),
    (lambda: causal_mask(0), "positive integer"),
    (lambda: padding_mask(torch.tensor([0, 3]), 3), "values in 1..3"),
    (lambda: sinusoidal_encoding(5, 7), "even"),
    (lambda: SinusoidalPositions(8, max_len=4)(torch.zeros(1, 5, 8)), "exceeds max_len"),
    (lambda: noam_rate(0, 16), ">= 1"),
    (lambda: label_smoothing_loss(torch.randn(3, 4), torch.zeros(3, dtype=torch.long), 1.0), r"\[0, 1\)"),
    (lambda: label_smoothing_loss(torch.randn(3, 4), torch.zeros(4, dtype=torch.long), 0.1), "expected logits"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_translator_greedy_decode_agrees_with_teacher_forcing():
    from mlf.seq2seq import greedy_decode
    from mlf.transformer import Translator

    model = Translator(9, 7, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout=0.0).eval()
    src, src_len = torch.randint(3, 9, (3, 6)), torch.tensor([6, 4, 2])
    hyps, alpha = greedy_decode(model, src, src_len, bos=1, eos=2, max_len=5)
    assert alpha.shape[0] == 3 and torch.allclose(alpha.sum(-1), torch.ones_like(alpha.sum(-1)), atol=1e-5)
    assert torch.all(alpha[1, :, 4:] == 0)  # padding keys get no attention
    for b, h in enumerate(hyps):  # feeding the greedy output back reproduces its argmaxes
        tgt_in = torch.tensor([[1] + h[:-1]]) if h else torch.tensor([[1]])
        logits, _ = model(src[b:b + 1], src_len[b:b + 1], tgt_in)
        assert logits.argmax(-1)[0].tolist()[: len(h)] == h[: tgt_in.shape[1]]


def test_train_follows_the_schedule():
    from mlf.seq2seq import Batch, train
    from mlf.transformer import Translator

    model = Translator(9, 7, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout=0.0)
    batch = Batch(torch.randint(3, 9, (4, 5)), torch.tensor([5, 5, 3, 2]), torch.randint(1, 7, (4, 4)),
                  torch.randint(2, 7, (4, 4)))
    rates = []
    losses = train(model, lambda step: batch, 5, lr=1.0, desc="test",
                   schedule=lambda s: rates.append(s) or noam_rate(s, 16, 2), label_smoothing=0.1)
    assert len(losses) == 5 and rates == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("d_model", [16, 32, 128])
def test_scaled_embeddings_start_at_unit_rms_so_positions_are_not_drowned(d_model):
    # paper §3.4 multiplies embeddings by sqrt(d_model); with the N(0, 1/d_model) init (tensor2tensor,
    # fairseq) the product has unit rms, where PyTorch's N(0, 1) default would give sqrt(d_model)
    model = Transformer(2000, 3000, d_model=d_model, n_heads=4, d_ff=32, n_layers=1)
    positions = sinusoidal_encoding(64, d_model)  # (64, d_model), rms 1/sqrt(2)
    for embedding in (model.src_embed, model.tgt_embed):
        scaled = embedding.weight.detach() * math.sqrt(d_model)  # (V, d_model)
        rms = scaled.pow(2).mean().sqrt().item()
        assert abs(rms - 1.0) < 0.05
        share = positions.pow(2).mean().item() / (positions.pow(2).mean().item() + rms ** 2)
        assert 0.3 < share < 0.37  # position is a third of the input's variance (1.5% at N(0, 1), d_model = 32)
        assert abs(scaled.mean().item()) < 0.05
