"""mlf.transformer against PyTorch's own modules (copied weights, dropout off), and bad
input."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from mlf.transformer import (DecoderLayer, EncoderLayer, FeedForward, KVCache,
                             LayerNorm, LearnedPositions, MultiHeadAttention,
                             SinusoidalPositions, Transformer, Translator, causal_mask,
                             label_smoothing_loss, noam_rate, padding_mask,
                             scaled_dot_product_attention, sinusoidal_encoding)

TOL = dict(atol=1e-5, rtol=1e-5)  # float32 agreement with PyTorch's kernels


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def copy_attention(ours: MultiHeadAttention, ref: nn.MultiheadAttention):
    """nn.MultiheadAttention stacks W^Q, W^K, W^V in one in_proj matrix."""
    with torch.no_grad():
        for lin, w, b in zip([ours.w_q, ours.w_k, ours.w_v],
                             ref.in_proj_weight.chunk(3), ref.in_proj_bias.chunk(3)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ours.w_o.load_state_dict(ref.out_proj.state_dict())


def copy_norm(ours: LayerNorm, ref: nn.LayerNorm):
    with torch.no_grad():
        ours.gamma.copy_(ref.weight)
        ours.beta.copy_(ref.bias)


def randomise_norms(module: nn.Module):
    """PyTorch starts LayerNorm at gamma = 1, beta = 0; other values test copying."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def test_attention_equals_torch_sdpa_with_masks():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    keys = padding_mask(torch.tensor([7, 4]), 7)  # (2, 1, 1, 7)
    for mask in (None, keys, keys & causal_mask(7)[-5:]):
        ours, weights = scaled_dot_product_attention(q, k, v, mask)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert torch.allclose(ours, expected, **TOL)
        assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5), **TOL)


