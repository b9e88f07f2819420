"""The BPE learner and segmenter in mlf.bpe: the paper's toy example, the reference, laws, errors."""
import io
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlf.bpe import BPE, EOW, learn_merges, merge_pair, pretokenize, word_counts, word_to_symbols
from mlf.corpora import shakespeare_lines

TOY = {"low": 5, "lower": 2, "newest": 6, "widest": 3}  # Sennrich et al., Algorithm 1


def recount_merges(counts, num_merges, min_frequency=2):
    """Oracle: Algorithm 1 with a full recount of pair statistics before every merge."""
    words = {tuple(word_to_symbols(w)): c for w, c in counts.items()}
    merges = []
    for _ in range(num_merges):
        stats = Counter()
        for symbols, c in words.items():
            for pair in zip(symbols, symbols[1:]):
                stats[pair] += c
        if not stats:
            break
        best = max(stats, key=lambda p: (stats[p], p))
        if stats[best] < min_frequency:
            break
        merges.append(best)
        words = {tuple(merge_pair(list(s), best)): c for s, c in words.items()}
    return merges


def test_toy_dictionary_first_merges():
    # (e,s) and (s,t</w>) both occur 9 times: the larger pair wins; then e+st</w> (9), l+o (7),
    # and three pairs at 6 (n e, e w, w est</w>), of which w+est</w> is the largest
    merges = learn_merges(TOY, 5)
    assert merges == [("s", "t" + EOW), ("e", "st" + EOW), ("l", "o"), ("w", "est" + EOW), ("n", "e")]


def test_segment_applies_merges_by_rank():
    bpe = BPE.learn(TOY, 10)
    assert bpe.segment("lowest") == ["lo", "west"]
    assert bpe.segment("newer") == ["ne", "w", "e", "r"]  # unseen word, known pieces
    assert bpe.segment("x") == ["x"]


def test_overlapping_pair_is_merged_left_to_right():
    assert merge_pair(["a", "a", "a"], ("a", "a")) == ["aa", "a"]
    assert merge_pair(["a", "a", "a", "a"], ("a", "a")) == ["aa", "aa"]


def test_incremental_statistics_equal_full_recount_on_overlaps():
    counts = {"aaaa": 3, "aaab": 2, "baaa": 2, "abab": 4, "ababa": 1, "bbbb": 5}
    assert learn_merges(counts, 30, 1) == recount_merges(counts, 30, 1)


words = st.text(alphabet=st.sampled_from("abcde"), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(words, st.integers(1, 5), min_size=1, max_size=12), st.integers(1, 25),
       st.integers(1, 3))
def test_learner_equals_full_recount(counts, num_merges, min_frequency):
    assert learn_merges(counts, num_merges, min_frequency) == recount_merges(counts, num_merges, min_frequency)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1).filter(lambda w: not any(c.isspace() for c in w)))
def test_segmentation_is_lossless_for_any_word(word):
    bpe = BPE.learn({"the": 10, "then": 4, "other": 3, "ababab": 2}, 20)
    pieces = bpe.segment(word)
    assert "".join(pieces) == word and all(pieces)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1).filter(lambda w: not any(c.isspace() for c in w) and "@" not in w),
                max_size=6))
def test_encode_decode_round_trip(word_list):
    bpe = BPE.learn({"the": 10, "then": 4, "other": 3}, 10)
    line = " ".join(word_list)
    assert bpe.decode(bpe.encode(line)) == line


def _play_text(titles):
    return [pretokenize(line) for t in titles for line in shakespeare_lines(t)]


def test_merges_identical_to_subword_nmt():
    from subword_nmt.learn_bpe import learn_bpe

    lines = _play_text(["hamlet", "macbeth", "the-tempest"])
    out = io.StringIO()
    learn_bpe(io.StringIO("\n".join(lines)), out, 2000, min_frequency=2)
    reference = [tuple(row.split(" ")) for row in out.getvalue().splitlines()[1:]]
    assert len(reference) == 2000
    assert learn_merges(word_counts(lines), 2000, min_frequency=2) == reference


def test_segmentation_identical_to_subword_nmt_on_held_out_lines():
    from subword_nmt.apply_bpe import BPE as ReferenceBPE

    bpe = BPE.learn(word_counts(_play_text(["hamlet", "macbeth"])), 1000)
    codes = io.StringIO("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in bpe.merges))
    reference = ReferenceBPE(codes)
    held_out = _play_text(["othello"])[:2000]
    for line in held_out:
        assert " ".join(bpe.encode(line)) == reference.process_line(line)
        assert bpe.decode(bpe.encode(line)) == line


def test_vocabulary_covers_every_piece():
    bpe = BPE.learn(TOY, 10)
    vocab = bpe.vocabulary("".join(TOY))
    assert all(s in vocab for w in TOY for s in bpe.segment_symbols(w))


@pytest.mark.parametrize("num_merges", [0, -3, 2.5, True, "10"])
def test_rejects_bad_number_of_merges(num_merges):
    with pytest.raises(ValueError, match="num_merges must be a positive integer"):
        learn_merges(TOY, num_merges)


def test_rejects_empty_corpus():
    with pytest.raises(ValueError, match="empty corpus"):
        learn_merges({}, 10)
    with pytest.raises(ValueError, match="empty corpus"):
        BPE.learn(word_counts(["", "   "]), 10)


@pytest.mark.parametrize("counts, message", [
    ({b"low": 3}, "must be a str"),
    ({"lo w": 3}, "no whitespace"),
    ({"low": 0}, "positive integers"),
    ({"low": 1.5}, "positive integers"),
])
def test_rejects_bad_words_and_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        learn_merges(counts, 5)


def test_rejects_non_string_input():
    bpe = BPE.learn(TOY, 5)
    with pytest.raises(ValueError, match="must be a str"):
        bpe.segment(42)
    with pytest.raises(ValueError, match="must be a str"):
        bpe.encode(["low"])
    with pytest.raises(ValueError, match="not a single string"):
        word_counts("low lower")
    with pytest.raises(ValueError, match="one non-empty word"):
        bpe.segment("two words")
    with pytest.raises(ValueError, match="pair of non-empty strings"):
        BPE([("a", "b", "c")])
    with pytest.raises(ValueError, match="must be a str"):
        pretokenize(None)
