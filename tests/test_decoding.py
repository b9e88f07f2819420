"""Decoding: top-k and top-p filters against transformers' warpers (ties included),
samplers, beam search against an exhaustive search, repetition measures, bad input."""
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf.decoding import (
    beam_search,
    continuation_logprobs,
    distinct_n,
    ends_in_repetition,
    nucleus_size,
    sampler,
    top_k_filter,
    top_p_filter,
)
from mlf.gpt import GPT, GPTConfig, generate, temperature, to_gpt2
from transformers import TopKLogitsWarper, TopPLogitsWarper


def random_logits(g, batch, vocab, ties):
    if ties:  # a few distinct values, so many tokens share a probability
        levels = torch.randn(3, generator=g)
        return levels[torch.randint(0, 3, (batch, vocab), generator=g)]
    return torch.randn(batch, vocab, generator=g) * 5 * torch.rand(1, generator=g)


@pytest.mark.parametrize("ties", [False, True])
def test_filters_keep_what_transformers_keeps(ties):
    g = torch.Generator().manual_seed(1 + ties)
    for trial in range(240):
        vocab = [1, 2, 3, 7, 50, 2048][trial % 6]
        z = random_logits(g, 8, vocab, ties)
        p = [1.0, 0.5, 1e-3, float(torch.rand(1, generator=g))][trial % 4] or 0.5
        k = int(torch.randint(1, vocab + 3, (1,), generator=g))
        assert torch.equal(top_p_filter(z, p), TopPLogitsWarper(p)(None, z))
        assert torch.equal(top_k_filter(z, k), TopKLogitsWarper(k)(None, z))
        # whatever the order of tied tokens, the count and the mass kept are fixed
        flipped = z.flip(-1)
        ours, again = top_p_filter(z, p), top_p_filter(flipped, p).flip(-1)
        assert torch.equal(ours.isfinite().sum(-1), again.isfinite().sum(-1))
        assert torch.allclose(ours.softmax(-1).sum(-1), again.softmax(-1).sum(-1))


def test_filters_on_edges():
    # the mass of the two top tokens is exactly p: the nucleus stops there
    z = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.25)]])
    for p in (0.5, 0.75, 0.7500001, 1.0):
        assert torch.equal(top_p_filter(z, p), TopPLogitsWarper(p)(None, z))
    # -inf logits (already removed) stay removed; one-token vocabularies survive
    z = torch.tensor([[0.0, -math.inf, 1.0]])
    assert torch.equal(top_p_filter(z, 1.0).isinf(), torch.tensor([[False, True,
                                                                   False]]))
    assert top_k_filter(torch.zeros(2, 1), 5).isfinite().all()
    # a tie at the k-th place keeps every tied token (transformers' convention)
    assert nucleus_size(torch.zeros(1, 4), 1.0).item() == 4
    assert top_k_filter(torch.tensor([3.0, 1.0, 1.0, 1.0]), 2).isfinite().sum() == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=1, max_size=30),
       st.floats(0.01, 1.0))
def test_nucleus_is_the_smallest_set_reaching_p(values, p):
    z = torch.tensor(values)
    kept = top_p_filter(z, p).isfinite()
    probs = z.softmax(-1)
    assert probs[kept].max() == probs.max()  # a most probable token is always kept
    # every kept token is at least as probable as every removed one
    if (~kept).any():
        assert probs[kept].min() >= probs[~kept].max()
        # the kept mass reaches p (up to float32 rounding)
        assert probs[kept].sum() >= p - 1e-5
    # and without its least probable token it would not
    if kept.sum() > 1:
        assert probs[kept].sum() - probs[kept].min() < p + 1e-5


def test_nucleus_grows_with_p():
    z = torch.randn(16, 100, generator=torch.Generator().manual_seed(0))
    sizes = [nucleus_size(z, p) for p in (0.1, 0.5, 0.9, 0.99, 1.0)]
    assert all((a <= b).all() for a, b in itertools.pairwise(sizes))
    assert (sizes[-1] == 100).all()


