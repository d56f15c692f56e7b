"""Question answering about a short passage.

The passage states three facts about two people (see ``world.py``); the question
asks for one fact's value ("Where does Mia live?" -> "the forest") or for the
person ("Who has a cat?" -> "Mia"). The other person often has the same kind of
fact with a different value, so the model has to read who is who rather than
guess. Answers follow the convention in ``world.py``: the bare word, except that
places keep "the".

Split key: the passage and the question (so test passages are new, whatever
the instruction wording).
"""

from __future__ import annotations

import random

from ..world import RELATIONS, Fact, random_value, render_facts, two_people
from .base import Family, Item, Template

TEMPLATES: tuple[Template, ...] = (
    Template("qa.0", "{passage}\nQ: {question}"),
    Template("qa.1", "Read this: {passage}\n{question}"),
    Template("qa.2", "{passage} {question}"),
    Template("qa.3", "Text: {passage}\nQuestion: {question}"),
    Template("qa.h0", "Answer from the story. {passage}\n{question}", heldout=True),
    Template("qa.h1", "{question}\nUse this text: {passage}", heldout=True),
)

WHO_FRACTION = 0.3  # share of "Who ...?" questions (their answer is a name)


def _fresh_value(rng: random.Random, relation: str, taken: list[object]) -> object:
    """A value for ``relation`` that is not in ``taken`` (keeps "Who ...?" answers unique)."""
    while True:
        value = random_value(rng, relation)
        if value not in taken:
            return value


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    p1, p2 = two_people(rng)
    relation = rng.choice(RELATIONS)
    target = Fact(p1, relation, random_value(rng, relation))
    facts = [target]
    if rng.random() < 0.6:  # a distractor: same kind of fact, other person, other value
        facts.append(Fact(p2, relation, _fresh_value(rng, relation, [target.value])))
    while len(facts) < 3:
        person, rel = rng.choice((p1, p2)), rng.choice(RELATIONS)
        if any(f.person == person and f.relation == rel for f in facts):
            continue  # one fact of each kind per person, so questions have one answer
        facts.append(Fact(person, rel, _fresh_value(rng, rel, [f.value for f in facts if f.relation == rel])))
    rng.shuffle(facts)
    passage = render_facts(rng, facts)
    if rng.random() < WHO_FRACTION:
        question, answer = target.who_question, target.person.name
    else:
        question, answer = target.question, target.answer
    template = rng.choice(templates)
    return Item(
        prompt=template.text.format(passage=passage, question=question),
        answer=answer,
        template=template.id,
        key=f"{passage}\n{question}",
    )


FAMILY = Family("qa", TEMPLATES, draw, "answer a question about a short passage")
