"""English -> Chinese translation of one short sentence.

The pair comes from the shared generator in ``sentences.py`` (the same one that
writes the bilingual part of the pretraining corpus), so the translation of a
sentence is always the same. The answer is the Chinese sentence with Chinese
punctuation ("米娅住在森林里。").

Split key: the English sentence. The pretraining corpus only uses pairs from
the training side of this split.
"""

from __future__ import annotations

import random

from ..sentences import make_pair
from .base import Family, Item, Template

TEMPLATES: tuple[Template, ...] = (
    Template("translate.0", "Translate to Chinese: {en}"),
    Template("translate.1", "In Chinese: {en}"),
    Template("translate.2", "English: {en}\nChinese:"),
    Template("translate.3", 'How do you say "{en}" in Chinese?'),
    Template("translate.h0", "Put this into Chinese: {en}", heldout=True),
    Template("translate.h1", "Chinese translation of: {en}", heldout=True),
)


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    pair = make_pair(rng, pronoun=rng.random() < 0.2)
    template = rng.choice(templates)
    return Item(prompt=template.text.format(en=pair.en), answer=pair.zh, template=template.id, key=pair.en)


FAMILY = Family("translate", TEMPLATES, draw, "translate a short English sentence into Chinese")
