"""The unigram language model of SentencePiece (Kudo & Richardson 2018; Kudo 2018).

A sentence :math:`X` is segmented into pieces :math:`x = (x_1, ..., x_M)`, each drawn
independently: :math:`P(x) = \\prod_i p(x_i)`. Scores are log-probabilities
:math:`\\log p(x_i)`. Every segmentation of a string is a path through its **lattice**
(one node per character boundary, one edge per vocabulary piece that matches there).

Conventions follow ``sentencepiece`` 0.2 with ``normalization_rule_name="identity"`` and
``remove_extra_whitespaces=False``, so that :meth:`Unigram.encode` is identical to
``sp.encode(text, out_type=str)``, and with ``out_type=int`` to ``sp.encode(text)``:

* raw text in: each space becomes ``▁`` (U+2581) and one ``▁`` is put in front (the
  "dummy prefix"), so ``"Hello  world"`` is segmented as ``"▁Hello▁▁world"``; the empty
  string stays empty;
* decoding (:meth:`Unigram.decode`, as ``sp.decode``) joins the pieces, turns ``▁`` back
  into spaces and drops the dummy prefix: lossless;
* a character that no piece contains is *unknown*; it costs ``min(scores) - 10``
  (sentencepiece's ``kUnkPenalty``), and a run of unknown characters comes out as
  **one** piece with the unknown id 0: ``"ab 日本"`` -> ``[..., "▁", "日本"]``;
* Viterbi adds scores in float32 and, between equal paths, keeps the one whose last
  piece is longest (see :meth:`Unigram.viterbi`).

>>> m = Unigram({"▁": -2.0, "▁a": -1.0, "a": -3.0, "b": -3.0, "ab": -2.5, "▁ab": -1.5})
>>> m.encode("ab ab")
['▁ab', '▁ab']
>>> m.decode(m.encode("ab  ab"))
'ab  ab'
>>> m.encode("ab 日本 a"), m.encode("ab 日本 a", out_type=int)
(['▁ab', '▁', '日本', '▁a'], [4, 5, 0, 3])
>>> m.decode([4, 5, 0, 3]), m.decode(['▁ab', '▁', '日本', '▁a'])
('ab  ⁇  a', 'ab 日本 a')
"""
from __future__ import annotations

import io
import math
import numbers
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import repeat

import numpy as np

SPACE = "▁"  # U+2581, stands for a space inside pieces
UNK_PENALTY = 10.0  # sentencepiece's kUnkPenalty: an unknown character scores min - 10
EXPECTED_FREQUENCY_THRESHOLD = 0.5  # the trainer drops pieces expected fewer times
UNK, BOS, EOS = "<unk>", "<s>", "</s>"  # sentencepiece's special pieces, ids 0, 1, 2
UNK_SURFACE = " \u2047 "  # what sp.decode writes for the unknown id: " ⁇ "

Edge = tuple[int, int, str, float]  # (start, end, piece, score) of one lattice edge

_U32 = 2.0 ** -24  # float32's unit roundoff: |fl(a + b) - (a + b)| <= _U32 |a + b|
_CACHE_LIMIT = 200_000  # word types whose best path a model remembers


def normalize(text: str) -> str:
    """Raw text -> the string that is segmented: ``"a  b" -> "▁a▁▁b"`` (identity rule).

    Every space is kept (runs of spaces included), so decoding is exact. The empty
    string stays empty (sentencepiece gives it no dummy prefix).
    """
    _check_text(text)
    return SPACE + text.replace(" ", SPACE) if text else ""


def denormalize(pieces: Iterable[str]) -> str:
    """Pieces -> raw text; the inverse of :func:`normalize` after segmentation."""
    if isinstance(pieces, str):
        raise ValueError("denormalize expects a list of pieces, not a single string")
    joined = "".join(pieces)
    if joined and not joined.startswith(SPACE):
        raise ValueError(f"pieces must start with the dummy prefix {SPACE!r}, "
                         f"got {joined[:10]!r}")
    return joined[len(SPACE):].replace(SPACE, " ")


def split_words(normalized: str) -> list[str]:
    """Split a normalized string before each ``▁``: ``"▁a▁▁b" -> ["▁a", "▁", "▁b"]``.

    The trainer counts these words; no piece crosses a word boundary
    (``split_by_whitespace``).
    """
    _check_text(normalized)
    first, *rest = normalized.split(SPACE)
    return ([first] if first else []) + [SPACE + w for w in rest]


