"""The BPE learner and segmenter in mlf.bpe: the paper's toy example, the reference,
laws, the vocabulary filter, errors."""
import io
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlf.bpe import (BPE, EOW, learn_merges, merge_pair, pretokenize, word_counts,
                     word_to_symbols)
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
    # (e,s) and (s,t</w>) both occur 9 times: the larger pair wins; then e+st</w> (9),
    # l+o (7), and three pairs at 6 (n e, e w, w est</w>), of which w+est</w> is the
    # largest
    merges = learn_merges(TOY, 5)
    assert merges == [("s", "t" + EOW), ("e", "st" + EOW), ("l", "o"),
                      ("w", "est" + EOW), ("n", "e")]


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
@given(st.dictionaries(words, st.integers(1, 5), min_size=1, max_size=12),
       st.integers(1, 25), st.integers(1, 3))
def test_learner_equals_full_recount(counts, num_merges, min_frequency):
    expected = recount_merges(counts, num_merges, min_frequency)
    assert learn_merges(counts, num_merges, min_frequency) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1).filter(lambda w: not any(c.isspace() for c in w)))
def test_segmentation_is_lossless_for_any_word(word):
    bpe = BPE.learn({"the": 10, "then": 4, "other": 3, "ababab": 2}, 20)
    pieces = bpe.segment(word)
    assert "".join(pieces) == word and all(pieces)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1).filter(
    lambda w: not any(c.isspace() for c in w) and "@" not in w), max_size=6))
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
    reference = ReferenceBPE(_codes(bpe.merges))
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


# --- the vocabulary filter (subword-nmt's --vocabulary / --vocabulary-threshold) ---

def _codes(merges):
    return io.StringIO("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def _reference(merges, vocab=None, threshold=None):
    from subword_nmt.apply_bpe import BPE as ReferenceBPE

    kept = None
    if vocab is not None:
        kept = {t for t, c in vocab.items() if threshold is None or c >= threshold}
    return ReferenceBPE(_codes(merges), vocab=kept)


def test_token_counts_equal_get_vocab_of_the_encoded_text():
    from subword_nmt.get_vocab import get_vocab

    lines = _play_text(["macbeth"])
    bpe = BPE.learn(word_counts(lines), 800)
    reference = _reference(bpe.merges)
    encoded = io.StringIO("\n".join(reference.process_line(x) for x in lines))
    out = io.StringIO()
    get_vocab(encoded, out)
    rows = (row.split(" ") for row in out.getvalue().splitlines())
    assert bpe.token_counts(word_counts(lines)) == {t: int(c) for t, c in rows}


def test_toy_unit_merged_away_is_split_again():
    # "wid" is learned on the way to "widest" and never survives in the training text
    bpe = BPE.learn(TOY, 10)
    vocab = bpe.token_counts(TOY)
    assert "wid@@" not in vocab and bpe.encode("wider") == ["wid@@", "e@@", "r"]
    resplit = BPE(bpe.merges, vocab=vocab).encode("wider")
    assert resplit == ["w@@", "i@@", "d@@", "e@@", "r"]
    # a vocabulary never changes the words the pieces spell
    assert BPE(bpe.merges, vocab=vocab).segment("wider") == ["w", "i", "d", "e", "r"]


@pytest.mark.parametrize("threshold", [None, 1, 2, 50])
def test_vocabulary_filter_identical_to_subword_nmt(threshold):
    train = word_counts(_play_text(["hamlet", "macbeth"]))
    bpe = BPE.learn(train, 1000)
    vocab = bpe.token_counts(train)
    ours = BPE(bpe.merges, vocab=vocab, threshold=threshold)
    reference = _reference(bpe.merges, vocab, threshold)
    unseen = ["Ophélie : Straße , Ελλάδα , 東京 😀 naïve x Z", "Æ œuvre 42 ß ß ß"]
    for line in _play_text(["othello"])[:1500] + [pretokenize(x) for x in unseen]:
        assert " ".join(ours.encode(line)) == reference.process_line(line)
        assert ours.decode(ours.encode(line)) == line


def test_filtered_training_text_uses_only_vocabulary_tokens_or_characters():
    train = word_counts(_play_text(["macbeth"]))
    bpe = BPE.learn(train, 800)
    vocab = bpe.token_counts(train)
    kept = {t for t, c in vocab.items() if c >= 20}
    filtered = BPE(bpe.merges, vocab=vocab, threshold=20)
    tokens = filtered.token_counts(train)
    assert all(t in kept or len(t.removesuffix("@@")) == 1 for t in tokens)
    assert sum(tokens.values()) > sum(vocab.values())  # re-splitting lengthens the text


def test_two_merges_that_make_one_symbol_split_as_subword_nmt_does():
    # "abc" is made by ("a", "bc") and by ("ab", "c"); undoing it must pick the same one
    merges = [("b", "c"), ("a", "bc"), ("a", "b"), ("ab", "c"), ("x", "abc</w>")]
    for vocab in ({"a@@": 1, "bc": 1}, {"ab@@": 1, "c": 1}, {"c@@": 1, "x": 1}):
        ours, reference = BPE(merges, vocab=vocab), _reference(merges, vocab)
        for word in ["abc", "abcabc", "xabc", "abcx", "a", "ab"]:
            expected = reference.process_line(word)
            assert " ".join(ours.encode(word)) == expected, (vocab, word)


corpus_words = st.text(alphabet=st.sampled_from("abcd"), min_size=1, max_size=7)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(corpus_words, st.integers(1, 6), min_size=1, max_size=10),
       st.integers(1, 20), st.data())
