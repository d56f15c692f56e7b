"""List the people and places a sentence mentions.

Answer format, exactly: each entity as it is written in the sentence followed by
its kind in brackets, in order of appearance, separated by ", ":

    "Mia meets Li Na at the old mill."  ->  "Mia (person), Li Na (person), the old mill (place)"

Places keep their "the". A pronoun ("She") is not an entity; every sentence
names at least one entity. Sentences come from the shared sentence generator.

Split key: the sentence. A validation or test sentence is never one that the pretraining
text contains (the translation training sentences, which it interleaves with the stories).
"""

from __future__ import annotations

import random

from ..sentences import SentencePair, make_pair
from .base import Family, Item, Template

TEMPLATES: tuple[Template, ...] = (
    Template("entities.0", "List the people and places in: {sentence}"),
    Template("entities.1", "Find the people and places. {sentence}"),
    Template("entities.2", "Name the people and places: {sentence}"),
    Template("entities.3", 'People and places in "{sentence}"?'),
    Template("entities.h0", "Which people and places does this mention? {sentence}", heldout=True),
    Template("entities.h1", "Extract people and places from: {sentence}", heldout=True),
)


def format_entities(pair: SentencePair) -> str:
    """The canonical answer: "Mia (person), the park (place)"."""
    return ", ".join(f"{text} ({kind})" for text, kind in pair.entities)


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    while True:
        pair = make_pair(rng, pronoun=rng.random() < 0.2)
        if pair.entities:
            break
    template = rng.choice(templates)
    return Item(
        prompt=template.text.format(sentence=pair.en),
        answer=format_entities(pair),
        template=template.id,
        key=pair.en,
    )


FAMILY = Family("entities", TEMPLATES, draw, "list the people and places in a sentence", key_is_sentence=True)
