"""The number-translation data set: agreement with num2words, alignments, splits, errors."""
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
    assert number_pair(34) == (["thirty", "four"], ["vier", "und", "dreißig"], [1, None, 0])
    assert number_pair(17) == (["seventeen"], ["siebzehn"], [0])
    assert number_pair(100) == (["one", "hundred"], ["ein", "hundert"], [0, 1])
    assert number_pair(333)[2] == [0, 1, 4, None, 3]  # both "three"s keep their own position


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
    assert len(set(aligned)) == len(aligned)  # each source word produces at most one target word


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


@pytest.mark.parametrize("call, message", [
    (lambda: number_pair(0), "from 1 to 999"),
    (lambda: number_pair(1000), "from 1 to 999"),
    (lambda: number_pair(3.0), "from 1 to 999"),
    (lambda: translate([]), "non-empty"),
    (lambda: sample_examples(0, 1, 2, 0), "count must be a positive integer"),
    (lambda: sample_examples(5, 3, 2, 0), "must not exceed"),
    (lambda: split_by_length([translate([5])], [3]), "strictly increasing"),
    (lambda: split_by_length([translate([5])], [2, 5]), "outside the edges"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
