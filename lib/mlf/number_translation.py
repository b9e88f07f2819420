"""A translation task with known word alignments: English number words into German.

A source sentence is a list of numbers from 1 to 999 spelled in English and separated by
commas; its translation spells the same numbers in German, cut into the morphemes of the
compound (34 -> "vier und dreißig"). Both sides are built from the structure of the
number and checked against ``num2words``, so we know, for every German token, which
English word it translates. German puts the units before the tens, so the alignment is
not monotonic:

>>> ex = translate([34])
>>> ex.source, ex.target, ex.alignment
(('thirty', 'four'), ('vier', 'und', 'dreißig'), (1, None, 0))
"""
from __future__ import annotations

import math
import numbers as _numbers
import random
from dataclasses import dataclass

SEPARATOR = ","
MAX_NUMBER = 999
_EN_SMALL = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety"]
_DE_SMALL = ["", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht",
             "neun", "zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn",
             "sechzehn", "siebzehn", "achtzehn", "neunzehn"]
_DE_TENS = ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig",
            "achtzig", "neunzig"]


@dataclass(frozen=True)
class Example:
    """One sentence pair. ``alignment[i]`` is the source position that target token
    ``i`` translates, or ``None`` when no single source word produces it (German
    "und")."""

    numbers: tuple[int, ...]
    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int | None, ...]


def _is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, _numbers.Integral) and not isinstance(value, bool)


def _describe(value) -> str:
    return f"{value!r:.60} ({type(value).__name__})"


def _check_number(n, name: str = "n") -> int:
    if not _is_int(n):
        raise TypeError(f"{name} must be an integer from 1 to {MAX_NUMBER}, got "
                        f"{_describe(n)}")
    if not 1 <= n <= MAX_NUMBER:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_NUMBER}, got {n!r}")
    return int(n)


