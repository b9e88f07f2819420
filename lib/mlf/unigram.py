"""The unigram language model of SentencePiece (Kudo & Richardson 2018; Kudo 2018).

A sentence :math:`X` is segmented into pieces :math:`x = (x_1, ..., x_M)`, each drawn
independently: :math:`P(x) = \\prod_i p(x_i)`. Scores are log-probabilities
:math:`\\log p(x_i)`. Every segmentation of a string is a path through its **lattice** (one node
per character boundary, one edge per vocabulary piece that matches there).

Conventions follow ``sentencepiece`` 0.2 with ``normalization_rule_name="identity"`` and
``remove_extra_whitespaces=False``, so that :meth:`Unigram.encode` is identical to
``sp.encode(text, out_type=str)``:

* raw text in: each space becomes ``▁`` (U+2581) and one ``▁`` is put in front (the "dummy
  prefix"), so ``"Hello  world"`` is segmented as ``"▁Hello▁▁world"``;
* decoding joins the pieces, turns ``▁`` back into spaces and drops the dummy prefix: lossless;
* a character that no piece covers becomes an unknown piece, scored
  ``min(scores) - 10`` (sentencepiece's ``kUnkPenalty``);
* Viterbi adds scores in float32 and, between equal paths, keeps the one whose last piece is
  longest (see :meth:`Unigram.viterbi`).

>>> m = Unigram({"▁": -2.0, "▁a": -1.0, "a": -3.0, "b": -3.0, "ab": -2.5, "▁ab": -1.5})
>>> m.encode("ab ab")
['▁ab', '▁ab']
>>> m.decode(m.encode("ab  ab"))
'ab  ab'
"""
from __future__ import annotations

import io
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

SPACE = "▁"  # U+2581, stands for a space inside pieces
UNK_PENALTY = 10.0  # sentencepiece's kUnkPenalty: an unknown character scores min_score - 10
EXPECTED_FREQUENCY_THRESHOLD = 0.5  # the trainer drops pieces expected fewer times than this

Edge = tuple[int, int, str, float]  # (start, end, piece, score) of one lattice edge


def normalize(text: str) -> str:
    """Raw text -> the string that is segmented: ``"a  b" -> "▁a▁▁b"`` (identity rule).

    Every space is kept (runs of spaces included), so decoding is exact.
    """
    _check_text(text)
    return SPACE + text.replace(" ", SPACE)


def denormalize(pieces: Iterable[str]) -> str:
    """Pieces -> raw text; the inverse of :func:`normalize` after segmentation."""
    joined = "".join(pieces)
    if not joined.startswith(SPACE):
        raise ValueError(f"pieces must start with the dummy prefix {SPACE!r}, got {joined[:10]!r}")
    return joined[len(SPACE):].replace(SPACE, " ")


def split_words(normalized: str) -> list[str]:
    """Split a normalized string before each ``▁``: ``"▁a▁▁b" -> ["▁a", "▁", "▁b"]``.

    The trainer counts these words; no piece crosses a word boundary (``split_by_whitespace``).
    """
    words, start = [], 0
    for i in range(1, len(normalized) + 1):
        if i == len(normalized) or normalized[i] == SPACE:
            words.append(normalized[start:i])
            start = i
    return words


def digamma(x: float) -> float:
    """The digamma function psi(x) = d/dx log Gamma(x), for x > 0 (recurrence + asymptotic series)."""
    if not x > 0:
        raise ValueError(f"digamma is implemented for x > 0 only, got {x!r}")
    shift = 0.0
    while x < 10.0:  # psi(x) = psi(x + 1) - 1/x
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    return shift + math.log(x) - 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