def digamma(x: float) -> float:
    """The digamma function psi(x) = d/dx log Gamma(x), for x > 0.

    The recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic series.
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not x > 0:
        raise ValueError(f"digamma is implemented for real x > 0 only, got {x!r}")
    shift = 0.0
    while x < 10.0:  # psi(x) = psi(x + 1) - 1/x
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))
    return shift + math.log(x) - 0.5 / x - series


def _logsumexp(values: list[float]) -> float:
    top = max(values, default=-math.inf)  # no value: log 0 (inside an unknown run)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


class Unigram:
    """A unigram segmenter: pieces with scores (log-probabilities).

    Ids follow sentencepiece's layout: ``<unk>``, ``<s>``, ``</s>`` first, then the
    pieces by decreasing score (ties by piece); :meth:`from_sentencepiece` keeps the
    loaded model's own ids. A model is not meant to be changed after it is made: it
    remembers the best path of each word it has segmented.
    """

    def __init__(self, scores: Mapping[str, float],
                 max_piece_length: int | None = None):
        if not isinstance(scores, Mapping):
            raise ValueError("scores must be a mapping piece -> log-probability, "
                             f"got {type(scores).__name__}")
        if not scores:
            raise ValueError("a unigram model needs at least one piece; "
                             "scores is empty")
        for piece, score in scores.items():
            if not isinstance(piece, str) or not piece:
                raise ValueError(f"pieces must be non-empty strings, got {piece!r}")
            if piece in (UNK, BOS, EOS):
                raise ValueError(f"{piece!r} is reserved for a special piece of "
                                 "sentencepiece; it cannot be a normal piece")
            if (isinstance(score, bool) or not isinstance(score, numbers.Real)
                    or not math.isfinite(score)):
                raise ValueError(f"scores must be finite numbers, got {piece!r}: "
                                 f"{score!r}")
        if max_piece_length is not None:
            _check_positive_int(max_piece_length, "max_piece_length")
        self.scores = {p: float(s) for p, s in scores.items()}
        longest = max(map(len, self.scores))
        self.max_len = longest if max_piece_length is None else max_piece_length
        self.unk_score = min(self.scores.values()) - UNK_PENALTY
        # sentencepiece keeps scores as float32
        f32 = np.array(list(self.scores.values()), dtype=np.float32)
        self._f32 = dict(zip(self.scores, f32))
        self._f32_float = dict(zip(self.scores, f32.tolist()))  # the same, as floats
        self._nonpositive = max(self.scores.values()) <= 0  # log-probabilities
        self._alphabet = {ch for p in self.scores for ch in p}
        self._largest = max(-self.unk_score, max(map(abs, self.scores.values())))
        # a line splits into words before each "▁" when no piece has "▁" after its start
        self._splittable = SPACE in self._alphabet and not any(
            SPACE in p[1:] for p in self.scores)
        self._tree: dict | None = None
        self._character_tree()  # the pieces as a tree of characters
        self._words: dict[str, tuple] = {}  # word -> its best path (see _word_best)
        self._table: list[tuple[str, str]] | None = None  # (piece, kind) by id

    # -- ids --------------------------------------------------------------------------
    def _ids(self) -> list[tuple[str, str]]:
        if self._table is None:
            by_score = sorted(self.scores, key=lambda p: (-self.scores[p], p))
            self._set_ids([(UNK, "unknown"), (BOS, "control"), (EOS, "control")]
                          + [(p, "normal") for p in by_score])
        return self._table

    def _set_ids(self, table: list[tuple[str, str]]) -> None:
        self._table = table
        self._piece_to_id = {piece: i for i, (piece, _) in enumerate(table)}
        self._kind = dict(table)
        self._unk_id = next(i for i, (_, kind) in enumerate(table) if kind == "unknown")

    @property
    def unk_id(self) -> int:
        self._ids()
        return self._unk_id

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece``; the unknown id for a string that is not a piece."""
        if not isinstance(piece, str):
            raise ValueError(f"piece_to_id expects a str, got {type(piece).__name__}")
        self._ids()
        return self._piece_to_id.get(piece, self._unk_id)

    def id_to_piece(self, i: int) -> str:
        table = self._ids()
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise ValueError(f"ids are integers, got {i!r}")
        if not 0 <= i < len(table):
            raise ValueError(f"id {i} is out of range [0, {len(table)})")
        return table[i][0]

    @classmethod
    def from_sentencepiece(cls, sp) -> Unigram:
        """Load pieces, scores and ids of a ``sentencepiece.SentencePieceProcessor``.

        Control (``<s>``, ``</s>``), unknown and unused pieces never match text; they
        keep their ids. The model must be a unigram model with identity normalization
        and every space kept (as :func:`train_sentencepiece` makes it), without
        ``byte_fallback`` and user-defined pieces; anything else raises ``ValueError``.
        """
        needed = ("serialized_model_proto", "normalize", "get_piece_size", "is_byte")
        if not all(hasattr(sp, name) for name in needed):
            raise ValueError("from_sentencepiece expects a loaded "
                             f"sentencepiece.SentencePieceProcessor, got {sp!r}")
        model_type, types = _model_type_and_piece_types(sp.serialized_model_proto())
        if model_type != 1:
            name = {2: "bpe", 3: "word", 4: "char"}.get(model_type, model_type)
            raise ValueError(f"only unigram models can be loaded; this one is {name!r}")
        probe = "  a\u3000\ufb01 \uff21\u2460  e\u0301 x  "  # NFKC or folding shows
        if sp.normalize(probe) != normalize(probe):
            raise ValueError("this model normalizes text (NFKC, whitespace folding, "
                             "...) and Unigram segments raw text: train it with "
                             "normalization_rule_name='identity', "
                             "remove_extra_whitespaces=False")
        if any(sp.is_byte(i) for i in range(sp.get_piece_size())):
            raise ValueError("byte_fallback models are not supported: Unigram "
                             "reports an unknown character as an unknown piece, "
                             "not as bytes")
        if 4 in types:
            raise ValueError("models with user-defined pieces are not supported")
        table, scores = [], {}
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            kind = ("unknown" if sp.is_unknown(i) else "control" if sp.is_control(i)
                    else "unused" if sp.is_unused(i) else "normal")
            table.append((piece, kind))
            if kind == "normal":
                scores[piece] = sp.get_score(i)
        model = cls(scores)
        model._set_ids(table)
        return model

    def renormalized(self) -> Unigram:
        """The same pieces with scores shifted by one constant: ``sum_x p(x) = 1``.

        # subtle: the digamma M-step (:func:`m_step`) leaves ``sum_x p(x) < 1``; compare
        # the likelihoods of two models only after renormalizing both. The shift changes
        # ``log P(x)`` by a constant per piece, so it can change the best segmentation.
        """
        log_total = _logsumexp(list(self.scores.values()))
        shifted = {p: s - log_total for p, s in self.scores.items()}
        model = Unigram(shifted, self.max_len)
        model._set_ids(self._ids())
        return model

    # -- the lattice and the best path ------------------------------------------------
    def lattice(self, s: str) -> list[list[Edge]]:
        """``ends[e]``: the edges ``(start, e, piece, score)`` ending at position ``e``,
        by start position.

        A character that no piece contains gets an unknown edge, so a path always
        exists; a run of such characters is one edge (every path goes through all of
        them in turn), scored ``unk_score`` per character.
        """
        _check_text(s)
        tree = self._tree or self._character_tree()
        ends: list[list[Edge]] = [[] for _ in range(len(s) + 1)]
        n, start = len(s), 0
        while start < n:
            if s[start] not in self._alphabet:  # unknown: one edge for the whole run
                end = start + 1
                while end < n and s[end] not in self._alphabet:
                    end += 1
                unk = self.unk_score * (end - start)
                ends[end].append((start, end, s[start:end], unk))
                start = end
                continue
            children, end, stop = tree, start, min(start + self.max_len, n)
            while end < stop and (node := children.get(s[end])) is not None:
                end += 1
                _, f64, children = node
                if f64 is not None:
                    ends[end].append((start, end, s[start:end], f64))
            if not ends[start + 1] or ends[start + 1][-1][0] != start:  # no own piece
                ends[start + 1].append((start, start + 1, s[start], self.unk_score))
            start += 1
        return ends

    def _character_tree(self) -> dict:
        """The pieces as a tree of characters: ``tree["a"] = (f32, f64, children)``
        with the float32 and float64 scores of the piece "a" (None if it is no piece)
        and ``children["b"]`` the node of "ab"."""
        if self._tree is None:
            nested: dict = {}
            for piece in self.scores:
                node = nested
                for ch in piece:
                    node = node.setdefault(ch, {})
                node[None] = piece

            def freeze(node: dict) -> dict:
                out = {}
                for ch, child in node.items():
                    if ch is not None:
                        piece = child.get(None)
                        out[ch] = (self._f32_float.get(piece), self.scores.get(piece),
                                   freeze(child))
                return out

            self._tree = freeze(nested)
        return self._tree

    def viterbi(self, s: str) -> list[str]:
        """The most probable segmentation ``argmax_x P(x)`` of ``s`` (normalized), as
        sentencepiece reports it: a run of unknown characters is one piece.

        # subtle: sentencepiece sums scores in float32 and visits edges by start
        # position, replacing the best only on a strictly larger score: between equal
        # paths it keeps the one whose last piece starts earliest (is longest). We do
        # the same (:meth:`_viterbi_f32`), so near-ties resolve as they do there.
        """
        _check_text(s)
        path, known = self._best_path(s)
        return path if known else self._report(path)[0]

    def _viterbi_f32(self, s: str,
                     start_value: np.float32 = np.float32(0.0)) -> list[str]:
        """The best path of ``s`` in float32, as sentencepiece finds it; ``start_value``
        is the score of the path before ``s`` (when ``s`` is a word of a line)."""
        ends = self.lattice(s)
        best = [start_value] + [None] * len(s)  # best path score to each node
        back: list[tuple[int, str]] = [(-1, "")] * (len(s) + 1)
        for end in range(1, len(s) + 1):
            for start, _, piece, _ in ends[end]:  # by start: longest piece first
                candidate = self._add_f32(best[start], piece)
                if best[end] is None or candidate > best[end]:
                    best[end], back[end] = candidate, (start, piece)
        pieces, end = [], len(s)
        while end > 0:
            end, piece = back[end]
            pieces.append(piece)
        return pieces[::-1]

    def _add_f32(self, total: np.float32, piece: str) -> np.float32:
        """``total + score(piece)`` in float32; an unknown run adds one penalty per
        character, in turn, as sentencepiece's lattice has one node per character."""
        f32 = self._f32.get(piece)
        if f32 is not None:
            return np.float32(total + f32)
        for _ in piece:
            total = np.float32(total + np.float32(self.unk_score))
        return total

    def _best_path(self, s: str) -> tuple[list[str], bool]:
        """The Viterbi path (lattice edges) and whether all its pieces are known; word
        by word, from a cache where that gives the same path as :meth:`_viterbi_f32`.

        No edge crosses the node before a ``▁`` (no piece has ``▁`` after its start),
        so the best path of a line is the best path of each word in turn. Only float32
        rounding couples the words: the sum carried into a word shifts its roundings.
        A word whose best path beats its second best by more than the rounding error
        two paths can collect has the same best path from any start (see
        :meth:`_word_best`). A word closer than that is redone in float32 from the
        exact sum before it (sentencepiece's score at the node where the word starts).
        """
        if not self._splittable:
            path = self._viterbi_f32(s)
            return path, all(p in self.scores for p in path)
        first, *rest = s.split(SPACE)
        path: list[str] = []
        known, carried = True, 0.0  # sum of |piece scores| so far, in float64
        grow = 1.0 + 2 * _U32 * len(s)  # |float32 sum so far| <= carried x grow
        summed = [0, np.float32(0.0)]  # float32 sum of path[:summed[0]], when needed
        if first:  # s does not start with "▁": a first chunk, not remembered
            pieces, known, carried, slack, _ = self._word_best(first, None)
            if slack <= 0.0:
                pieces, known, carried = self._redo(path, summed, first)
            path = list(pieces)
        words = self._words
        for part in rest:
            entry = words.get(part) or self._word_best(SPACE + part, part)
            pieces, ok, size, slack, rate = entry
            if slack <= rate * carried * grow:  # too close to call: redo it
                pieces, ok, size = self._redo(path, summed, SPACE + part)
            path += pieces
            known = known and ok
            carried += size
        return path, known

    def _redo(self, path: list[str], summed: list,
              word: str) -> tuple[list[str], bool, float]:
        """Float32 Viterbi of ``word`` from the float32 sum of ``path`` (extending the
        running sum ``summed``); its pieces, whether all are known, and the sum of
        their |scores|."""
        for piece in path[summed[0]:]:
            summed[1] = self._add_f32(summed[1], piece)
        summed[0] = len(path)
        pieces = self._viterbi_f32(word, summed[1])
        size = sum(abs(self.scores.get(p, self.unk_score * len(p))) for p in pieces)
        return pieces, all(p in self.scores for p in pieces), size

    def _word_best(self, word: str, key: str | None) -> tuple:
        """The best path of one word, by float64 sums of the float32 scores, and how
        safely it beats the second best; remembered under ``key``.

        Returns ``(pieces, all known, sum of |piece scores|, slack, rate)``. A path of
        the word collects at most one float32 rounding per character, each at most
        ``_U32 x |partial sum|``, and a partial sum is at most ``|B| + size`` from a
        start value ``B``. So float32 Viterbi from any ``|B| <= carried`` finds this
        path when ``best - second > 2 n _U32 (|B| + size)``, i.e. when
        ``slack > rate x carried``.
        """
        tree, alphabet = self._tree or self._character_tree(), self._alphabet
        unk = float(np.float32(self.unk_score))
        n, neg, longest = len(word), -math.inf, self.max_len
        best = [0.0] + [neg] * n  # best and second-best path score to each node
        second = [neg] * (n + 1)
        back = [0] * (n + 1)  # where the best path's last edge starts
        known = True
        for start in range(n):
            b = best[start]
            if b == neg:  # inside a run of unknown characters
                continue
            b2, end, node = second[start], start + 1, tree.get(word[start])
            if node is not None:
                score, _, children = node
                if score is None:  # a known character without a piece of its own
                    score, known = unk, False
            elif word[start] in alphabet:  # the same, and no piece starts with it
                score, known = unk, False
            else:  # a run of unknown characters is one edge
                while end < n and word[end] not in alphabet:
                    end += 1
                score, known = unk * (end - start), False
            stop = start + longest
            if stop > n:
                stop = n
            while True:  # relax the edge (start, end) if it is a piece, then go longer
                if score is not None:
                    value, old = b + score, best[end]
                    if value > old:
                        runner_up = b2 + score
                        second[end] = old if old > runner_up else runner_up
                        best[end] = value
                        back[end] = start
                    elif value > second[end]:
                        second[end] = value
                if node is None or end >= stop:
                    break
                node = children.get(word[end])
                if node is None:
                    break
                end += 1
                score, _, children = node
        pieces, end = [], n
        while end > 0:
            pieces.append(word[back[end]:end])
            end = back[end]
        pieces.reverse()
        size = n * self._largest  # bounds |partial sum| of any path in the word
        slack = best[n] - second[n] - 2 * n * _U32 * size - 1e-9
        if self._nonpositive:  # sum of |piece scores| = -score (a little more)
            weight = -best[n] * (1 + 1e-12)
        else:
            weight = sum(abs(self._f32_float.get(p, unk * len(p))) for p in pieces)
        entry = (pieces, known, weight, slack, 2 * n * _U32)
        if key is not None and n <= 64:
            if len(self._words) >= _CACHE_LIMIT:
                self._words.clear()
            self._words[key] = entry
        return entry

    def _report(self, path: Iterable[str]) -> tuple[list[str], list[bool]]:
        """Lattice edges -> the pieces sentencepiece reports, and which are unknown:
        adjacent unknown edges are joined into one unknown piece."""
        pieces: list[str] = []
        unknown: list[bool] = []
        for piece in path:
            if piece in self.scores:
                pieces.append(piece)
                unknown.append(False)
            elif unknown and unknown[-1]:
                pieces[-1] += piece
            else:
                pieces.append(piece)
                unknown.append(True)
        return pieces, unknown

    def encode(self, text: str, out_type: type = str) -> list:
        """Raw text -> pieces (``out_type=str``) or ids (``out_type=int``), as
        ``sp.encode(text, out_type=...)``; an unknown piece has the unknown id."""
        if out_type is not str and out_type is not int:
            raise ValueError(f"out_type must be str or int, got {out_type!r}")
        path, known = self._best_path(normalize(text))
        if known and out_type is str:
            return path
        self._ids()
        ids = self._piece_to_id
        if known:
            return [ids[p] for p in path]
        pieces, unknown = self._report(path)
        if out_type is str:
            return pieces
        return [self._unk_id if u else ids[p] for p, u in zip(pieces, unknown)]

    def decode(self, pieces_or_ids: Iterable) -> str:
        """Pieces or ids -> raw text, as ``sp.decode``.

        The first piece loses a leading ``▁`` (the dummy prefix) and every other ``▁``
        becomes a space; a string that is not a piece is copied as it is (so unknown
        pieces come back exactly), the unknown id becomes ``" ⁇ "``, and control pieces
        (``<s>``, ``</s>``) vanish.
        """
        if isinstance(pieces_or_ids, (str, bytes)) or not isinstance(pieces_or_ids,
                                                                      Iterable):
            raise ValueError("decode expects a list of pieces or ids, got "
                             f"{pieces_or_ids!r}")
        items = list(pieces_or_ids)
        if all(isinstance(i, numbers.Integral) and not isinstance(i, bool)
               for i in items):
            items = [self.id_to_piece(i) for i in items]
        elif not all(isinstance(p, str) for p in items):
            raise ValueError("decode expects pieces (str) or ids (int), not a mixture: "
                             f"{items[:5]!r}")
        self._ids()
        unk_piece = self._table[self._unk_id][0]
        text, at_start, dummy_seen = "", True, False
        for piece in items:
            at_start = at_start and not dummy_seen and not text
            kind, dummy_seen = self._kind.get(piece, "unknown"), False
            if kind == "control":
                continue
            if kind == "unknown":
                text += UNK_SURFACE if piece == unk_piece else piece
                continue
            if at_start and piece.startswith(SPACE):
                piece, dummy_seen = piece[len(SPACE):], True
            text += piece.replace(SPACE, " ")
        return text

    # -- probabilities ----------------------------------------------------------------
    def log_prob(self, pieces: Iterable[str]) -> float:
        """``log P(x) = sum_i log p(x_i)`` of one segmentation; a string that is not a
        piece is a run of unknown characters, ``unk_score`` each."""
        if isinstance(pieces, str):
            raise ValueError("log_prob expects a list of pieces, not a single string")
        return sum(self.scores.get(p, self.unk_score * len(p)) for p in pieces)

    def forward(self, s: str, alpha: float = 1.0,
                ends: list[list[Edge]] | None = None) -> list[float]:
        """Forward log-sums: ``fwd[e] = log sum over paths to e of P(path)^alpha``.

        ``ends`` is ``self.lattice(s)`` when the caller already has it.
        """
        _check_finite(alpha, "alpha")
        ends = self.lattice(s) if ends is None else ends
        fwd = [0.0] + [-math.inf] * len(s)
        for end in range(1, len(s) + 1):
            fwd[end] = _logsumexp([fwd[a] + alpha * score
                                   for a, _, _, score in ends[end]])
        return fwd

    def log_marginal(self, s: str) -> float:
        """``log P(X) = log sum_x P(x)`` over every segmentation of ``s`` (forward)."""
        return self.forward(s)[-1]

    def segmentations(self, s: str, limit: int = 10_000) -> list[list[str]]:
        """Every segmentation of a short ``s`` (at most ``limit``), for exact
        distributions; unknown characters as :meth:`viterbi` reports them."""
        return [self._report(x)[0] for x in self._paths(s, limit)]

    def _paths(self, s: str, limit: int) -> list[list[str]]:
        _check_positive_int(limit, "limit")
        ends = self.lattice(s)
        paths: list[list[list[str]]] = [[[]]] + [[] for _ in s]
        for end in range(1, len(s) + 1):
            paths[end] = [p + [piece] for start, _, piece, _ in ends[end]
                          for p in paths[start]]
            if len(paths[end]) > limit:
                raise ValueError(f"{s!r} has more than {limit} segmentations; "
                                 "use a shorter string")
        return paths[-1]

    # -- several segmentations (subword regularization) -------------------------------
    def nbest(self, s: str, n: int) -> list[tuple[list[str], float]]:
        """The ``n`` most probable segmentations of ``s`` with their ``log P(x)``, best
        first.

        Dynamic programming that keeps the top ``n`` partial paths at every position
        (exact).
        """
        _check_positive_int(n, "n")
        ends = self.lattice(s)
        top: list[list[tuple[float, tuple[str, ...]]]] = [[(0.0, ())]] + [[] for _ in s]
        for end in range(1, len(s) + 1):
            cands = [(score + sc, pieces + (piece,))
                     for start, _, piece, sc in ends[end]
                     for score, pieces in top[start]]
            top[end] = sorted(cands, key=lambda c: (-c[0], c[1]))[:n]
        return [(self._report(pieces)[0], score) for score, pieces in top[-1]]

    def sample(self, s: str, alpha: float, rng: random.Random) -> list[str]:
        """Draw ``x ~ P(x)^alpha / Z`` over all segmentations (forward-filtering,
        backward-sampling).

        Forward: ``fwd[e]`` sums ``P^alpha`` of every path to ``e``. Backward: from the
        end, pick the last edge ``(a, e)`` with probability
        ``exp(fwd[a] + alpha * score - fwd[e])``.
        """
        _check_alpha(alpha)
        _check_rng(rng)
        ends = self.lattice(s)
        fwd = self.forward(s, alpha, ends)
        pieces, end = [], len(s)
        while end > 0:
            weights = [math.exp(fwd[a] + alpha * score - fwd[end])
                       for a, _, _, score in ends[end]]
            start, _, piece, _ = rng.choices(ends[end], weights)[0]
            pieces.append(piece)
            end = start
        return self._report(pieces[::-1])[0]

    def nbest_sample(self, s: str, l: int, alpha: float,
                     rng: random.Random) -> list[str]:
        """Draw one of the ``l`` best segmentations with probability
        ``P(x)^alpha / Z_l`` (the paper's l-best sampling, Sec. 3.3)."""
        _check_alpha(alpha)
        _check_rng(rng)
        best = self.nbest(s, l)
        top = max(score for _, score in best)  # subtract the max: exp cannot underflow
        weights = [math.exp(alpha * (score - top)) for _, score in best]
        return rng.choices(best, weights)[0][0]

    def distribution(self, s: str, alpha: float,
                     l: int | None = None) -> dict[tuple[str, ...], float]:
        """The exact sampling distribution ``P(x)^alpha / Z`` over all segmentations of
        a short ``s`` (``l=None``, what :meth:`sample` draws from) or over its ``l``
        best (:meth:`nbest_sample`)."""
        _check_alpha(alpha)
        if l is None:
            scored = [(x, self.log_prob(x)) for x in self._paths(s, 10_000)]
        else:
            scored = self.nbest(s, l)
        log_z = _logsumexp([alpha * score for _, score in scored])
        dist: dict[tuple[str, ...], float] = {}
        for x, score in scored:  # two paths can read alike once unknowns are joined
            key = tuple(self._report(x)[0])
            dist[key] = dist.get(key, 0.0) + math.exp(alpha * score - log_z)
        return dist

    def _alternative(self, piece: str) -> list[str] | None:
        """The best segmentation of ``piece`` other than the piece itself: the first
        entry of its 2-best list with more than one piece, or None."""
        return next((x for x, _ in self.nbest(piece, 2) if len(x) > 1), None)


