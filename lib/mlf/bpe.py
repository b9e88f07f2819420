"""Byte pair encoding for words (Sennrich, Haddow & Birch 2015, Algorithm 1).

Conventions follow subword-nmt 0.3.8 (``learn_bpe.py`` / ``apply_bpe.py``, codes version 0.2),
so that the merges this module learns are identical to that reference:

* a word is split into characters and the end-of-word marker ``</w>`` is glued to its last
  character: ``"low" -> ("l", "o", "w</w>")``;
* pairs never cross word boundaries: statistics are per word type, weighted by its count;
* the pair merged next is the most frequent one; ties go to the lexicographically largest
  pair ``(a, b)`` (Python's tuple/str order), as in subword-nmt's ``max(stats, key=(count, pair))``;
* learning stops early when the best pair occurs fewer than ``min_frequency`` times.

>>> bpe = BPE.learn({"low": 5, "lower": 2, "newest": 6, "widest": 3}, num_merges=3)
>>> bpe.merges
[('s', 't</w>'), ('e', 'st</w>'), ('l', 'o')]
>>> bpe.segment("lowest")
['lo', 'w', 'est']
>>> bpe.encode("lowest newest")
['lo@@', 'w@@', 'est', 'n@@', 'e@@', 'w@@', 'est']
>>> bpe.decode(bpe.encode("lowest newest"))
'lowest newest'
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
    """Split a raw line into words and single punctuation marks, joined by single spaces.

    BPE operates on words; subword-nmt expects this to be done beforehand (e.g. by Moses).
    >>> pretokenize("Who's there?  Stand,   ho!")
    "Who ' s there ? Stand , ho !"
    """
    _check_str(line, "line")
    return " ".join(re.findall(r"\w+|[^\w\s]", line))


def word_counts(lines: Iterable[str]) -> Counter[str]:
    """Count the whitespace-separated words of ``lines`` (the dictionary of Algorithm 1)."""
    if isinstance(lines, str):
        raise ValueError("word_counts expects an iterable of lines, not a single string; "
                         "wrap it in a list or call text.splitlines()")
    counts: Counter[str] = Counter()
    for line in lines:
        _check_str(line, "each line")
        counts.update(line.split())
    return counts


def word_to_symbols(word: str) -> list[str]:
    """``"low" -> ["l", "o", "w</w>"]``: characters, with the end-of-word marker on the last."""
    return [*word[:-1], word[-1] + EOW]


def merge_pair(symbols: list[str], pair: Pair) -> list[str]:
    """Replace every occurrence of ``pair`` in ``symbols`` by one symbol, left to right.

    # subtle: occurrences may overlap ("a a a" with pair (a, a)); the leftmost wins,
    # giving "aa a", exactly like subword-nmt's regex substitution.
    """
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


def _merge_and_diff(old: list[str], pair: Pair) -> tuple[list[str], list[Pair], list[Pair]]:
    """``merge_pair`` that also returns the pairs the merge removed and created.

    Only pairs touching a merge site change: for "x a b y" and pair (a, b) the word loses
    (x, a), (a, b), (b, y) and gains (x, ab), (ab, y). Reading just those, instead of the
    whole word, keeps each merge's update proportional to the number of merge sites.
    """
    new = merge_pair(old, pair)
    if len(new) == len(old):
        return old, [], []
    ab = pair[0] + pair[1]
    old_at, new_at, i = set(), set(), 0  # positions k of pairs (w[k], w[k+1]) that change
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
    """Heap key for a pair: the heap pops the smallest key, so order pairs in reverse."""

    __slots__ = ("pair",)

    def __init__(self, pair: Pair):
        self.pair = pair

    def __lt__(self, other: _LargestFirst) -> bool:
        return self.pair > other.pair


class LargestPairFirst:
    """Tie-break of subword-nmt: among equally frequent pairs the largest ``(a, b)`` wins.

    A tie-break tells ``merge_most_frequent`` which of equally frequent pairs to merge: the one
    with the smallest ``key``. ``start``, ``moved`` and ``settle`` let a tie-break whose keys
    depend on where pairs occur follow the merges; this one depends on the pair alone.
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


def learn_merges(counts: Mapping[str, int], num_merges: int, min_frequency: int = 2) -> list[Pair]:
    """Learn up to ``num_merges`` merge operations from a word -> count dictionary."""
    _check_positive_int(num_merges, "num_merges")
    _check_positive_int(min_frequency, "min_frequency")
    if not counts:
        raise ValueError("cannot learn BPE from an empty corpus: counts has no words")
    for word, count in counts.items():
        _check_str(word, "every word")
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(f"words must be non-empty and contain no whitespace, got {word!r}")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"word counts must be positive integers, got {word!r}: {count!r}")
    words = [word_to_symbols(w) for w in counts]  # the vocabulary of Algorithm 1, one list per type
    return merge_most_frequent(words, list(counts.values()), num_merges, min_frequency)


