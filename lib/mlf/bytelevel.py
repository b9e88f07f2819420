"""Byte-level byte pair encoding as in GPT-2 and tiktoken (Radford et al. 2019, 2.2).

The base alphabet is the 256 byte values, so every string (indeed every byte string) has
an encoding and nothing is ever unknown. Text is first cut into chunks by a regular
expression (``GPT2_PATTERN``, ``CL100K_PATTERN``); merges never cross a chunk boundary.
A vocabulary is a ``{token bytes: rank}`` dictionary, the format of
``tiktoken.Encoding(mergeable_ranks=...)``; a lower rank is merged first. The
vocabularies this module learns give the single bytes ranks 0-255 in byte order
(``rank(bytes([i])) == i``) and the token made by the k-th merge rank ``256 + k``.
OpenAI's GPT-2 encoding orders its single bytes differently, printable ones first
(``gpt2_byte_order``); ``with_byte_order`` relabels a vocabulary that way, and
``recover_merges`` reads the merge list back out of any rank table.

Conventions follow tiktoken 0.14: training breaks ties like
``tiktoken._educational.bpe_train`` (the pair seen first in the text wins), and
encoding merges, inside each chunk, the adjacent pair whose concatenation has the lowest
rank, leftmost first, like tiktoken's ``CoreBPE``.

>>> ranks = train_ranks("low lower lowest", 259, GPT2_PATTERN)
>>> [token for token, rank in ranks.items() if rank >= 256]
[b'lo', b'low', b' low']
>>> recover_merges(ranks)
[(b'l', b'o'), (b'lo', b'w'), (b' ', b'low')]
>>> bpe = ByteLevelBPE(ranks, GPT2_PATTERN)
>>> bpe.encode("lowly")
[257, 108, 121]
>>> bpe.decode(bpe.encode("lowly été 😀"))
'lowly été 😀'
"""
from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import regex

from mlf.bpe import Pair, merge_most_frequent

# The original GPT-2 pattern (encoder.py in openai/gpt-2): contractions, letters,
# digits, other symbols, each optionally after one space; then whitespace.
GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
                r"""|\s+(?!\S)|\s+""")