# -- training: EM with pruning from a seed vocabulary ---------------------------------
def corpus_words(lines: Iterable[str]) -> Counter[str]:
    """Normalize each raw line and count its words (``▁``-initial strings), as the
    trainer sees them."""
    if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
        raise ValueError("corpus_words expects an iterable of lines (str), "
                         f"not {type(lines).__name__}")
    counts: Counter[str] = Counter()
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise ValueError(f"every line must be a str; line {i} is {line!r}")
        if line:
            counts.update(split_words(normalize(line)))
    if not counts:
        raise ValueError("the corpus is empty: no non-empty line")
    return counts


def seed_pieces(words: Mapping[str, int], seed_size: int,
                max_piece_length: int = 16) -> dict[str, float]:
    """The seed vocabulary: every character, plus the ``seed_size`` substrings with
    largest ``frequency x length`` that occur at least twice; scores are log relative
    frequencies.

    A ``▁`` may only start a piece (pieces never span two words).
    """
    _check_words(words)
    _check_positive_int(seed_size, "seed_size")
    _check_positive_int(max_piece_length, "max_piece_length")
    chars: Counter[str] = Counter()
    subs: Counter[str] = Counter()
    once: list[str] = []  # substrings of the words seen once, counted all together
    cuts: dict[int, list[slice]] = {}
    for word, count in words.items():
        if len(word) not in cuts:  # every substring of 2 to max_piece_length characters
            slices = _substrings(len(word), max_piece_length)[0]
            cuts[len(word)] = [cut for cut in slices if cut.stop - cut.start > 1]
        here = map(word.__getitem__, cuts[len(word)])
        if count == 1:
            once += here
            chars.update(word)
        else:
            for sub in here:
                subs[sub] += count
            for ch in word:
                chars[ch] += count
    subs.update(once)
    subs = Counter({p: f for p, f in subs.items() if f >= 2 and SPACE not in p[1:]
                    and p != SPACE and p not in (UNK, BOS, EOS)})
    ranked = sorted(subs.items(), key=lambda pf: (-pf[1] * len(pf[0]), pf[0]))
    seed = dict(chars) | {p: f * len(p) for p, f in ranked[:seed_size]}  # f x length
    total = math.log(sum(seed.values()))
    return {p: math.log(f) - total for p, f in seed.items()}