def test_vocabulary_filter_equals_subword_nmt_on_random_vocabularies(counts, n, data):
    bpe = BPE.learn(counts, n, min_frequency=1)
    assume(bpe.merges)  # subword-nmt cannot read a codes file without merges
    full = bpe.token_counts(counts)
    vocab = {t: c for t, c in full.items() if data.draw(st.booleans())} or full
    threshold = data.draw(st.sampled_from([None, 1, 2, 3]))
    if threshold is not None and max(vocab.values()) < threshold:
        threshold = None
    ours = BPE(bpe.merges, vocab, threshold)
    reference = _reference(bpe.merges, vocab, threshold)
    tests = data.draw(st.lists(st.text(alphabet=st.sampled_from("abcde"), min_size=1,
                                       max_size=9), min_size=1, max_size=5))
    line = " ".join(tests)
    assert " ".join(ours.encode(line)) == reference.process_line(line)
    assert "".join(ours.segment(tests[0])) == tests[0]


# --- bad input: each public function says what was wrong and what it expects ---

@pytest.mark.parametrize("call, message", [
    (lambda: word_counts(5), "iterable of str lines"),
    (lambda: word_counts([b"bytes line"]), "each line must be a str"),
    (lambda: word_to_symbols(""), "one non-empty word"),
    (lambda: word_to_symbols("two words"), "one non-empty word"),
    (lambda: word_to_symbols(None), "word must be a str"),
    (lambda: merge_pair("low", ("l", "o")), "list of symbols"),
    (lambda: merge_pair(["l", "o"], ("l", "o", "w")), "tuple of two symbols"),
    (lambda: learn_merges(["low", "lower"], 5), "mapping word -> count"),
    (lambda: learn_merges(TOY, 5, min_frequency=0), "min_frequency must be a positive"),
    (lambda: learn_merges({"low": True}, 5), "positive integers"),
    (lambda: BPE(None), "list of \\(a, b\\) pairs"),
    (lambda: BPE("ab"), "list of \\(a, b\\) pairs"),
    (lambda: BPE([("a", "")]), "pair of non-empty strings"),
    (lambda: BPE([]).vocabulary(5), "iterable of characters"),
    (lambda: BPE([]).vocabulary(["ab"]), "single characters"),
    (lambda: BPE([]).segment(""), "one non-empty word"),
    (lambda: BPE([]).segment_symbols("   "), "one non-empty word"),
    (lambda: BPE([]).decode("lo@@ w"), "list of tokens"),
    (lambda: BPE([]).decode([1, 2]), "each token must be a str"),
    (lambda: BPE([]).decode(None), "iterable of str tokens"),
    (lambda: BPE([]).token_counts({}), "empty corpus"),
    (lambda: BPE([]).token_counts(["low"]), "mapping word -> count"),
    (lambda: BPE([], vocab="lo@@ w"), "set of tokens or a mapping"),
    (lambda: BPE([], vocab={"lo@@", ""}), "non-empty and contain no whitespace"),
    (lambda: BPE([], vocab={"lo@@": -1}), "non-negative integers"),
    (lambda: BPE([], threshold=5), "threshold needs a vocab"),
    (lambda: BPE([], vocab={"lo@@", "w"}, threshold=5), "mapping token -> count"),
    (lambda: BPE([], vocab={"w": 3}, threshold=0), "threshold must be a positive"),
    (lambda: BPE([], vocab={"w": 3}, threshold=4), "vocab is empty"),
    (lambda: BPE([], vocab=set()), "vocab is empty"),
])
def test_bad_input_is_rejected_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_shared_learner_rejects_words_that_are_not_lists_of_symbols():
    from mlf.bpe import merge_most_frequent

    with pytest.raises(ValueError, match="non-empty list of symbols"):
        merge_most_frequent(["ab"], [1], 3)
    with pytest.raises(ValueError, match="non-empty list of symbols"):
        merge_most_frequent([[]], [1], 3)
    with pytest.raises(ValueError, match="freq must be a positive integer"):
        merge_most_frequent([["a", "b"]], [0], 3)
    with pytest.raises(ValueError, match="must be a list"):
        merge_most_frequent((["a", "b"],), [1], 3)


def test_empty_and_whitespace_only_input_is_no_input():
    bpe = BPE.learn(TOY, 5)
    assert bpe.encode("") == [] and bpe.encode(" \t\n ") == []
    assert bpe.decode([]) == ""
    assert word_counts(["", "   ", "\t"]) == Counter()
    assert pretokenize("   ") == ""


def test_unknown_characters_pass_through_unchanged():
    bpe = BPE.learn(TOY, 10)
    assert bpe.segment("lowß") == ["lo", "w", "ß"] and bpe.segment("東京") == ["東", "京"]
    vocab = bpe.token_counts(TOY)
    assert BPE(bpe.merges, vocab=vocab).encode("lowß") == ["lo@@", "w@@", "ß"]