def test_multi_head_attention_equals_nn_multiheadattention():
    d, h = 16, 4
    ours, ref = MultiHeadAttention(d, h), nn.MultiheadAttention(d, h, batch_first=True)
    copy_attention(ours, ref)
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
            w = small.weight.view(g, -1, d).repeat_interleave(h // g, 0).reshape(-1, d)
            big.weight.copy_(w)
            b = small.bias.view(g, -1).repeat_interleave(h // g, 0).reshape(-1)
            big.bias.copy_(b)
    x = torch.randn(2, 5, d)
    assert torch.allclose(grouped(x, x), full(x, x), **TOL)


def test_cached_attention_equals_one_causal_pass():
    d, h = 16, 4
    attn = MultiHeadAttention(d, h, n_kv_heads=2)
    x = torch.randn(2, 6, d)
    full = attn(x, x, causal_mask(6))
    cache = KVCache()
    steps = [attn(x[:, :2], x[:, :2], causal_mask(2), cache=cache)]
    for t in range(2, 6):  # one new position at a time, attending over the cache
        steps.append(attn(x[:, t:t + 1], x[:, t:t + 1], cache=cache))
    assert cache.length == 6 and cache.k.shape == (2, 2, 6, d // h)
    assert torch.allclose(torch.cat(steps, dim=1), full, **TOL)


def test_layer_norm_equals_nn_layernorm_biased_variance():
    x = torch.randn(4, 6, 10) * 3 + 1
    ours, ref = LayerNorm(10), nn.LayerNorm(10)
    with torch.no_grad():
        ref.weight.uniform_()
        ref.bias.uniform_()
    copy_norm(ours, ref)
    assert torch.allclose(ours(x), ref(x), **TOL)


def encoder_pair(d, h, d_ff, norm_first):
    ref = nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, batch_first=True,
                                     norm_first=norm_first)  # ReLU, as the paper
    randomise_norms(ref)
    ours = EncoderLayer(d, h, FeedForward(d, d_ff), dropout=0.0, norm_first=norm_first)
    copy_attention(ours.attn, ref.self_attn)
    ours.ffn.w_1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.w_2.load_state_dict(ref.linear2.state_dict())
    copy_norm(ours.norm1, ref.norm1)
    copy_norm(ours.norm2, ref.norm2)
    return ours, ref.eval()  # its fast path is for inference; the same math


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_nn_transformerencoderlayer_with_padding(norm_first):
    d, h, d_ff = 16, 4, 32
    ours, ref = encoder_pair(d, h, d_ff, norm_first)
    x, lengths = torch.randn(3, 7, d), torch.tensor([7, 5, 2])
    keep = padding_mask(lengths, 7)  # (B, 1, 1, 7)
    expected = ref(x, src_key_padding_mask=~keep[:, 0, 0, :])  # True = padding there
    got = ours(x, keep)
    real = keep[:, 0, 0, :]  # (B, 7): padded rows are undefined in the reference
    assert torch.allclose(got[real], expected[real], **TOL)
    # the mask matters: without it the short sentences attend to their padding
    assert not torch.allclose(ours(x)[real], expected[real], atol=1e-3)


def decoder_pair(d, h, d_ff, norm_first):
    ref = nn.TransformerDecoderLayer(d, h, d_ff, dropout=0.0, batch_first=True,
                                     norm_first=norm_first)
    randomise_norms(ref)
    ours = DecoderLayer(d, h, FeedForward(d, d_ff), dropout=0.0, norm_first=norm_first)
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    ours.ffn.w_1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.w_2.load_state_dict(ref.linear2.state_dict())
    for mine, theirs in [(ours.norm1, ref.norm1), (ours.norm2, ref.norm2),
                         (ours.norm3, ref.norm3)]:
        copy_norm(mine, theirs)
    return ours, ref.eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_nn_transformerdecoderlayer(norm_first):
    d, h, d_ff, t, s = 16, 4, 32, 6, 7
    ours, ref = decoder_pair(d, h, d_ff, norm_first)
    y, memory = torch.randn(3, t, d), torch.randn(3, s, d)
    src_keep = padding_mask(torch.tensor([7, 4, 1]), s)  # (B, 1, 1, S)
    tgt_len = torch.tensor([6, 3, 5])
    self_mask = causal_mask(t) & padding_mask(tgt_len, t)  # (B, 1, T, T)
    expected = ref(y, memory, tgt_mask=~causal_mask(t),  # PyTorch: True = hidden
                   tgt_key_padding_mask=~padding_mask(tgt_len, t)[:, 0, 0],
                   memory_key_padding_mask=~src_keep[:, 0, 0])
    got = ours(y, memory, self_mask, src_keep)
    real = padding_mask(tgt_len, t)[:, 0, 0]  # (B, T): real target positions
    assert torch.allclose(got[real], expected[real], **TOL)
    # either mask matters: leaving one out changes the real positions
    no_memory_mask = ours(y, memory, self_mask)
    assert not torch.allclose(no_memory_mask[real], expected[real], atol=1e-3)
    no_causal = ours(y, memory, padding_mask(tgt_len, t), src_keep)
    assert not torch.allclose(no_causal[real], expected[real], atol=1e-3)


def test_pre_norm_stack_equals_nn_transformer_encoder_with_final_norm():
    d, h, d_ff = 16, 4, 32
    model = Transformer(20, 20, d_model=d, n_heads=h, d_ff=d_ff, n_layers=2,
                        dropout=0.0, norm_first=True).eval()
    layer = nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, batch_first=True,
                                       norm_first=True)
    ref = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(d),
                                enable_nested_tensor=False).eval()
    randomise_norms(ref)
    for ours, theirs in zip(model.encoder, ref.layers):
        copy_attention(ours.attn, theirs.self_attn)
        ours.ffn.w_1.load_state_dict(theirs.linear1.state_dict())
        ours.ffn.w_2.load_state_dict(theirs.linear2.state_dict())
        copy_norm(ours.norm1, theirs.norm1)
        copy_norm(ours.norm2, theirs.norm2)
    copy_norm(model.encoder_norm, ref.norm)
    src = torch.randint(0, 20, (2, 5))
    x = model.src_pos(model.src_embed(src) * math.sqrt(d))  # what the stack reads
    assert torch.allclose(model.encode(src), ref(x), **TOL)


