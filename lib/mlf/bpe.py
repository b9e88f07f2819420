"""Byte pair encoding for words (Sennrich, Haddow & Birch 2015, Algorithm 1).

Conventions follow subword-nmt 0.3.8 (``learn_bpe.py`` / ``apply_bpe.py``, codes version
0.2), so that the merges this module learns are identical to that reference:

* a word is split into characters and the end-of-word marker ``</w>`` is glued to its
  last character: ``"low" -> ("l", "o", "w</w>")``;
* pairs never cross word boundaries: statistics are per word type, weighted by its
  count;
* the pair merged next is the most frequent one; ties go to the lexicographically
  largest pair ``(a, b)`` (Python's tuple/str order), as in subword-nmt's
  ``max(stats, key=(count, pair))``;
* learning stops early when the best pair occurs fewer than ``min_frequency`` times;
* with a vocabulary (``BPE(merges, vocab=..., threshold=...)``, subword-nmt's
  ``--vocabulary`` and ``--vocabulary-threshold``), a piece that is not in it is split
  again by undoing the merge that made it, recursively, until every piece is in the
  vocabulary or is a single character (the paper's footnote 3).

>>> bpe = BPE.learn({"low": 5, "lower": 2, "newest": 6, "widest": 3}, num_merges=3)
>>> bpe.merges
[('s', 't</w>'), ('e', 'st</w>'), ('l', 'o')]
>>> bpe.segment("lowest")
['lo', 'w', 'est']
>>> bpe.encode("lowest newest")
['lo@@', 'w@@', 'est', 'n@@', 'e@@', 'w@@', 'est']
>>> bpe.decode(bpe.encode("lowest newest"))
'lowest newest'

The tokens of the encoded training text, with their counts, are the vocabulary a model
trained on that text sees (subword-nmt's ``get-vocab``). With 10 merges, ``wid`` is
learned on the way to ``widest``, and every one of its occurrences is merged into it, so
in the unseen word "wider" the unit ``wid`` is unknown and is split again:

>>> toy = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
>>> bpe10 = BPE.learn(toy, 10)
>>> vocab = bpe10.token_counts(toy)
>>> bpe10.encode("wider"), "wid@@" in vocab, vocab["e@@"]
(['wid@@', 'e@@', 'r'], False, 2)
>>> BPE(bpe10.merges, vocab=vocab).encode("wider")
['w@@', 'i@@', 'd@@', 'e@@', 'r']
"""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

EOW = "</w>"  # end-of-word marker, glued to the last character of a word
SEP = "@@"  # subword-nmt's continuation mark: "lo@@ w" means the word "low"

Pair = tuple[str, str]


def pretokenize(line: str) -> str:
    """Split a raw line into words and single punctuation marks, joined by single
    spaces.

    BPE operates on words; subword-nmt expects this to be done beforehand (e.g. by
    Moses).
    >>> pretokenize("Who's there?  Stand,   ho!")
    "Who ' s there ? Stand , ho !"
    """
    _check_str(line, "line")
    return " ".join(re.findall(r"\w+|[^\w\s]", line))


def word_counts(lines: Iterable[str]) -> Counter[str]:
    """Count the whitespace-separated words of ``lines`` (the dictionary of
    Algorithm 1).

    Empty and whitespace-only lines add nothing.
    """
    if isinstance(lines, str):
        raise ValueError("word_counts expects an iterable of lines, not a single "
                         "string; wrap it in a list or call text.splitlines()")
    _check_iterable(lines, "lines", "an iterable of str lines")
    counts: Counter[str] = Counter()
    for line in lines:
        _check_str(line, "each line")
        counts.update(line.split())
    return counts


def word_to_symbols(word: str) -> list[str]:
    """``"low" -> ["l", "o", "w</w>"]``: characters, with the end-of-word marker on the
    last."""
    _check_word(word, "word_to_symbols")
    return [*word[:-1], word[-1] + EOW]