class Unigram:
    """A unigram segmenter: pieces with scores (log-probabilities)."""

    def __init__(self, scores: Mapping[str, float], max_piece_length: int | None = None):
        if not scores:
            raise ValueError("a unigram model needs at least one piece; scores is empty")
        for piece, score in scores.items():
            if not isinstance(piece, str) or not piece:
                raise ValueError(f"pieces must be non-empty strings, got {piece!r}")
            if not isinstance(score, (int, float)) or not math.isfinite(score):
                raise ValueError(f"scores must be finite numbers, got {piece!r}: {score!r}")
        self.scores = {p: float(s) for p, s in scores.items()}
        self.max_len = max(map(len, self.scores)) if max_piece_length is None else max_piece_length
        self.unk_score = min(self.scores.values()) - UNK_PENALTY
        self._f32 = {p: np.float32(s) for p, s in self.scores.items()}  # sentencepiece's floats

    @classmethod
    def from_sentencepiece(cls, sp) -> Unigram:
        """Load the normal pieces and scores of a ``sentencepiece.SentencePieceProcessor``.

        Control (``<s>``, ``</s>``), unknown, unused and byte pieces never match text: left out.
        """
        special = (sp.is_control, sp.is_unknown, sp.is_unused, sp.is_byte)
        scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())
                  if not any(test(i) for test in special)}
        return cls(scores)

    def renormalized(self) -> Unigram:
        """The same pieces with scores shifted by one constant so that ``sum_x p(x) = 1``.

        # subtle: the digamma M-step (:func:`m_step`) leaves ``sum_x p(x) < 1``; compare the
        # likelihoods of two models only after renormalizing both. The shift changes ``log P(x)``
        # by a constant per piece, so it can change which segmentation is best.
        """
        log_total = _logsumexp(list(self.scores.values()))
        return Unigram({p: s - log_total for p, s in self.scores.items()}, self.max_len)

    # -- the lattice ------------------------------------------------------------------------
    def lattice(self, s: str) -> list[list[Edge]]:
        """``ends[e]``: the edges ``(start, e, piece, score)`` ending at position ``e``.

        A character no piece covers gets a one-character unknown edge, so a path always exists.
        """
        _check_text(s)
        ends: list[list[Edge]] = [[] for _ in range(len(s) + 1)]
        for start in range(len(s)):
            covered = False
            for end in range(start + 1, min(start + self.max_len, len(s)) + 1):
                piece = s[start:end]
                if piece in self.scores:
                    ends[end].append((start, end, piece, self.scores[piece]))
                    covered |= end == start + 1
            if not covered:
                ends[start + 1].append((start, start + 1, s[start], self.unk_score))
        return ends

    def viterbi(self, s: str) -> list[str]:
        """The most probable segmentation ``argmax_x P(x)`` of ``s`` (already normalized).

        # subtle: sentencepiece sums scores in float32 and visits edges by start position, then
        # by length, replacing the best only on a strictly larger score. Between equal paths it
        # therefore keeps the one whose last piece starts earliest (is longest). We do the same,
        # so near-ties resolve as they do there.
        """
        ends = self.lattice(s)
        best = [np.float32(0.0)] + [None] * len(s)  # best path score ending at each position
        back: list[tuple[int, str]] = [(-1, "")] * (len(s) + 1)
        for end in range(1, len(s) + 1):
            for start, _, piece, _ in sorted(ends[end]):  # by start: longest piece first
                f32 = self._f32.get(piece, np.float32(self.unk_score))
                candidate = np.float32(best[start] + f32)
                if best[end] is None or candidate > best[end]:
                    best[end], back[end] = candidate, (start, piece)
        pieces, end = [], len(s)
        while end > 0:
            end, piece = back[end]
            pieces.append(piece)
        return pieces[::-1]

    def encode(self, text: str) -> list[str]:
        """Raw text -> pieces, as ``sp.encode(text, out_type=str)``."""
        return self.viterbi(normalize(text))

    def decode(self, pieces: Iterable[str]) -> str:
        return denormalize(pieces)

    # -- probabilities ----------------------------------------------------------------------
    def log_prob(self, pieces: Iterable[str]) -> float:
        """``log P(x) = sum_i log p(x_i)`` of one segmentation (unknown pieces: unk score)."""
        return sum(self.scores.get(p, self.unk_score) for p in pieces)

    def forward(self, s: str, alpha: float = 1.0, ends: list[list[Edge]] | None = None) -> list[float]:
        """Forward log-sums: ``fwd[e] = log sum over paths to e of P(path)^alpha``.

        ``ends`` is ``self.lattice(s)`` when the caller already has it.
        """
        ends = self.lattice(s) if ends is None else ends
        fwd = [0.0] + [-math.inf] * len(s)
        for end in range(1, len(s) + 1):
            fwd[end] = _logsumexp([fwd[a] + alpha * score for a, _, _, score in ends[end]])
        return fwd

    def log_marginal(self, s: str) -> float:
        """``log P(X) = log sum_x P(x)`` over every segmentation of ``s`` (forward algorithm)."""
        return self.forward(s)[-1]

    def segmentations(self, s: str, limit: int = 10_000) -> list[list[str]]:
        """Every segmentation of a short ``s`` (at most ``limit``), for exact distributions."""
        ends = self.lattice(s)
        paths: list[list[list[str]]] = [[[]]] + [[] for _ in s]
        for end in range(1, len(s) + 1):
            paths[end] = [p + [piece] for start, _, piece, _ in ends[end] for p in paths[start]]
            if len(paths[end]) > limit:
                raise ValueError(f"{s!r} has more than {limit} segmentations; use a shorter string")
        return paths[-1]

    # -- several segmentations (subword regularization) --------------------------------------
    def nbest(self, s: str, n: int) -> list[tuple[list[str], float]]:
        """The ``n`` most probable segmentations of ``s`` with their ``log P(x)``, best first.

        Dynamic programming that keeps the top ``n`` partial paths at every position (exact).
        """
        _check_positive_int(n, "n")
        ends = self.lattice(s)
        top: list[list[tuple[float, tuple[str, ...]]]] = [[(0.0, ())]] + [[] for _ in s]
        for end in range(1, len(s) + 1):
            cands = [(score + sc, pieces + (piece,)) for start, _, piece, sc in ends[end]
                     for score, pieces in top[start]]
            top[end] = sorted(cands, key=lambda c: (-c[0], c[1]))[:n]
        return [(list(pieces), score) for score, pieces in top[-1]]

    def sample(self, s: str, alpha: float, rng: random.Random) -> list[str]:
        """Draw ``x ~ P(x)^alpha / Z`` over all segmentations (forward-filtering, backward-sampling).

        Forward: ``fwd[e]`` sums ``P^alpha`` of every path to ``e``. Backward: from the end, pick
        the last edge ``(a, e)`` with probability ``exp(fwd[a] + alpha * score - fwd[e])``.
        """
        _check_alpha(alpha)
        ends = self.lattice(s)
        fwd = self.forward(s, alpha, ends)
        pieces, end = [], len(s)
        while end > 0:
            weights = [math.exp(fwd[a] + alpha * score - fwd[end]) for a, _, _, score in ends[end]]
            start, _, piece, _ = rng.choices(ends[end], weights)[0]
            pieces.append(piece)
            end = start
        return pieces[::-1]


    def nbest_sample(self, s: str, l: int, alpha: float, rng: random.Random) -> list[str]:
        """Draw one of the ``l`` best segmentations with probability ``P(x)^alpha / Z_l``
        (the paper's l-best sampling, Sec. 3.3)."""
        _check_alpha(alpha)
        best = self.nbest(s, l)
        top = max(score for _, score in best)  # subtract the max before exp: no underflow
        weights = [math.exp(alpha * (score - top)) for _, score in best]
        return rng.choices(best, weights)[0][0]

    def distribution(self, s: str, alpha: float, l: int | None = None) -> dict[tuple[str, ...], float]:
        """The exact sampling distribution ``P(x)^alpha / Z`` over all segmentations of a short
        ``s`` (``l=None``, what :meth:`sample` draws from) or over its ``l`` best (:meth:`nbest_sample`)."""
        _check_alpha(alpha)
        if l is None:
            scored = [(x, self.log_prob(x)) for x in self.segmentations(s)]
        else:
            scored = self.nbest(s, l)
        log_z = _logsumexp([alpha * score for _, score in scored])
        return {tuple(x): math.exp(alpha * score - log_z) for x, score in scored}

