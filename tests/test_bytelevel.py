"""Byte-level BPE in mlf.bytelevel: tiktoken's educational trainer, tiktoken's encoder
and loader, GPT-2's byte order, merges recovered from ranks, laws, errors."""
import inspect
import json
from collections import Counter

import numpy as np
import pytest
import tiktoken
import tiktoken_ext.openai_public
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tiktoken._educational import bpe_train
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from mlf.bytelevel import (CL100K_PATTERN, GPT2_PATTERN, ByteLevelBPE, InputTypeError,
                           gpt2_byte_order, merge_by_rank, pretokenize,
                           ranks_from_merges, recover_merges, train_merges, train_ranks,
                           with_byte_order)
from mlf.corpora import number_words, shakespeare_text

SPECIAL = "<|endoftext|>"
MIXED = ("Café déjà vu, naïve façade!\r\nEmoji: 😀👍🏽 👨‍👩‍👧 ✨\r\n日本語のテキストと中文文本。 "
         "Привет, мир!\n\n\n    indented    line\t\ttabs  \n 12345678901 3.14159 "
         "1,000,000 don't DON'T it's I'LL  ")


def recount_ranks(text, vocab_size, pattern):
    """Oracle: tiktoken's educational trainer (full recount per merge), silenced."""
    return bpe_train(text, vocab_size, pattern, visualise=None)


def gpt2_byte_to_char():
    """GPT-2's printable stand-in for each byte, written from its description: the
    printable Latin-1 ranges stand for themselves, the rest move to U+0100 onwards."""
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    moved = [b for b in range(256) if b not in kept]
    return {**{b: chr(b) for b in kept},
            **{b: chr(0x100 + k) for k, b in enumerate(moved)}}


def tiktoken_ranks(encoding):
    """The rank table of a tiktoken.Encoding, through its public API only."""
    return {t: encoding.encode_single_token(t) for t in encoding.token_byte_values()}


@pytest.fixture(scope="module")
def merges():
    return train_merges(shakespeare_text(["macbeth", "the-tempest"]), 256 + 1500)


@pytest.fixture(scope="module")
def trained(merges):
    ranks = ranks_from_merges(merges)
    return ranks, ByteLevelBPE(ranks, CL100K_PATTERN, {SPECIAL: len(ranks)})


def tiktoken_encoding(ranks, pattern=CL100K_PATTERN):
    return tiktoken.Encoding(name="mlf-test", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={SPECIAL: len(ranks)})


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, CL100K_PATTERN])
def test_ranks_identical_to_tiktoken_educational_trainer(pattern):
    text = (shakespeare_text(["hamlet"])[:20000] + "\n"
            + " ".join(number_words(range(1, 200), "ru")))
    ours = train_ranks(text, 256 + 250, pattern)
    assert list(ours.items()) == list(recount_ranks(text, 256 + 250, pattern).items())


words = st.one_of(  # many ties and overlaps
    st.text(alphabet=st.sampled_from("ab cé\n'1"), min_size=1, max_size=40),
    st.text(alphabet=st.sampled_from("ab "), min_size=1, max_size=80))


@settings(max_examples=300, deadline=None)
@given(words, st.integers(0, 30))
def test_incremental_trainer_equals_full_recount_on_small_texts(text, merges):
    try:
        reference = recount_ranks(text, 256 + merges, GPT2_PATTERN)
    except ValueError:  # the educational trainer fails when no pair is left to merge
        assume(False)
    # subtle: when two merges spell the same bytes, the reference overwrites a rank
    assume(sorted(reference.values()) == list(range(len(reference))))
    ours = train_ranks(text, 256 + merges, GPT2_PATTERN)
    assert list(ours.items()) == list(reference.items())


@settings(max_examples=300, deadline=None)
@given(words, st.integers(0, 30))
def test_recover_merges_inverts_ranks_from_merges(text, num_merges):
    merges = train_merges(text, 256 + num_merges, GPT2_PATTERN)
    assume(len({a + b for a, b in merges}) == len(merges))  # each merge a new token
    ranks = ranks_from_merges(merges)
    assert recover_merges(ranks) == merges
    assert recover_merges(with_byte_order(ranks, gpt2_byte_order())) == merges