class _Lattices:
    """The lattices of all word types at once, as flat arrays: EM runs in NumPy.

    Node ``offset[w] + i`` is position ``i`` of word ``w``. Edge ``k`` goes from node
    ``src[k]`` to node ``dst[k]`` with piece ``pieces[piece[k]]``; an unknown character
    is an edge of its own. The lattices are built once, for the seed vocabulary; a
    piece lost later (M-step, pruning) scores ``-inf`` and :meth:`restrict` drops its
    edges. The forward pass goes level by level (edges ending at position 1 of every
    word, then 2, ...), the backward pass from the last start position down.
    """

    def __init__(self, words: Mapping[str, int], scores: Mapping[str, float],
                 max_len: int):
        _check_words(words)
        self.words, self.max_len = list(words), max_len
        self.freq = np.array([words[w] for w in self.words], dtype=np.float64)
        self.pieces = list(scores)  # then the unknown characters met
        self.index = {p: i for i, p in enumerate(self.pieces)}
        sizes = [len(w) + 1 for w in self.words]
        self.offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # every substring of every word (up to max_len) is looked up: the pieces among
        # them are the edges of the lattices (Python's slicing and dict in C are fast)
        cuts: dict[int, tuple] = {}  # word length -> its substrings' slices and spans
        subs: list[str] = []
        src, dst = [], []
        for w, base in zip(self.words, self.offset.tolist()):
            if len(w) not in cuts:
                cuts[len(w)] = _substrings(len(w), max_len)
            slices, start, end = cuts[len(w)]
            subs += map(w.__getitem__, slices)
            src.append(start + base)
            dst.append(end + base)
        src, dst = np.concatenate(src), np.concatenate(dst)
        piece = np.fromiter(map(self.index.get, subs, repeat(-1)), np.int64, len(subs))
        for k in np.flatnonzero((piece < 0) & (dst - src == 1)).tolist():
            # a character without a piece of its own: an unknown edge, as sentencepiece
            piece[k] = self.index.setdefault(subs[k], len(self.pieces))
            if piece[k] == len(self.pieces):
                self.pieces.append(subs[k])
        self.unknown = np.arange(len(self.pieces)) >= len(scores)
        self.word_of_node = np.repeat(np.arange(len(self.words)), sizes)
        self.pos = np.arange(self.offset[-1]) - self.offset[self.word_of_node]
        self.first, self.last = self.offset[:-1], self.offset[1:] - 1  # nodes per word
        edge = piece >= 0
        self._arrange(src[edge], dst[edge], piece[edge])

    def _arrange(self, src, dst, piece) -> None:
        """Sort the edges into levels: by end position (forward), by start position
        from the last (backward); within a level by the node they update, then by
        start (for Viterbi's tie-break)."""
        order = np.lexsort((src, dst, self.pos[dst]))
        self.src, self.dst, self.piece = src[order], dst[order], piece[order]
        self.fwd_levels = _levels(self.pos[self.dst], self.dst)
        self.back = np.lexsort((self.dst, self.src, -self.pos[self.src]))
        self.bwd_levels = _levels(self.pos[self.src[self.back]], self.src[self.back])

    def vector(self, values: Mapping[str, float], fill: float) -> np.ndarray:
        """``values`` as an array over ``self.pieces``; ``fill`` where absent."""
        out = np.full(len(self.pieces), fill)
        known = [p for p in values if p in self.index]
        out[[self.index[p] for p in known]] = [values[p] for p in known]
        return out

    def restrict(self, scores: Mapping[str, float]) -> None:
        """Drop the edges whose piece is not in ``scores`` (unknown characters stay);
        the rest keep their order."""
        alive = (self.vector(scores, -math.inf) > -math.inf) | self.unknown
        keep = alive[self.piece]
        renumber = np.cumsum(keep) - 1
        self.src, self.dst = self.src[keep], self.dst[keep]
        self.piece = self.piece[keep]
        self.fwd_levels = _levels(self.pos[self.dst], self.dst)
        self.back = renumber[self.back[keep[self.back]]]
        self.bwd_levels = _levels(self.pos[self.src[self.back]], self.src[self.back])

    def edge_scores(self, scores: Mapping[str, float], unk_score: float) -> np.ndarray:
        """Each edge's score: its piece's log-probability (``-inf`` if the piece is
        gone), ``unk_score`` for an unknown character."""
        per_piece = self.vector(scores, -math.inf)
        per_piece[self.unknown] = unk_score
        return per_piece[self.piece]

    def forward(self, s: np.ndarray) -> np.ndarray:
        """``fwd[node] = log sum_{paths from the word's start to node} exp(score)``.

        One log-sum-exp per level: ``fwd[b] = logsumexp_{edges (a, b)} fwd[a] + s``.
        """
        fwd = np.full(len(self.pos), -np.inf)
        fwd[self.first] = 0.0
        for lo, hi, starts, nodes in self.fwd_levels:
            fwd[nodes] = _group_logsumexp(fwd[self.src[lo:hi]] + s[lo:hi], starts)
        return fwd

    def backward(self, s: np.ndarray) -> np.ndarray:
        """``bwd[node] = log sum_{paths from node to the word's end} exp(score)``."""
        bwd = np.full(len(self.pos), -np.inf)
        bwd[self.last] = 0.0
        s, dst = s[self.back], self.dst[self.back]
        for lo, hi, starts, nodes in self.bwd_levels:
            bwd[nodes] = _group_logsumexp(bwd[dst[lo:hi]] + s[lo:hi], starts)
        return bwd

    def expected_counts(self, s: np.ndarray) -> tuple[np.ndarray, float]:
        """E-step: the expected count of each piece, ``sum_X count(X) P(edge | X)``,
        and the log-likelihood ``sum_X count(X) log P(X)``."""
        fwd, bwd = self.forward(s), self.backward(s)
        log_z = fwd[self.last]  # log P(X) of each word
        word = self.word_of_node[self.src]
        posterior = np.exp(fwd[self.src] + s + bwd[self.dst] - log_z[word])
        counts = np.bincount(self.piece, posterior * self.freq[word],
                             minlength=len(self.pieces))
        return counts, float(self.freq @ log_z)

    def log_likelihood(self, s: np.ndarray) -> float:
        """``sum_X count(X) log P(X)``, forward pass only."""
        return float(self.freq @ self.forward(s)[self.last])

    def viterbi_counts(self, scores: Mapping[str, float]) -> dict[str, int]:
        """How often each piece is on the words' best paths, weighted by word counts;
        float32 sums, ties to the earliest start, as :meth:`Unigram.viterbi`."""
        f32 = self.vector(scores, -math.inf).astype(np.float32)
        f32[self.unknown] = np.float32(min(scores.values()) - UNK_PENALTY)
        s = f32[self.piece]
        best = np.full(len(self.pos), -np.inf, dtype=np.float32)
        best[self.first] = 0.0
        back = np.zeros(len(self.pos), dtype=np.int64)
        for lo, hi, starts, nodes in self.fwd_levels:
            value = best[self.src[lo:hi]] + s[lo:hi]  # float32 sums, as sentencepiece
            top = np.maximum.reduceat(value, starts)
            sizes = np.diff(np.append(starts, hi - lo))
            winner = np.where(value == np.repeat(top, sizes), np.arange(lo, hi), hi)
            best[nodes], back[nodes] = top, np.minimum.reduceat(winner, starts)
        counts = np.zeros(len(self.pieces), dtype=np.int64)
        node, freq = self.last.copy(), self.freq.astype(np.int64)
        while (live := node != self.first).any():  # walk all best paths back at once
            edge = back[node[live]]
            np.add.at(counts, self.piece[edge], freq[live])
            node[live] = self.src[edge]
        return {self.pieces[k]: int(counts[k]) for k in np.flatnonzero(counts)}

    def alternative(self, piece: str, tree: dict) -> list[str] | None:
        """:meth:`Unigram._alternative` on a character tree of the pieces in use:
        ``tree["a"]["b"][None]`` is the score of the piece "ab"."""
        n, longest = len(piece), self.max_len
        top: list[list] = [[(0.0, ())]] + [[] for _ in range(n)]
        for start in range(n):
            here = top[start]
            if len(here) > 2:  # keep the 2 best, by (-score, pieces) as nbest
                here = top[start] = sorted(here, key=_nbest_order)[:2]
            node, end, stop = tree, start, min(start + longest, n)
            while end < stop and (node := node.get(piece[end])) is not None:
                end += 1
                if (score := node.get(None)) is not None:
                    edge = piece[start:end]
                    top[end] += [(sc + score, x + (edge,)) for sc, x in here]
        best = sorted(top[n], key=_nbest_order)[:2]
        return next((list(x) for _, x in best if len(x) > 1), None)