# -- training: EM with pruning from a seed vocabulary ------------------------------------------
def corpus_words(lines: Iterable[str]) -> Counter[str]:
    """Normalize each raw line and count its words (``▁``-initial strings), as the trainer sees them."""
    if isinstance(lines, str):
        raise ValueError("corpus_words expects an iterable of lines, not a single string")
    counts: Counter[str] = Counter()
    for line in lines:
        if line:
            counts.update(split_words(normalize(line)))
    if not counts:
        raise ValueError("the corpus is empty: no non-empty line")
    return counts


def seed_pieces(words: Mapping[str, int], seed_size: int, max_piece_length: int = 16) -> dict[str, float]:
    """The seed vocabulary: every character, plus the ``seed_size`` substrings with largest
    ``frequency x length`` that occur at least twice; scores are log relative frequencies.

    A ``▁`` may only start a piece (pieces never span two words).
    """
    chars: Counter[str] = Counter()
    subs: Counter[str] = Counter()
    for word, count in words.items():
        for i, ch in enumerate(word):
            chars[ch] += count
            for j in range(i + 2, min(i + max_piece_length, len(word)) + 1):
                subs[word[i:j]] += count
    subs = Counter({p: f for p, f in subs.items() if f >= 2 and SPACE not in p[1:] and p != SPACE})
    ranked = sorted(subs.items(), key=lambda pf: (-pf[1] * len(pf[0]), pf[0]))[:seed_size]
    seed = dict(chars) | {p: f * len(p) for p, f in ranked}  # score ~ frequency x length
    total = math.log(sum(seed.values()))
    return {p: math.log(f) - total for p, f in seed.items()}