def _check_count(name: str, value) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive integer, got {_describe(value)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> None:
    expected = "a non-negative integer (the same seed gives the same sentences)"
    if not _is_int(seed):
        raise TypeError(f"seed must be {expected}, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be {expected}, got {seed!r}")


def _check_range(min_numbers, max_numbers) -> tuple[int, int]:
    min_numbers = _check_count("min_numbers", min_numbers)
    max_numbers = _check_count("max_numbers", max_numbers)
    if min_numbers > max_numbers:
        raise ValueError(f"min_numbers ({min_numbers}) must not exceed max_numbers "
                         f"({max_numbers})")
    return min_numbers, max_numbers


def _capacity(min_numbers: int, max_numbers: int, limit: int) -> int:
    """How many distinct sentences of ``min_numbers`` to ``max_numbers`` numbers exist,
    counted up to ``limit`` (past it the exact number does not matter)."""
    total = 0
    for k in range(min_numbers, max_numbers + 1):
        if k * math.log10(MAX_NUMBER) > math.log10(limit + 1) + 1:
            return limit + 1  # 999**k alone exceeds the limit: no need to compute it
        total += MAX_NUMBER ** k
        if total > limit:
            break
    return total


def number_pair(n: int) -> tuple[list[str], list[str], list[int | None]]:
    """English tokens, German tokens and the alignment (German -> English position) of
    ``n``, an integer from 1 to 999.

    >>> number_pair(121)  # doctest: +NORMALIZE_WHITESPACE
    (['one', 'hundred', 'and', 'twenty', 'one'],
     ['ein', 'hundert', 'ein', 'und', 'zwanzig'], [0, 1, 4, None, 3])
    """
    hundreds, rest = divmod(_check_number(n), 100)
    en, de, align = [], [], []
    if hundreds:
        en += [_EN_SMALL[hundreds], "hundred"]  # "one hundred" -> "ein hundert"
        de += ["ein" if hundreds == 1 else _DE_SMALL[hundreds], "hundert"]
        align += [0, 1]
        if rest:
            en.append("and")  # British "and" has no German counterpart
    if 0 < rest < 20:
        en.append(_EN_SMALL[rest])
        de.append(_DE_SMALL[rest])
        align.append(len(en) - 1)
    elif rest:
        tens, units = divmod(rest, 10)
        en.append(_EN_TENS[tens])
        tens_at = len(en) - 1
        if units:
            en.append(_EN_SMALL[units])
            # subtle: the units come first in German, and "eins" loses its s:
            # "ein und zwanzig"
            de += ["ein" if units == 1 else _DE_SMALL[units], "und"]
            align += [len(en) - 1, None]
        de.append(_DE_TENS[tens])
        align.append(tens_at)
    return en, de, align


def _check_numbers(numbers) -> tuple[int, ...]:
    expected = f"a non-empty sequence of integers from 1 to {MAX_NUMBER}"
    if isinstance(numbers, (str, bytes)) or not hasattr(numbers, "__iter__"):
        raise TypeError(f"numbers must be {expected}, got {_describe(numbers)}")
    numbers = tuple(numbers)
    if not numbers:
        raise ValueError(f"numbers must be {expected}, got an empty sequence")
    return tuple(_check_number(n, f"numbers[{k}]") for k, n in enumerate(numbers))


def translate(numbers) -> Example:
    """The sentence pair for a sequence of numbers (each from 1 to 999), joined by
    ``SEPARATOR`` on both sides."""
    numbers = _check_numbers(numbers)
    source, target, alignment = [], [], []
    for k, n in enumerate(numbers):
        if k:
            target.append(SEPARATOR)
            alignment.append(len(source))
            source.append(SEPARATOR)
        en, de, align = number_pair(n)
        alignment += [None if a is None else a + len(source) for a in align]
        source += en
        target += de
    return Example(numbers, tuple(source), tuple(target), tuple(alignment))


def _check_exclude(exclude) -> set[tuple[int, ...]]:
    expected = "a collection of number tuples (as in Example.numbers)"
    if isinstance(exclude, (str, bytes)) or not hasattr(exclude, "__iter__"):
        raise TypeError(f"exclude must be {expected}, got {_describe(exclude)}")
    out = set()
    for item in exclude:
        if not isinstance(item, (tuple, list)):
            raise TypeError(f"exclude must be {expected}; it holds {_describe(item)}")
        out.add(tuple(item))
    return out


def sample_examples(count: int, min_numbers: int, max_numbers: int, seed: int,
                    exclude=frozenset()) -> list[Example]:
    """``count`` distinct random sentences of ``min_numbers`` to ``max_numbers`` numbers
    each.

    The number of numbers is drawn uniformly, then each number uniformly from 1 to 999.
    Sentences whose number tuple is in ``exclude`` are skipped (to keep a test set
    unseen). Asking for more distinct sentences than exist is an error.
    """
    count = _check_count("count", count)
    min_numbers, max_numbers = _check_range(min_numbers, max_numbers)
    _check_seed(seed)
    seen = _check_exclude(exclude)
    possible = _capacity(min_numbers, max_numbers, count + len(seen))
    excluded = sum(min_numbers <= len(t) <= max_numbers
                   and all(_is_int(n) and 1 <= n <= MAX_NUMBER for n in t)
                   for t in seen)
    if count > possible - excluded:
        raise ValueError(f"count={count} distinct sentences of {min_numbers} to "
                         f"{max_numbers} numbers were asked for, but only "
                         f"{possible - excluded} exist ({possible} less {excluded} "
                         "excluded): ask for fewer or allow more numbers per sentence")
    rng = random.Random(seed)
    examples = []
    while len(examples) < count:
        numbers = tuple(rng.randint(1, MAX_NUMBER)
                        for _ in range(rng.randint(min_numbers, max_numbers)))
        if numbers not in seen:
            seen.add(numbers)
            examples.append(translate(numbers))
    return examples


def make_splits(train_size: int, test_size: int, min_numbers: int, max_numbers: int,
                seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A training and a test set with no sentence in common (same length
    distribution)."""
    train_size = _check_count("train_size", train_size)
    test_size = _check_count("test_size", test_size)
    min_numbers, max_numbers = _check_range(min_numbers, max_numbers)
    _check_seed(seed)
    possible = _capacity(min_numbers, max_numbers, train_size + test_size)
    if train_size + test_size > possible:
        raise ValueError(f"train_size + test_size = {train_size + test_size} distinct "
                         f"sentences were asked for, but only {possible} of "
                         f"{min_numbers} to {max_numbers} numbers exist")
    test = sample_examples(test_size, min_numbers, max_numbers, seed + 1)
    train = sample_examples(train_size, min_numbers, max_numbers, seed,
                            exclude={ex.numbers for ex in test})
    return train, test


def split_by_length(examples, edges) -> dict[str, list[Example]]:
    """Group examples by source length into buckets ``[edges[k], edges[k+1])``.

    >>> sorted(split_by_length([translate([5]), translate([5, 7])], [1, 2, 10]))
    ['1-1', '2-9']
    """
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise TypeError(f"edges must be a list of source lengths, got "
                        f"{_describe(edges)}")
    edges = list(edges)
    if not all(_is_int(e) for e in edges):
        raise TypeError(f"edges must be integer source lengths, got {edges!r}")
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two strictly increasing lengths, got "
                         f"{edges!r}")
    if isinstance(examples, Example) or not hasattr(examples, "__iter__"):
        raise TypeError(f"examples must be a list of Example, got "
                        f"{_describe(examples)}")
    buckets = {f"{a}-{b - 1}": [] for a, b in zip(edges, edges[1:])}
    for ex in examples:
        if not isinstance(ex, Example):
            raise TypeError(f"examples must hold Example objects (from translate or "
                            f"sample_examples), got {_describe(ex)}")
        for (a, b), name in zip(zip(edges, edges[1:]), buckets):
            if a <= len(ex.source) < b:
                buckets[name].append(ex)
                break
        else:
            raise ValueError(f"source length {len(ex.source)} lies outside the edges "
                             f"{edges!r}")
    return buckets