def _substrings(n: int, max_len: int) -> tuple[list[slice], np.ndarray, np.ndarray]:
    """The slices of every substring of a string of length ``n`` (at most ``max_len``
    long), and where each starts and ends."""
    spans = [(a, b) for a in range(n) for b in range(a + 1, min(a + max_len, n) + 1)]
    start, end = np.array(spans, dtype=np.int64).reshape(-1, 2).T
    return [slice(a, b) for a, b in spans], start, end


def _score_tree(scores: Mapping[str, float]) -> dict:
    """The pieces as a tree of characters: ``tree["a"]["b"][None]`` is the score of
    the piece "ab"."""
    tree: dict = {}
    for piece, score in scores.items():
        node = tree
        for ch in piece:
            node = node.setdefault(ch, {})
        node[None] = score
    return tree


def _nbest_order(candidate: tuple[float, tuple[str, ...]]) -> tuple:
    return -candidate[0], candidate[1]


def _levels(key: np.ndarray, node: np.ndarray) -> list[tuple]:
    """Cut edges sorted by ``key`` (a position) into levels and each level into groups
    of equal ``node``: ``(lo, hi, group starts in the level, node of each group)``."""
    cuts = np.flatnonzero(np.diff(key)) + 1
    levels = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(key)]):
        nodes = node[lo:hi]
        starts = np.flatnonzero(np.r_[True, nodes[1:] != nodes[:-1]])
        levels.append((lo, hi, starts, nodes[starts]))
    return levels


