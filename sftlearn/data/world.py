"""Facts about people in the world, and how to say and ask about them.

A *fact* ties a person to one thing: where they live, their pet, a coloured
object they own, what they eat, what they like to do, how they feel. Each fact
knows three ways to be put into words:

* ``predicate``  - "lives in the forest" (for sentences: "Mia lives in the forest.")
* ``question``   - "Where does Mia live?" with ``answer`` "the forest"
* ``who_question`` - "Who lives in the forest?" with answer "Mia"

Answer convention (used by the QA task): the shortest phrase that answers the
question, as it is written in the passage, without "a"/"an": places keep their
"the" because it is part of the name ("the forest", "the old mill"); everything
else is the bare word ("cat", "red", "tea", "swim", "happy", "Li Na").

The stories and the question-answering passages are both made of these facts,
so pretraining on stories teaches the sentences the QA task asks about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .lexicon import (
    ACTIONS,
    ANIMALS,
    COLOURS,
    FEELINGS,
    FOODS,
    PEOPLE,
    PLACES,
    THINGS,
    Action,
    Animal,
    Feeling,
    Food,
    Person,
    Place,
    article,
)

RELATIONS: tuple[str, ...] = ("live", "pet", "thing", "food", "likes", "feel")


@dataclass(frozen=True)
class Fact:
    """``person`` is related to ``value`` by ``relation`` (one of RELATIONS).

    ``value`` is a lexicon entry; for "thing" it is a (Colour, Thing) pair.
    """

    person: Person
    relation: str
    value: object

    @property
    def predicate(self) -> str:
        """The verb phrase, without the subject: "has a red hat"."""
        v = self.value
        if self.relation == "live":
            assert isinstance(v, Place)
            return f"lives {v.live_prep} {v.name}"
        if self.relation == "pet":
            assert isinstance(v, Animal)
            return f"has {article(v.name)}"
        if self.relation == "thing":
            colour, thing = v  # type: ignore[misc]
            return f"has {article(colour.name + ' ' + thing.name)}"
        if self.relation == "food":
            assert isinstance(v, Food)
            return f"{v.verb} {v.name}"
        if self.relation == "likes":
            assert isinstance(v, Action)
            return f"likes to {v.base}"
        assert isinstance(v, Feeling)
        return f"is {v.name}"

    @property
    def question(self) -> str:
        """A question whose answer is the fact's value."""
        p = self.person.name
        v = self.value
        if self.relation == "live":
            return f"Where does {p} live?"
        if self.relation == "pet":
            return f"Which animal does {p} have?"
        if self.relation == "thing":
            return f"What colour is {p}'s {v[1].name}?"  # type: ignore[index]
        if self.relation == "food":
            assert isinstance(v, Food)
            return f"What does {p} {v.verb[:-1]}?"  # "eats" -> "eat", "drinks" -> "drink"
        if self.relation == "likes":
            return f"What does {p} like to do?"
        return f"How does {p} feel?"

    @property
    def answer(self) -> str:
        v = self.value
        if self.relation == "thing":
            return v[0].name  # type: ignore[index]
        if self.relation == "likes":
            return v.base  # type: ignore[union-attr]
        return v.name  # type: ignore[union-attr]

    @property
    def who_question(self) -> str:
        """A question whose answer is the person: "Who has a cat?"."""
        return f"Who {self.predicate}?"


def random_value(rng: random.Random, relation: str) -> object:
    """A random value for ``relation`` from the lexicon."""
    if relation == "live":
        return rng.choice(PLACES)
    if relation == "pet":
        return rng.choice(ANIMALS)
    if relation == "thing":
        return (rng.choice(COLOURS), rng.choice(THINGS))
    if relation == "food":
        return rng.choice(FOODS)
    if relation == "likes":
        return rng.choice(ACTIONS)
    if relation == "feel":
        return rng.choice(FEELINGS)
    raise ValueError(f"unknown relation {relation!r}; use one of {', '.join(RELATIONS)}")


def two_people(rng: random.Random) -> tuple[Person, Person]:
    """Two different people."""
    a, b = rng.sample(PEOPLE, 2)
    return a, b


def render_facts(rng: random.Random, facts: list[Fact]) -> str:
    """Say the facts as a short passage, in order.

    A fact about the same person as the previous one is either joined with "and"
    or starts with a pronoun ("She has a cat."), so a reader must track who is who.
    """
    sentences: list[str] = []
    prev: Fact | None = None
    for fact in facts:
        if prev is not None and prev.person == fact.person:
            r = rng.random()
            if r < 0.35 and not sentences[-1].count(" and "):
                sentences[-1] = sentences[-1][:-1] + f" and {fact.predicate}."
                prev = fact
                continue
            if r < 0.75:
                sentences.append(f"{fact.person.subj.capitalize()} {fact.predicate}.")
                prev = fact
                continue
        sentences.append(f"{fact.person.name} {fact.predicate}.")
        prev = fact
    return " ".join(sentences)
