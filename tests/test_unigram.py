"""Tests for mlf.unigram: the lattice, Viterbi, sampling, training, and parity with
sentencepiece, on text it knows and on text with characters it has never seen."""
import hashlib
import io
import math
import random
import struct
from collections import Counter

import numpy as np
import pytest
import sentencepiece as spm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlf.corpora import number_words, shakespeare_lines
from mlf.unigram import (SPACE, UNK_SURFACE, Unigram, _Lattices, _score_tree,
                         corpus_log_likelihood, corpus_words, denormalize, digamma,
                         expected_counts, m_step, normalize, prune, seed_pieces,
                         split_words, train, train_sentencepiece)

TOY = Unigram({"▁": -2.0, "▁a": -1.0, "a": -3.0, "b": -3.0, "ab": -2.5, "▁ab": -1.5})
FIXTURE = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


def sp_train(lines, vocab_size, **options):
    """train_sentencepiece, or sentencepiece with other options (default: NFKC...)."""
    spm.set_min_log_level(2)
    if not options:
        return train_sentencepiece(lines, vocab_size)
    out = io.BytesIO()
    options = {"model_type": "unigram", "character_coverage": 1.0, "num_threads": 1,
               "minloglevel": 2, "hard_vocab_limit": False, **options}
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out,
                                   vocab_size=vocab_size, **options)
    return spm.SentencePieceProcessor(model_proto=out.getvalue())


@pytest.fixture(scope="module")
def shakespeare_sp():
    return sp_train(list(shakespeare_lines("macbeth")), 800)


# -- a sentencepiece model with scores of our choosing, written by hand ----------------
def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def handmade_sp(scores):
    """A sentencepiece unigram model (identity normalization, spaces kept) with exactly
    these pieces and float32 scores, so that its Viterbi can be tested on ties."""
    def piece(p, score, kind):
        fields = (_field(1, 2, p.encode()) + _field(2, 5, struct.pack("<f", score))
                  + _field(3, 0, kind))
        return _field(1, 2, fields)
    proto = piece("<unk>", 0.0, 2) + piece("<s>", 0.0, 3) + piece("</s>", 0.0, 3)
    proto += b"".join(piece(p, s, 1) for p, s in scores.items())
    proto += _field(2, 2, _field(3, 0, 1))  # trainer_spec: model_type = UNIGRAM
    proto += _field(3, 2, _field(1, 2, b"identity") + _field(3, 0, 1) + _field(4, 0, 0)
                    + _field(5, 0, 1))
    return spm.SentencePieceProcessor(model_proto=proto)


# -- normalization, the lattice, Viterbi -----------------------------------------------
def test_normalize_and_split():
    assert normalize("a  b") == "▁a▁▁b"
    assert normalize("") == ""  # sentencepiece adds no dummy prefix to empty text
    assert split_words("▁a▁▁b") == ["▁a", "▁", "▁b"]
    assert split_words("a▁b") == ["a", "▁b"]
    assert denormalize(["▁a", "▁", "▁b"]) == "a  b"
    assert denormalize([]) == ""


@given(st.text(alphabet="ab ", max_size=30))
def test_round_trip_is_lossless(text):
    assert TOY.decode(TOY.encode(text)) == text


@given(st.text(alphabet="abc ", min_size=1, max_size=12))
def test_viterbi_is_the_best_segmentation(text):
    s = normalize(text)
    best = max(TOY.log_prob(x) for x in TOY.segmentations(s))
    assert math.isclose(TOY.log_prob(TOY.viterbi(s)), best, abs_tol=1e-4)  # float32


def test_unknown_characters_form_one_piece():
    assert TOY.encode("ac") == ["▁a", "c"]
    assert TOY.encode("accc b") == ["▁a", "ccc", "▁", "b"]
    assert TOY.lattice("cc")[2] == [(0, 2, "cc", 2 * TOY.unk_score)]
    assert TOY.encode("a日本", out_type=int) == [TOY.piece_to_id("▁a"), TOY.unk_id]
    assert TOY.log_prob(["▁a", "日本"]) == -1.0 + 2 * TOY.unk_score