@given(st.floats(0.0, 0.9), st.booleans())
@settings(max_examples=25)
def test_label_smoothing_equals_cross_entropy(eps, ignore):
    logits, target = torch.randn(9, 6), torch.randint(0, 6, (9,))
    target[0] = 2
    ref = nn.CrossEntropyLoss(label_smoothing=eps, ignore_index=2 if ignore else -100)
    ours = label_smoothing_loss(logits, target, eps, ignore_index=2 if ignore else None)
    assert torch.allclose(ours, ref(logits, target), **TOL)


def test_label_smoothing_ignores_targets_outside_the_classes():
    logits, target = torch.randn(4, 5), torch.tensor([1, -100, 3, -100])
    ref = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target)  # ignore_index -100
    assert torch.allclose(label_smoothing_loss(logits, target, 0.1, -100), ref, **TOL)


def test_sinusoidal_encoding_matches_the_formula():
    pe = sinusoidal_encoding(50, 16)
    pos, i = 37, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-5)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5)


def test_positions_with_an_offset_continue_the_sequence():
    for pos in (SinusoidalPositions(8, max_len=10), LearnedPositions(8, max_len=10)):
        x = torch.randn(2, 6, 8)
        assert torch.allclose(pos(x)[:, 4:], pos(x[:, 4:], offset=4), **TOL)


def test_learned_positions_std_scales_the_same_draw():
    torch.manual_seed(3)
    default = LearnedPositions(8, max_len=16)
    torch.manual_seed(3)
    small = LearnedPositions(8, max_len=16, std=0.5)
    assert torch.allclose(small.pe.weight, 0.5 * default.pe.weight)


def test_noam_rate_peaks_at_warmup():
    rates = [noam_rate(s, 512, 4000) for s in range(1, 20001)]
    assert max(range(len(rates)), key=rates.__getitem__) + 1 == 4000
    assert math.isclose(rates[3999], 512 ** -0.5 * 4000 ** -0.5)


def test_transformer_shapes_and_swappable_parts():
    for pos in (SinusoidalPositions, LearnedPositions):
        for norm_first in (False, True):
            model = Transformer(11, 13, d_model=16, n_heads=4, d_ff=32, n_layers=2,
                                n_kv_heads=2, pos_encoding=pos, norm_first=norm_first)
            src, tgt = torch.randint(0, 11, (3, 7)), torch.randint(0, 13, (3, 5))
            mask = padding_mask(torch.tensor([7, 6, 2]), 7)
            assert model(src, tgt, mask).shape == (3, 5, 13)


def test_default_model_is_post_norm_with_untied_weights():
    model = Transformer(11, 13, d_model=16, n_heads=4, d_ff=32)
    names = set(dict(model.named_parameters()))
    assert not any(n.startswith(("encoder_norm", "decoder_norm")) for n in names)
    assert model.generator.weight is not model.tgt_embed.weight


def test_weight_tying_shares_one_matrix():
    untied = Transformer(30, 30, d_model=16, n_heads=4, d_ff=32)
    tied = Transformer(30, 30, d_model=16, n_heads=4, d_ff=32, tie_output=True)
    shared = Transformer(30, 30, d_model=16, n_heads=4, d_ff=32, share_embeddings=True)
    assert tied.generator.weight is tied.tgt_embed.weight
    assert tied.src_embed.weight is not tied.tgt_embed.weight
    assert shared.src_embed.weight is shared.tgt_embed.weight is shared.generator.weight
    count = lambda m: sum(p.numel() for p in m.parameters())  # shared ones count once
    assert count(untied) - count(tied) == 30 * 16
    assert count(untied) - count(shared) == 2 * 30 * 16
    # the shared matrix starts at N(0, 1/d_model), as the embeddings do
    assert abs(shared.generator.weight.std().item() - 16 ** -0.5) < 0.05
    src, tgt = torch.randint(0, 30, (2, 4)), torch.randint(0, 30, (2, 3))
    loss = shared(src, tgt).sum()
    loss.backward()  # one gradient collects all three uses
    assert shared.tgt_embed.weight.grad is not None


