"""Easier variants of three task families, for the SFT study only (the course never uses them).

Each function swaps a variant into ``sftlearn.data`` for the rest of the process, so that
``data.sft_examples`` draws from it (install them after any base model is built); ``sft_ceiling.py`` installs them with ``--easy-qa``,
``--negated-share`` and ``--lexicon-strings``. They test *why* a family is hard: if the easier
variant is learned at the same budget, the part that was removed is what the model lacks.

- ``easy_qa()``: each passage holds one fact of each kind, and every sentence names its person
  (no "she", no "and"), so the asked-for word can be found by its kind alone (the one colour, the
  one animal) without matching the person;
- ``rarer_negation(share)``: review clauses are negated with probability ``share`` (about 0.55
  in the real family, which makes a clause's adjective a worse-than-chance guess of its
  polarity);
- ``lexicon_strings()``: string operations on words of the lexicon only, no made-up strings;
- ``liked_only()``: every sentiment question asks for the liked food. Which of the review's two
  foods is the answer is the exclusive-or of three bits (the question asks for the liked or
  the disliked food; the clause's adjective is positive or negative; the clause is negated or
  not), and no one of them alone says anything about it; this variant removes the first bit,
  ``rarer_negation(0)`` the last.
"""

from __future__ import annotations

import dataclasses
import random

from sftlearn.data import reviews, world
from sftlearn.data.tasks import FAMILIES, Item, Template
from sftlearn.data.tasks import qa as qa_task
from sftlearn.data.tasks import sentiment as sentiment_task
from sftlearn.data.tasks import strings as strings_task


def easy_qa() -> None:
    family = FAMILIES["qa"]

    def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
        p1, p2 = world.two_people(rng)
        relations = rng.sample(world.RELATIONS, 3)  # three different kinds of fact
        facts = [world.Fact(p1 if i == 0 else rng.choice((p1, p2)), r, world.random_value(rng, r))
                 for i, r in enumerate(relations)]
        target = facts[0]
        rng.shuffle(facts)
        passage = " ".join(f"{f.person.name} {f.predicate}." for f in facts)
        if rng.random() < qa_task.WHO_FRACTION:
            question, answer = target.who_question, target.person.name
        else:
            question, answer = target.question, target.answer
        template = rng.choice(templates)
        return Item(template.text.format(passage=passage, question=question), answer, template.id,
                    f"{passage}\n{question}")

    FAMILIES["qa"] = dataclasses.replace(family, draw=draw)


def rarer_negation(share: float) -> None:
    """Install after any pretraining text is made: the stories draw their reviews from the
    same clause maker."""
    real = reviews.make_clause

    def clause(rng: random.Random, food, polarity: int) -> reviews.Clause:
        negated = rng.random() < share
        while True:  # the real family's clauses, kept when their negation is the one wanted
            made = real(rng, food, polarity)
            if negated == any(word in made.text.split() for word in ("not", "never", "hardly")):
                return made

    reviews.make_clause = clause  # what reviews.two_item_review calls


def lexicon_strings() -> None:
    strings_task.RANDOM_FRACTION = 0.0


def liked_only() -> None:
    real = FAMILIES["sentiment"].draw

    def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
        while True:  # the real family's items, kept when they ask for the liked food
            item = real(rng, templates)
            if sentiment_task.LIKE_QUESTION in item.prompt:
                return item

    FAMILIES["sentiment"] = dataclasses.replace(FAMILIES["sentiment"], draw=draw)