def _group_logsumexp(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``log sum exp`` of each run ``values[starts[i]:starts[i + 1]]``."""
    top = np.maximum.reduceat(values, starts)
    safe = np.where(np.isfinite(top), top, 0.0)  # a run of -inf stays -inf
    sizes = np.diff(np.append(starts, len(values)))
    with np.errstate(divide="ignore"):
        total = np.add.reduceat(np.exp(values - np.repeat(safe, sizes)), starts)
        return safe + np.log(total)


def expected_counts(model: Unigram,
                    words: Mapping[str, int]) -> tuple[dict[str, float], float]:
    """E-step: expected piece counts under ``P(x | X)`` (forward-backward), and the
    corpus log-likelihood ``sum_X count(X) log P(X)``."""
    lattices = _Lattices(words, model.scores, model.max_len)
    counts, loglik = lattices.expected_counts(
        lattices.edge_scores(model.scores, model.unk_score))
    return dict(zip(lattices.pieces, counts.tolist())), loglik


def m_step(counts: Mapping[str, float], keep: set[str]) -> dict[str, float]:
    """M-step with sentencepiece's sparse (variational Bayes) update:
    ``log p(x) = digamma(c(x)) - digamma(sum c)``; pieces expected < 0.5 times are
    dropped unless in ``keep`` (single characters)."""
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError("counts must be a non-empty mapping piece -> expected count")
    if not all(isinstance(c, numbers.Real) and math.isfinite(c) and c >= 0
               for c in counts.values()):
        raise ValueError("expected counts must be finite numbers >= 0")
    return _m_step(counts, keep)


def _m_step(counts: Mapping[str, float], keep: set[str]) -> dict[str, float]:
    kept = {p: c for p, c in counts.items()
            if c >= EXPECTED_FREQUENCY_THRESHOLD or p in keep}
    if not kept:
        raise ValueError("no piece is expected at least "
                         f"{EXPECTED_FREQUENCY_THRESHOLD} times, and none is kept")
    kept = {p: max(c, EXPECTED_FREQUENCY_THRESHOLD) for p, c in kept.items()}
    log_total = digamma(sum(kept.values()))
    return {p: float(digamma(c) - log_total) for p, c in kept.items()}


def prune(model: Unigram, words: Mapping[str, int], target: int,
          keep: set[str]) -> dict[str, float]:
    """Keep the ``target`` pieces whose removal would cost the corpus likelihood most.

    The loss of piece ``x`` (paper, Sec. 3.2): its Viterbi frequency ``F(x)`` times the
    drop in log-probability when each of its uses is replaced by ``x``'s own
    second-best segmentation, with the alternative pieces taking over its frequency.
    """
    if not isinstance(model, Unigram):
        raise ValueError(f"prune expects a Unigram model, got {type(model).__name__}")
    _check_positive_int(target, "target")
    if isinstance(keep, str) or not all(isinstance(p, str) for p in keep):
        raise ValueError("keep must be a set of pieces (str), not a single string")
    return _prune(model.scores, _Lattices(words, model.scores, model.max_len), target,
                  set(keep))


def _prune(scores: dict[str, float], lattices: _Lattices, target: int,
           keep: set[str]) -> dict[str, float]:
    freq = lattices.viterbi_counts(scores)  # F(x): uses on the best paths
    total = sum(freq.values())
    tree = _score_tree(scores)  # the pieces in use
    singles = {p for p in scores if len(p) == 1}
    fallback = None  # a Unigram, for pieces with characters that are not pieces
    losses = {}
    for piece in scores:
        if piece in keep:
            continue
        f = freq.get(piece, 0)
        if f == 0:
            losses[piece] = 0.0
            continue
        # the best segmentation without the piece itself (it may not be its own best)
        if all(ch in singles for ch in piece):
            alt = lattices.alternative(piece, tree)
        else:
            fallback = fallback or Unigram(scores, lattices.max_len)
            alt = fallback._alternative(piece)
        if alt is None:  # nothing could replace it
            losses[piece] = math.inf
            continue
        new_total = total + f * (len(alt) - 1)
        logp_alt = sum(math.log(freq.get(a, 0) + f) - math.log(new_total) for a in alt)
        losses[piece] = f * (math.log(f) - math.log(total) - logp_alt)
    ranked = sorted(losses, key=lambda p: (-losses[p], p))
    survivors = set(ranked[:max(target - len(keep), 0)]) | keep
    return {p: s for p, s in scores.items() if p in survivors}


def train(lines: Iterable[str], vocab_size: int, seed_size: int = 100_000,
          shrinking_factor: float = 0.75, num_sub_iterations: int = 2,
          max_piece_length: int = 16, progress=None, *,
          hard_vocab_limit: bool = False) -> tuple[Unigram, list[dict]]:
    """Train a unigram model on raw lines (Kudo 2018, Sec. 3.2). Returns the model and
    a log: per round, the size and the corpus log-likelihood ``L`` of the model the
    round ends with (after its last M-step).

    1. seed vocabulary (:func:`seed_pieces`); 2. ``num_sub_iterations`` EM steps;
    3. prune to ``max(shrinking_factor x size, 1.1 x vocab_size)``; repeat 2-3 until the
    size is at most ``1.1 x vocab_size``; then keep the ``vocab_size`` best-scoring
    pieces (every character is always kept, so any training string can be segmented).
    A corpus too small for ``vocab_size`` pieces gives a smaller model, or a
    ``ValueError`` with ``hard_vocab_limit=True`` (as in sentencepiece).
    """
    _check_positive_int(vocab_size, "vocab_size")
    _check_positive_int(seed_size, "seed_size")
    _check_positive_int(num_sub_iterations, "num_sub_iterations")
    _check_positive_int(max_piece_length, "max_piece_length")
    if (isinstance(shrinking_factor, bool) or not isinstance(shrinking_factor,
                                                             numbers.Real)
            or not 0 < shrinking_factor < 1):
        raise ValueError("shrinking_factor must be in (0, 1), "
                         f"got {shrinking_factor!r}")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a function of a log entry, "
                         f"got {progress!r}")
    if not isinstance(hard_vocab_limit, bool):
        raise ValueError(f"hard_vocab_limit must be True or False, "
                         f"got {hard_vocab_limit!r}")
    words = corpus_words(lines)
    chars = {ch for w in words for ch in w}
    if vocab_size < len(chars):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the alphabet of the "
                         f"corpus ({len(chars)} characters, each of which must be a "
                         "piece)")
    scores = seed_pieces(words, seed_size, max_piece_length)
    if hard_vocab_limit and len(scores) < vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is too large for this corpus: its "
                         f"seed vocabulary has only {len(scores)} pieces")
    lattices = _Lattices(words, scores, max_piece_length)
    desired = int(1.1 * vocab_size)
    log = []
    while True:
        for _ in range(num_sub_iterations):
            counts, _ = lattices.expected_counts(lattices.edge_scores(scores, 0.0))
            counts = counts.tolist()
            scores = _m_step({p: counts[lattices.index[p]] for p in scores}, chars)
        loglik = lattices.log_likelihood(lattices.edge_scores(scores, 0.0))
        log.append({"size": len(scores), "loglik": loglik})  # L after the M-step
        if progress is not None:
            progress(log[-1])
        if len(scores) <= desired:
            break
        target = max(desired, int(shrinking_factor * len(scores)))
        scores = _prune(scores, lattices, target, chars)
        lattices.restrict(scores)
    best = sorted((p for p in scores if p not in chars), key=lambda p: (-scores[p], p))
    final = {p: scores[p] for p in [*chars, *best[:max(vocab_size - len(chars), 0)]]}
    if hard_vocab_limit and len(final) < vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is too large for this corpus: "
                         f"training kept only {len(final)} pieces")
    return Unigram(final, max_piece_length), log


def train_sentencepiece(lines: Iterable[str], vocab_size: int, *,
                        hard_vocab_limit: bool = False):
    """Train ``sentencepiece``'s unigram model on raw ``lines``, in memory (reference).

    The options make it comparable with :class:`Unigram` and :func:`train`: identity
    normalization, every space kept, every character covered, one thread (the model is
    then the same bytes run to run). ``vocab_size`` counts sentencepiece's three special
    pieces (``<unk>``, ``<s>``, ``</s>``). With ``hard_vocab_limit=False`` a corpus too
    small for ``vocab_size`` pieces gets a smaller vocabulary instead of an error.
    Returns a ``sentencepiece.SentencePieceProcessor``; nothing is written to disk.
    """
    import sentencepiece as spm  # the reference library; only this function needs it

    if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
        raise ValueError("train_sentencepiece expects an iterable of lines, "
                         f"not a single string or {type(lines).__name__}")
    lines = list(lines)
    if not all(isinstance(line, str) for line in lines):
        raise ValueError("train_sentencepiece expects every line to be a str")
    if not any(lines):
        raise ValueError("the corpus is empty: train_sentencepiece needs at least one "
                         "non-empty line")
    _check_positive_int(vocab_size, "vocab_size")
    if vocab_size < 4:
        raise ValueError("vocab_size must be at least 4 (3 special pieces + 1), "
                         f"got {vocab_size}")
    if not isinstance(hard_vocab_limit, bool):
        raise ValueError("hard_vocab_limit must be True or False, "
                         f"got {hard_vocab_limit!r}")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, model_type="unigram",
        vocab_size=vocab_size, normalization_rule_name="identity",
        remove_extra_whitespaces=False, character_coverage=1.0, num_threads=1,
        minloglevel=2, hard_vocab_limit=hard_vocab_limit)
    return spm.SentencePieceProcessor(model_proto=out.getvalue())


def corpus_log_likelihood(model: Unigram, lines: Iterable[str]) -> float:
    """``sum_X log P(X)`` over the words of ``lines``, marginalizing over
    segmentations."""
    if not isinstance(model, Unigram):
        raise ValueError(f"expected a Unigram model, got {type(model).__name__}")
    lattices = _Lattices(corpus_words(lines), model.scores, model.max_len)
    return lattices.log_likelihood(lattices.edge_scores(model.scores, model.unk_score))


# -- reading a sentencepiece model (only what from_sentencepiece checks) ---------------
def _model_type_and_piece_types(proto: bytes) -> tuple[int, set[int]]:
    """``trainer_spec.model_type`` (1 unigram, 2 bpe, 3 word, 4 char) and the piece
    types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) of a
    serialized ``ModelProto``; absent fields take the proto's defaults."""
    model_type, types = 1, set()
    for field, value in _proto_fields(proto):
        if field == 1:  # repeated SentencePiece {piece = 1; score = 2; type = 3}
            types.add(next((v for f, v in _proto_fields(value) if f == 3), 1))
        elif field == 2:  # TrainerSpec {model_type = 3}
            model_type = next((v for f, v in _proto_fields(value) if f == 3), 1)
    return model_type, types


def _proto_fields(buf: bytes):
    """``(field number, value)`` of each field of a serialized protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError("not a sentencepiece model: unexpected protobuf wire type")
        yield key >> 3, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("not a sentencepiece model: truncated protobuf")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


# -- checks of arguments ---------------------------------------------------------------
def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"expected text as a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError("text must be valid Unicode; it has a lone surrogate "
                         f"{text[err.start]!r} at position {err.start}") from None


def _check_words(words) -> None:
    if not isinstance(words, Mapping) or not words:
        raise ValueError("words must be a non-empty mapping word -> count "
                         "(see corpus_words)")
    for w, c in words.items():
        if not isinstance(w, str) or not w:
            raise ValueError(f"words must be non-empty strings, got {w!r}")
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"word counts must be positive integers, got {w!r}: {c!r}")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_finite(value, name: str) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
        raise ValueError("alpha must be a positive number (a smoothing exponent such "
                         f"as 0.1), got {alpha!r}")


def _check_rng(rng) -> None:
    if not hasattr(rng, "choices"):
        raise ValueError(f"rng must be a random.Random, got {type(rng).__name__}")
