"""The book's language model: GPT-2's logits, the key/value cache, decoding, brief
training, longer contexts, bad input."""
import pytest
import torch

from mlf.gpt import (GPT, GPTConfig, cosine_rate, generate, loss_by_position,
                     mean_loss, pack_tokenizer, random_windows, temperature, to_gpt2,
                     train_steps, unpack_tokenizer, with_context)

SMALL = dict(vocab_size=300, context=32, d_model=48, n_heads=4, n_layers=2, d_ff=96)


def small(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(**(SMALL | kw))).eval()


def ids(b=3, t=20, seed=0):
    return torch.randint(0, 300, (b, t), generator=torch.Generator().manual_seed(seed))


def test_logits_equal_hugging_face_gpt2():
    model = small()
    x = ids()
    with torch.no_grad():
        assert torch.allclose(model(x), to_gpt2(model)(x).logits, atol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary", "none"])
@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
def test_cached_decoding_equals_a_full_forward_pass(positions, n_kv_heads):
    model = small(positions=positions, n_kv_heads=n_kv_heads)
    x = ids()
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache()
        steps = [model(x[:, :7], cache)]
        steps += [model(x[:, t:t + 1], cache) for t in range(7, 20)]
    assert torch.allclose(full, torch.cat(steps, dim=1), atol=1e-5)
    # only h_kv heads are stored
    assert cache[0].k.shape == (3, n_kv_heads or 4, 20, 12)


def test_generate_with_and_without_cache_agree():
    model = small()
    prompt = ids(t=4)
    assert torch.equal(generate(model, prompt, 20),
                       generate(model, prompt, 20, use_cache=False))
    g = [torch.Generator().manual_seed(5) for _ in range(2)]
    hot = temperature(1.5)
    assert torch.equal(generate(model, prompt, 10, hot, g[0]),
                       generate(model, prompt, 10, hot, g[1], use_cache=False))


def test_tied_weights_and_causality():
    model = small()
    assert not hasattr(model, "head")  # the output projection is the embedding
    x = ids(b=1)
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 300
    with torch.no_grad():
        assert torch.allclose(model(x)[0, :10], model(y)[0, :10], atol=1e-6)


def test_tokenizer_round_trip_through_tensors():
    from mlf.bytelevel import GPT2_PATTERN, ByteLevelBPE

    bpe = ByteLevelBPE.train("to be or not to be, that is the question", 270,
                             GPT2_PATTERN)
    again = unpack_tokenizer(pack_tokenizer(bpe))
    assert again.ranks == bpe.ranks and again.pattern == bpe.pattern


@pytest.mark.parametrize("make, match", [
    (lambda m: m(torch.zeros(1, 33, dtype=torch.long)), "context"),
    (lambda m: m(torch.full((1, 4), 300)), "0..299"),
    (lambda m: m(torch.zeros(1, 4)), "torch.long"),
    (lambda m: m(torch.zeros(4, dtype=torch.long)), "batch, time"),
    (lambda m: generate(m, torch.zeros(1, 30, dtype=torch.long), 5), "context"),
    (lambda m: generate(m, torch.zeros(1, 3, dtype=torch.long), -1), "max_new_tokens"),
    (lambda m: temperature(0), "positive"),
])
def test_bad_input_is_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make(small())


@pytest.mark.parametrize("kw, match", [({"n_heads": 5}, "divisible"),
                                       ({"n_kv_heads": 3}, "multiple"),
                                       ({"positions": "alibi"}, "positions"),
                                       ({"d_model": 0}, "d_model")])
def test_bad_configs_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        GPT(GPTConfig(**(SMALL | kw)))


def stream(n=3000, seed=0):
    """A token stream with structure to learn: runs of a repeated short pattern."""
    g = torch.Generator().manual_seed(seed)
    pattern = torch.randint(0, 300, (7,), generator=g)
    return pattern.repeat(n // 7 + 1)[:n]


def test_train_steps_learns_and_is_deterministic():
    data = stream()
    runs = []
    for _ in range(2):
        model = small(context=16)
        runs.append(train_steps(model, data, 40, batch=8, lr=3e-3, warmup=5,
                                generator=torch.Generator().manual_seed(1)))
    assert runs[0] == runs[1]  # same seeds, same run
    assert sum(runs[0][-5:]) / 5 < 0.5 * runs[0][0]  # a repeated pattern is learned
    windows = random_windows(data, 4, 17, torch.Generator().manual_seed(2))
    assert mean_loss(model, windows) < 0.5 * runs[0][0]
    assert model.training is False  # train_steps restores the mode it found


def test_train_steps_trains_only_params_and_calls_back():
    model, data, seen = small(context=16), stream(), []
    frozen = model.embed.weight.detach().clone()
    params = [p for n, p in model.named_parameters() if n.startswith("blocks.1.")]
    train_steps(model, data, 3, batch=2, params=params,
                generator=torch.Generator().manual_seed(0),
                callback=lambda step, m: seen.append(step))
    assert torch.equal(model.embed.weight, frozen) and seen == [1, 2, 3]


def test_cosine_rate_warms_up_then_decays_to_the_floor():
    rates = [cosine_rate(s, 100, 1e-3, warmup=10) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert cosine_rate(100, 100, 1e-3, warmup=10) == pytest.approx(1e-4)


def test_loss_by_position_averages_to_the_mean_loss():
    model, windows = small(), ids(b=4, t=21)
    per_position = loss_by_position(model, windows)
    assert per_position.shape == (20,)
    assert per_position.mean().item() == pytest.approx(mean_loss(model, windows),
                                                       abs=1e-5)


@pytest.mark.parametrize("positions", ["sinusoidal", "rotary", "none"])
def test_with_context_reads_longer_inputs_and_keeps_the_start(positions):
    model = small(positions=positions)
    if positions == "sinusoidal":
        with torch.no_grad():
            model.pos.pe.mul_(0.1)  # a rescaled table stays rescaled
    long = with_context(model, 64)
    x = ids(b=2, t=50)
    with torch.no_grad():
        assert torch.allclose(long(x)[:, :32], model(x[:, :32]), atol=1e-5)
    assert long.cfg.context == 64 and model.cfg.context == 32  # the original is kept


def test_with_context_scales_rotary_positions():
    model = small(positions="rotary")
    half = with_context(model, 64, rope_scale=0.5)
    assert half.rotate.scale == 0.5 and model.rotate.scale == 1.0
    x = ids(b=1, t=40)
    with torch.no_grad():
        assert not torch.allclose(half(x)[:, :32], model(x[:, :32]), atol=1e-3)


@pytest.mark.parametrize("make, match", [
    (lambda m: with_context(m, 64), "learned positions stop"),
    (lambda m: with_context(m, 16, rope_scale=0.5), "rotary"),
    (lambda m: with_context(m, 0), "context"),
    (lambda m: train_steps(m, stream(), 0), "steps"),
    (lambda m: train_steps(m, stream(), 2, params=[]), "nothing to train"),
    (lambda m: train_steps(m, stream(n=20), 2), "too few"),
    (lambda m: random_windows(stream().float(), 2, 5), "1-d tensor of token ids"),
    (lambda m: mean_loss(m, torch.zeros(3, 1, dtype=torch.long)), "T >= 1"),
])
def test_bad_training_and_context_input_is_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make(small())
