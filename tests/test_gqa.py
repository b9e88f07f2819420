"""Grouped-query attention: the grouped computation against PyTorch's, checkpoint
conversion, the key/value cache's size, bad input."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf.gpt import GPT, GPTConfig, generate
from mlf.gqa import (
    convert,
    convert_attention,
    grouped_attention,
    kv_cache_bytes,
    pool_heads,
)
from mlf.transformer import MultiHeadAttention, causal_mask
from torch.nn import functional as F

SMALL = {"vocab_size": 300, "context": 32, "d_model": 48, "n_heads": 4, "n_layers": 2,
         "d_ff": 96}


def small(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(**(SMALL | kw))).eval()


def ids(b=3, t=20, seed=0):
    return torch.randint(0, 300, (b, t), generator=torch.Generator().manual_seed(seed))


def qkv(b, h, g, t_q, t_k, d, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, t_q, d, generator=gen),
            torch.randn(b, g, t_k, d, generator=gen),
            torch.randn(b, g, t_k, d, generator=gen))


@settings(max_examples=30, deadline=None)
@given(h_and_g=st.sampled_from([(1, 1), (4, 1), (4, 2), (4, 4), (8, 2), (6, 3)]),
       b=st.integers(1, 3), t_q=st.integers(1, 6), extra=st.integers(0, 5),
       d=st.sampled_from([1, 4, 8]), masked=st.booleans(), seed=st.integers(0, 99))
def test_grouped_attention_equals_pytorch_enable_gqa(h_and_g, b, t_q, extra, d, masked,
                                                      seed):
    h, g = h_and_g
    t_k = t_q + extra  # queries are the last t_q of t_k positions, as with a cache
    q, k, v = qkv(b, h, g, t_q, t_k, d, seed)
    mask = None
    if masked:  # causal over the cached + new positions: no row is fully masked
        mask = torch.arange(t_k)[None, :] <= (extra + torch.arange(t_q))[:, None]
    ours = grouped_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    assert torch.allclose(ours, ref, atol=1e-5)
    # and the MultiHeadAttention convention: copy each key/value head h / G times
    rep = grouped_attention(q, k.repeat_interleave(h // g, 1),
                            v.repeat_interleave(h // g, 1), mask)
    assert torch.allclose(ours, rep, atol=1e-5)


def test_multi_head_attention_with_groups_equals_pytorch():
    torch.manual_seed(0)
    attn = MultiHeadAttention(48, 8, 2).eval()
    x = torch.randn(2, 10, 48)
    b, t, d_k = 2, 10, 6
    q = attn.w_q(x).view(b, t, 8, d_k).transpose(1, 2)
    k = attn.w_k(x).view(b, t, 2, d_k).transpose(1, 2)
    v = attn.w_v(x).view(b, t, 2, d_k).transpose(1, 2)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    ref = attn.w_o(ref.transpose(1, 2).reshape(b, t, 48))
    with torch.no_grad():
        assert torch.allclose(attn(x, x, causal_mask(t)), ref, atol=1e-5)


def test_grouping_is_consecutive_query_heads():
    # query head i reads key/value head i // (h / G): heads 0, 1 -> 0; 2, 3 -> 1
    q, k, v = qkv(1, 4, 2, 3, 3, 4)
    out = grouped_attention(q, k, v)
    for i in range(4):
        one = grouped_attention(q[:, i:i + 1], k[:, i // 2:i // 2 + 1],
                                v[:, i // 2:i // 2 + 1])
        assert torch.allclose(out[:, i], one[:, 0], atol=1e-6)


def test_pool_heads_mean_first_random():
    w = torch.arange(4 * 2 * 3, dtype=torch.float32).view(8, 3)  # 4 heads, d_k = 2
    mean = pool_heads(w, 4, 2, "mean")
    assert torch.equal(mean[:2], (w[0:2] + w[2:4]) / 2)  # group 0: heads 0, 1
    assert torch.equal(mean[2:], (w[4:6] + w[6:8]) / 2)  # group 1: heads 2, 3
    first = pool_heads(w, 4, 2, "first")
    assert torch.equal(first, torch.cat([w[0:2], w[4:6]]))
    assert torch.equal(pool_heads(w, 4, 4, "mean"), w)
    assert torch.equal(pool_heads(w, 4, 1, "mean"), w.view(4, 2, 3).mean(0))
    g = [torch.Generator().manual_seed(3) for _ in range(2)]
    r1, r2 = pool_heads(w, 4, 2, "random", g[0]), pool_heads(w, 4, 2, "random", g[1])
    assert torch.equal(r1, r2) and r1.shape == (4, 3)
    assert 0.005 < r1.std() < 0.05  # N(0, 0.02²), as GPT initialises
    bias = torch.arange(8.0)
    assert torch.equal(pool_heads(bias, 4, 2, "mean"), torch.tensor([1.0, 2, 5, 6]))
    assert torch.equal(pool_heads(bias, 4, 2, "random"), torch.zeros(4))


def test_convert_with_all_heads_is_the_same_model():
    model = small()
    x = ids()
    for method in ("mean", "first"):
        same = convert(model, 4, method)
        with torch.no_grad():
            assert torch.equal(same(x), model(x))
        assert same.cfg.n_kv_heads == 4


@pytest.mark.parametrize("groups", [1, 2])
def test_converted_model_matches_a_model_built_with_groups(groups):
    model = small()
    new = convert(model, groups, "mean")
    assert new.blocks[0].attn.h_kv == groups
    assert new.blocks[0].attn.w_k.weight.shape == (groups * 12, 48)
    # its weights load into a fresh GQA model of the same config: same layout
    fresh = GPT(new.cfg).eval()
    fresh.load_state_dict(new.state_dict())
    x = ids()
    with torch.no_grad():
        assert torch.equal(fresh(x), new(x))
        # the cache holds G heads, and cached decoding still equals a full pass
        cache = new.new_cache()
        steps = [new(x[:, :5], cache)] + [new(x[:, t:t + 1], cache)
                                          for t in range(5, 20)]
        assert torch.allclose(new(x), torch.cat(steps, 1), atol=1e-5)
    assert cache[0].k.shape == (3, groups, 20, 12)
    # the original is untouched
    assert model.blocks[0].attn.h_kv == 4 and model.cfg.n_kv_heads is None


def test_convert_leaves_the_global_random_state_alone():
    model = small()
    torch.manual_seed(7)
    convert(model, 2, "mean")
    after = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(3))


def test_random_conversion_is_seeded_and_differs_from_mean():
    model = small()
    a = convert(model, 2, "random", torch.Generator().manual_seed(1))
    b = convert(model, 2, "random", torch.Generator().manual_seed(1))
    m = convert(model, 2, "mean")
    assert torch.equal(a.blocks[0].attn.w_k.weight, b.blocks[0].attn.w_k.weight)
    assert not torch.equal(a.blocks[0].attn.w_k.weight, m.blocks[0].attn.w_k.weight)
    assert torch.equal(a.blocks[0].attn.w_k.bias, torch.zeros(24))


def test_kv_cache_bytes_count_what_the_cache_holds():
    for groups in (1, 2, 4):
        model = convert(small(), groups, "mean")
        cache = model.new_cache()
        with torch.no_grad():
            model(ids(b=3, t=20), cache)
        held = sum(t.nelement() * t.element_size() for c in cache for t in (c.k, c.v))
        assert held == kv_cache_bytes(2, groups, 12, 3, 20, bytes_per_value=4)
    assert kv_cache_bytes(4, 2, 20, 1, 128) * 4 == kv_cache_bytes(4, 8, 20, 1, 128)
    # Llama 2 70B: 80 layers, 8 key/value heads of 128, float16: 320 KiB per token
    assert kv_cache_bytes(80, 8, 128, 1, 1) == 320 * 1024


def test_generate_runs_with_a_converted_model():
    model = convert(small(), 1, "mean")
    out = generate(model, ids(b=2, t=4), 6)
    assert out.shape == (2, 10)


@pytest.mark.parametrize("make, error, match", [
    (lambda: pool_heads(torch.zeros(8, 3), 4, 3), ValueError, "must divide"),
    (lambda: pool_heads(torch.zeros(8, 3), 4, 0), ValueError, "positive integer"),
    (lambda: pool_heads(torch.zeros(8, 3), 4, 2, "max"), ValueError, "method"),
    (lambda: pool_heads(torch.zeros(6, 3), 4, 2), ValueError, "multiple of n_heads"),
    (lambda: pool_heads([1.0] * 8, 4, 2), ValueError, "tensor"),
    (lambda: convert(small(), 3), ValueError, "must divide"),
    (lambda: convert(small(), 8), ValueError, "must divide"),
    (lambda: convert(small(), 2, "median"), ValueError, "method"),
    (lambda: convert(torch.nn.Linear(2, 2), 2), TypeError, "mlf.gpt.GPT"),
    (lambda: convert(convert(small(), 2), 1), ValueError, "multi-head checkpoint"),
    (lambda: convert_attention("attn", 2), TypeError, "MultiHeadAttention"),
    (lambda: grouped_attention(*qkv(1, 4, 3, 2, 2, 4)), ValueError, "divide"),
    (lambda: grouped_attention(*qkv(1, 4, 2, 2, 2, 4)[:2], torch.zeros(1, 2, 3, 4)),
     ValueError, "shapes do not fit"),
    (lambda: grouped_attention(torch.zeros(4, 2, 4), *qkv(1, 4, 2, 2, 2, 4)[1:]),
     ValueError, "4-d tensor"),
    (lambda: kv_cache_bytes(4, 0, 20, 1, 128), ValueError, "n_kv_heads"),
    (lambda: kv_cache_bytes(4, 2, 20, 1, 128, bytes_per_value=2.0), ValueError,
     "bytes_per_value"),
])
def test_bad_input_is_rejected(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_grouped_attention_rejects_a_per_sequence_mask():
    q, k, v = qkv(2, 4, 2, 3, 3, 4)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        grouped_attention(q, k, v, torch.ones(2, 1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        grouped_attention(q, k, v, torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"broadcastable to \(T_q, T_k\) = \(3, 3\)"):
        grouped_attention(q, k, v, torch.ones(3, 4, dtype=torch.bool))


def test_grouped_attention_takes_a_broadcast_mask():
    q, k, v = qkv(2, 4, 2, 3, 5, 4)
    keys = torch.tensor([[True, True, False, True, False]])  # (1, T_k): mask keys
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, enable_gqa=True)
    assert torch.allclose(grouped_attention(q, k, v, keys), ref, atol=1e-5)


def test_a_fully_masked_query_row_is_nan_where_pytorch_gives_zero():
    # the one input on which ours and PyTorch's differ: a query may attend to nothing
    q, k, v = qkv(1, 4, 2, 2, 3, 4)
    mask = torch.tensor([[False, False, False], [True, True, False]])
    ours = grouped_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    assert ours[:, :, 0].isnan().all() and torch.equal(ref[:, :, 0],
                                                        torch.zeros_like(ref[:, :, 0]))
    assert torch.allclose(ours[:, :, 1], ref[:, :, 1], atol=1e-5)


def test_grouped_attention_reads_transposed_queries():
    # queries as MultiHeadAttention makes them: a transposed, non-contiguous view
    q, k, v = qkv(2, 4, 2, 5, 5, 3)
    q_t = q.transpose(1, 2).contiguous().transpose(1, 2)
    assert not q_t.is_contiguous()
    assert torch.allclose(grouped_attention(q_t, k, v), grouped_attention(q, k, v))
