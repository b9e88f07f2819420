"""A generated world of fictional people, for the retrieval chapters (RAG, REALM).

No model can have memorised these facts: each person's name is made of random syllables,
and each of their attributes (city, job, pet, instrument, colour) is drawn at random.
So a model that answers a question about them must have read the answer somewhere, which
is what retrieval is for. ``reassign`` keeps the names and redraws every attribute: the
same questions then have new answers (RAG's index hot-swap).

>>> people = make_people(3, seed=0)
>>> len({p.name for p in people})
3
>>> sorted(people[0].facts) == sorted(ATTRIBUTES)
True
>>> q, a = question(people[0], "pet")
>>> a == people[0].facts["pet"] and people[0].name in q
True
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Each value is one lower-case word, so an answer is one word.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "city": ("lisbon", "oslo", "cairo", "lima", "dublin", "vienna", "nairobi", "quito",
             "hanoi", "riga", "tunis", "perth", "kyoto", "zagreb", "havana", "sofia"),
    "job": ("baker", "pilot", "farmer", "nurse", "painter", "sailor", "judge", "miner",
            "tailor", "dentist", "chemist", "plumber", "poet", "banker", "butcher",
            "jeweller"),
    "pet": ("cat", "dog", "parrot", "rabbit", "tortoise", "goat", "hamster", "ferret",
            "pony", "lizard", "duck", "goose", "snake", "owl", "mouse", "pig"),
    "instrument": ("violin", "cello", "flute", "harp", "drums", "piano", "trumpet",
                   "guitar", "banjo", "oboe", "tuba", "lute", "organ", "clarinet",
                   "bagpipes", "accordion"),
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "black", "white",
               "grey", "pink", "brown", "violet", "silver", "gold", "crimson", "teal"),
}

# One sentence per attribute for the biographies, and a differently worded question.
_STATEMENT = {
    "city": "{name} lives in {value}.",
    "job": "{name} works as a {value}.",
    "pet": "{name} keeps a {value} at home.",
    "instrument": "{name} plays the {value}.",
    "colour": "The favourite colour of {name} is {value}.",
}
_QUESTION = {
    "city": "Which city is home to {name}?",
    "job": "What is the job of {name}?",
    "pet": "What animal does {name} keep?",
    "instrument": "Which instrument does {name} play?",
    "colour": "What colour does {name} like best?",
}
# Names are made of these syllables (a generator may split names into them).
SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "sil", "da", "quo", "ber", "nu",
             "zel", "fa", "gri", "po", "shan", "tu", "wex", "yor", "ix")


@dataclass(frozen=True)
class Person:
    name: str
    facts: dict[str, str]


def _name(rng: random.Random) -> str:
    """A first and a family name, two or three syllables each: 'Kaven Torsil'."""
    def word():
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3))))
    return f"{word().capitalize()} {word().capitalize()}"


def _check_count(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")


def _draw_facts(rng: random.Random) -> dict[str, str]:
    return {attr: rng.choice(values) for attr, values in ATTRIBUTES.items()}


def make_people(n: int, seed: int = 0) -> list[Person]:
    """n people with distinct names and random attributes, reproducible from seed."""
    _check_count(n)
    rng = random.Random(seed)
    names: list[str] = []
    seen: set[str] = set()
    for _ in range(100 * n):  # 20 syllables give ~10^7 names: collisions are rare
        name = _name(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
        if len(names) == n:
            break
    else:
        raise ValueError(f"could not draw {n} distinct names; ask for fewer")
    return [Person(name, _draw_facts(rng)) for name in names]


def reassign(people: list[Person], seed: int) -> list[Person]:
    """The same names with every attribute redrawn to a different value."""
    if not people:
        raise ValueError("people is empty: expected at least one Person")
    rng = random.Random(seed)
    out = []
    for p in people:
        facts = {attr: rng.choice([v for v in values if v != p.facts[attr]])
                 for attr, values in ATTRIBUTES.items()}
        out.append(Person(p.name, facts))
    return out


def _check_attribute(attribute: str) -> None:
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}; expected one of "
                         f"{sorted(ATTRIBUTES)}")


def statement(person: Person, attribute: str) -> str:
    """The sentence stating one fact: 'Kaven Torsil plays the harp.'"""
    _check_attribute(attribute)
    return _STATEMENT[attribute].format(name=person.name,
                                        value=person.facts[attribute])


def biography(person: Person) -> str:
    """All of a person's facts, one sentence each, in a fixed order: one document."""
    return " ".join(statement(person, attr) for attr in ATTRIBUTES)


def question(person: Person, attribute: str) -> tuple[str, str]:
    """(question, one-word answer) about one attribute of a person."""
    _check_attribute(attribute)
    return (_QUESTION[attribute].format(name=person.name), person.facts[attribute])


def tokenize(text: str) -> list[str]:
    """The words of a biography, statement or question: lower-case words and sentence
    punctuation. 'Kaven Torsil plays the harp.' -> ['kaven', 'torsil', 'plays', 'the',
    'harp', '.']"""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return re.findall(r"[a-z]+|[.?]", text.lower())