def merge_pair(symbols: list[str], pair: Pair) -> list[str]:
    """Replace every occurrence of ``pair`` in ``symbols`` by one symbol, left to right.

    # subtle: occurrences may overlap ("a a a" with pair (a, a)); the leftmost wins,
    # giving "aa a", exactly like subword-nmt's regex substitution.
    """
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, (list, tuple)):
        raise ValueError(f"symbols must be a list of symbols, e.g. "
                         f"['l', 'o', 'w</w>'], got {type(symbols).__name__}: "
                         f"{symbols!r}")
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"pair must be a tuple of two symbols, e.g. ('l', 'o'), "
                         f"got {pair!r}")
    return _merge_pair(symbols, pair)


def _merge_pair(symbols: list[str], pair: Pair) -> list[str]:
    a, b = pair
    out, i, n = [], 0, len(symbols)
    while i < n:
        if i < n - 1 and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _merge_and_diff(old: list[str],
                    pair: Pair) -> tuple[list[str], list[Pair], list[Pair]]:
    """``merge_pair`` that also returns the pairs the merge removed and created.

    Only pairs touching a merge site change: for "x a b y" and pair (a, b) the word
    loses (x, a), (a, b), (b, y) and gains (x, ab), (ab, y). Reading just those, instead
    of the whole word, keeps each merge's update proportional to the number of merge
    sites.
    """
    new = _merge_pair(old, pair)
    if len(new) == len(old):
        return old, [], []
    ab = pair[0] + pair[1]
    # positions k of the pairs (w[k], w[k+1]) that change, in the old and the new word
    old_at, new_at, i = set(), set(), 0
    for k, symbol in enumerate(new):
        if symbol == ab and old[i:i + 2] == [pair[0], pair[1]]:
            old_at.update((i - 1, i, i + 1))
            new_at.update((k - 1, k))
            i += 2
        else:
            i += 1
    gone = [(old[k], old[k + 1]) for k in old_at if 0 <= k < len(old) - 1]
    born = [(new[k], new[k + 1]) for k in new_at if 0 <= k < len(new) - 1]
    return new, gone, born


class _LargestFirst:
    """Heap key for a pair: the heap pops the smallest key, so order pairs in
    reverse."""

    __slots__ = ("pair",)

    def __init__(self, pair: Pair):
        self.pair = pair

    def __lt__(self, other: _LargestFirst) -> bool:
        return self.pair > other.pair


class LargestPairFirst:
    """Tie-break of subword-nmt: among equally frequent pairs the largest ``(a, b)``
    wins.

    A tie-break tells ``merge_most_frequent`` which of equally frequent pairs to merge:
    the one with the smallest ``key``. ``start``, ``moved`` and ``settle`` let a
    tie-break whose keys depend on where pairs occur follow the merges; this one depends
    on the pair alone.
    """

    def start(self, words: list[list], where: Mapping[Pair, set[int]]) -> None:
        pass

    def key(self, pair: Pair) -> _LargestFirst:
        return _LargestFirst(pair)

    def moved(self, j: int, gone: list[Pair], born: list[Pair]) -> None:
        pass

    def settle(self) -> Iterable[Pair]:
        """The pairs whose key changed since the last call."""
        return ()


def learn_merges(counts: Mapping[str, int], num_merges: int,
                 min_frequency: int = 2) -> list[Pair]:
    """Learn up to ``num_merges`` merge operations from a word -> count dictionary."""
    _check_positive_int(num_merges, "num_merges")
    _check_positive_int(min_frequency, "min_frequency")
    _check_counts(counts)
    # the vocabulary of Algorithm 1, one list of symbols per word type
    words = [word_to_symbols(w) for w in counts]
    return merge_most_frequent(words, list(counts.values()), num_merges, min_frequency)


