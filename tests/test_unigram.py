"""Tests for mlf.unigram: the lattice, Viterbi, sampling, training, and sentencepiece parity."""
import math
import random
from collections import Counter

import pytest
import sentencepiece as spm
from hypothesis import given
from hypothesis import strategies as st

from mlf.corpora import number_words, shakespeare_lines
from mlf.unigram import (SPACE, Unigram, corpus_words, denormalize, digamma, normalize, seed_pieces,
                         split_words, train, train_sentencepiece)

TOY = Unigram({"▁": -2.0, "▁a": -1.0, "a": -3.0, "b": -3.0, "ab": -2.5, "▁ab": -1.5})


def sp_train(lines, vocab_size):
    spm.set_min_log_level(2)
    return train_sentencepiece(lines, vocab_size)


@pytest.fixture(scope="module")
def shakespeare_sp():
    return sp_train(list(shakespeare_lines("macbeth")), 800)


def test_normalize_and_split():
    assert normalize("a  b") == "▁a▁▁b"
    assert split_words("▁a▁▁b") == ["▁a", "▁", "▁b"]
    assert denormalize(["▁a", "▁", "▁b"]) == "a  b"


@given(st.text(alphabet="ab ", min_size=1, max_size=30))
def test_round_trip_is_lossless(text):
    assert TOY.decode(TOY.encode(text)) == text


@given(st.text(alphabet="abc ", min_size=1, max_size=12))
def test_viterbi_is_the_best_segmentation(text):
    s = normalize(text)
    best = max(TOY.log_prob(x) for x in TOY.segmentations(s))
    assert math.isclose(TOY.log_prob(TOY.viterbi(s)), best, abs_tol=1e-4)  # float32 sums


def test_unknown_character_gets_unk_score():
    assert TOY.encode("ac") == ["▁a", "c"]
    assert TOY.lattice("c")[1] == [(0, 1, "c", -3.0 - 10.0)]


@given(st.text(alphabet="ab", min_size=1, max_size=8))
def test_marginal_sums_all_segmentations(text):
    s = normalize(text)
    total = sum(math.exp(TOY.log_prob(x)) for x in TOY.segmentations(s))
    assert math.isclose(math.exp(TOY.log_marginal(s)), total, rel_tol=1e-9)


def test_nbest_is_sorted_and_exact():
    s = normalize("abab")
    every = sorted(((TOY.log_prob(x), x) for x in TOY.segmentations(s)), key=lambda t: -t[0])
    got = TOY.nbest(s, 5)
    assert [round(p, 9) for _, p in got] == [round(p, 9) for p, _ in every[:5]]
    assert got[0][0] == TOY.viterbi(s)


def test_sampler_matches_exact_distribution():
    s, alpha, n = normalize("ab"), 0.5, 20000
    segs = TOY.segmentations(s)
    weights = [math.exp(alpha * TOY.log_prob(x)) for x in segs]
    rng = random.Random(0)
    counts = Counter(tuple(TOY.sample(s, alpha, rng)) for _ in range(n))
    for x, w in zip(segs, weights):
        assert abs(counts[tuple(x)] / n - w / sum(weights)) < 0.015


def test_digamma():
    assert math.isclose(digamma(1.0), -0.5772156649015329, rel_tol=1e-10)
    assert math.isclose(digamma(7.5) - digamma(6.5), 1 / 6.5, rel_tol=1e-10)