def test_samplers_draw_inside_the_filter():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 50, generator=g).repeat(20, 1)  # (1280, 50)
    for options in ({"top_k": 3}, {"top_p": 0.3}, {"top_k": 10, "top_p": 0.5}):
        ids = sampler(**options)(z, g)
        kept = top_k_filter(z, options.get("top_k", 50))
        kept = top_p_filter(kept, options.get("top_p", 1.0)).isfinite()
        assert kept.gather(1, ids[:, None]).all()
    assert torch.equal(sampler(top_k=1)(z, g), z.argmax(-1))
    # plain temperature sampling is the book's earlier sampler, draw for draw
    a = sampler(temperature=0.8)(z, torch.Generator().manual_seed(5))
    assert torch.equal(a, temperature(0.8)(z, torch.Generator().manual_seed(5)))


def tiny(vocab=3, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, context=16, d_model=16, n_heads=2,
                         n_layers=1, d_ff=32)).eval()


def exhaustive(model, prompt, steps):
    """The best continuation by scoring every one of V^steps sequences."""
    vocab = model.cfg.vocab_size
    tails = torch.tensor(list(itertools.product(range(vocab), repeat=steps)))
    ids = torch.cat([prompt.expand(len(tails), -1), tails], dim=1)
    scores = continuation_logprobs(model, ids, prompt.shape[1]).sum(-1)
    return ids[scores.argmax()], scores.max()


@pytest.mark.parametrize("seed", range(4))
def test_beam_search_equals_exhaustive_search(seed):
    model, prompt, steps = tiny(seed=seed), torch.tensor([[0, 2, 1]]), 5
    best, best_score = exhaustive(model, prompt, steps)
    ids, score = beam_search(model, prompt, steps, 3 ** (steps - 1))  # every prefix
    assert torch.equal(ids[0], best) and torch.isclose(score, best_score, atol=1e-5)
    # the same prompt twice in a batch, beside another: the same answer
    both, _ = beam_search(model, torch.tensor([[0, 2, 1], [1, 1, 1], [0, 2, 1]]),
                          steps, 3 ** (steps - 1))
    assert torch.equal(both[0], best) and torch.equal(both[2], best)
    for width in (1, 2, 3, 9):  # narrower beams can only do worse
        ids, score = beam_search(model, prompt, steps, width)
        assert score <= best_score + 1e-5
        # the score it reports is the log-probability of what it returns
        again = continuation_logprobs(model, ids, prompt.shape[1]).sum()
        assert torch.isclose(score, again, atol=1e-4)


def test_beam_search_width_one_is_greedy_and_generate_wires_it():
    model = tiny(vocab=40)
    prompt = torch.tensor([[1, 5, 7], [2, 2, 9]])
    greedy_ids = generate(model, prompt, 10)
    assert torch.equal(generate(model, prompt, 10, beams=1), greedy_ids)
    wide = generate(model, prompt, 10, beams=4)
    assert wide.shape == (2, 13) and torch.equal(wide[:, :3], prompt)
    assert torch.equal(beam_search(model, prompt[:1], 0, 4)[0], prompt[:1])
    # a batch searches each prompt on its own
    for row, alone in zip(wide, prompt):
        assert torch.equal(row, beam_search(model, alone[None], 10, 4)[0][0])
    # top-k 1 through generate is greedy too; top-p samples inside the nucleus
    g = torch.Generator().manual_seed(0)
    assert torch.equal(generate(model, prompt, 10, top_k=1, generator=g), greedy_ids)
    a = generate(model, prompt, 10, top_p=0.9, generator=torch.Generator()
                 .manual_seed(1))
    b = generate(model, prompt, 10, sampler(top_p=0.9),
                 torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("seed", range(3))
def test_beam_search_gives_transformers_continuations(seed):
    # no end-of-text token: every hypothesis has the same length, so transformers'
    # length penalty ranks them as log P does, and the continuations must agree
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=40, context=32, d_model=32, n_heads=2,
                          n_layers=2, d_ff=64)).eval()
    hf = to_gpt2(model).eval()
    prompt = torch.randint(0, 40, (3, 4))
    for width in (1, 2, 4, 8):
        ours, _ = beam_search(model, prompt, 12, width)
        theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt),
                             num_beams=width, do_sample=False, max_new_tokens=12,
                             pad_token_id=0)
        assert torch.equal(ours, theirs)


