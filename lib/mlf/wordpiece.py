"""BERT's WordPiece tokenizer: a basic tokenizer, then greedy longest-match-first.

BERT (Devlin et al. 2019, section 3) uses "WordPiece embeddings with a 30,000 token
vocabulary". The vocabulary is a list of strings, one id per line of ``vocab.txt``;
pieces that continue a word carry the prefix ``##``. Tokenizing has two stages:

1. **Basic tokenizer** (``basic_tokenize``), in this order: drop NUL, U+FFFD and
   control characters and turn every whitespace character into a space; put spaces
   around CJK ideographs (each becomes its own word); split on whitespace; lower-case
   and strip accents (NFD, then drop combining marks, Unicode category Mn); split every
   punctuation character off as its own word (ASCII symbols such as ``$`` and ``^``
   count as punctuation, as does every Unicode category P*).
2. **WordPiece** (``wordpiece``): for each word, take the longest vocabulary entry that
   is a prefix of it, then the longest ``##`` entry that is a prefix of the rest, and
   so on. If some rest has no matching entry, or the word is longer than
   ``max_chars`` (100) characters, the whole word becomes ``[UNK]``.

Unlike BPE ({ref}`bpe`), which replays learned merges in order, WordPiece needs no merge
list at run time: the vocabulary alone decides. The conventions follow the tokenizer
that ships with uncased BERT models (``tokenizers``' ``BertNormalizer`` and
``BertPreTokenizer`` with ``lowercase=True``, ``strip_accents=None``): special tokens
written literally in the text (``"[SEP]"``) are kept whole and never normalised.

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
...          "a", "!"]
>>> tok = WordPiece(vocab)
>>> tok.tokenize("Unaffable!")
['un', '##aff', '##able', '!']
>>> tok.tokenize("unafable")  # no piece matches "##afable" from "f" on
['[UNK]']
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS = 100  # max_input_chars_per_word of BERT's tokenizer


def _is_whitespace(ch: str) -> bool:
    # subtle: tab, newline and return are Unicode controls (Cc) but count as whitespace
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs" or ch.isspace()


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    # subtle: unassigned code points (Cn) are kept, as the Rust tokenizer keeps them;
    # the legacy Python tokenizer drops every category C*
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # subtle: ASCII symbols such as "$", "+", "^", "`" are category S*, not P*, yet
    # BERT splits them off like punctuation
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    """CJK Unified Ideographs and their extensions (not Hangul, Hiragana, Katakana).

    # subtle: Extension E starts at U+2B820; the Rust tokenizer (and so the package's
    # tokenizer) starts that range at U+2B920, and so do we. The legacy Python one
    # uses U+2B820, so the two split U+2B820..U+2B91F differently.
    """
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF
            or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B920 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _clean(text: str) -> str:
    """Drop NUL, U+FFFD and controls; every whitespace character becomes a space;
    CJK ideographs get a space on each side."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def _strip_accents(word: str) -> str:
    """NFD splits "é" into "e" + U+0301; the combining marks (Mn) are dropped."""
    return "".join(c for c in unicodedata.normalize("NFD", word)
                   if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    pieces, current = [], ""
    for ch in word:
        if _is_punctuation(ch):
            if current:
                pieces.append(current)
            pieces.append(ch)
            current = ""
        else:
            current += ch
    return pieces + [current] if current else pieces


def basic_tokenize(text: str, lower: bool = True) -> list[str]:
    """Stage 1: clean, space CJK, split on whitespace, lower-case and strip accents
    (if ``lower``), split off punctuation.

    >>> basic_tokenize("Héllo,  wörld!\\x00 你好")
    ['hello', ',', 'world', '!', '你', '好']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = []
    for word in _clean(text).split():
        if lower:
            # subtle: one character at a time, as the Rust tokenizer does: "ΑΣ" gives
            # "ασ", where str.lower() (and the legacy Python tokenizer) apply the
            # final-sigma rule and give "ας", another id
            word = _strip_accents("".join(c.lower() for c in word))
        words += _split_punctuation(word)
    return [w for w in words if w]


class WordPiece:
    """A WordPiece vocabulary with BERT's basic tokenizer and special tokens.

    ``vocab`` is a sequence of distinct token strings (id = position) or a path to a
    ``vocab.txt`` with one token a line. It must hold the five special tokens
    [PAD], [UNK], [CLS], [SEP], [MASK] (or those named in ``specials``).
    """

    def __init__(self, vocab: Sequence[str] | str | Path, lower: bool = True,
                 max_chars: int = MAX_CHARS, specials: Sequence[str] = SPECIALS):
        if isinstance(vocab, (str, Path)):
            vocab = Path(vocab).read_text(encoding="utf-8").split("\n")
            if vocab and vocab[-1] == "":
                vocab = vocab[:-1]  # the file's final newline ends the last line
        if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Sequence):
            raise TypeError("vocab must be a sequence of token strings or a path to a "
                            f"vocab.txt, got {type(vocab).__name__}")
        if not vocab:
            raise ValueError("vocab is empty; expected at least the special tokens "
                             f"{list(specials)}")
        if not all(isinstance(t, str) and t for t in vocab):
            raise ValueError("every vocabulary entry must be a non-empty string")
        self.ids = {}
        for i, token in enumerate(vocab):
            if token in self.ids:
                raise ValueError(f"token {token!r} appears twice in the vocabulary "
                                 f"(ids {self.ids[token]} and {i})")
            self.ids[token] = i
        missing = [s for s in specials if s not in self.ids]
        if len(specials) != 5 or missing:
            raise ValueError(f"special tokens {missing or list(specials)} are not in "
                             "the vocabulary; expected the five of [PAD], [UNK], "
                             "[CLS], [SEP], [MASK] (in that order in `specials`)")
        if (isinstance(max_chars, bool) or not isinstance(max_chars, int)
                or max_chars < 1):
            raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
        self.vocab, self.lower, self.max_chars = list(vocab), lower, max_chars
        self.pad, self.unk, self.cls, self.sep, self.mask = specials
        self.specials = tuple(specials)

    def __len__(self) -> int:
        return len(self.vocab)

    def id(self, token: str) -> int:
        """The id of one vocabulary entry (e.g. "[MASK]")."""
        if token not in self.ids:
            raise ValueError(f"{token!r} is not in the vocabulary")
        return self.ids[token]

    def wordpiece(self, word: str) -> list[str]:
        """Stage 2: greedy longest-match-first on one word (after basic_tokenize)."""
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:  # the longest entry that is a prefix of the rest
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    break
                end -= 1
            if end == start:  # nothing matches: the whole word is unknown
                return [self.unk]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Text to WordPiece strings; special tokens written in the text stay whole."""
        out = []
        for chunk, special in self._split_specials(text):
            if special:
                out.append(chunk)
            else:
                out += [p for w in basic_tokenize(chunk, self.lower)
                        for p in self.wordpiece(w)]
        return out

    def _split_specials(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        pos, chunks = 0, []
        while True:  # leftmost occurrence of any special token, the longest at a tie
            hits = [(text.find(s, pos), -len(s), s) for s in self.specials]
            hits = [h for h in hits if h[0] >= 0]
            if not hits:
                return chunks + [(text[pos:], False)]
            at, _, s = min(hits)
            chunks += [(text[pos:at], False), (s, True)]
            pos = at + len(s)

    def encode(self, text: str, pair: str | None = None,
               add_special_tokens: bool = True) -> dict[str, list[int]]:
        """BERT's input: [CLS] A [SEP] (and B [SEP]), with segment ids 0 for
        [CLS], A and the first [SEP], 1 for B and its [SEP] (paper Fig. 2).

        Returns ``input_ids``, ``token_type_ids`` and ``attention_mask`` lists.
        """
        if pair is not None and not isinstance(pair, str):
            raise TypeError(f"pair must be a str or None, got {type(pair).__name__}")
        a = [self.ids[t] for t in self.tokenize(text)]
        # subtle: an empty second segment counts as none, as transformers has it
        b = None if not pair else [self.ids[t] for t in self.tokenize(pair)]
        if add_special_tokens:
            cls, sep = self.ids[self.cls], self.ids[self.sep]
            a = [cls] + a + [sep]
            b = None if b is None else b + [sep]
        ids = a + (b or [])
        types = [0] * len(a) + [1] * len(b or [])
        return {"input_ids": ids, "token_type_ids": types,
                "attention_mask": [1] * len(ids)}

    def decode(self, ids: Sequence[int]) -> str:
        """Ids back to text: pieces joined, "##" continuations glued to the word."""
        tokens = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self):
                raise ValueError(f"id {i!r} is outside the vocabulary "
                                 f"0..{len(self) - 1}")
            tokens.append(self.vocab[i])
        return " ".join(tokens).replace(" ##", "")