def merge_most_frequent(words: list[list], freqs: list[int], num_merges: int,
                        min_frequency: int = 1, tie_break=None) -> list[Pair]:
    """Merge the most frequent adjacent pair of symbols, up to ``num_merges`` times.

    ``words[j]`` is a list of symbols (``str`` or ``bytes``) that occurs ``freqs[j]``
    times; the lists are merged in place. Pair statistics are kept incrementally, as the
    paper says its implementation does ("indexing all pairs, and updating data
    structures incrementally") and as subword-nmt's ``learn_bpe.py`` does: after a
    merge, only the words that contain the merged pair are re-read, and the counts of
    their pairs are corrected by the difference between the word before and after (no
    full recount per merge). Where subword-nmt scans its (pruned) statistics with
    ``max`` for the best pair, a heap with lazy deletion finds it here; ``tie_break``
    (default ``LargestPairFirst()``) orders equally frequent ones. Stops early when the
    best pair occurs fewer than ``min_frequency`` times.
    """
    _check_positive_int(num_merges, "num_merges")
    _check_positive_int(min_frequency, "min_frequency")
    for what, value in (("words", words), ("freqs", freqs)):
        if not isinstance(value, list):
            raise ValueError(f"{what} must be a list (one entry per word type), "
                             f"got {type(value).__name__}")
    if len(words) != len(freqs):
        raise ValueError(f"words and freqs must have the same length, "
                         f"got {len(words)} and {len(freqs)}")
    for symbols, freq in zip(words, freqs):
        if not isinstance(symbols, list) or not symbols:
            raise ValueError(f"each word must be a non-empty list of symbols, e.g. "
                             f"['l', 'o', 'w</w>'], got {symbols!r}")
        if isinstance(freq, bool) or not isinstance(freq, int) or freq < 1:
            raise ValueError(f"each freq must be a positive integer, got {freq!r}")
    tie_break = LargestPairFirst() if tie_break is None else tie_break
    pair_count: dict[Pair, int] = Counter()  # (a, b) -> occurrences in the corpus
    where: dict[Pair, set[int]] = defaultdict(set)  # (a, b) -> indices of words with it
    for j, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_count[pair] += freqs[j]
            where[pair].add(j)
    tie_break.start(words, where)
    # heap entries (-count, tie-break key, pair); latest[pair] is the pair's current
    # entry, and an entry that is not (its count or key changed since it was pushed) is
    # skipped when it reaches the top
    latest = {p: (-c, tie_break.key(p), p) for p, c in pair_count.items()}
    heap = list(latest.values())
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(merges) < num_merges:
        while heap and latest.get(heap[0][2]) is not heap[0]:
            heapq.heappop(heap)  # stale entry
        if not heap or -heap[0][0] < min_frequency:
            break
        best = heapq.heappop(heap)[2]
        merges.append(best)
        delta: Counter[Pair] = Counter()
        for j in where.pop(best):
            old = words[j]
            new, gone, born = _merge_and_diff(old, best)
            if not gone:
                # stale index entry: the pair left this word in an earlier merge
                continue
            for pair in gone:
                delta[pair] -= freqs[j]
            for pair in born:
                delta[pair] += freqs[j]
                where[pair].add(j)
            words[j] = new
            tie_break.moved(j, gone, born)
        changed = {pair for pair, d in delta.items() if d}
        for pair in changed:
            pair_count[pair] += delta[pair]
        for pair in changed.union(tie_break.settle()):
            if pair_count.get(pair, 0) > 0:
                latest[pair] = (-pair_count[pair], tie_break.key(pair), pair)
                heapq.heappush(heap, latest[pair])
            else:
                pair_count.pop(pair, None)
                latest.pop(pair, None)
    return merges


