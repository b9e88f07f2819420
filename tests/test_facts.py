"""Tests for mlf.facts, the generated world of the retrieval chapters."""
import pytest

from mlf.facts import ATTRIBUTES, biography, make_people, question, reassign, statement


def test_people_are_reproducible_and_distinct():
    a, b = make_people(500, seed=3), make_people(500, seed=3)
    assert a == b
    assert len({p.name for p in a}) == 500
    assert make_people(500, seed=4) != a


def test_facts_come_from_the_attribute_lists():
    for p in make_people(200, seed=1):
        assert set(p.facts) == set(ATTRIBUTES)
        for attr, value in p.facts.items():
            assert value in ATTRIBUTES[attr]


def test_values_are_single_words_and_distinct_per_attribute():
    for values in ATTRIBUTES.values():
        assert len(set(values)) == len(values)
        assert all(v.isalpha() and v == v.lower() for v in values)


def test_reassign_changes_every_attribute_and_keeps_names():
    people = make_people(100, seed=0)
    new = reassign(people, seed=1)
    assert [p.name for p in new] == [p.name for p in people]
    for old, fresh in zip(people, new):
        assert all(old.facts[a] != fresh.facts[a] for a in ATTRIBUTES)


def test_biography_states_every_fact_and_question_asks_one():
    p = make_people(1, seed=7)[0]
    doc = biography(p)
    for attr in ATTRIBUTES:
        assert statement(p, attr) in doc
        q, answer = question(p, attr)
        assert p.name in q and q.endswith("?")
        assert answer == p.facts[attr] and answer not in q


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_bad_counts_are_refused(n):
    with pytest.raises(ValueError, match="positive int"):
        make_people(n)


def test_bad_attribute_and_empty_world_are_refused():
    p = make_people(1)[0]
    with pytest.raises(ValueError, match="unknown attribute"):
        question(p, "age")
    with pytest.raises(ValueError, match="unknown attribute"):
        statement(p, "age")
    with pytest.raises(ValueError, match="empty"):
        reassign([], seed=0)
