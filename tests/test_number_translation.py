"""The number-translation data set: agreement with num2words, alignments, splits,
errors."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from num2words import num2words

from mlf.number_translation import (MAX_NUMBER, SEPARATOR, make_splits, number_pair,
                                    sample_examples, split_by_length, translate)


def test_every_number_matches_num2words():
    for n in range(1, MAX_NUMBER + 1):
        en, de, align = number_pair(n)
        assert en == num2words(n, lang="en").replace("-", " ").split()
        assert "".join(de) == num2words(n, lang="de")
        assert len(align) == len(de)


def test_known_alignments():
    assert number_pair(34) == (["thirty", "four"], ["vier", "und", "dreißig"],
                               [1, None, 0])
    assert number_pair(17) == (["seventeen"], ["siebzehn"], [0])
    assert number_pair(100) == (["one", "hundred"], ["ein", "hundert"], [0, 1])
    # both "three"s keep their own position
    assert number_pair(333)[2] == [0, 1, 4, None, 3]


@given(st.lists(st.integers(1, MAX_NUMBER), min_size=1, max_size=6))
def test_alignment_points_at_the_translated_word(numbers):
    ex = translate(numbers)
    assert ex.source.count(SEPARATOR) == ex.target.count(SEPARATOR) == len(numbers) - 1
    for tok, a in zip(ex.target, ex.alignment):
        if tok == "und":
            assert a is None
        else:
            assert 0 <= a < len(ex.source)
            if tok == SEPARATOR:
                assert ex.source[a] == SEPARATOR
    aligned = [a for a in ex.alignment if a is not None]
    # each source word produces at most one target word
    assert len(set(aligned)) == len(aligned)


def test_splits_are_disjoint_and_reproducible():
    train, test = make_splits(300, 100, 1, 4, seed=3)
    assert len(train) == 300 and len(test) == 100
    assert not {ex.numbers for ex in train} & {ex.numbers for ex in test}
    assert make_splits(300, 100, 1, 4, seed=3) == (train, test)
    assert all(1 <= len(ex.numbers) <= 4 for ex in train + test)


def test_split_by_length():
    examples = sample_examples(200, 1, 5, seed=0)
    buckets = split_by_length(examples, [1, 10, 20, 40])
    assert list(buckets) == ["1-9", "10-19", "20-39"]
    assert sum(map(len, buckets.values())) == 200
    assert all(10 <= len(ex.source) < 20 for ex in buckets["10-19"])


def test_numpy_integers_are_numbers():
    np = pytest.importorskip("numpy")
    assert number_pair(np.int64(34)) == number_pair(34)
    ex = translate(np.array([3, 4]))
    assert ex == translate([3, 4]) and all(type(n) is int for n in ex.numbers)


def test_every_sentence_can_be_drawn_but_no_more():
    every = sample_examples(MAX_NUMBER, 1, 1, seed=0)  # all 999 one-number sentences
    assert sorted(ex.numbers[0] for ex in every) == list(range(1, MAX_NUMBER + 1))
    with pytest.raises(ValueError, match="only 999 exist"):
        sample_examples(MAX_NUMBER + 1, 1, 1, seed=0)
    with pytest.raises(ValueError, match=r"only 997 exist \(999 less 2 excluded\)"):
        sample_examples(998, 1, 1, seed=0, exclude={(5,), (7,), (5, 7)})
    assert len(sample_examples(997, 1, 1, seed=0, exclude=[[5], (7,)])) == 997
    with pytest.raises(ValueError, match="train_size \\+ test_size = 1000"):
        make_splits(900, 100, 1, 1)


NOT_INT = "must be an integer from 1 to 999"


@pytest.mark.parametrize("call, error, message", [
    # number_pair: out of range, and not an integer
    (lambda: number_pair(0), ValueError, f"n {NOT_INT}, got 0"),
    (lambda: number_pair(1000), ValueError, f"n {NOT_INT}, got 1000"),
    (lambda: number_pair(-3), ValueError, f"n {NOT_INT}, got -3"),
    (lambda: number_pair(3.0), TypeError, f"n {NOT_INT}, got 3.0 \\(float\\)"),
    (lambda: number_pair("5"), TypeError, "got '5' \\(str\\)"),
    (lambda: number_pair(True), TypeError, "got True \\(bool\\)"),
    (lambda: number_pair(None), TypeError, NOT_INT),
    # translate: empty, not a sequence, a bad number at a named position
    (lambda: translate([]), ValueError, "non-empty sequence .* got an empty sequence"),
    (lambda: translate(()), ValueError, "non-empty"),
    (lambda: translate(5), TypeError,
     "non-empty sequence of integers .* got 5 \\(int\\)"),
    (lambda: translate("12"), TypeError, "got '12' \\(str\\)"),
    (lambda: translate(None), TypeError, "non-empty sequence"),
    (lambda: translate([1, 0]), ValueError, f"numbers\\[1\\] {NOT_INT}, got 0"),
    (lambda: translate([5, 1000, 3]), ValueError, "numbers\\[1\\].* got 1000"),
    (lambda: translate([1, 2.0]), TypeError, "numbers\\[1\\].* got 2.0 \\(float\\)"),
    # sample_examples: counts, their order, the seed, what to exclude
    (lambda: sample_examples(0, 1, 2, 0), ValueError,
     "count must be a positive integer"),
    (lambda: sample_examples(-5, 1, 2, 0), ValueError,
     "count must be a positive integer"),
    (lambda: sample_examples(2.5, 1, 2, 0), TypeError,
     "count must be a positive integer"),
    (lambda: sample_examples(5, 0, 2, 0), ValueError, "min_numbers must be a positive"),
    (lambda: sample_examples(5, 1, 2.0, 0), TypeError,
     "max_numbers must be a positive"),
    (lambda: sample_examples(5, 3, 2, 0), ValueError,
     "min_numbers \\(3\\) must not exceed max_numbers \\(2\\)"),
    (lambda: sample_examples(5, 1, 2, None), TypeError,
     "seed must be a non-negative int"),
    (lambda: sample_examples(5, 1, 2, 1.5), TypeError,
     "seed must be a non-negative int"),
    (lambda: sample_examples(5, 1, 2, -1), ValueError,
     "seed must be a non-negative int"),
    (lambda: sample_examples(5, 1, 2, 0, exclude=5), TypeError,
     "exclude must be a collection of number tuples"),
    (lambda: sample_examples(5, 1, 2, 0, exclude=[1]), TypeError,
     "it holds 1 \\(int\\)"),
    (lambda: sample_examples(1000, 1, 1, 0), ValueError,
     "asked for, but only 999 exist"),
    # make_splits: names its own arguments
    (lambda: make_splits(0, 10, 1, 2), ValueError,
     "train_size must be a positive integer"),
    (lambda: make_splits(10, 0, 1, 2), ValueError,
     "test_size must be a positive integer"),
    (lambda: make_splits(10, 10, 2, 1), ValueError, "must not exceed"),
    (lambda: make_splits(10, 10, 1, 2, seed="x"), TypeError, "seed must be"),
    (lambda: make_splits(900, 200, 1, 1), ValueError, "but only 999 of 1 to 1 numbers"),
    # split_by_length: edges, and what counts as an example
    (lambda: split_by_length([translate([5])], [3]), ValueError, "strictly increasing"),
    (lambda: split_by_length([translate([5])], [3, 3]), ValueError,
     "strictly increasing"),
    (lambda: split_by_length([translate([5])], [2, 5]), ValueError,
     "outside the edges"),
    (lambda: split_by_length([translate([5])], [1.5, 3]), TypeError, "integer source"),
    (lambda: split_by_length([translate([5])], 5), TypeError, "list of source lengths"),
    (lambda: split_by_length([5], [1, 3]), TypeError, "must hold Example objects"),
    (lambda: split_by_length(translate([5]), [1, 3]), TypeError, "a list of Example"),
])
def test_bad_input_is_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()