def expected_counts(model: Unigram, words: Mapping[str, int]) -> tuple[dict[str, float], float]:
    """E-step: expected piece counts under ``P(x | X)`` (forward-backward), and the
    corpus log-likelihood ``sum_X count(X) log P(X)``."""
    counts: dict[str, float] = defaultdict(float)
    loglik = 0.0
    for word, freq in words.items():
        ends = model.lattice(word)
        fwd = model.forward(word, 1.0, ends)
        bwd = [-math.inf] * len(word) + [0.0]
        for end in range(len(word), 0, -1):  # backward sums, reusing the edge lists
            for start, _, _, score in ends[end]:
                bwd[start] = _logsumexp([bwd[start], score + bwd[end]])
        z = fwd[-1]
        loglik += freq * z
        for end in range(1, len(word) + 1):
            for start, _, piece, score in ends[end]:
                counts[piece] += freq * math.exp(fwd[start] + score + bwd[end] - z)
    return counts, loglik


def m_step(counts: Mapping[str, float], keep: set[str]) -> dict[str, float]:
    """M-step with sentencepiece's sparse (variational Bayes) update:
    ``log p(x) = digamma(c(x)) - digamma(sum c)``; pieces expected < 0.5 times are dropped
    unless in ``keep`` (single characters)."""
    kept = {p: c for p, c in counts.items() if c >= EXPECTED_FREQUENCY_THRESHOLD or p in keep}
    kept = {p: max(c, EXPECTED_FREQUENCY_THRESHOLD) for p, c in kept.items()}
    log_total = digamma(sum(kept.values()))
    return {p: float(digamma(c) - log_total) for p, c in kept.items()}


def prune(model: Unigram, words: Mapping[str, int], target: int, keep: set[str]) -> dict[str, float]:
    """Keep the ``target`` pieces whose removal would cost the corpus likelihood most.

    The loss of piece ``x`` (paper, Sec. 3.2): its Viterbi frequency ``F(x)`` times the drop in
    log-probability when each of its uses is replaced by ``x``'s own second-best segmentation,
    with the alternative pieces taking over its frequency.
    """
    freq: Counter[str] = Counter()
    for word, count in words.items():
        for piece in model.viterbi(word):
            freq[piece] += count
    total = sum(freq.values())
    losses = {}
    for piece in model.scores:
        if piece in keep:
            continue
        f = freq.get(piece, 0)
        if f == 0:
            losses[piece] = 0.0
            continue
        # the best segmentation that avoids the piece itself (the piece may not be its own best)
        alt = next(x for x, _ in model.nbest(piece, 2) if len(x) > 1)
        new_total = total + f * (len(alt) - 1)
        logp_alt = sum(math.log(freq.get(a, 0) + f) - math.log(new_total) for a in alt)
        losses[piece] = f * (math.log(f) - math.log(total) - logp_alt)
    ranked = sorted(losses, key=lambda p: (-losses[p], p))
    survivors = set(ranked[:max(target - len(keep), 0)]) | keep
    return {p: s for p, s in model.scores.items() if p in survivors}


