"""Mixture of experts: routing, capacity, the balancing loss against transformers',
batched dispatch against a per-token loop, the GPT seam, bad input."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import moe
from mlf.gpt import GPTConfig, mean_loss
from transformers import SwitchTransformersConfig
from transformers.models.mixtral.modeling_mixtral import (
    load_balancing_loss_func as mixtral_loss,
)
from transformers.models.switch_transformers.modeling_switch_transformers import (
    SwitchTransformersSparseMLP,
)
from transformers.models.switch_transformers.modeling_switch_transformers import (
    load_balancing_loss_func as switch_loss,
)


def per_token(layer, x):
    """The MoE written as a loop over tokens and their choices."""
    gates, experts, _, _, keep, _ = layer.route(x)
    out = torch.zeros_like(x)
    for g in range(x.shape[0]):
        for t in range(x.shape[1]):
            for j in range(layer.k):
                if keep[g, t, j]:
                    out[g, t] += gates[g, t, j] * layer.expert(int(experts[g, t, j]),
                                                               x[g, t])
    return out


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), data=st.data(), b=st.integers(1, 3), t=st.integers(1, 9),
       cf=st.sampled_from([None, 0.25, 0.5, 1.0, 1.25, 2.0]), normalize=st.booleans(),
       seed=st.integers(0, 99))
def test_batched_dispatch_equals_per_token_loop(n, data, b, t, cf, normalize, seed):
    k = data.draw(st.integers(1, n))
    torch.manual_seed(seed)
    layer = moe.MoE(6, 5, n, k, cf, normalize=normalize)
    x = torch.randn(b, t, 6)
    assert torch.allclose(layer(x), per_token(layer, x), atol=1e-5)
    assert layer(x[0]).shape == (t, 6)  # one group
    assert torch.allclose(layer(x[0]), layer(x[:1])[0])


@pytest.mark.parametrize("capacity", [1, 2, 3, 20])
def test_equals_transformers_switch_layer(capacity):
    torch.manual_seed(0)
    n, d, d_ff, t = 4, 8, 16, 12
    layer = moe.MoE(d, d_ff, n, 1, capacity * n / t)
    assert layer.capacity(t) == capacity
    cfg = SwitchTransformersConfig(d_model=d, d_ff=d_ff, num_experts=n,
                                   expert_capacity=layer.capacity(t),
                                   dense_act_fn="relu", router_jitter_noise=0.0)
    hf = SwitchTransformersSparseMLP(cfg).eval()
    with torch.no_grad():
        layer.b_1.zero_()
        layer.b_2.zero_()  # Switch's experts have no biases
        hf.router.classifier.weight.copy_(layer.router.w_g.weight)
        for i in range(n):
            hf.experts[f"expert_{i}"].wi.weight.copy_(layer.w_1[i].T)
            hf.experts[f"expert_{i}"].wo.weight.copy_(layer.w_2[i].T)
        x = torch.randn(3, t, d)
        ours = layer(x)
        assert torch.allclose(ours, hf(x), atol=1e-6)
    if capacity < 3:
        assert layer.dropped > 0 and (ours.abs().sum(-1) == 0).any()


def test_expert_capacity():
    assert moe.expert_capacity(64, 4, 1, 1.25) == 20  # not 21 from float rounding
    assert moe.expert_capacity(10, 4, 1, 1.0) == 3
    assert moe.expert_capacity(10, 4, 2, 1.0) == 5
    assert moe.expert_capacity(10, 4, 1, None) == 10
    assert moe.expert_capacity(3, 8, 1, 0.1) == 1


def test_dispatch_slots_in_position_order():
    experts = torch.tensor([[[0], [1], [0], [0], [1]]])
    slot, keep = moe.dispatch(experts, 2, 2)
    assert slot.flatten().tolist() == [0, 0, 1, 2, 1]
    assert keep.flatten().tolist() == [True, True, True, False, True]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), data=st.data(), t=st.integers(1, 12),
       capacity=st.integers(1, 6), seed=st.integers(0, 99))
def test_dispatch_is_causal(n, data, t, capacity, seed):
    # at a fixed capacity, tokens after t change neither slot nor keep up to t
    k = data.draw(st.integers(1, n))
    g = torch.Generator().manual_seed(seed)
    experts = torch.rand(2, t, n, generator=g).argsort(-1)[..., :k]  # distinct
    slot, keep = moe.dispatch(experts, n, capacity)
    for u in range(1, t + 1):
        slot_u, keep_u = moe.dispatch(experts[:, :u], n, capacity)
        assert torch.equal(slot_u, slot[:, :u]) and torch.equal(keep_u, keep[:, :u])


def test_moe_layer_is_causal_at_equal_capacity():
    torch.manual_seed(0)
    layer = moe.MoE(6, 5, 3, 1, 0.5)  # C = ceil(0.5 t / 3) = 2 for t = 7 to 12
    x = torch.randn(2, 12, 6)
    full = layer(x)
    assert layer.dropped > 0
    for t in range(7, 12):
        assert layer.capacity(t) == layer.capacity(12)
        assert torch.allclose(layer(x[:, :t]), full[:, :t], atol=1e-6)


def test_ties_go_to_the_lower_index_as_transformers():
    # a zero router (the noisy router's start) ties every expert: transformers'
    # argmax sends every token to expert 0, and so must we, drops included
    n, d, d_ff, t = 4, 8, 16, 12
    torch.manual_seed(0)
    layer = moe.MoE(d, d_ff, n, 1, 1.0)
    cfg = SwitchTransformersConfig(d_model=d, d_ff=d_ff, num_experts=n,
                                   expert_capacity=layer.capacity(t),
                                   dense_act_fn="relu", router_jitter_noise=0.0)
    hf = SwitchTransformersSparseMLP(cfg).eval()
    with torch.no_grad():
        layer.router.w_g.weight.zero_()
        layer.b_1.zero_()
        layer.b_2.zero_()
        hf.router.classifier.weight.zero_()
        for i in range(n):
            hf.experts[f"expert_{i}"].wi.weight.copy_(layer.w_1[i].T)
            hf.experts[f"expert_{i}"].wo.weight.copy_(layer.w_2[i].T)
        x = torch.randn(2, t, d)
        assert torch.allclose(layer(x), hf(x), atol=1e-6)
    assert layer.load.tolist() == [2 * t, 0, 0, 0]
    router = moe.Router(d, n, 3).eval()
    with torch.no_grad():
        router.w_g.weight.zero_()
    assert router(x)[1].reshape(-1, 3).tolist() == [[0, 1, 2]] * (2 * t)


def test_fit_modes_trains_on_the_model_device():
    g = torch.Generator().manual_seed(0)
    teacher = moe.modes_task(1, 4, 2, generator=g)[3]
    torch.manual_seed(0)
    layer = moe.MoE(4, 8, 2, 1, None)
    losses = moe.fit_modes(layer, teacher, steps=30, batch=32, alpha=0.1, generator=g)
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert not layer.training
    with pytest.raises(TypeError, match="nn.Module"):
        moe.fit_modes(lambda x: x, teacher, steps=3)
    with pytest.raises(ValueError, match="steps"):
        moe.fit_modes(layer, teacher, steps=0)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), b=st.integers(1, 3), t=st.integers(1, 10),
       seed=st.integers(0, 99))
def test_balancing_loss_equals_transformers(n, b, t, seed):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(b, t, n, generator=g)
    probs = logits.softmax(-1)
    top1 = probs.argmax(-1)
    # Switch averages over groups (rows); ours pools the tokens it is given
    ours = torch.stack([moe.load_balancing_loss(probs[i], top1[i, :, None])
                        for i in range(b)]).mean()
    assert torch.allclose(ours, switch_loss(probs, top1), atol=1e-5)
    # Mixtral pools all tokens and counts k choices per token: k times ours
    for k in range(1, n + 1):
        chosen = probs.topk(k, -1).indices
        ref = mixtral_loss((logits.reshape(-1, n),), n, k)
        assert torch.allclose(k * moe.load_balancing_loss(probs, chosen), ref,
                              atol=1e-5)


def test_balancing_loss_range():
    n, t = 4, 8
    uniform = torch.full((t, n), 1 / n)
    spread = torch.arange(t)[:, None] % n
    assert math.isclose(moe.load_balancing_loss(uniform, spread).item(), 1.0,
                        rel_tol=1e-6)
    onehot = torch.zeros(t, n)
    onehot[:, 0] = 1
    collapsed = moe.load_balancing_loss(onehot, torch.zeros(t, 1, dtype=torch.long))
    assert math.isclose(collapsed.item(), n, rel_tol=1e-6)


def test_importance_loss():
    experts = torch.tensor([[0], [1], [2], [3]])
    assert moe.importance_loss(torch.ones(4, 1), experts, 4).item() == 0
    assert moe.importance_loss(torch.ones(4, 1), torch.zeros(4, 1, dtype=torch.long),
                               4).item() > 1


def test_router_float32_and_noise():
    torch.manual_seed(0)
    router = moe.Router(8, 4, 2, noisy=True, normalize=True)
    x = torch.randn(5, 8).bfloat16()
    router.eval()
    gates, _, probs = router(x)
    assert probs.dtype == gates.dtype == torch.float32
    # zero-initialised W_g and W_noise: equal probabilities, gates 1/k
    assert torch.allclose(probs, torch.full_like(probs, 0.25))
    assert torch.allclose(gates.sum(-1), torch.ones(5))
    with torch.no_grad():
        router.w_noise.weight.fill_(1.0)
    router.train()
    a, b = router(x)[2], router(x)[2]
    assert not torch.equal(a, b)  # noise in training
    router.eval()
    assert torch.equal(router(x)[2], router(x)[2])  # none in eval


def test_moe_gpt_seam_and_aux_loss():
    cfg = GPTConfig(vocab_size=100, context=16, d_model=32, n_heads=4, n_layers=2,
                    d_ff=64)
    torch.manual_seed(0)
    model = moe.MoEGPT(cfg, n_experts=4, k=1, capacity_factor=1.25, alpha=0.5)
    ids = torch.randint(0, 100, (3, 17))
    model.train()
    with_aux = model.loss(ids)
    aux = model.aux_loss()
    model.eval()
    plain = model.loss(ids)
    assert torch.allclose(with_aux, plain + 0.5 * aux, atol=1e-5)
    assert all(isinstance(b.ffn, moe.MoE) for b in model.blocks)
    assert math.isfinite(mean_loss(model, ids))
    with_aux.backward()
    assert model.blocks[0].ffn.router.w_g.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, error", [
    ({"k": 5}, "at most n_experts"),
    ({"k": 0}, "positive integer"),
    ({"capacity_factor": 0.0}, "> 0"),
    ({"capacity_factor": -1.0}, "> 0"),
    ({"capacity_factor": float("inf")}, "finite"),
    ({"n_experts": 0}, "positive integer"),
])
def test_bad_arguments(kwargs, error):
    args = {"d_model": 4, "d_ff": 8, "n_experts": 4} | kwargs
    with pytest.raises(ValueError, match=error):
        moe.MoE(**args)


def test_bad_inputs():
    layer = moe.MoE(4, 8, 3)
    with pytest.raises(ValueError, match="d_model = 4"):
        layer(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="d_model"):
        layer(torch.randn(2, 2, 5, 4))
    with pytest.raises(TypeError, match="capacity_factor"):
        moe.MoE(4, 8, 3, capacity_factor="1")
    with pytest.raises(ValueError, match="share their leading shape"):
        moe.load_balancing_loss(torch.rand(5, 3), torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="at most n_experts"):
        moe.load_balancing_loss(torch.rand(5, 3), torch.zeros(5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        moe.dispatch(torch.zeros(5, 1), 3, 2)
    with pytest.raises(ValueError, match="0..2"):
        moe.dispatch(torch.full((1, 5, 1), 3), 3, 2)
    with pytest.raises(ValueError, match="same shape"):
        moe.importance_loss(torch.ones(3, 1), torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="alpha"):
        moe.MoEGPT(GPTConfig(vocab_size=10, context=4, d_model=8, n_heads=2,
                             n_layers=1, d_ff=8), 2, alpha=-1.0)