# The cl100k_base pattern of tiktoken (GPT-3.5/GPT-4), quoted from
# tiktoken_ext/openai_public.py.
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                  r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
NUM_BYTES = 256
ALL = "all"  # allowed_special / disallowed_special: every special token, as in tiktoken


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type. A ``TypeError``, and a ``ValueError`` too, so that
    code written against this module's first version (which raised ``ValueError``)
    still catches it; numpy's ``AxisError`` is both ``ValueError`` and ``IndexError``
    for the same reason."""


def pretokenize(text: str, pattern: str = CL100K_PATTERN) -> list[str]:
    """Cut ``text`` into the chunks BPE works inside; their concatenation is ``text``
    (for the two patterns here, which match every character).

    >>> pretokenize("Hello world's  123456!!", GPT2_PATTERN)
    ['Hello', ' world', "'s", ' ', ' 123456', '!!']
    >>> pretokenize("Hello world's  123456!!", CL100K_PATTERN)
    ['Hello', ' world', "'s", ' ', ' ', '123', '456', '!!']
    """
    _check_str(text, "text")
    return regex.findall(_compile(pattern), text)


def chunk_counts(text: str, pattern: str = CL100K_PATTERN) -> Counter[str]:
    """Count the chunks of ``text``, in order of first appearance (the order ties
    depend on)."""
    return Counter(pretokenize(text, pattern))


class FirstSeen:
    """Tie-break of tiktoken's educational trainer: of equally frequent pairs, the one
    whose first occurrence comes first in the text wins.

    ``tiktoken._educational.bpe_train`` recounts pairs into a fresh ``Counter`` every
    round and takes ``max(stats, key=stats.get)``, which returns the first maximal pair
    in insertion order, i.e. in order of first occurrence. The key of a pair is
    therefore the position of its first occurrence: (index of the first chunk that
    contains it, byte offset inside that chunk). Chunks are numbered in order of first
    appearance, so the first chunk containing a pair is the one with the smallest index.
    Byte offsets do not move when symbols merge, so keys of pairs in different places of
    one chunk stay comparable.
    """

    def start(self, words: list[list[bytes]], where: Mapping[Pair, set[int]]) -> None:
        self.words, self.where = words, where
        # pair -> (chunk index, byte offset) of its first occurrence
        self.first: dict[Pair, tuple[int, int]] = {}
        for j, symbols in enumerate(words):
            for pair, at in _pairs_with_offsets(symbols):
                self.first.setdefault(pair, (j, at))
        # pair -> chunks where it appeared or disappeared since the last settle()
        self.pending: dict[Pair, set[int]] = defaultdict(set)

    def key(self, pair: Pair) -> tuple[int, int]:
        return self.first[pair]

    def moved(self, j: int, gone: list[Pair], born: list[Pair]) -> None:
        for pair in (*gone, *born):
            self.pending[pair].add(j)

    def settle(self) -> list[Pair]:
        """Recompute the first occurrence of every pair that changed; return those that
        moved."""
        moved = []
        for pair, chunks in self.pending.items():
            old = self.first.get(pair)
            found = self._earliest(pair, sorted(chunks))
            if old is not None and old[0] not in chunks:  # its first chunk is untouched
                new = old if found is None else min(old, found)
            elif found is not None and (old is None or found[0] <= old[0]):
                new = found
            else:  # subtle: it left its first chunk; the next may be any of `where`
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


def train_merges(text: str, vocab_size: int,
                 pattern: str = CL100K_PATTERN) -> list[tuple[bytes, bytes]]:
    """The merges byte-level BPE learns on ``text``, in order: ``vocab_size - 256`` of
    them, or fewer when no chunk has two symbols left to merge.

    The learner is ``mlf.bpe.merge_most_frequent`` run on the distinct chunks of
    ``text`` as byte sequences, weighted by their counts, with tiktoken's tie-break
    (``FirstSeen``) and no minimum frequency.

    >>> train_merges("low lower lowest", 259, GPT2_PATTERN)
    [(b'l', b'o'), (b'lo', b'w'), (b' ', b'low')]
    """
    _check_str(text, "text")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise InputTypeError(f"vocab_size must be an integer >= {NUM_BYTES} (one token "
                             f"per byte value), got {type(vocab_size).__name__}: "
                             f"{vocab_size!r}")
    if vocab_size < NUM_BYTES:
        raise ValueError(f"vocab_size must be an integer >= {NUM_BYTES} (one token per "
                         f"byte value), got {vocab_size!r}")
    counts = chunk_counts(text, pattern)
    if not counts:
        raise ValueError("cannot train on empty text: it has no chunks")
    if vocab_size == NUM_BYTES:
        return []
    # each chunk as a list of one-byte symbols
    words = [[bytes([b]) for b in _utf8(chunk, text)] for chunk in counts]
    return merge_most_frequent(words, list(counts.values()), vocab_size - NUM_BYTES,
                               min_frequency=1, tie_break=FirstSeen())


def train_ranks(text: str, vocab_size: int,
                pattern: str = CL100K_PATTERN) -> dict[bytes, int]:
    """Learn a byte-level vocabulary of ``vocab_size`` tokens: {token bytes: rank}.

    The 256 single bytes get ranks 0-255; each merge of ``train_merges`` adds the next
    rank, so the ranks are identical to ``tiktoken._educational.bpe_train``'s. It stops
    early, with a smaller vocabulary, when no chunk has two symbols left to merge.
    # subtle: two different merges can spell the same bytes ("a"+"bc" and "ab"+"c");
    # such a merge adds no new token, so the vocabulary is then smaller than vocab_size.
    """
    return ranks_from_merges(train_merges(text, vocab_size, pattern))


def ranks_from_merges(merges: Iterable[tuple[bytes, bytes]],
                      byte_order: Iterable[int] | None = None) -> dict[bytes, int]:
    """The rank table of a merge list: the single bytes first, in ``byte_order``
    (default: byte value; ``gpt2_byte_order()`` for GPT-2's), then each merge's
    concatenation with the next rank, as tiktoken's ``data_gym_to_mergeable_bpe_ranks``
    builds GPT-2's table. Each merge must join two tokens that exist before it.

    >>> ranks = ranks_from_merges([(b"a", b"b"), (b"ab", b"c")])
    >>> ranks[b"abc"], len(ranks)
    (257, 258)
    """
    order = list(range(NUM_BYTES)) if byte_order is None else _check_order(byte_order)
    ranks = {bytes([b]): r for r, b in enumerate(order)}
    if isinstance(merges, (str, bytes, bytearray)) or not isinstance(merges, Iterable):
        raise InputTypeError(f"merges must be a list of (bytes, bytes) pairs, "
                             f"got {type(merges).__name__}")
    for k, merge in enumerate(merges):
        if (not isinstance(merge, tuple) or len(merge) != 2
                or not all(isinstance(part, bytes) for part in merge)):
            raise InputTypeError(f"merge {k} must be a pair of bytes, got {merge!r}")
        a, b = merge
        if a not in ranks or b not in ranks:
            raise ValueError(f"merge {k} joins {a!r} and {b!r}, but "
                             f"{a if a not in ranks else b!r} is not a token before it")
        ranks.setdefault(a + b, len(ranks))
    return ranks


def gpt2_byte_order() -> list[int]:
    """The 256 byte values in the order of their ranks in OpenAI's GPT-2 encoding:
    ``gpt2_byte_order()[r]`` is the byte whose single-byte token has rank ``r``.

    GPT-2 stored its vocabulary as text, so it spelled each byte by a visible character:
    the 188 bytes that are printable Latin-1 characters (other than the space) stand for
    themselves and come first, in byte order; the other 68 (control codes, the space,
    the no-break space, the soft hyphen) follow, in byte order. This is how tiktoken's
    ``data_gym_to_mergeable_bpe_ranks`` orders them.

    >>> order = gpt2_byte_order()
    >>> order[:3], order.index(ord("\\n")), order.index(ord(" "))
    ([33, 34, 35], 198, 220)
    """
    printable = [b for b in range(NUM_BYTES) if chr(b).isprintable() and b != ord(" ")]
    return printable + [b for b in range(NUM_BYTES) if b not in printable]


def with_byte_order(ranks: Mapping[bytes, int], byte_order: Iterable[int]
                    ) -> dict[bytes, int]:
    """A copy of ``ranks`` whose single bytes take ranks 0-255 in ``byte_order``
    (``byte_order[r]`` gets rank ``r``); the ranks of longer tokens do not change.

    Only the ids of single-byte tokens change: encoding compares the ranks of
    concatenations, which are at least two bytes long, so every text is cut into the
    same tokens.

    >>> ranks = with_byte_order(train_ranks("aaa", 257), gpt2_byte_order())
    >>> ranks[b"a"], ranks[b"aa"]
    (64, 256)
    """
    _check_ranks(ranks)
    if sorted(ranks[bytes([b])] for b in range(NUM_BYTES)) != list(range(NUM_BYTES)):
        raise ValueError("with_byte_order needs a vocabulary whose single bytes hold "
                         "ranks 0-255")
    order = _check_order(byte_order)
    new = {bytes([b]): r for r, b in enumerate(order)}
    new.update((t, r) for t, r in sorted(ranks.items(), key=lambda item: item[1])
               if len(t) > 1)
    return new


def recover_merges(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge list behind a rank table, in rank order: for each token of two or more
    bytes, the two tokens that BPE, allowed only the ranks below the token's own, leaves
    of its bytes.

    A table that came from a merge list gives that list back (tiktoken assumes the
    same of every table: ranks are the order of the merges). Works on any byte order.

    >>> recover_merges({**{bytes([i]): i for i in range(256)}, b"ab": 256, b"abc": 257})
    [(b'a', b'b'), (b'ab', b'c')]
    """
    _check_ranks(ranks)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = _merge(ranks, token, rank)
        if len(parts) != 2:
            raise ValueError(f"token {token!r} (rank {rank}) is not the merge of two "
                             f"lower-ranked tokens: with ranks below {rank}, BPE "
                             f"leaves {len(parts)} parts {parts!r}")
        merges.append((parts[0], parts[1]))
    return merges


def merge_by_rank(ranks: Mapping[bytes, int], piece: bytes,
                  max_rank: int | None = None) -> list[bytes]:
    """Encode one chunk: merge the adjacent pair whose concatenation has the lowest rank
    (leftmost on ties), one merge at a time, until no adjacent pair is a token. With
    ``max_rank``, only tokens of lower rank may be made (and a chunk that is a token is
    not taken whole).

    >>> ranks = {**{bytes([i]): i for i in range(256)}, b"ab": 256, b"abc": 257}
    >>> merge_by_rank(ranks, b"xabcab"), merge_by_rank(ranks, b"abc", max_rank=257)
    ([b'x', b'abc', b'ab'], [b'ab', b'c'])
    """
    if not isinstance(ranks, Mapping):
        raise InputTypeError(f"ranks must be a mapping {{token bytes: rank}}, "
                             f"got {type(ranks).__name__}")
    if not isinstance(piece, (bytes, bytearray)):
        raise InputTypeError(f"piece must be bytes, got {type(piece).__name__}: "
                             f"{piece!r}")
    if max_rank is not None and (isinstance(max_rank, bool)
                                 or not isinstance(max_rank, int)):
        raise InputTypeError(f"max_rank must be an integer or None, got {max_rank!r}")
    return _merge(ranks, bytes(piece), max_rank)


def _merge(ranks: Mapping[bytes, int], piece: bytes,
           max_rank: int | None = None) -> list[bytes]:
    if max_rank is None and piece in ranks:  # as tiktoken: a chunk that is a token
        return [piece]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if (rank is not None and (best is None or rank < best)
                    and (max_rank is None or rank < max_rank)):
                best, at = rank, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return parts


class ByteLevelBPE:
    """Encode text to token ids and back, with a tiktoken-style vocabulary."""

    def __init__(self, ranks: Mapping[bytes, int], pattern: str = CL100K_PATTERN,
                 special_tokens: Mapping[str, int] | None = None):
        _check_ranks(ranks)
        if special_tokens is not None and not isinstance(special_tokens, Mapping):
            raise InputTypeError(f"special_tokens must be a mapping {{name: id}} or "
                                 f"None, got {type(special_tokens).__name__}")
        special_tokens = dict(special_tokens or {})
        for name, i in special_tokens.items():
            _check_str(name, "each special token")
            if not name or isinstance(i, bool) or not isinstance(i, int) or i < 0:
                raise ValueError(f"special tokens must map non-empty str to integers "
                                 f">= 0, got {name!r}: {i!r}")
        ids = [*ranks.values(), *special_tokens.values()]
        if len(set(ids)) != len(ids):
            raise ValueError("token ids must be distinct across ranks and special "
                             "tokens")
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.special_tokens = special_tokens
        self._regex = _compile(pattern)
        self._decoder = {i: t for t, i in self.ranks.items()}
        self._decoder.update({i: name.encode("utf-8")
                              for name, i in special_tokens.items()})
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = CL100K_PATTERN,
              special_tokens: Mapping[str, int] | None = None) -> ByteLevelBPE:
        return cls(train_ranks(text, vocab_size, pattern), pattern, special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``; special token names are encoded as ordinary text.

        # subtle: a str holding a surrogate code point (U+D800-U+DFFF) has no UTF-8
        # encoding and is refused with a ValueError; tiktoken silently replaces it by
        # U+FFFD. Byte strings, valid UTF-8 or not, go through ``encode_bytes``.
        """
        _check_str(text, "text")
        try:
            return self._encode_chunks(self._regex.findall(text), "strict")
        except UnicodeEncodeError:
            _utf8(text, text)  # raises the clear error
            raise

    def encode(self, text: str, allowed_special: Iterable[str] | str = (),
               disallowed_special: Iterable[str] | str = ()) -> list[int]:
        """Token ids of ``text``; occurrences of the ``allowed_special`` names become
        their ids, other special names are ordinary text, except that a name in
        ``disallowed_special`` raises a ``ValueError``. Either may be ``"all"``.

        The defaults treat every special name as text, which is tiktoken's
        ``encode(text, disallowed_special=())``; tiktoken's own default is
        ``disallowed_special="all"``, which refuses such text.
        """
        _check_str(text, "text")
        allowed = self._special_names(allowed_special, "allowed_special")
        disallowed = self._special_names(disallowed_special, "disallowed_special")
        disallowed -= allowed
        if disallowed:
            found = regex.search("|".join(map(regex.escape, sorted(disallowed))), text)
            if found:
                raise ValueError(f"text contains the special token {found.group()!r} "
                                 f"at index {found.start()}, which disallowed_special "
                                 "forbids; allow it, or encode it as ordinary text by "
                                 "leaving it out of disallowed_special")
        if not allowed:
            return self.encode_ordinary(text)
        names = sorted(allowed, key=len, reverse=True)  # longest name first
        parts = regex.split("(" + "|".join(map(regex.escape, names)) + ")", text)
        ids = []
        for k, part in enumerate(parts):  # odd positions hold the special names
            ids += [self.special_tokens[part]] if k % 2 else self.encode_ordinary(part)
        return ids

    def _special_names(self, names: Iterable[str] | str, what: str) -> set[str]:
        if names == ALL:
            return set(self.special_tokens)
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            raise InputTypeError(f"{what} must be a set of special token names or "
                                 f"'all', got {type(names).__name__}: {names!r}")
        names = set(names)
        unknown = sorted(map(repr, names - set(self.special_tokens)))
        if unknown:
            raise ValueError(f"{what} names tokens that are not special tokens: "
                             f"{', '.join(unknown)}; the special tokens are "
                             f"{sorted(self.special_tokens)}")
        return names

    def encode_bytes(self, data: bytes) -> list[int]:
        """Token ids of any byte string, valid UTF-8 or not.

        # subtle: invalid bytes are carried through the regex as lone surrogates
        # ("surrogateescape"), which the patterns treat as symbols, and turned back
        # into bytes.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise InputTypeError(f"data must be bytes, got {type(data).__name__}")
        text = bytes(data).decode("utf-8", errors="surrogateescape")
        return self._encode_chunks(self._regex.findall(text), "surrogateescape")

    def _encode_chunks(self, chunks: list[str], errors: str) -> list[int]:
        ids = []
        for chunk in chunks:
            piece = chunk.encode("utf-8", errors=errors)
            if piece not in self._cache:
                self._cache[piece] = [self.ranks[p] for p in _merge(self.ranks, piece)]
            ids += self._cache[piece]
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for (a token may hold part of a UTF-8 character).
        Any integers will do (numpy or torch ones too), if each is a token id."""
        if isinstance(ids, (str, bytes, bytearray)) or not isinstance(ids, Iterable):
            raise InputTypeError(f"ids must be a sequence of integer token ids, got "
                                 f"{type(ids).__name__}: {ids!r:.60}")
        out = []
        for i in ids:
            try:
                if isinstance(i, bool):
                    raise TypeError
                token = self._decoder[operator.index(i)]
            except (TypeError, KeyError):
                raise self._bad_id(i) from None
            out.append(token)
        return b"".join(out)

    def _bad_id(self, i) -> Exception:
        if isinstance(i, bool) or not hasattr(type(i), "__index__"):
            return InputTypeError(f"token ids must be integers, got "
                                  f"{type(i).__name__}: {i!r}")
        return ValueError(f"unknown token id {i!r}; valid ids are those of the ranks "
                          f"(0 to {max(self.ranks.values())}) and special tokens "
                          f"{sorted(self.special_tokens.values())}")

    def decode(self, ids: Iterable[int]) -> str:
        """The text the ids stand for; invalid UTF-8 (a cut character) becomes U+FFFD,
        as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def tokens(self, ids: Iterable[int]) -> list[bytes]:
        """Each id's bytes, to look at a segmentation."""
        if isinstance(ids, (str, bytes, bytearray)) or not isinstance(ids, Iterable):
            raise InputTypeError(f"ids must be a sequence of integer token ids, got "
                                 f"{type(ids).__name__}: {ids!r:.60}")
        return [self.decode_bytes([i]) for i in ids]


def _check_ranks(ranks) -> None:
    if not isinstance(ranks, Mapping):
        raise InputTypeError(f"ranks must be a mapping {{token bytes: rank}}, "
                             f"got {type(ranks).__name__}")
    for token, rank in ranks.items():
        if (not isinstance(token, bytes) or not token or isinstance(rank, bool)
                or not isinstance(rank, int) or rank < 0):
            raise ValueError(f"ranks must map non-empty bytes to integers >= 0, got "
                             f"{token!r}: {rank!r}")
    missing = [i for i in range(NUM_BYTES) if bytes([i]) not in ranks]
    if missing:
        raise ValueError(f"ranks must contain all 256 single bytes (byte-level BPE has "
                         f"no unknown token); missing {len(missing)}, e.g. byte "
                         f"{missing[0]}")
    if len(set(ranks.values())) != len(ranks):
        raise ValueError("ranks must be distinct: each token has its own rank")


def _check_order(byte_order) -> list[int]:
    if isinstance(byte_order, (str, bytes)) or not isinstance(byte_order, Iterable):
        raise InputTypeError(f"byte_order must be a list of the 256 byte values, "
                             f"got {type(byte_order).__name__}")
    order = list(byte_order)
    if (sorted(order) != list(range(NUM_BYTES))
            or any(isinstance(b, bool) for b in order)):
        raise ValueError("byte_order must hold each byte value 0-255 exactly once, "
                         f"got {len(order)} values")
    return order


def _utf8(chunk: str, text: str) -> bytes:
    """``chunk.encode("utf-8")``, with a clear error for a surrogate in ``text``."""
    try:
        return chunk.encode("utf-8")
    except UnicodeEncodeError:
        at = regex.search(r"[\ud800-\udfff]", text)
        where = "" if at is None else f" U+{ord(at.group()):04X} at index {at.start()}"
        raise ValueError(
            f"text contains a surrogate code point{where}: it is not a character and "
            "has no UTF-8 encoding; tiktoken replaces it by U+FFFD (to do the same: "
            "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')); raw "
            "bytes go through encode_bytes") from None


def _compile(pattern: str):
    _check_str(pattern, "pattern")
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise ValueError(f"pattern is not a valid regular expression: {e}") from None


def _check_str(value, what: str) -> None:
    if not isinstance(value, str):
        raise InputTypeError(f"{what} must be a str, got {type(value).__name__}: "
                             f"{value!r:.60}")
