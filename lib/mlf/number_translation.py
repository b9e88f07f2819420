"""A translation task with known word alignments: English number words into German.

A source sentence is a list of numbers from 1 to 999 spelled in English and separated by
commas; its translation spells the same numbers in German, cut into the morphemes of the
compound (34 -> "vier und dreißig"). Both sides are built from the structure of the number and
checked against ``num2words``, so we know, for every German token, which English word it
translates. German puts the units before the tens, so the alignment is not monotonic:

>>> ex = translate([34])
>>> ex.source, ex.target, ex.alignment
(('thirty', 'four'), ('vier', 'und', 'dreißig'), (1, None, 0))
"""
from __future__ import annotations

import random
from dataclasses import dataclass

SEPARATOR = ","
MAX_NUMBER = 999
_EN_SMALL = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
             "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DE_SMALL = ["", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
             "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn",
             "achtzehn", "neunzehn"]
_DE_TENS = ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig",
            "neunzig"]


@dataclass(frozen=True)
class Example:
    """One sentence pair. ``alignment[i]`` is the source position that target token ``i``
    translates, or ``None`` when no single source word produces it (German "und")."""

    numbers: tuple[int, ...]
    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int | None, ...]


def _check_number(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NUMBER:
        raise ValueError(f"numbers must be integers from 1 to {MAX_NUMBER}, got {n!r}")
    return n


def number_pair(n: int) -> tuple[list[str], list[str], list[int | None]]:
    """English tokens, German tokens and the alignment (German -> English position) of ``n``.

    >>> number_pair(121)
    (['one', 'hundred', 'and', 'twenty', 'one'], ['ein', 'hundert', 'ein', 'und', 'zwanzig'], [0, 1, 4, None, 3])
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
            # subtle: the units come first in German, and "eins" loses its s: "ein und zwanzig"
            de += ["ein" if units == 1 else _DE_SMALL[units], "und"]
            align += [len(en) - 1, None]
        de.append(_DE_TENS[tens])
        align.append(tens_at)
    return en, de, align


def translate(numbers) -> Example:
    """The sentence pair for a sequence of numbers, joined by ``SEPARATOR`` on both sides."""
    numbers = tuple(numbers)
    if not numbers:
        raise ValueError("numbers must be a non-empty sequence of integers from 1 to 999")
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


def sample_examples(count: int, min_numbers: int, max_numbers: int, seed: int,
                    exclude=frozenset()) -> list[Example]:
    """``count`` distinct random sentences of ``min_numbers`` to ``max_numbers`` numbers each.

    The number of numbers is drawn uniformly, then each number uniformly from 1 to 999.
    Sentences whose number tuple is in ``exclude`` are skipped (to keep a test set unseen).
    """
    for name, value in (("count", count), ("min_numbers", min_numbers), ("max_numbers", max_numbers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if min_numbers > max_numbers:
        raise ValueError(f"min_numbers ({min_numbers}) must not exceed max_numbers ({max_numbers})")
    rng = random.Random(seed)
    seen, examples = set(exclude), []
    while len(examples) < count:
        numbers = tuple(rng.randint(1, MAX_NUMBER) for _ in range(rng.randint(min_numbers, max_numbers)))
        if numbers not in seen:
            seen.add(numbers)
            examples.append(translate(numbers))
    return examples


def make_splits(train_size: int, test_size: int, min_numbers: int, max_numbers: int,
                seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A training and a test set with no sentence in common (same length distribution)."""
    test = sample_examples(test_size, min_numbers, max_numbers, seed + 1)
    train = sample_examples(train_size, min_numbers, max_numbers, seed,
                            exclude={ex.numbers for ex in test})
    return train, test


def split_by_length(examples, edges) -> dict[str, list[Example]]:
    """Group examples by source length into buckets ``[edges[k], edges[k+1])``.

    >>> sorted(split_by_length([translate([5]), translate([5, 7])], [1, 2, 10]))
    ['1-1', '2-9']
    """
    edges = list(edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two strictly increasing lengths, got {edges!r}")
    buckets = {f"{a}-{b - 1}": [] for a, b in zip(edges, edges[1:])}
    for ex in examples:
        for (a, b), name in zip(zip(edges, edges[1:]), buckets):
            if a <= len(ex.source) < b:
                buckets[name].append(ex)
                break
        else:
            raise ValueError(f"source length {len(ex.source)} lies outside the edges {edges!r}")
    return buckets
