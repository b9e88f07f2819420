"""mlf.rasp: the interpreter, the paper's programs, their sizes, tracr, bad input."""
import itertools
import os
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import rasp as R

os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

words = st.lists(st.sampled_from("abcd"), min_size=0, max_size=12)
numbers = st.lists(st.integers(1, 6), min_size=1, max_size=10)


@given(words)
def test_histogram_counts(xs):
    counts = Counter(xs)
    assert R.make_histogram()(xs) == [counts[x] for x in xs]


@given(words.filter(bool))
def test_reverse_twice_is_identity(xs):
    rev = R.make_reverse()
    assert rev(xs) == xs[::-1] and rev(rev(xs)) == xs


@given(numbers)
def test_sort_is_sorted_and_stable(xs):
    assert R.make_sort(max_len=10)(xs) == sorted(xs)


@given(words.filter(bool))
def test_most_frequent_first(xs):
    counts = Counter(xs)
    expected = sorted(xs, key=lambda x: -counts[x])  # Python's sort is stable too
    assert R.make_most_frequent(max_len=12)(xs) == expected


@given(st.text("()", max_size=12))
def test_dyck1_matches_counting(xs):
    assert R.make_dyck1()(xs) == R.dyck1_reference(xs)


def test_dyck1_examples():
    assert R.make_dyck1()("(())") == ["P", "P", "P", "T"]
    assert R.make_dyck1()("())(") == ["P", "T", "F", "F"]  # failure is for good


def test_select_reads_key_then_query():
    # key k is chosen for query q when keys[k] < queries[q]
    assert R.select([0, 1, 2], [0, 1, 2], "<") == [[False, False, False],
                                                    [True, False, False],
                                                    [True, True, False]]


def test_aggregate_kinds():
    sel = [[True, True], [False, False]]
    assert R.aggregate(sel, [1, 2], numerical=True) == [1.5, 0]
    assert R.aggregate([[True, False], [False, False]], ["a", "b"], default="-") == \
        ["a", "-"]
    assert R.aggregate(sel, ["a", "a"]) == ["a", None]  # equal values are one value


def test_empty_input():
    assert R.make_histogram()([]) == [] and R.make_sort(3)([]) == []


def test_layers_and_heads_match_the_paper():
    assert R.layers_and_heads(R.make_histogram()) == (1, 1)
    assert R.layers_and_heads(R.make_reverse()) == (2, 1)
    assert R.layers_and_heads(R.make_sort(8)) == (2, 1)
    assert R.layers_and_heads(R.make_dyck1()) == (2, 1)
    assert R.layers_and_heads(R.make_most_frequent(8)) == (3, 1)
    assert R.layers_and_heads(R.tokens) == (0, 0)


def test_two_selectors_in_one_layer_are_two_heads():
    a = R.Aggregate(R.Select(R.indices, R.indices, "<="),
                    R.Map(float, R.indices, numerical=True), numerical=True)
    b = R.SelectorWidth(R.Select(R.tokens, R.tokens, "=="))
    both = R.SequenceMap(lambda x, y: (x, y), a, b)
    assert R.layers_and_heads(both) == (1, 2)


def test_bad_programs():
    with pytest.raises(ValueError, match="unknown comparison 'lt'"):
        R.Select(R.tokens, R.tokens, "lt")
    with pytest.raises(TypeError, match="selector"):
        R.Aggregate(R.tokens, R.tokens)
    with pytest.raises(TypeError, match="s-op"):
        R.Map(str, R.Select(R.tokens, R.tokens, "=="))
    with pytest.raises(TypeError, match="function"):
        R.Map("upper", R.tokens)
    with pytest.raises(TypeError, match="s-op"):
        R.evaluate("tokens", "abc")
    with pytest.raises(TypeError, match="list, tuple or string"):
        R.make_histogram()(5)
    with pytest.raises(ValueError, match="max_len"):
        R.make_sort(0)