def test_decoder_is_causal():
    model = Transformer(11, 13, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                        dropout=0.0).eval()
    src, tgt = torch.randint(0, 11, (1, 6)), torch.randint(0, 13, (1, 5))
    changed = tgt.clone()
    changed[0, 3] = (tgt[0, 3] + 1) % 13
    a, b = model(src, tgt), model(src, changed)
    assert torch.allclose(a[0, :3], b[0, :3], **TOL)
    assert not torch.allclose(a[0, 3], b[0, 3])


def _sdpa(q_shape, k_shape, v_shape, mask=None):
    q, k, v = torch.randn(*q_shape), torch.randn(*k_shape), torch.randn(*v_shape)
    return lambda: scaled_dot_product_attention(q, k, v, mask)


def _model(**kw):
    return Transformer(**(dict(src_vocab=11, tgt_vocab=13, d_model=16, n_heads=4,
                               d_ff=32) | kw))


def _smooth(target, eps, ignore_index=None):
    return label_smoothing_loss(torch.randn(3, 4), target, eps, ignore_index)


BAD_VALUES = [
    # attention
    (lambda: MultiHeadAttention(10, 3), "divisible by n_heads"),
    (lambda: MultiHeadAttention(16, 0), "n_heads must be a positive integer"),
    (lambda: MultiHeadAttention(0, 4), "d_model must be a positive integer"),
    (lambda: MultiHeadAttention(16, 4, n_kv_heads=3), "multiple of n_kv_heads"),
    (lambda: MultiHeadAttention(16, 4)(torch.randn(2, 5, 12), torch.randn(2, 5, 12)),
     r"x_q must be a \(batch, length, d_model=16\)"),
    (lambda: MultiHeadAttention(16, 4)(torch.randn(5, 16), torch.randn(5, 16)),
     "x_q must be a"),
    (lambda: MultiHeadAttention(16, 4)(torch.randn(2, 5, 16), torch.randn(3, 5, 16)),
     "same batch"),
    (lambda: MultiHeadAttention(16, 4)(torch.randn(2, 5, 16), torch.randn(2, 5, 16),
                                       torch.ones(5, 4, dtype=torch.bool)),
     "does not broadcast"),
    (_sdpa((2, 3, 4), (2, 3, 5), (2, 3, 5)), "shapes do not fit"),
    (_sdpa((2, 3, 4), (3, 5, 4), (3, 5, 4)), "shapes do not fit"),
    (_sdpa((4,), (5, 4), (5, 4)), "at least 2 dimensions"),
    (_sdpa((1, 3, 4), (1, 5, 4), (1, 5, 4), torch.ones(3, 4, dtype=torch.bool)),
     "does not broadcast"),
    (_sdpa((1, 3, 4), (1, 5, 4), (1, 5, 4), torch.ones(3, 5)), "bool tensor"),
    # masks
    (lambda: causal_mask(0), "positive integer"),
    (lambda: causal_mask(True), "positive integer"),
    (lambda: padding_mask(torch.tensor([0, 3]), 3), "values in 1..3"),
    (lambda: padding_mask(torch.tensor([2.0, 3.0]), 3), "integer tensor"),
    (lambda: padding_mask([2, 3], 3), "integer tensor"),
    (lambda: padding_mask(torch.tensor([2, 3]), 0), "t must be a positive integer"),
    # layers
    (lambda: LayerNorm(0), "d must be a positive integer"),
    (lambda: LayerNorm(8)(torch.randn(2, 3, 6)), "dimension of size 8"),
    (lambda: FeedForward(8, 16)(torch.randn(2, 3, 6)), "dimension of size 8"),
    (lambda: FeedForward(8, 0), "d_ff must be a positive integer"),
    (lambda: FeedForward(8, 16, dropout=-0.1),
     r"dropout must be a probability in \[0, 1\)"),
    (lambda: EncoderLayer(16, 4, FeedForward(16, 32), dropout=1.0), "dropout"),
    (lambda: DecoderLayer(16, 4, FeedForward(16, 32), dropout=-0.5), "dropout"),
    # positions
    (lambda: sinusoidal_encoding(5, 7), "even"),
    (lambda: sinusoidal_encoding(0, 8), "t must be a positive integer"),
    (lambda: sinusoidal_encoding(5, 0), "d_model must be a positive integer"),
    (lambda: SinusoidalPositions(8, max_len=4)(torch.zeros(1, 5, 8)), "exceed max_len"),
    (lambda: SinusoidalPositions(8)(torch.zeros(1, 5, 6)), "d_model=8"),
    (lambda: LearnedPositions(8, max_len=4)(torch.zeros(1, 3, 8), offset=2),
     "exceed max_len"),
    (lambda: LearnedPositions(8)(torch.zeros(1, 3, 8), offset=-1), "offset"),
    (lambda: LearnedPositions(8, std=-1.0), "std"),
    # the model
    (lambda: _model(d_model=0), "d_model must be a positive integer"),
    (lambda: _model(src_vocab=0), "src_vocab must be a positive integer"),
    (lambda: _model(n_heads=3), "divisible by n_heads"),
    (lambda: _model(n_layers=0), "n_layers must be a positive integer"),
    (lambda: _model(dropout=-0.1), "dropout"),
    (lambda: _model(d_model=16.0), "d_model must be a positive integer"),
    (lambda: _model(share_embeddings=True), "joint vocabulary"),
    (lambda: _model()(torch.tensor([[1, 11]]), torch.tensor([[1, 2]])),
     r"src holds token id 11, outside the vocabulary 0..10"),
    (lambda: _model()(torch.tensor([[1, 2]]), torch.tensor([[-1, 2]])),
     r"tgt holds token id -1, outside the vocabulary 0..12"),
    (lambda: _model()(torch.tensor([[1.0, 2.0]]), torch.tensor([[1, 2]])),
     "integer token ids"),
    (lambda: _model()(torch.tensor([1, 2]), torch.tensor([[1, 2]])),
     r"\(batch, length\)"),
    (lambda: Translator(11, 13, d_model=16, n_heads=4, d_ff=32)(
        torch.tensor([[1, 2, 3]]), torch.tensor([3, 2]), torch.tensor([[1]])),
     "src_len must be a tensor of 1 lengths"),
    # training pieces
    (lambda: noam_rate(0, 16), ">= 1"),
    (lambda: noam_rate(1, 0), "d_model must be a positive number"),
    (lambda: _smooth(torch.zeros(3, dtype=torch.long), 1.0), r"\[0, 1\)"),
    (lambda: _smooth(torch.zeros(4, dtype=torch.long), 0.1), "expected logits"),
    (lambda: _smooth(torch.tensor([0, 4, 1]), 0.1),
     r"class 4, outside 0..3 \(logits have 4 classes\)"),
    (lambda: _smooth(torch.tensor([0, -2, 1]), 0.1, -100), "class -2"),
    (lambda: _smooth(torch.tensor([0.0, 1.0, 1.0]), 0.1), "integer class indices"),
]