@given(st.text(alphabet="ab", min_size=1, max_size=8))
def test_marginal_sums_all_segmentations(text):
    s = normalize(text)
    total = sum(math.exp(TOY.log_prob(x)) for x in TOY.segmentations(s))
    assert math.isclose(math.exp(TOY.log_marginal(s)), total, rel_tol=1e-9)


def test_nbest_is_sorted_and_exact():
    s = normalize("abab")
    every = sorted(((TOY.log_prob(x), x) for x in TOY.segmentations(s)),
                   key=lambda t: -t[0])
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


# -- parity with sentencepiece ---------------------------------------------------------
def test_matches_sentencepiece_on_held_out_english(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    held_out = list(shakespeare_lines("hamlet"))[:400] + ["  To be,   or not  "]
    for line in held_out:
        assert model.encode(line) == shakespeare_sp.encode(line, out_type=str), line
        assert model.encode(line, out_type=int) == shakespeare_sp.encode(line), line
        assert model.decode(model.encode(line)) == line
        assert shakespeare_sp.decode(model.encode(line, out_type=int)) == line


@pytest.mark.parametrize("lang", ["ja", "de", "ru"])
def test_matches_sentencepiece_on_number_words(lang):
    sp = sp_train(number_words(range(1, 2000), lang), 120)
    model = Unigram.from_sentencepiece(sp)
    for word in number_words(range(2000, 2300), lang):
        assert model.encode(word) == sp.encode(word, out_type=str)


UNSEEN = st.sampled_from(["日", "本", "語", "Æ", "😀", "👍", "🏽", "\u0301", "\u200f", "א",
                          "\x00", "\t", "\n", "\u3000", "▁", "⁇"])
TEXTS = st.one_of(
    st.text(max_size=40),  # any Unicode (no lone surrogates), the empty string included
    st.text(alphabet=" \t\n", max_size=12),  # runs of whitespace
    st.text(alphabet=st.one_of(st.sampled_from(list("the and, ")), UNSEEN),
            max_size=40))


@FIXTURE
@given(TEXTS)
def test_unseen_characters_match_sentencepiece(shakespeare_sp, text):
    model, sp = Unigram.from_sentencepiece(shakespeare_sp), shakespeare_sp
    pieces, ids = sp.encode(text, out_type=str), sp.encode(text)
    assert model.encode(text) == pieces
    assert model.encode(text, out_type=int) == ids
    assert model.decode(pieces) == sp.decode(pieces)
    assert model.decode(ids) == sp.decode(ids)  # the unknown id reads " ⁇ "
    if "▁" not in text:  # (a "▁" in the text comes back as a space)
        assert model.decode(model.encode(text)) == text  # unknown pieces come back


@FIXTURE
@given(st.lists(st.one_of(st.sampled_from(["▁", "▁the", "and", ",", "<unk>", "<s>",
                                           "</s>", "x▁y", "日本", "▁▁", "", "⁇"]),
                          st.text(max_size=3)), max_size=8))
def test_decoding_any_pieces_matches_sentencepiece(shakespeare_sp, pieces):
    assert Unigram.from_sentencepiece(shakespeare_sp).decode(pieces) == \
        shakespeare_sp.decode(pieces)


def test_unknown_id_decodes_to_its_surface(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    ids = model.encode("the 日本 and", out_type=int)
    assert model.unk_id in ids
    assert model.decode(ids) == shakespeare_sp.decode(ids) == f"the {UNK_SURFACE} and"


def test_nbest_and_sampling_join_unknown_runs_as_sentencepiece(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    for text in ["the 日本語", "ÆÆ and", "😀👍🏽"]:
        ours = [x for x, _ in model.nbest(normalize(text), 4)]
        theirs = shakespeare_sp.nbest_encode(text, out_type=str, nbest_size=4)
        assert sorted(map(tuple, ours)) == sorted(map(tuple, theirs))
        sampled = model.sample(normalize(text), 0.5, random.Random(0))
        assert "".join(sampled) == normalize(text) and not any(
            p in ("日", "本", "語") for p in sampled)


SCORES = st.sampled_from([-1.0, -2.0, -3.0, -0.5, -1.5, -1 / 3, -2 / 3,
                          -1.0 - 2 ** -20])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(alphabet="ab▁", min_size=1, max_size=3).filter(
    lambda p: SPACE not in p[1:]), SCORES, min_size=1, max_size=12),
    st.lists(st.text(alphabet="abc ", max_size=12), max_size=25))
def test_float32_ties_resolve_as_in_sentencepiece(scores, words):
    """Tied and nearly tied scores, long lines (large float32 sums): same pieces and ids
    as sentencepiece, whether a word comes from the cache or is redone exactly."""
    scores = {p: float(np.float32(s)) for p, s in scores.items()}
    sp, text = handmade_sp(scores), " ".join(words)
    model = Unigram.from_sentencepiece(sp)
    for _ in range(2):  # the second time, every word type is remembered
        assert model.encode(text) == sp.encode(text, out_type=str)
        assert model.encode(text, out_type=int) == sp.encode(text)
    assert model._best_path(normalize(text))[0] == model._viterbi_f32(normalize(text))


def test_words_close_to_a_tie_are_redone_exactly(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    redone = []
    model._redo = lambda path, summed, word, f=model._redo: redone.append(word) or f(
        path, summed, word)
    text = " ".join(shakespeare_lines("the-tempest"))  # one line of 86,000 characters
    assert model.encode(text) == shakespeare_sp.encode(text, out_type=str)
    assert redone  # the float32 sum grew large enough to make some words uncertain


def test_default_ids_are_sentencepiece_ids(shakespeare_sp):
    model = Unigram(Unigram.from_sentencepiece(shakespeare_sp).scores)
    assert [model.id_to_piece(i) for i in range(shakespeare_sp.get_piece_size())] == \
        [shakespeare_sp.id_to_piece(i) for i in range(shakespeare_sp.get_piece_size())]
    assert model.piece_to_id("not a piece") == model.unk_id == 0


def test_nbest_matches_sentencepiece(shakespeare_sp):
    model = Unigram.from_sentencepiece(shakespeare_sp)
    for word in ["Dunsinane", "thunder", "witches"]:
        ours = [x for x, _ in model.nbest(normalize(word), 5)]
        assert ours == shakespeare_sp.nbest_encode(word, out_type=str, nbest_size=5)


def test_sampling_frequencies_match_sentencepiece(shakespeare_sp):
    """Our FFBS sampler and sentencepiece's enable_sampling both follow P(x|X)^a / Z."""
    model = Unigram.from_sentencepiece(shakespeare_sp)
    word, alpha, n = "thunder", 0.5, 20000
    segs = model.segmentations(normalize(word))
    weights = [math.exp(alpha * model.log_prob(x)) for x in segs]
    exact = {tuple(x): w / sum(weights) for x, w in zip(segs, weights)}
    spm.set_random_generator_seed(0)
    theirs = Counter(tuple(shakespeare_sp.encode(
        word, out_type=str, enable_sampling=True, alpha=alpha, nbest_size=-1))
        for _ in range(n))
    rng = random.Random(0)
    ours = Counter(tuple(model.sample(normalize(word), alpha, rng)) for _ in range(n))
    for x, p in exact.items():
        assert abs(ours[x] / n - p) < 0.015 and abs(theirs[x] / n - p) < 0.015


@pytest.mark.parametrize("options, message", [
    ({"normalization_rule_name": "nmt_nfkc"}, "normalizes text"),
    ({"normalization_rule_name": "identity"}, "normalizes text"),  # folds whitespace
    ({"normalization_rule_name": "identity", "remove_extra_whitespaces": False,
      "model_type": "bpe"}, "only unigram"),
    ({"normalization_rule_name": "identity", "remove_extra_whitespaces": False,
      "byte_fallback": True, "vocab_size": 320}, "byte_fallback"),
    ({"normalization_rule_name": "identity", "remove_extra_whitespaces": False,
      "user_defined_symbols": ["zwei"]}, "user-defined"),
])
def test_models_we_cannot_follow_are_refused(options, message):
    options = {"vocab_size": 60, **options}
    vocab_size = options.pop("vocab_size")
    sp = sp_train(number_words(range(1, 300), "de"), vocab_size, **options)
    with pytest.raises(ValueError, match=message):
        Unigram.from_sentencepiece(sp)


# -- training --------------------------------------------------------------------------
# What the implementation before the vectorized E-step produced (pure Python, same
# algorithm): the pieces must be identical, the scores equal to rounding.
BEFORE_40 = {
    "a": -6.293227743395, "b": -3.734732555857, "c": -3.734732555239,
    "d": -9.179522112441, "e": -1.95064672249, "f": -5.509894407812,
    "g": -4.058936240207, "h": -3.734219012815, "i": -2.416094268992,
    "l": -5.509894418001, "n": -2.407761997947, "r": -4.864251031827,
    "s": -2.656881270405, "t": -9.179522112441, "u": -3.734732555857,
    "undachtzig": -3.938808035079, "unddreißig": -3.938808035079,
    "undfünfzig": -3.938808035079, "undneunzig": -3.938808035079,
    "undsechzig": -3.938808035079, "undsiebzig": -3.938808035079,
    "undvierzig": -3.938808035079, "undzwanzig": -3.938808035079, "v": -4.864251209531,
    "w": -3.734732555857, "z": -3.236003864084, "zehn": -4.059646842108,
    "ß": -6.293227751334, "ö": -6.293227751334, "ü": -9.179522112441,
    "▁": -3.21779655501,
    "▁acht": -4.864259497935, "▁drei": -4.864259552217, "▁einhundert": -3.199614736828,
    "▁einhundertacht": -4.864259497946, "▁einhundertfünf": -4.864259498185,
    "▁fünf": -4.86425949817, "▁zweihundert": -3.018800706199,
    "▁zweihundertacht": -4.864259498065, "▁zweihundertfünf": -4.864259498352}


def _digest(items):
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def test_trained_model_is_unchanged_small():
    model, log = train(number_words(range(1, 300), "de"), 40)
    assert set(model.scores) == set(BEFORE_40)
    assert all(abs(model.scores[p] - s) < 1e-9 for p, s in BEFORE_40.items())
    assert [e["size"] for e in log] == [172, 88, 66, 49, 44]


def test_trained_model_and_segmentations_are_unchanged_macbeth():
    model, log = train(list(shakespeare_lines("macbeth")), 800)
    assert _digest(sorted(model.scores)) == "4446bf0dc76ec381"
    assert math.isclose(math.fsum(model.scores.values()), -6153.134633107459,
                        abs_tol=1e-8)
    assert [e["size"] for e in log] == [3992, 2981, 2234, 1675, 1256, 942, 880]
    hamlet = list(shakespeare_lines("hamlet"))[:400]
    segmented = [" ".join(model.encode(line)) for line in hamlet]
    assert _digest(segmented) == "4cdb14f921ccdaae"
    nbest = [" ".join(" ".join(x) for x, _ in model.nbest(normalize(w), 3))
             for w in ["Dunsinane", "thunder", "witches", "Banquo"]]
    assert _digest(nbest) == "28c72bad8732fd3a"


def test_train_small_corpus():
    lines = number_words(range(1, 300), "de")
    model, log = train(lines, 40)
    assert len(model.scores) == 40
    assert set("".join(lines)) <= set(model.scores)  # every character is a piece
    assert all(model.decode(model.encode(w)) == w for w in lines)
    assert log[-1]["size"] <= 44


def test_logged_likelihood_is_that_of_the_logged_model():
    lines = number_words(range(1, 300), "de")
    rounds = []
    model, log = train(lines, 200, progress=rounds.append)  # one round: no pruning
    assert len(log) == 1 == len(rounds) and len(model.scores) == log[0]["size"]
    assert math.isclose(log[0]["loglik"], corpus_log_likelihood(model, lines),
                        rel_tol=1e-12)


def test_vocab_size_too_large():
    lines = number_words(range(1, 30), "de")
    model, _ = train(lines, 500)
    assert len(model.scores) < 500  # a smaller model, as sentencepiece's soft limit
    with pytest.raises(ValueError, match="too large"):
        train(lines, 500, hard_vocab_limit=True)


@given(st.dictionaries(st.text(alphabet="ab", min_size=1, max_size=6).map(
    lambda w: SPACE + w), st.integers(1, 5), min_size=1, max_size=6))
def test_expected_counts_by_enumeration(words):
    """The vectorized forward-backward against the definition: sum over every
    segmentation x of P(x | X) times the uses of each piece in x."""
    counts, loglik = expected_counts(TOY, words)
    exact, total = Counter(), 0.0
    for w, c in words.items():
        paths = [(x, math.exp(TOY.log_prob(x))) for x in TOY.segmentations(w)]
        z = sum(p for _, p in paths)
        total += c * math.log(z)
        for x, p in paths:
            for piece in x:
                exact[piece] += c * p / z
    assert math.isclose(loglik, total, rel_tol=1e-9)
    assert all(math.isclose(counts.get(p, 0.0), v, rel_tol=1e-9)
               for p, v in exact.items())


def test_batched_viterbi_and_alternatives_match_the_per_word_ones():
    words = corpus_words(shakespeare_lines("macbeth"))
    model, _ = train(list(shakespeare_lines("macbeth")), 800)
    lattices = _Lattices(words, model.scores, model.max_len)
    expected = Counter()
    for w, c in words.items():
        for piece in model._viterbi_f32(w):
            expected[piece] += c
    assert lattices.viterbi_counts(model.scores) == dict(expected)
    tree = _score_tree(model.scores)
    assert all(lattices.alternative(p, tree) == model._alternative(p)
               for p in model.scores)


def test_seed_pieces_are_log_probabilities():
    seed = seed_pieces(corpus_words(["ab ab abc"]), 10)
    assert math.isclose(sum(math.exp(v) for v in seed.values()), 1.0)
    assert all(SPACE not in p[1:] for p in seed)


def test_train_sentencepiece_is_deterministic_and_loadable():
    lines = number_words(range(1, 300), "de")
    sp = sp_train(lines, 43)
    assert sp.get_piece_size() == 43
    again = sp_train(iter(lines), 43)  # any iterable
    assert sp.serialized_model_proto() == again.serialized_model_proto()
    model = Unigram.from_sentencepiece(sp)
    assert len(model.scores) == 40  # the three special pieces are left out
    assert all(model.encode(w) == sp.encode(w, out_type=str) for w in lines)


def test_renormalized_sums_to_one():
    lines = number_words(range(1, 300), "de")
    model, _ = train(lines, 40)
    assert sum(math.exp(v) for v in model.scores.values()) < 1  # the digamma M-step
    fixed = model.renormalized()
    total = sum(math.exp(v) for v in fixed.scores.values())
    assert math.isclose(total, 1.0, rel_tol=1e-12)
    shifts = {round(fixed.scores[p] - model.scores[p], 12) for p in model.scores}
    assert len(shifts) == 1 and shifts.pop() > 0  # one constant, added to every score


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


def test_segmentations_limit():
    with pytest.raises(ValueError, match="more than 3 segmentations"):
        TOY.segmentations("▁abab", limit=3)


def test_empty_text():
    assert TOY.encode("") == [] and TOY.encode("", out_type=int) == []
    assert TOY.viterbi("") == [] and TOY.decode([]) == ""
    assert TOY.nbest("", 3) == [([], 0.0)]
    assert TOY.sample("", 0.5, random.Random(0)) == []


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: Unigram({}), "at least one piece"),
    (lambda: Unigram(["a"]), "mapping"),
    (lambda: Unigram({"a": float("nan")}), "finite"),
    (lambda: Unigram({"a": "1"}), "finite"),
    (lambda: Unigram({"": -1.0}), "non-empty strings"),
    (lambda: Unigram({"<s>": -1.0}), "reserved"),
    (lambda: Unigram({"a": -1.0}, max_piece_length=0), "max_piece_length"),
    (lambda: Unigram.from_sentencepiece("model.model"), "SentencePieceProcessor"),
    (lambda: TOY.encode(3), "str"),
    (lambda: TOY.encode(b"ab"), "str"),
    (lambda: TOY.encode("a\ud800"), "lone surrogate"),
    (lambda: TOY.encode("ab", out_type=list), "out_type"),
    (lambda: TOY.viterbi(None), "str"),
    (lambda: TOY.decode("▁ab"), "not a single string|list of pieces"),
    (lambda: TOY.decode(["▁a", 3]), "mixture"),
    (lambda: TOY.decode([99]), "out of range"),
    (lambda: TOY.id_to_piece(1.5), "integers"),
    (lambda: TOY.piece_to_id(3), "str"),
    (lambda: TOY.log_prob("▁ab"), "single string"),
    (lambda: TOY.sample("▁a", 0.0, random.Random(0)), "alpha must be a positive"),
    (lambda: TOY.sample("▁a", float("nan"), random.Random(0)), "alpha"),
    (lambda: TOY.sample("▁a", 0.5, 0), "rng"),
    (lambda: TOY.forward("▁a", "1"), "alpha must be a finite"),
    (lambda: TOY.nbest("▁a", 0), "n must be a positive integer"),
    (lambda: TOY.nbest("▁a", 2.0), "n must be a positive integer"),
    (lambda: TOY.nbest_sample("▁a", 2, -1.0, random.Random(0)), "alpha"),
    (lambda: TOY.nbest_sample("▁a", 0, 0.5, random.Random(0)), "positive"),
    (lambda: TOY.distribution("▁a", 0), "alpha"),
    (lambda: TOY.distribution("▁a", 0.5, l=0), "positive"),
    (lambda: TOY.segmentations("▁a", limit=0), "limit"),
    (lambda: denormalize(["a"]), "dummy prefix"),
    (lambda: denormalize("▁a"), "single string"),
    (lambda: train(["abcdef"], 3), "smaller than the alphabet"),
    (lambda: train("abc", 10), "iterable of lines"),
    (lambda: train(None, 10), "iterable of lines"),
    (lambda: train([""], 10), "empty"),
    (lambda: train([], 10), "empty"),
    (lambda: train(["ab", 3], 10), "every line must be a str"),
    (lambda: train(["ab"], 0), "vocab_size must be a positive integer"),
    (lambda: train(["ab"], 10.0), "vocab_size must be a positive integer"),
    (lambda: train(["ab"], 10, shrinking_factor=1.5), "shrinking_factor"),
    (lambda: train(["ab"], 10, seed_size=0), "seed_size"),
    (lambda: train(["ab"], 10, num_sub_iterations=0), "num_sub_iterations"),
    (lambda: train(["ab"], 10, max_piece_length=0), "max_piece_length"),
    (lambda: train(["ab"], 10, progress="print"), "progress"),
    (lambda: corpus_words(["ab", None]), "every line must be a str"),
    (lambda: seed_pieces({}, 10), "non-empty mapping"),
    (lambda: seed_pieces({"▁a": 0}, 10), "positive integers"),
    (lambda: expected_counts(TOY, {"▁a": 1.5}), "positive integers"),
    (lambda: m_step({}, set()), "non-empty mapping"),
    (lambda: m_step({"a": -1.0}, set()), ">= 0"),
    (lambda: m_step({"a": 0.1}, set()), "none is kept"),
    (lambda: prune(TOY, {"▁ab": 2}, 0, set()), "target"),
    (lambda: prune(TOY, {"▁ab": 2}, 3, "ab"), "keep"),
    (lambda: prune({"a": -1.0}, {"▁ab": 2}, 3, set()), "Unigram"),
    (lambda: corpus_log_likelihood(TOY, []), "empty"),
    (lambda: digamma(0.0), "x > 0"),
    (lambda: digamma("1"), "x > 0"),
    (lambda: train_sentencepiece("abc", 10), "not a single string"),
    (lambda: train_sentencepiece(["", ""], 10), "empty"),
    (lambda: train_sentencepiece(["ab", 3], 10), "every line to be a str"),
    (lambda: train_sentencepiece(["ab"], 0), "vocab_size must be a positive integer"),
    (lambda: train_sentencepiece(["ab"], 3), "at least 4"),
    (lambda: train_sentencepiece(["ab"], 10, hard_vocab_limit=1), "hard_vocab_limit"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
