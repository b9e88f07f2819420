"""The needle-in-a-haystack harness: prompt layout, the grid with an oracle and a random
reader, the training batches, stretching a rotary model, and the errors."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlf import gpt
from mlf.needle import (KeyValueTask, build_prompt, chance, last_logits, length_grid,
                        needle_grid, needle_position, needle_trials,
                        plot_needle_grid, retrieval_batch, stretch, train_retrieval)

TASK = KeyValueTask()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_model(context=16, positions="rotary", seed=0):
    torch.manual_seed(seed)
    return gpt.GPT(gpt.GPTConfig(vocab_size=TASK.vocab_size, context=context,
                                 d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                 positions=positions))


def test_token_layout():
    assert (TASK.n_filler, TASK.n_keys, TASK.query_id, TASK.vocab_size) == \
        (32, 16, 48, 49)
    needle, query, answer = TASK.needle(gen())
    key, value = needle.tolist()
    assert 32 <= key < 48 and 0 <= value < 32 and answer == value
    assert query.tolist() == [48, key]
    assert chance(TASK) == 1 / 32


@given(st.integers(0, 60), st.floats(0.0, 1.0))
def test_prompt_round_trip(n, depth):
    filler = torch.arange(n) % 32
    needle, query = torch.tensor([40, 7]), torch.tensor([48, 40])
    prompt = build_prompt(filler, needle, query, depth)
    p = needle_position(n, depth)
    assert len(prompt) == n + 4 and p == round(depth * n)
    assert prompt[p:p + 2].tolist() == [40, 7] and prompt[-2:].tolist() == [48, 40]
    assert torch.equal(torch.cat([prompt[:p], prompt[p + 2:-2]]), filler)


def test_depth_zero_and_one_are_the_ends():
    filler = torch.zeros(10, dtype=torch.long)
    needle, query = torch.tensor([40, 7]), torch.tensor([48, 40])
    assert build_prompt(filler, needle, query, 0.0)[:2].tolist() == [40, 7]
    assert build_prompt(filler, needle, query, 1.0)[-4:].tolist() == [40, 7, 48, 40]


def test_oracle_recalls_everything_at_every_depth():
    recall = needle_grid(TASK.oracle_scores, TASK, [4, 5, 16, 100], [0, 0.3, 1.0],
                         trials=7, generator=gen())
    assert recall.shape == (4, 3) and bool((recall == 1).all())


def test_random_reader_is_at_chance():
    def random_scores(prompts):
        return torch.rand(len(prompts), TASK.vocab_size, generator=gen(1))

    recall = needle_grid(random_scores, TASK, [20], [0.0, 0.5, 1.0], trials=2000,
                         generator=gen(), batch=500)
    p, n = 1 / TASK.vocab_size, 3 * 2000
    assert abs(recall.mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_grid_is_reproducible_and_batch_free():
    def scores(prompts):  # depends on the prompt, deterministically
        return torch.nn.functional.one_hot(prompts[:, 5], TASK.vocab_size).float()

    a = needle_grid(scores, TASK, [12, 30], [0.0, 0.5], 9, gen(3), batch=2)
    b = needle_grid(scores, TASK, [12, 30], [0.0, 0.5], 9, gen(3), batch=100)
    assert torch.equal(a, b)


@settings(deadline=None, max_examples=25)
@given(st.integers(4, 70), st.integers(1, 6), st.integers(0, 1000))
def test_training_batches_have_the_needle_layout(length, batch, seed):
    prompts, answers = retrieval_batch(TASK, length, batch, gen(seed))
    assert prompts.shape == (batch, length)
    assert torch.equal(TASK.oracle_scores(prompts).argmax(-1), answers)
    keys = (prompts[:, :-2] >= TASK.n_filler).sum(-1)
    assert bool((keys == 1).all())  # exactly one needle before the question
    assert bool((prompts[:, -2] == TASK.query_id).all())


def test_last_logits_is_greedy_decoding():
    model = tiny_model().eval()
    prompts, _ = needle_trials(TASK, 12, 0.5, 5, gen())
    picked = last_logits(model)(prompts).argmax(-1)
    assert torch.equal(gpt.generate(model, prompts, 1)[:, -1], picked)


def test_stretch_interpolates_positions():
    model = tiny_model(context=16)
    extrapolated, interpolated = stretch(model, 64, False), stretch(model, 64, True)
    assert extrapolated.cfg.context == interpolated.cfg.context == 64
    assert extrapolated.rotate.scale == 1.0 and interpolated.rotate.scale == 0.25
    # Chen et al.: position m of 0..L'-1 is read as m L / L', within [0, L)
    top = interpolated.rotate.angles(64)[-1]  # position 63 -> 15.75
    assert torch.allclose(top, 15.75 * model.rotate.theta)
    assert stretch(model, 8, True).rotate.scale == 1.0  # shorter: nothing to do
    assert model.cfg.context == 16 and model.rotate.scale == 1.0  # a copy


def test_training_runs_and_leaves_a_copyable_model():
    model = tiny_model(context=16)
    losses = train_retrieval(model, TASK, 3, min_length=8, batch=4, generator=gen())
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    stretch(model, 32, True)  # deep-copies: no graph may be left on the model


@pytest.mark.parametrize("depth", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="depth must be a number in"):
        needle_position(10, depth)
    with pytest.raises(ValueError, match="depth must be a number in"):
        needle_grid(TASK.oracle_scores, TASK, [10], [depth], 1)


def test_length_below_the_needle():
    with pytest.raises(ValueError, match="cannot hold the needle"):
        needle_grid(TASK.oracle_scores, TASK, [3], [0.5], 1, gen())
    with pytest.raises(ValueError, match="cannot hold the needle"):
        retrieval_batch(TASK, 3, 2)


@pytest.mark.parametrize("bad", [
    lambda p: torch.zeros(len(p)),  # one score per prompt, not per candidate
    lambda p: torch.zeros(len(p) + 1, TASK.vocab_size),  # wrong number of rows
    lambda p: torch.zeros(len(p), 3),  # too few candidates for the answers
    lambda p: torch.zeros(len(p), TASK.vocab_size, dtype=torch.long),  # not floats
    lambda p: torch.full((len(p), TASK.vocab_size), float("nan")),
    lambda p: [[0.0] * TASK.vocab_size] * len(p),  # not a tensor
])
def test_score_fn_of_the_wrong_shape(bad):
    with pytest.raises(ValueError, match="score_fn"):
        needle_grid(bad, TASK, [10], [0.5], 4, gen())


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="score_fn must be a function"):
        needle_grid("model", TASK, [10], [0.5], 1)
    for lengths in ([], [0], [10.0], 10):
        with pytest.raises(ValueError, match="lengths must be"):
            needle_grid(TASK.oracle_scores, TASK, lengths, [0.5], 1)
    with pytest.raises(ValueError, match="depths must be"):
        needle_grid(TASK.oracle_scores, TASK, [10], [], 1)
    with pytest.raises(ValueError, match="trials must be"):
        needle_grid(TASK.oracle_scores, TASK, [10], [0.5], 0)
    with pytest.raises(ValueError, match="n_keys must be"):
        KeyValueTask(n_keys=0)
    with pytest.raises(ValueError, match="needle must be a 1-d tensor"):
        build_prompt(torch.zeros(4, dtype=torch.long), [40, 7], torch.tensor([1]), 0)
    with pytest.raises(ValueError, match="rotary"):
        stretch(tiny_model(positions="learned"), 32, True)
    with pytest.raises(ValueError, match="min_length <= max_length"):
        train_retrieval(tiny_model(context=16), TASK, 1, min_length=8, max_length=32)
    with pytest.raises(ValueError, match="recall must have shape"):
        plot_needle_grid(torch.zeros(2, 3), [1, 2, 3], [0.0, 1.0])


def test_length_grid_rows_match_needle_grid():
    model = tiny_model(context=16).eval()
    grid = length_grid(model, TASK, [8, 32], [0.0, 1.0], 3, seed=5, interpolate=True)
    row = needle_grid(last_logits(stretch(model, 32, True)), TASK, [32], [0.0, 1.0],
                      3, gen(5 + 32))
    assert grid.shape == (2, 2) and torch.equal(grid[1], row[0])


def test_training_stops_early_below_the_threshold():
    model = tiny_model(context=16)
    losses = train_retrieval(model, TASK, 150, min_length=8, batch=2,
                             generator=gen(), stop_below=100.0)
    assert len(losses) == 100  # the first moment 100 losses can be averaged


@pytest.mark.parametrize("trained, length, offset", [
    (16, 64, 0),  # factor 4, as in the chapter
    (16, 25, 3),  # factor 25/16 = 1.5625, not an integer; positions from 3 (a cache)
    (16, 17, 0),  # one token longer than trained
])
def test_stretch_matches_transformers_linear_rope(trained, length, offset):
    """Position interpolation = Llama's rope_type="linear" with factor L'/L, after
    the adjacent-pairs -> split-halves permutation of the coordinates."""
    import logging

    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import (LlamaRotaryEmbedding,
                                                          apply_rotary_pos_emb)

    from mlf.rope import split_halves_order

    logging.getLogger("transformers").setLevel(logging.ERROR)
    model = tiny_model(context=trained)
    rotate = stretch(model, length, True).rotate
    head = model.cfg.d_model // model.cfg.n_heads
    config = LlamaConfig(hidden_size=model.cfg.d_model,
                         num_attention_heads=model.cfg.n_heads,
                         rope_parameters={"rope_type": "linear",
                                          "factor": length / trained,
                                          "rope_theta": model.cfg.rope_base})
    q = torch.randn(2, model.cfg.n_heads, length - offset, head, generator=gen())
    order = split_halves_order(head)
    positions = torch.arange(offset, length)[None]
    cos, sin = LlamaRotaryEmbedding(config)(q, positions)
    theirs, _ = apply_rotary_pos_emb(q[..., order], q[..., order], cos, sin)
    assert torch.allclose(rotate(q, offset)[..., order], theirs, atol=1e-5)


def test_stretching_twice_composes():
    model = tiny_model(context=16)
    twice = stretch(stretch(model, 32, True), 64, True)
    assert twice.rotate.scale == stretch(model, 64, True).rotate.scale == 0.25