@pytest.mark.parametrize("call, message", BAD_VALUES)
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: EncoderLayer(16, 4, lambda x: x), "ffn must be an nn.Module"),
    (lambda: _model(pos_encoding="sinusoidal"), "pos_encoding must be callable"),
    (lambda: _model(rotate=3), "rotate must be callable"),
    (lambda: FeedForward(8, 16, activation="relu"), "activation must be callable"),
])
def test_wrong_kind_of_object_is_a_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_translator_greedy_decode_agrees_with_teacher_forcing():
    from mlf.seq2seq import greedy_decode

    model = Translator(9, 7, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                       dropout=0.0).eval()
    src, src_len = torch.randint(3, 9, (3, 6)), torch.tensor([6, 4, 2])
    hyps, alpha = greedy_decode(model, src, src_len, bos=1, eos=2, max_len=5)
    assert alpha.shape[0] == 3
    assert torch.allclose(alpha.sum(-1), torch.ones_like(alpha.sum(-1)), atol=1e-5)
    assert torch.all(alpha[1, :, 4:] == 0)  # padding keys get no attention
    for b, h in enumerate(hyps):  # feeding the greedy output back gives its argmaxes
        tgt_in = torch.tensor([[1] + h[:-1]]) if h else torch.tensor([[1]])
        logits, _ = model(src[b:b + 1], src_len[b:b + 1], tgt_in)
        assert logits.argmax(-1)[0].tolist()[: len(h)] == h[: tgt_in.shape[1]]