class BPE:
    """A learned list of merges, applied to new words by merge rank.

    ``vocab`` (optional) is a set of tokens in subword-nmt's format (``tausend@@``
    inside a word, ``tausend`` at its end), or a mapping token -> count such as
    ``token_counts`` returns; with ``threshold``, only tokens counted at least
    ``threshold`` times are kept. A piece the merges produce that is not in the
    vocabulary is split again by undoing merges (``_split_unknown``), exactly as
    subword-nmt's ``apply_bpe.py`` does with ``--vocabulary`` and
    ``--vocabulary-threshold``.
    """

    def __init__(self, merges: Iterable[Pair], vocab: Iterable[str] | None = None,
                 threshold: int | None = None):
        if isinstance(merges, (str, bytes)) or not isinstance(merges, Iterable):
            raise ValueError(f"merges must be a list of (a, b) pairs of non-empty "
                             f"strings, got {type(merges).__name__}: {merges!r}")
        self.merges: list[Pair] = []
        for m in merges:
            if (not isinstance(m, (tuple, list)) or len(m) != 2
                    or not all(isinstance(s, str) and s for s in m)):
                raise ValueError(f"each merge must be a pair of non-empty strings, "
                                 f"got {m!r}")
            self.merges.append(tuple(m))
        # rank = position in the merge list; the earliest learned merge is applied first
        self.ranks: dict[Pair, int] = {}
        for r, m in enumerate(self.merges):
            self.ranks.setdefault(m, r)
        self.vocab: frozenset[str] | None = _read_vocab(vocab, threshold)
        # made_by: merged symbol -> the merge that made it (subword-nmt's
        # bpe_codes_reverse). subtle: two merges can make the same symbol ("a"+"bc",
        # "ab"+"c"); subword-nmt's dict keeps the one it reads last, which is the one
        # learned first, and so does this one
        first_rank = dict((m, r) for r, m in reversed(list(enumerate(self.merges))))
        self._made_by: dict[str, Pair] = {a + b: (a, b) for a, b in first_rank}
        # word -> (symbols, tokens)
        self._cache: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    @classmethod
    def learn(cls, counts: Mapping[str, int], num_merges: int,
              min_frequency: int = 2) -> BPE:
        return cls(learn_merges(counts, num_merges, min_frequency))

    def vocabulary(self, alphabet: Iterable[str]) -> set[str]:
        """Every symbol the merges can produce: each character of ``alphabet`` inside or
        at the end of a word, plus one symbol per merge (at most 2|alphabet| + M
        symbols)."""
        if isinstance(alphabet, bytes) or not isinstance(alphabet, Iterable):
            raise ValueError(f"alphabet must be an iterable of characters (a str or a "
                             f"set), got {type(alphabet).__name__}: {alphabet!r}")
        chars = set(alphabet)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"alphabet must hold single characters, got {c!r}")
        return chars | {c + EOW for c in chars} | {a + b for a, b in self.merges}

    def token_counts(self, counts: Mapping[str, int]) -> Counter[str]:
        """How often each token occurs when the words of ``counts`` are encoded.

        ``counts`` is a word -> count dictionary of a training text (``word_counts``);
        the result is what subword-nmt's ``get-vocab`` counts on that text once encoded:
        the symbol vocabulary a model trained on it sees, and a ``vocab`` for ``BPE``.
        """
        _check_counts(counts)
        tokens: Counter[str] = Counter()
        for word, count in counts.items():
            for token in self._tokens(word):
                tokens[token] += count
        return tokens

    def segment_symbols(self, word: str) -> list[str]:
        """Split ``word`` into symbols, keeping the end-of-word marker
        (``["lo", "w</w>"]``)."""
        _check_word(word)
        return list(self._symbols(word))

    def segment(self, word: str) -> list[str]:
        """Split ``word`` into subword pieces whose concatenation is the word."""
        _check_word(word)
        *pieces, last = self._symbols(word)
        return [*pieces, last[: -len(EOW)]]

    def encode(self, line: str) -> list[str]:
        """Segment a line of space-separated words into subword-nmt tokens (``lo@@ w``).

        An empty or whitespace-only line gives no tokens.
        """
        _check_str(line, "line")
        tokens = []
        for word in line.split():
            tokens += self._tokens(word)
        return tokens

    def _symbols(self, word: str) -> tuple[str, ...]:
        if word not in self._cache:
            symbols = word_to_symbols(word)
            while len(symbols) > 1:
                ranked = [(self.ranks[p], p) for p in zip(symbols, symbols[1:])
                          if p in self.ranks]
                if not ranked:
                    break
                # lowest rank = learned earliest
                symbols = _merge_pair(symbols, min(ranked)[1])
            # subtle: subword-nmt returns a one-character word before the vocabulary
            # check
            if self.vocab is not None and len(word) > 1:
                symbols = self._known_pieces(symbols)
            *pieces, last = symbols
            tokens = (*[p + SEP for p in pieces], last[: -len(EOW)])
            self._cache[word] = (tuple(symbols), tokens)
        return self._cache[word][0]

    def _known_pieces(self, symbols: list[str]) -> list[str]:
        """Split again every piece whose token is not in the vocabulary (footnote 3)."""
        *inner, last = symbols
        pieces = []
        for piece in inner:
            if piece + SEP in self.vocab:
                pieces.append(piece)
            else:
                pieces += self._split_unknown(piece, final=False)
        tail = last[: -len(EOW)]
        if tail in self.vocab:
            tail_pieces = [tail]
        else:
            tail_pieces = self._split_unknown(tail, final=True)
        return [*pieces, *tail_pieces[:-1], tail_pieces[-1] + EOW]

    def _split_unknown(self, piece: str, final: bool) -> list[str]:
        """Undo the merge that made ``piece`` and keep each half that is a known token;
        split an unknown half again, down to single characters (subword-nmt's
        ``recursive_split``). ``final``: the piece ends the word (its token has no
        ``@@``).

        # subtle: the left half is always looked up as a word-internal token; a
        # character that cannot be split further is returned even when it is unknown.
        """
        made_by = self._made_by.get(piece + EOW if final else piece)
        if made_by is None:
            return [piece]
        left, right = made_by
        if final:
            right = right[: -len(EOW)]
        if left + SEP in self.vocab:
            pieces = [left]
        else:
            pieces = self._split_unknown(left, False)
        right_token = right if final else right + SEP
        if right_token in self.vocab:
            pieces.append(right)
        else:
            pieces += self._split_unknown(right, final)
        return pieces

    def _tokens(self, word: str) -> tuple[str, ...]:
        if word not in self._cache:
            self._symbols(word)
        return self._cache[word][1]

    def decode(self, tokens: Iterable[str]) -> str:
        """Undo ``encode``: glue every ``@@``-marked piece to the next one.

        # subtle: as in subword-nmt, a word that itself ends in "@@" cannot survive the
        # round trip.
        """
        if isinstance(tokens, str):
            raise ValueError("decode expects a list of tokens such as ['lo@@', 'w'], "
                             "not a single str; split it first (line.split())")
        _check_iterable(tokens, "tokens", "an iterable of str tokens")
        tokens = list(tokens)
        for t in tokens:
            _check_str(t, "each token")
        return " ".join(tokens).replace(SEP + " ", "")