def test_matches_sentencepiece_on_held_out_english(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    held_out = list(shakespeare_lines("hamlet"))[:400] + ["  To be,   or not  "]
    for line in held_out:
        assert model.encode(line) == shakespeare_sp.encode(line, out_type=str), line
        assert model.decode(model.encode(line)) == line


@pytest.mark.parametrize("lang", ["ja", "de", "ru"])
def test_matches_sentencepiece_on_number_words(lang):
    sp = sp_train(number_words(range(1, 2000), lang), 120)
    model = Unigram.from_sentencepiece(sp)
    for word in number_words(range(2000, 2300), lang):
        assert model.encode(word) == sp.encode(word, out_type=str)


def test_nbest_matches_sentencepiece(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    for word in ["Dunsinane", "thunder", "witches"]:
        ours = [x for x, _ in model.nbest(normalize(word), 5)]
        assert ours == shakespeare_sp.nbest_encode(word, out_type=str, nbest_size=5)


def test_train_small_corpus():
    lines = number_words(range(1, 300), "de")
    model, log = train(lines, 40)
    assert len(model.scores) == 40
    assert set("".join(lines)) <= set(model.scores)  # every character is a piece
    assert all(model.decode(model.encode(w)) == w for w in lines)
    assert log[-1]["size"] <= 44


def test_seed_pieces_are_log_probabilities():
    seed = seed_pieces(corpus_words(["ab ab abc"]), 10)
    assert math.isclose(sum(math.exp(v) for v in seed.values()), 1.0)
    assert all(SPACE not in p[1:] for p in seed)


@pytest.mark.parametrize("call, message", [
    (lambda: Unigram({}), "at least one piece"),
    (lambda: Unigram({"a": float("nan")}), "finite"),
    (lambda: TOY.encode(""), "non-empty text"),
    (lambda: TOY.encode(3), "str"),
    (lambda: TOY.sample("▁a", 0.0, random.Random(0)), "alpha must be a positive"),
    (lambda: TOY.nbest("▁a", 0), "n must be a positive integer"),
    (lambda: denormalize(["a"]), "dummy prefix"),
    (lambda: train(["abcdef"], 3), "smaller than the alphabet"),
    (lambda: train("abc", 10), "not a single string"),
    (lambda: train([""], 10), "empty"),
    (lambda: train(["ab"], 10, shrinking_factor=1.5), "shrinking_factor"),
    (lambda: digamma(0.0), "x > 0"),
    (lambda: train_sentencepiece("abc", 10), "not a single string"),
    (lambda: train_sentencepiece(["", ""], 10), "empty"),
    (lambda: train_sentencepiece(["ab", 3], 10), "every line to be a str"),
    (lambda: train_sentencepiece(["ab"], 0), "vocab_size must be a positive integer"),
    (lambda: train_sentencepiece(["ab"], 3), "at least 4"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_segmentations_limit():
    with pytest.raises(ValueError, match="more than 3 segmentations"):
        TOY.segmentations("▁abab", limit=3)


def test_sampling_frequencies_match_sentencepiece(shakespeare_sp):
    """Our FFBS sampler and sentencepiece's enable_sampling both follow P(x|X)^alpha / Z."""
    model = Unigram.from_sentencepiece(shakespeare_sp)
    word, alpha, n = "thunder", 0.5, 20000
    segs = model.segmentations(normalize(word))
    weights = [math.exp(alpha * model.log_prob(x)) for x in segs]
    exact = {tuple(x): w / sum(weights) for x, w in zip(segs, weights)}
    spm.set_random_generator_seed(0)
    theirs = Counter(tuple(shakespeare_sp.encode(word, out_type=str, enable_sampling=True, alpha=alpha,
                                                 nbest_size=-1)) for _ in range(n))
    rng = random.Random(0)
    ours = Counter(tuple(model.sample(normalize(word), alpha, rng)) for _ in range(n))
    for x, p in exact.items():
        assert abs(ours[x] / n - p) < 0.015 and abs(theirs[x] / n - p) < 0.015, (x, p, ours[x], theirs[x])


def test_distribution_sums_to_one_and_flattens():
    s = normalize("abab")
    for l in (None, 3):
        dist = TOY.distribution(s, 0.3, l)
        assert math.isclose(sum(dist.values()), 1.0)
    sharp, flat = TOY.distribution(s, 1.0), TOY.distribution(s, 0.01)
    assert max(flat.values()) < max(sharp.values())  # small alpha: closer to uniform


def test_nbest_sample_stays_in_the_l_best():
    s, rng = normalize("abab"), random.Random(0)
    allowed = set(TOY.distribution(s, 0.5, l=2))
    assert all(tuple(TOY.nbest_sample(s, 2, 0.5, rng)) in allowed for _ in range(200))


@pytest.mark.parametrize("call", [
    lambda: TOY.nbest_sample("▁a", 2, -1.0, random.Random(0)),
    lambda: TOY.distribution("▁a", 0),
    lambda: TOY.nbest_sample("▁a", 0, 0.5, random.Random(0)),
])
def test_sampling_rejects_bad_parameters(call):
    with pytest.raises(ValueError, match="positive"):
        call()


def test_train_sentencepiece_is_deterministic_and_loadable():
    lines = number_words(range(1, 300), "de")
    sp = sp_train(lines, 43)
    assert sp.get_piece_size() == 43
    assert sp.serialized_model_proto() == sp_train(iter(lines), 43).serialized_model_proto()  # any iterable
    model = Unigram.from_sentencepiece(sp)
    assert len(model.scores) == 40  # the three special pieces are left out
    assert all(model.encode(w) == sp.encode(w, out_type=str) for w in lines)


def test_renormalized_sums_to_one():
    lines = number_words(range(1, 300), "de")
    model, _ = train(lines, 40)
    assert sum(math.exp(v) for v in model.scores.values()) < 1  # the digamma M-step leaves mass out
    fixed = model.renormalized()
    assert math.isclose(sum(math.exp(v) for v in fixed.scores.values()), 1.0, rel_tol=1e-12)
    shifts = {round(fixed.scores[p] - model.scores[p], 12) for p in model.scores}
    assert len(shifts) == 1 and shifts.pop() > 0  # one constant, added to every score