def test_train_follows_the_schedule():
    from mlf.seq2seq import Batch, train

    model = Translator(9, 7, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout=0.0)
    batch = Batch(torch.randint(3, 9, (4, 5)), torch.tensor([5, 5, 3, 2]),
                  torch.randint(1, 7, (4, 4)), torch.randint(2, 7, (4, 4)))
    rates = []
    losses = train(model, lambda step: batch, 5, lr=1.0, desc="test",
                   schedule=lambda s: rates.append(s) or noam_rate(s, 16, 2),
                   label_smoothing=0.1)
    assert len(losses) == 5 and rates == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("d_model", [16, 32, 128])
def test_scaled_embeddings_start_at_unit_rms_so_positions_are_not_drowned(d_model):
    # paper §3.4 multiplies embeddings by sqrt(d_model); with the N(0, 1/d_model) init
    # (tensor2tensor, fairseq) the product has unit rms, where PyTorch's N(0, 1) default
    # would give sqrt(d_model)
    model = Transformer(2000, 3000, d_model=d_model, n_heads=4, d_ff=32, n_layers=1)
    positions = sinusoidal_encoding(64, d_model)  # (64, d_model), rms 1/sqrt(2)
    for embedding in (model.src_embed, model.tgt_embed):
        scaled = embedding.weight.detach() * math.sqrt(d_model)  # (V, d_model)
        rms = scaled.pow(2).mean().sqrt().item()
        assert abs(rms - 1.0) < 0.05
        p = positions.pow(2).mean().item()
        share = p / (p + rms ** 2)
        # position is a third of the input's variance (1.5% at N(0, 1), d_model = 32)
        assert 0.3 < share < 0.37
        assert abs(scaled.mean().item()) < 0.05


def test_diagrams_draw_and_reject_bad_arguments():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlf.diagrams.transformer import draw_attention, draw_transformer

    for fig in (draw_transformer(), draw_transformer(annotate=False), draw_attention()):
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert texts and fig.axes[0].patches
        plt.close(fig)
    labels = " ".join(t.get_text() for t in draw_transformer().axes[0].texts)
    for block in ("Masked\nMulti-Head Attention", "Add & Norm", "Positional\nEncoding",
                  "(3) encoder-decoder"):
        assert block in labels
    plt.close("all")
    with pytest.raises(TypeError, match="annotate"):
        draw_transformer(annotate="yes")


def test_encoder_layer_eps_option_keeps_the_default():
    """The BERT chapter's ``eps`` option: 1e-5 by default (unchanged), passed on to
    both LayerNorms, and checked."""
    from mlf.transformer import EncoderLayer, FeedForward

    default = EncoderLayer(16, 2, FeedForward(16, 32))
    assert default.norm1.eps == default.norm2.eps == 1e-5
    bert_like = EncoderLayer(16, 2, FeedForward(16, 32), eps=1e-12)
    assert bert_like.norm1.eps == bert_like.norm2.eps == 1e-12
    x = torch.randn(2, 5, 16)
    ln = torch.nn.LayerNorm(16, eps=1e-12)
    assert torch.allclose(bert_like.norm1(x), ln(x), atol=1e-5)
    for bad in (0, -1e-5, "1e-5", True):
        with pytest.raises(ValueError, match="eps"):
            EncoderLayer(16, 2, FeedForward(16, 32), eps=bad)