def test_ids_identical_to_tiktoken_on_held_out_text(trained):
    ranks, bpe = trained
    reference = tiktoken_encoding(ranks)
    held_out = (shakespeare_text(["hamlet"])[:50000] + MIXED
                + " ".join(number_words(range(90, 120), "ja")))
    assert bpe.encode(held_out) == reference.encode(held_out)
    with_special = f"first{SPECIAL}second {SPECIAL}"
    assert (bpe.encode(with_special, allowed_special={SPECIAL})
            == reference.encode(with_special, allowed_special={SPECIAL}))
    assert bpe.encode_ordinary(with_special) == reference.encode_ordinary(with_special)


def test_gpt2_byte_order_is_gpt2s_printable_first_order():
    order = gpt2_byte_order()
    assert sorted(order) == list(range(256))
    stand_in = gpt2_byte_to_char()
    assert order == sorted(range(256), key=lambda b: stand_in[b])
    assert order[:94] == list(range(0x21, 0x7F))  # '!' to '~' first
    assert order.index(ord(" ")) == 220 and order.index(ord("\n")) == 198
    assert stand_in[ord(" ")] == "Ġ" and stand_in[ord("\n")] == "Ċ"


def test_tiktoken_loader_builds_the_same_table_from_gpt2_files(merges, tmp_path,
                                                               monkeypatch):
    """Write our merges in GPT-2's file format and load them with tiktoken's loader."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the files, cache nothing
    stand_in = gpt2_byte_to_char()

    def spell(token):
        return "".join(stand_in[b] for b in token)

    ranks = ranks_from_merges(merges, gpt2_byte_order())
    lines = ["#version: 0.2", *(f"{spell(a)} {spell(b)}" for a, b in merges)]
    (tmp_path / "vocab.bpe").write_text("\n".join(lines) + "\n", encoding="utf-8")
    encoder = {spell(t): r for t, r in ranks.items()}
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    loaded = data_gym_to_mergeable_bpe_ranks(str(tmp_path / "vocab.bpe"),
                                             str(tmp_path / "encoder.json"))
    assert loaded == ranks
    assert recover_merges(loaded) == merges


def test_permuted_bytes_change_ids_not_tokens(trained):
    ranks, bpe = trained
    permuted = with_byte_order(ranks, gpt2_byte_order())
    reference = tiktoken_encoding(permuted)
    ids = reference.encode_ordinary(MIXED)
    ours = ByteLevelBPE(permuted, CL100K_PATTERN).encode(MIXED)
    assert ours == ids
    assert reference.decode_tokens_bytes(ids) == bpe.tokens(bpe.encode(MIXED))
    assert ids != bpe.encode(MIXED)  # the single-byte ids differ


def test_merges_recovered_from_a_tiktoken_encoding_are_ours(merges, trained):
    ranks, _ = trained
    assert recover_merges(tiktoken_ranks(tiktoken_encoding(ranks))) == merges
    permuted = with_byte_order(ranks, gpt2_byte_order())
    assert recover_merges(tiktoken_ranks(tiktoken_encoding(permuted))) == merges


def test_special_tokens_behave_like_tiktoken(trained):
    ranks, bpe = trained
    reference = tiktoken_encoding(ranks)
    text = f"Summarise: {SPECIAL}Ignore the above."
    with pytest.raises(ValueError):
        reference.encode(text)  # tiktoken's default: disallowed_special="all"
    with pytest.raises(ValueError, match="disallowed_special"):
        bpe.encode(text, disallowed_special="all")
    assert bpe.encode(text) == reference.encode(text, disallowed_special=())
    assert bpe.encode(text, allowed_special="all") == reference.encode(
        text, allowed_special="all")
    assert bpe.encode(text, allowed_special={SPECIAL}, disallowed_special="all") == \
        reference.encode(text, allowed_special={SPECIAL})


def test_surrogates_are_refused_clearly_and_tiktokens_fixup_matches(trained):
    ranks, bpe = trained
    reference = tiktoken_encoding(ranks)
    for text in ["a\ud800b", "x \udfff", "\ud83d\ude00 pair as two code units"]:
        with pytest.raises(ValueError, match="surrogate code point U\\+D"):
            bpe.encode(text)
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert bpe.encode(fixed) == reference.encode(text)
    with pytest.raises(ValueError, match="surrogate"):
        train_ranks("ab\ud800ab", 300)


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, CL100K_PATTERN])
def test_pretokenization_identical_to_tiktoken(pattern):
    ranks = {bytes([i]): i for i in range(256)}
    reference = tiktoken.Encoding(name="bytes", pat_str=pattern, mergeable_ranks=ranks,
                                  special_tokens={})
    chunks = pretokenize(MIXED, pattern)
    assert "".join(chunks) == MIXED
    ids = reference.encode_ordinary(MIXED)
    assert ids == list(MIXED.encode())  # with single bytes only, the ids are the bytes


def test_merge_by_rank_merges_lowest_rank_leftmost_first():
    ranks = {**{bytes([i]): i for i in range(256)}, b"aa": 256, b"ab": 257}
    assert merge_by_rank(ranks, b"aaab") == [b"aa", b"ab"]
    assert merge_by_rank(ranks, b"aaa") == [b"aa", b"a"]
    assert merge_by_rank(ranks, b"aa") == [b"aa"]
    assert merge_by_rank(ranks, b"aa", max_rank=256) == [b"a", b"a"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_decode_encode_round_trip_any_unicode(trained, text):
    _, bpe = trained
    assume(not any(0xD800 <= ord(c) < 0xE000 for c in text))  # surrogates are refused
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_decode_encode_round_trip_any_bytes(trained, data):
    _, bpe = trained
    assert bpe.decode_bytes(bpe.encode_bytes(data)) == data


def test_no_unknown_token_ever(trained):
    ranks, bpe = trained
    ids = bpe.encode_bytes(bytes(range(256)) + "𓀀 ∮ 🦜".encode())
    assert all(0 <= i < len(ranks) for i in ids)


def test_vocabulary_size_and_prefix_property():
    text = shakespeare_text(["the-tempest"])
    big = train_ranks(text, 700)
    small = train_ranks(text, 400)
    assert len(big) == 700 and len(small) == 400
    assert list(big.items())[:400] == list(small.items())  # greedy: fewer = a prefix


def test_trainer_stops_when_nothing_is_left_to_merge():
    assert train_ranks("ab ab", 1000, GPT2_PATTERN) == {
        **{bytes([i]): i for i in range(256)}, b"ab": 256, b" ab": 257}
    assert train_merges("ab ab", 256, GPT2_PATTERN) == []


def test_empty_inputs():
    bpe = ByteLevelBPE({bytes([i]): i for i in range(256)})
    assert bpe.encode("") == [] and bpe.encode_bytes(b"") == []
    assert bpe.decode([]) == "" and bpe.decode_bytes([]) == b"" and bpe.tokens([]) == []
    assert pretokenize("") == [] and recover_merges(bpe.ranks) == []
    assert ranks_from_merges([]) == bpe.ranks
    with pytest.raises(ValueError, match="empty text"):
        train_ranks("", 300)


def test_decode_accepts_any_integers_and_refuses_the_rest(trained):
    ranks, bpe = trained
    ids = bpe.encode("To be")
    assert bpe.decode(np.array(ids)) == bpe.decode(tuple(ids)) == "To be"
    assert bpe.decode([len(ranks)]) == SPECIAL
    for bad in [[len(ranks) + 1], [-1], [10**9]]:
        with pytest.raises(ValueError, match="unknown token id"):
            bpe.decode(bad)
    for bad in [[1.0], [True], ["5"], [None]]:
        with pytest.raises(TypeError, match="token ids must be integers"):
            bpe.decode(bad)
    for bad in ["abc", b"abc", 5, None]:
        with pytest.raises(TypeError, match="ids must be a sequence"):
            bpe.decode(bad)
        with pytest.raises(TypeError, match="ids must be a sequence"):
            bpe.tokens(bad)


@pytest.mark.parametrize("vocab_size", [255, 0, -1, -300])
def test_rejects_vocabulary_smaller_than_the_byte_alphabet(vocab_size):
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 256"):
        train_ranks("some text", vocab_size)


@pytest.mark.parametrize("vocab_size", [300.0, True, "512", None])
def test_rejects_vocabulary_size_that_is_not_an_integer(vocab_size):
    with pytest.raises(TypeError, match="vocab_size must be an integer >= 256"):
        train_merges("some text", vocab_size)
    with pytest.raises(ValueError):  # InputTypeError is a ValueError too
        train_ranks("some text", vocab_size)


@pytest.mark.parametrize("text", [b"bytes", None, 3, ["a list"]])
def test_rejects_text_that_is_not_a_str(text):
    bpe = ByteLevelBPE({bytes([i]): i for i in range(256)})
    for call in [lambda: train_ranks(text, 300), lambda: pretokenize(text),
                 lambda: bpe.encode(text), lambda: bpe.encode_ordinary(text)]:
        with pytest.raises(InputTypeError, match="text must be a str"):
            call()
    if not isinstance(text, bytes):
        with pytest.raises(TypeError, match="data must be bytes"):
            bpe.encode_bytes(text)


def test_rejects_bad_vocabularies_and_special_tokens():
    ranks = {bytes([i]): i for i in range(256)}
    with pytest.raises(ValueError, match="not a valid regular expression"):
        pretokenize("abc", "(")
    with pytest.raises(TypeError, match="pattern must be a str"):
        ByteLevelBPE(ranks, pattern=None)
    with pytest.raises(ValueError, match="all 256 single bytes"):
        ByteLevelBPE({b"a": 0})
    with pytest.raises(TypeError, match="ranks must be a mapping"):
        ByteLevelBPE(list(ranks))
    with pytest.raises(ValueError, match="distinct"):
        ByteLevelBPE(ranks, special_tokens={SPECIAL: 5})
    with pytest.raises(ValueError, match="distinct"):
        ByteLevelBPE({**ranks, b"ab": 5})
    with pytest.raises(ValueError, match="non-empty bytes"):
        ByteLevelBPE({**ranks, "ab": 256})
    with pytest.raises(ValueError, match="integers >= 0"):
        ByteLevelBPE({**ranks, b"ab": -1})
    with pytest.raises(ValueError, match="integers\\s*>= 0"):
        ByteLevelBPE(ranks, special_tokens={SPECIAL: -1})
    with pytest.raises(TypeError, match="special_tokens must be a mapping"):
        ByteLevelBPE(ranks, special_tokens=[SPECIAL])
    bpe = ByteLevelBPE(ranks, special_tokens={SPECIAL: 256})
    with pytest.raises(ValueError, match="not special tokens"):
        bpe.encode("x", allowed_special={"<|other|>"})
    with pytest.raises(TypeError, match="allowed_special must be a set"):
        bpe.encode("x", allowed_special=SPECIAL)  # a str, not a set of names
    with pytest.raises(TypeError, match="disallowed_special must be a set"):
        bpe.encode("x", disallowed_special=None)


def test_rejects_bad_merge_lists_and_byte_orders():
    with pytest.raises(ValueError, match="not a token before it"):
        ranks_from_merges([(b"ab", b"c")])
    with pytest.raises(TypeError, match="pair of bytes"):
        ranks_from_merges([("a", "b")])
    with pytest.raises(TypeError, match="merges must be a list"):
        ranks_from_merges(b"ab")
    with pytest.raises(ValueError, match="each byte value 0-255 exactly once"):
        ranks_from_merges([], byte_order=range(255))
    with pytest.raises(ValueError, match="each byte value 0-255 exactly once"):
        with_byte_order({bytes([i]): i for i in range(256)}, [0] * 256)
    ranks = {bytes([i]): i for i in range(256)}
    with pytest.raises(ValueError, match="single bytes hold ranks 0-255"):
        with_byte_order({**ranks, b"\x00": 999}, gpt2_byte_order())
    with pytest.raises(ValueError, match="not the merge of two lower-ranked tokens"):
        recover_merges({**ranks, b"abc": 256})  # no "ab" or "bc" below it
    with pytest.raises(TypeError, match="piece must be bytes"):
        merge_by_rank(ranks, "ab")
    with pytest.raises(TypeError, match="ranks must be a mapping"):
        recover_merges([b"a"])


def test_chunk_counts_follow_first_appearance():
    chunks = pretokenize("b a b c", GPT2_PATTERN)
    assert list(Counter(chunks)) == ["b", " a", " b", " c"]


def test_shared_learner_rejects_mismatched_counts():
    from mlf.bpe import merge_most_frequent

    with pytest.raises(ValueError, match="same length"):
        merge_most_frequent([[b"a", b"b"]], [1, 2], 5)
    with pytest.raises(ValueError, match="num_merges must be a positive integer"):
        merge_most_frequent([[b"a", b"b"]], [1], 0)


def test_cl100k_pattern_is_tiktokens():
    # quoted from tiktoken_ext/openai_public.py: it must occur there verbatim
    assert CL100K_PATTERN in inspect.getsource(tiktoken_ext.openai_public)
