"""Byte-level byte pair encoding as in GPT-2 and tiktoken (Radford et al. 2019, section 2.2).

The base alphabet is the 256 byte values, so every string (indeed every byte string) has an
encoding and nothing is ever unknown. Text is first cut into chunks by a regular expression
(``GPT2_PATTERN``, ``CL100K_PATTERN``); merges never cross a chunk boundary. A vocabulary is a
``{token bytes: rank}`` dictionary, the format of ``tiktoken.Encoding(mergeable_ranks=...)``:
ranks 0-255 are the single bytes, and rank ``256 + k`` is the token made by the k-th merge.

Conventions follow tiktoken 0.14: training breaks ties like ``tiktoken._educational.bpe_train``
(the pair seen first in the text wins), and encoding merges, inside each chunk, the adjacent
pair whose concatenation has the lowest rank, leftmost first, like tiktoken's ``CoreBPE``.

>>> ranks = train_ranks("low lower lowest", 259, GPT2_PATTERN)
>>> [token for token, rank in ranks.items() if rank >= 256]
[b'lo', b'low', b' low']
>>> bpe = ByteLevelBPE(ranks, GPT2_PATTERN)
>>> bpe.encode("lowly")
[257, 108, 121]
>>> bpe.decode(bpe.encode("lowly été 😀"))
'lowly été 😀'
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import regex

from mlf.bpe import Pair, merge_most_frequent

# The original GPT-2 pattern (encoder.py in openai/gpt-2): contractions, letters, digits, other
# symbols, each optionally after one space; then whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# The cl100k_base pattern of tiktoken (GPT-3.5/GPT-4), quoted from tiktoken_ext/openai_public.py.
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                  r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
NUM_BYTES = 256


def pretokenize(text: str, pattern: str = CL100K_PATTERN) -> list[str]:
    """Cut ``text`` into the chunks that BPE works inside; their concatenation is ``text``.

    >>> pretokenize("Hello world's  123456!!", GPT2_PATTERN)
    ['Hello', ' world', "'s", ' ', ' 123456', '!!']
    """
    _check_str(text, "text")
    return regex.findall(_compile(pattern), text)


def chunk_counts(text: str, pattern: str = CL100K_PATTERN) -> Counter[str]:
    """Count the chunks of ``text``, in order of first appearance (the order ties depend on)."""
    return Counter(pretokenize(text, pattern))


class FirstSeen:
    """Tie-break of tiktoken's educational trainer: of equally frequent pairs, the one whose
    first occurrence comes first in the text wins.

    ``tiktoken._educational.bpe_train`` recounts pairs into a fresh ``Counter`` every round and
    takes ``max(stats, key=stats.get)``, which returns the first maximal pair in insertion
    order, i.e. in order of first occurrence. The key of a pair is therefore the position of its
    first occurrence: (index of the first chunk that contains it, byte offset inside that chunk).
    Chunks are numbered in order of first appearance, so the first chunk containing a pair is
    the one with the smallest index. Byte offsets do not move when symbols merge, so keys of
    pairs in different places of one chunk stay comparable.
    """

    def start(self, words: list[list[bytes]], where: Mapping[Pair, set[int]]) -> None:
        self.words, self.where = words, where
        self.first: dict[Pair, tuple[int, int]] = {}  # pair -> (chunk index, byte offset)
        for j, symbols in enumerate(words):
            for pair, at in _pairs_with_offsets(symbols):
                self.first.setdefault(pair, (j, at))
        self.pending: dict[Pair, set[int]] = defaultdict(set)  # pair -> chunks where it changed

    def key(self, pair: Pair) -> tuple[int, int]:
        return self.first[pair]

    def moved(self, j: int, gone: list[Pair], born: list[Pair]) -> None:
        for pair in (*gone, *born):
            self.pending[pair].add(j)

    def settle(self) -> list[Pair]:
        """Recompute the first occurrence of every pair that changed; return those that moved."""
        moved = []
        for pair, chunks in self.pending.items():
            old = self.first.get(pair)
            found = self._earliest(pair, sorted(chunks))
            if old is not None and old[0] not in chunks:  # its first chunk is untouched
                new = old if found is None else min(old, found)
            elif found is not None and (old is None or found[0] <= old[0]):
                new = found
            else:  # subtle: it left its first chunk; the next one may be any chunk of `where`
                new = self._earliest(pair, sorted(self.where.get(pair, ())))
            if new != old:
                moved.append(pair)
                if new is None:
                    del self.first[pair]
                else:
                    self.first[pair] = new
        self.pending.clear()
        return moved

    def _earliest(self, pair: Pair, chunks: list[int]) -> tuple[int, int] | None:
        for j in chunks:
            for p, at in _pairs_with_offsets(self.words[j]):
                if p == pair:
                    return j, at
        return None


def _pairs_with_offsets(symbols: list[bytes]) -> Iterable[tuple[Pair, int]]:
    at = 0
    for a, b in zip(symbols, symbols[1:]):
        yield (a, b), at
        at += len(a)


def train_ranks(text: str, vocab_size: int, pattern: str = CL100K_PATTERN) -> dict[bytes, int]:
    """Learn a byte-level vocabulary of ``vocab_size`` tokens: {token bytes: rank}.

    The 256 single bytes get ranks 0-255; each merge adds the next rank. The learner is
    ``mlf.bpe.merge_most_frequent`` run on the distinct chunks of ``text`` as byte sequences,
    weighted by their counts, with tiktoken's tie-break (``FirstSeen``) and no minimum
    frequency, so the ranks are identical to ``tiktoken._educational.bpe_train``'s. It stops
    early, with a smaller vocabulary, when no chunk has two symbols left to merge.
    # subtle: two different merges can spell the same bytes ("a"+"bc" and "ab"+"c"); such a
    # merge adds no new token, so the vocabulary is then smaller than vocab_size.
    """
    _check_str(text, "text")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < NUM_BYTES:
        raise ValueError(f"vocab_size must be an integer >= {NUM_BYTES} (one token per byte value), "
                         f"got {vocab_size!r}")
    counts = chunk_counts(text, pattern)
    if not counts:
        raise ValueError("cannot train on empty text: it has no chunks")
    ranks = {bytes([i]): i for i in range(NUM_BYTES)}
    if vocab_size == NUM_BYTES:
        return ranks
    words = [[bytes([b]) for b in chunk.encode("utf-8")] for chunk in counts]  # one byte per symbol
    merges = merge_most_frequent(words, list(counts.values()), vocab_size - NUM_BYTES,
                                 min_frequency=1, tie_break=FirstSeen())
    for a, b in merges:
        ranks.setdefault(a + b, len(ranks))
    return ranks


def merge_by_rank(ranks: Mapping[bytes, int], piece: bytes) -> list[bytes]:
    """Encode one chunk: merge the adjacent pair whose concatenation has the lowest rank
    (leftmost on ties), one merge at a time, until no adjacent pair is a token.

    >>> merge_by_rank({**{bytes([i]): i for i in range(256)}, b"ab": 256, b"abc": 257}, b"xabcab")
    [b'x', b'abc', b'ab']
    """
    if piece in ranks:  # as tiktoken: a chunk that is a token is that token
        return [piece]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best):
                best, at = rank, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return parts


class ByteLevelBPE:
    """Encode text to token ids and back, with a tiktoken-style vocabulary."""

    def __init__(self, ranks: Mapping[bytes, int], pattern: str = CL100K_PATTERN,
                 special_tokens: Mapping[str, int] | None = None):
        special_tokens = dict(special_tokens or {})
        missing = [i for i in range(NUM_BYTES) if bytes([i]) not in ranks]
        if missing:
            raise ValueError(f"ranks must contain all 256 single bytes (byte-level BPE has no unknown "
                             f"token); missing {len(missing)}, e.g. byte {missing[0]}")
        for token, rank in ranks.items():
            if not isinstance(token, bytes) or not token or isinstance(rank, bool) or not isinstance(rank, int):
                raise ValueError(f"ranks must map non-empty bytes to integers, got {token!r}: {rank!r}")
        for name, i in special_tokens.items():
            _check_str(name, "each special token")
            if not name or isinstance(i, bool) or not isinstance(i, int):
                raise ValueError(f"special tokens must map non-empty str to integers, got {name!r}: {i!r}")
        ids = [*ranks.values(), *special_tokens.values()]
        if len(set(ids)) != len(ids):
            raise ValueError("token ids must be distinct across ranks and special tokens")
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.special_tokens = special_tokens
        self._regex = _compile(pattern)
        self._decoder = {i: t for t, i in self.ranks.items()}
        self._decoder.update({i: name.encode("utf-8") for name, i in special_tokens.items()})
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = CL100K_PATTERN,
              special_tokens: Mapping[str, int] | None = None) -> ByteLevelBPE:
        return cls(train_ranks(text, vocab_size, pattern), pattern, special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``; special token names are encoded as ordinary text."""
        _check_str(text, "text")
        return self._encode_chunks(self._regex.findall(text), "strict")

    def encode(self, text: str, allowed_special: Iterable[str] = ()) -> list[int]:
        """Token ids of ``text``; occurrences of the ``allowed_special`` names become their ids."""
        _check_str(text, "text")
        allowed = sorted(set(allowed_special), key=len, reverse=True)  # longest name first
        unknown = [s for s in allowed if s not in self.special_tokens]
        if unknown:
            raise ValueError(f"allowed_special names tokens that are not special tokens: {unknown}")
        if not allowed:
            return self.encode_ordinary(text)
        ids, parts = [], regex.split("(" + "|".join(map(regex.escape, allowed)) + ")", text)
        for k, part in enumerate(parts):  # odd positions hold the special names
            ids += [self.special_tokens[part]] if k % 2 else self.encode_ordinary(part)
        return ids

    def encode_bytes(self, data: bytes) -> list[int]:
        """Token ids of any byte string, valid UTF-8 or not.

        # subtle: invalid bytes are carried through the regex as lone surrogates
        # ("surrogateescape"), which the patterns treat as symbols, and turned back into bytes.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        text = bytes(data).decode("utf-8", errors="surrogateescape")
        return self._encode_chunks(self._regex.findall(text), "surrogateescape")

    def _encode_chunks(self, chunks: list[str], errors: str) -> list[int]:
        ids = []
        for chunk in chunks:
            piece = chunk.encode("utf-8", errors=errors)
            if piece not in self._cache:
                self._cache[piece] = [self.ranks[p] for p in merge_by_rank(self.ranks, piece)]
            ids += self._cache[piece]
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for (a token may hold part of a UTF-8 character)."""
        out = []
        for i in ids:
            if i not in self._decoder:
                raise ValueError(f"unknown token id {i!r}; valid ids are those of the ranks and special tokens")
            out.append(self._decoder[i])
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """The text the ids stand for; invalid UTF-8 (a cut character) becomes U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def tokens(self, ids: Iterable[int]) -> list[bytes]:
        """Each id's bytes, to look at a segmentation."""
        return [self.decode_bytes([i]) for i in ids]


def _compile(pattern: str):
    _check_str(pattern, "pattern")
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise ValueError(f"pattern is not a valid regular expression: {e}") from None


def _check_str(value, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