def _read_vocab(vocab, threshold) -> frozenset[str] | None:
    """subword-nmt's ``read_vocabulary``: the tokens counted at least ``threshold``
    times."""
    if vocab is None:
        if threshold is not None:
            raise ValueError("threshold needs a vocab with counts (token -> count), "
                             "got vocab=None")
        return None
    if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Iterable):
        raise ValueError(f"vocab must be a set of tokens or a mapping token -> count, "
                         f"got {type(vocab).__name__}: {vocab!r}")
    if threshold is not None:
        _check_positive_int(threshold, "threshold")
        if not isinstance(vocab, Mapping):
            raise ValueError("threshold needs vocab to be a mapping token -> count "
                             f"(e.g. BPE.token_counts), got {type(vocab).__name__}")
    for token in vocab:
        _check_str(token, "each vocab token")
        if not token or any(ch.isspace() for ch in token):
            raise ValueError(f"vocab tokens must be non-empty and contain no "
                             f"whitespace, got {token!r}")
    if isinstance(vocab, Mapping):
        for token, count in vocab.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"vocab counts must be non-negative integers, "
                                 f"got {token!r}: {count!r}")
    kept = frozenset(t for t in vocab if threshold is None or vocab[t] >= threshold)
    if not kept:
        # subtle: subword-nmt treats an empty vocabulary as no vocabulary at all
        raise ValueError(f"vocab is empty (after threshold {threshold}); expected at "
                         "least one token, or vocab=None for no vocabulary")
    return kept


def _check_counts(counts) -> None:
    if not isinstance(counts, Mapping):
        raise ValueError(f"counts must be a mapping word -> count (e.g. "
                         f"word_counts(lines)), got {type(counts).__name__}")
    if not counts:
        raise ValueError("counts has no words (an empty corpus); expected at least one "
                         "word with a positive count")
    for word, count in counts.items():
        _check_str(word, "every word")
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(f"words must be non-empty and contain no whitespace, "
                             f"got {word!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"word counts must be positive integers, "
                             f"got {word!r}: {count!r}")


def _check_iterable(value, what: str, expected: str) -> None:
    if not isinstance(value, Iterable):
        raise ValueError(f"{what} must be {expected}, "
                         f"got {type(value).__name__}: {value!r}")


def _check_str(value, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}: {value!r}")


def _check_word(word, caller: str = "segment") -> None:
    _check_str(word, "word")
    if not word or any(ch.isspace() for ch in word):
        raise ValueError(f"{caller} expects one non-empty word without whitespace, "
                         f"got {word!r}")


def _check_positive_int(value, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