def test_continuation_logprobs_match_a_manual_count():
    model = tiny(vocab=40)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    with torch.no_grad():
        logp = model(ids).log_softmax(-1)[0]
    manual = torch.stack([logp[t - 1, ids[0, t]] for t in range(3, 8)])
    assert torch.allclose(continuation_logprobs(model, ids, 3)[0], manual, atol=1e-6)


def test_repetition_measures():
    assert ends_in_repetition([1, 2, 3, 1, 2, 3, 1, 2, 3])
    assert ends_in_repetition([9, 4, 4, 4, 4, 4, 4])  # "4 4" three times
    assert not ends_in_repetition([9, 4, 4, 4, 4, 4])  # only two and a half
    assert not ends_in_repetition([1, 2, 1, 2, 1, 2, 3])  # the loop has ended
    assert ends_in_repetition([2, 3, 1, 2, 3, 1, 2, 3, 1, 2])  # cut mid-phrase
    assert not ends_in_repetition([])
    assert distinct_n([1, 2, 3, 4], 2) == 1.0
    assert distinct_n([7] * 10, 1) == 0.1
    assert distinct_n(torch.tensor([1, 2, 1, 2, 1]), 2) == 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.integers(3, 6))
def test_a_phrase_repeated_enough_is_a_loop(phrase, times):
    text, n = [9] + phrase * times, len(phrase)
    if n >= 2 or times >= 6:  # a phrase of one token needs six copies (three pairs)
        assert ends_in_repetition(text)
    # at most n + 1 distinct (n+1)-grams: the first, then the n rotations of the phrase
    assert distinct_n(text, n + 1) <= (n + 1) / (len(text) - n)


@pytest.mark.parametrize("call, message", [
    (lambda: top_p_filter(torch.zeros(3), 0.0), "top_p"),
    (lambda: top_p_filter(torch.zeros(3), 1.5), "top_p"),
    (lambda: sampler(top_p=-0.1), "top_p"),
    (lambda: top_k_filter(torch.zeros(3), 0), "top_k"),
    (lambda: sampler(top_k=2.5), "top_k"),
    (lambda: sampler(temperature=0), "temperature"),
    (lambda: sampler(temperature=-1.0), "temperature"),
    (lambda: beam_search(tiny(), torch.tensor([[0]]), 3, 0), "width"),
    (lambda: beam_search(tiny(), torch.tensor([0, 1]), 3, 2), "prompt must"),
    (lambda: beam_search(tiny(), torch.tensor([[0]]), -1, 2), "steps"),
    (lambda: generate(tiny(), torch.tensor([[0]]), 3, top_p=0), "top_p"),
    (lambda: generate(tiny(), torch.tensor([[0]]), 3, beams=0), "width"),
    (lambda: generate(tiny(), torch.tensor([[0]]), 3, temperature(1.0), top_k=3),
     "either"),
    (lambda: generate(tiny(), torch.tensor([[0]]), 3, top_k=3, beams=2), "not both"),
    (lambda: continuation_logprobs(tiny(), torch.tensor([[0, 1]]), 0), "start"),
    (lambda: distinct_n([1, 2], 3), "no 3-grams"),
    (lambda: distinct_n([1, 2], 0), "n must"),
    (lambda: ends_in_repetition([1, 2], times=1), "times"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_types_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        top_k_filter(torch.tensor([1, 2, 3]), 2)
    with pytest.raises(TypeError, match="sequence of tokens"):
        distinct_n("abc", 1)
    with pytest.raises(ValueError, match="V >= 1"):
        top_p_filter(torch.zeros(2, 0), 0.9)