def merge_most_frequent(words: list[list], freqs: list[int], num_merges: int, min_frequency: int = 1,
                        tie_break=None) -> list[Pair]:
    """Merge the most frequent adjacent pair of symbols, up to ``num_merges`` times.

    ``words[j]`` is a list of symbols (``str`` or ``bytes``) that occurs ``freqs[j]`` times; the
    lists are merged in place. Pair statistics are kept incrementally: after a merge, only the
    words that contain the merged pair are re-read, and the counts of their pairs are corrected
    by the difference between the word before and after (no full recount per merge). A heap
    with lazy deletion finds the most frequent pair; ``tie_break`` (default
    ``LargestPairFirst()``) orders equally frequent ones. Stops early when the best pair occurs
    fewer than ``min_frequency`` times.
    """
    _check_positive_int(num_merges, "num_merges")
    _check_positive_int(min_frequency, "min_frequency")
    if len(words) != len(freqs):
        raise ValueError(f"words and freqs must have the same length, got {len(words)} and {len(freqs)}")
    tie_break = LargestPairFirst() if tie_break is None else tie_break
    pair_count: dict[Pair, int] = Counter()  # (a, b) -> occurrences in the corpus
    where: dict[Pair, set[int]] = defaultdict(set)  # (a, b) -> indices of words containing it
    for j, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_count[pair] += freqs[j]
            where[pair].add(j)
    tie_break.start(words, where)
    # heap entries (-count, tie-break key, pair); latest[pair] is the pair's current entry, and
    # an entry that is not (its count or key changed since it was pushed) is skipped at the top
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
                continue  # stale index entry: the pair left this word in an earlier merge
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
    """A learned list of merges, applied to new words by merge rank."""

    def __init__(self, merges: Iterable[Pair]):
        self.merges: list[Pair] = [tuple(m) for m in merges]
        for m in self.merges:
            if len(m) != 2 or not all(isinstance(s, str) and s for s in m):
                raise ValueError(f"each merge must be a pair of non-empty strings, got {m!r}")
        # rank = position in the merge list; the earliest learned merge is applied first
        self.ranks: dict[Pair, int] = {}
        for r, m in enumerate(self.merges):
            self.ranks.setdefault(m, r)
        self._cache: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # word -> symbols, tokens

    @classmethod
    def learn(cls, counts: Mapping[str, int], num_merges: int, min_frequency: int = 2) -> BPE:
        return cls(learn_merges(counts, num_merges, min_frequency))

    def vocabulary(self, alphabet: Iterable[str]) -> set[str]:
        """The symbol vocabulary: every character (inside or at the end of a word) plus merges."""
        chars = set(alphabet)
        return chars | {c + EOW for c in chars} | {a + b for a, b in self.merges}

    def segment_symbols(self, word: str) -> list[str]:
        """Split ``word`` into symbols, keeping the end-of-word marker (``["lo", "w</w>"]``)."""
        _check_word(word)
        return list(self._symbols(word))

    def segment(self, word: str) -> list[str]:
        """Split ``word`` into subword pieces whose concatenation is the word."""
        _check_word(word)
        *pieces, last = self._symbols(word)
        return [*pieces, last[: -len(EOW)]]

    def encode(self, line: str) -> list[str]:
        """Segment a line of space-separated words into subword-nmt tokens (``lo@@ w``)."""
        _check_str(line, "line")
        tokens = []
        for word in line.split():
            tokens += self._tokens(word)
        return tokens

    def _symbols(self, word: str) -> tuple[str, ...]:
        if word not in self._cache:
            symbols = word_to_symbols(word)
            while len(symbols) > 1:
                ranked = [(self.ranks[p], p) for p in zip(symbols, symbols[1:]) if p in self.ranks]
                if not ranked:
                    break
                symbols = merge_pair(symbols, min(ranked)[1])  # lowest rank = learned earliest
            *pieces, last = symbols
            self._cache[word] = (tuple(symbols), (*[p + SEP for p in pieces], last[: -len(EOW)]))
        return self._cache[word][0]

    def _tokens(self, word: str) -> tuple[str, ...]:
        if word not in self._cache:
            self._symbols(word)
        return self._cache[word][1]

    def decode(self, tokens: Iterable[str]) -> str:
        """Undo ``encode``: glue every ``@@``-marked piece to the next one.

        # subtle: as in subword-nmt, a word that itself ends in "@@" cannot survive the round trip.
        """
        tokens = list(tokens)
        for t in tokens:
            _check_str(t, "each token")
        return " ".join(tokens).replace(SEP + " ", "")


def _check_str(value, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}: {value!r}")


def _check_word(word) -> None:
    _check_str(word, "word")
    if not word or any(ch.isspace() for ch in word):
        raise ValueError(f"segment expects one non-empty word without whitespace, got {word!r}")


def _check_positive_int(value, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