def train(lines: Iterable[str], vocab_size: int, seed_size: int = 100_000, shrinking_factor: float = 0.75,
          num_sub_iterations: int = 2, max_piece_length: int = 16, progress=None) -> tuple[Unigram, list[dict]]:
    """Train a unigram model on raw lines (Kudo 2018, Sec. 3.2). Returns the model and a log.

    1. seed vocabulary (:func:`seed_pieces`); 2. ``num_sub_iterations`` EM steps; 3. prune to
    ``max(shrinking_factor x size, 1.1 x vocab_size)``; repeat 2-3 until the size is at most
    ``1.1 x vocab_size``; then EM once more and keep the ``vocab_size`` best-scoring pieces
    (every character is always kept, so that any training string can be segmented).
    """
    _check_positive_int(vocab_size, "vocab_size")
    _check_positive_int(seed_size, "seed_size")
    _check_positive_int(num_sub_iterations, "num_sub_iterations")
    if not 0 < shrinking_factor < 1:
        raise ValueError(f"shrinking_factor must be in (0, 1), got {shrinking_factor!r}")
    words = corpus_words(lines)
    chars = {ch for w in words for ch in w}
    if vocab_size < len(chars):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the alphabet of the corpus "
                         f"({len(chars)} characters, all of which must be pieces)")
    scores = seed_pieces(words, seed_size, max_piece_length)
    desired = int(1.1 * vocab_size)
    log = []
    while True:
        for _ in range(num_sub_iterations):
            counts, loglik = expected_counts(Unigram(scores, max_piece_length), words)
            scores = m_step(counts, chars)
        log.append({"size": len(scores), "loglik": loglik})
        if progress is not None:
            progress(log[-1])
        if len(scores) <= desired:
            break
        target = max(desired, int(shrinking_factor * len(scores)))
        scores = prune(Unigram(scores, max_piece_length), words, target, chars)
    best = sorted((p for p in scores if p not in chars), key=lambda p: (-scores[p], p))
    final = {p: scores[p] for p in [*chars, *best[:max(vocab_size - len(chars), 0)]]}
    return Unigram(final, max_piece_length), log


def train_sentencepiece(lines: Iterable[str], vocab_size: int, *, hard_vocab_limit: bool = False):
    """Train ``sentencepiece``'s unigram model on raw ``lines``, in memory, as a reference.

    The options make it comparable with :class:`Unigram` and :func:`train`: identity
    normalization, every space kept, every character covered, one thread (the model is then the
    same bytes run to run). ``vocab_size`` counts sentencepiece's three special pieces
    (``<unk>``, ``<s>``, ``</s>``). With ``hard_vocab_limit=False`` a corpus too small for
    ``vocab_size`` pieces gets a smaller vocabulary instead of an error. Returns a
    ``sentencepiece.SentencePieceProcessor``; nothing is written to disk.
    """
    import sentencepiece as spm  # the reference library; only this function needs it

    if isinstance(lines, str):
        raise ValueError("train_sentencepiece expects an iterable of lines, not a single string")
    lines = list(lines)
    if not all(isinstance(line, str) for line in lines):
        raise ValueError("train_sentencepiece expects every line to be a str")
    if not any(lines):
        raise ValueError("the corpus is empty: train_sentencepiece needs at least one non-empty line")
    _check_positive_int(vocab_size, "vocab_size")
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4 (3 special pieces + 1), got {vocab_size}")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, model_type="unigram", vocab_size=vocab_size,
        normalization_rule_name="identity", remove_extra_whitespaces=False, character_coverage=1.0,
        num_threads=1, minloglevel=2, hard_vocab_limit=hard_vocab_limit)
    return spm.SentencePieceProcessor(model_proto=out.getvalue())


def corpus_log_likelihood(model: Unigram, lines: Iterable[str]) -> float:
    """``sum_X log P(X)`` over the words of ``lines``, marginalizing over segmentations."""
    return sum(c * model.log_marginal(w) for w, c in corpus_words(lines).items())


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"expected text as a str, got {type(text).__name__}")
    if not text:
        raise ValueError("expected non-empty text, got an empty string")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number (a smoothing exponent such as 0.1), got {alpha!r}")