def test_bad_concrete_operations():
    with pytest.raises(ValueError, match="one length"):
        R.select([1, 2, 3], [1, 2], "==")  # sequences of two lengths
    with pytest.raises(TypeError, match="booleans"):
        R.aggregate([[1, 0], [0, 1]], [1, 2])  # a 0/1 matrix is not a selector
    with pytest.raises(ValueError, match="2 rows of 2"):
        R.aggregate([[True, False]], [1, 2])
    with pytest.raises(TypeError, match="list of rows"):
        R.selector_width(5)
    with pytest.raises(TypeError, match="values must be"):
        R.aggregate([[True]], 5)
    with pytest.raises(ValueError, match="categorical aggregate"):
        R.aggregate([[True, True], [True, True]], ["a", "b"])
    with pytest.raises(TypeError, match="numerical aggregate"):
        R.aggregate([[True, True], [True, True]], ["a", "b"], numerical=True)
    with pytest.raises(ValueError, match="unknown comparison"):
        R.select([1], [1], "≈")


def test_sort_refuses_what_its_tie_break_cannot_order():
    sort = R.make_sort(max_len=4)
    assert sort([2, 1, 1, 1]) == [1, 1, 1, 2]
    # past max_len the offset i / (2 max_len) grows to 1: key 1 at position 8 would
    # tie with key 2 at position 0, so longer inputs are refused
    with pytest.raises(ValueError, match="at most 4 tokens"):
        sort([2, 1, 1, 1, 1])
    with pytest.raises(TypeError, match="integers"):
        sort(["b", "a"])


TRACR_CASES = {"histogram": (R.make_histogram, {"a", "b"}),
               "sort": (lambda: R.make_sort(3), {1, 2, 3}),
               "dyck1": (R.make_dyck1, {"(", ")"})}


@pytest.fixture(scope="module")
def compiled():
    """Each program compiled once for the module (tracr's compile is the slow part)."""
    cache = {}

    def get(name):
        if name not in cache:
            make, vocab = TRACR_CASES[name]
            program = make()
            cache[name] = program, vocab, R.compile_tracr(program, vocab, max_len=3)
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(TRACR_CASES))
def test_tracr_agrees_on_every_short_input(compiled, name):
    program, vocab, model = compiled(name)
    # every input of length 1 to 3, padded together in one batch
    inputs = [list(x) for n in range(1, 4)
              for x in itertools.product(sorted(vocab), repeat=n)]
    outputs, logits = R.run_tracr(model, inputs)
    assert outputs == [program(x) for x in inputs]
    assert len(logits) == model.model_config.num_layers


def test_tracr_bad_input(compiled):
    with pytest.raises(ValueError, match="vocab"):
        R.compile_tracr(R.make_histogram(), ["a"], 3)
    with pytest.raises(ValueError, match="max_len"):
        R.compile_tracr(R.make_histogram(), {"a"}, 0)
    _, _, model = compiled("histogram")
    with pytest.raises(ValueError, match="1 to 3 tokens"):
        R.run_tracr(model, [["a", "a", "a", "a"]])
    with pytest.raises(ValueError, match="1 to 3 tokens"):
        R.run_tracr(model, [[]])


@settings(deadline=None, max_examples=20)
@given(st.integers(1, 4), st.integers(1, 9))
def test_task_batches(n, vocab):
    x, y = R.make_task_batch("histogram", 5, n, vocab, torch.Generator().manual_seed(0))
    assert x.shape == (5, n + 1) and (x[:, 0] == 0).all() and (x[:, 1:] >= 1).all()
    for row, counts in zip(x[:, 1:].tolist(), y.tolist()):
        assert counts == R.make_histogram()(row)
    x, y = R.make_task_batch("sort", 5, n, vocab, torch.Generator().manual_seed(0))
    assert y.tolist() == [R.make_sort(n)(row) for row in x[:, 1:].tolist()]


def test_encoder_and_bad_task():
    model = R.encoder_classifier(vocab=4, n_out=3, n_layers=2, n_heads=1)
    out = model(torch.zeros(2, 5, dtype=torch.long))
    assert out.shape == (2, 5, 3) and len(model.attention()) == 2
    assert R.encoder_classifier(4, 3, 0, 1)(torch.zeros(1, 3, dtype=torch.long)).shape \
        == (1, 3, 3)
    with pytest.raises(ValueError, match="unknown task"):
        R.make_task_batch("reverse", 2, 3, 4, torch.Generator())
    with pytest.raises(ValueError, match="n_layers"):
        R.encoder_classifier(4, 3, -1, 1)
