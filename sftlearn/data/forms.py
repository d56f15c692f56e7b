"""Does a reply have the *form* of an answer, right or wrong?

Exact match asks "is the reply correct?". Before that there is a simpler question: does the
model *answer* at all? A pretrained model that has not been fine-tuned continues the prompt
("Who likes to swim? Lucy likes to swim too. She ..."), so its reply is not even the kind of
thing an answer is. ``well_formed(family, prediction, answer)`` checks only the kind:

* qa, sentiment: a word or phrase of the same lexicon category as the reference (a person's
  name for "Who ...?", a place with "the", a food, a colour, ...), spelled as the world spells
  it; "Lucy" is well formed for the answer "Mia", "Lucyy" or "Lucy likes tea." is not;
* entities: a non-empty list "X (person), the Y (place)" of names and places the world has;
* translate: Chinese characters only (with Chinese punctuation), ending in "。";
* arithmetic: a whole number in digits;
* strings: a number in digits when the reference is one, otherwise letters of the reference's
  length, upper case when the reference is upper case.

A well-formed reply can still be wrong; a correct reply is always well formed (tested for
every example the generators make). Fine-tuning teaches the form quickly; the content needs
the skills that pretraining and scale bring.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .lexicon import ACTIONS, ANIMALS, COLOURS, FEELINGS, FOODS, PEOPLE, PLACES
from .tasks import get_family

_NUMBER = re.compile(r"0|[1-9][0-9]*")
_ENTITY = re.compile(r"(.+) \((person|place)\)")
# Chinese characters and the Chinese punctuation the world's sentences use.
_CHINESE = re.compile(r"[\u4e00-\u9fff，。、！？：；“”]+")
_HANZI = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=1)
def _categories() -> tuple[frozenset[str], ...]:
    """The world's answer words, one set per category (names, places, animals, ...)."""
    return (
        frozenset(p.name for p in PEOPLE),
        frozenset(p.name for p in PLACES),
        frozenset(a.name for a in ANIMALS),
        frozenset(c.name for c in COLOURS),
        frozenset(f.name for f in FOODS),
        frozenset(a.base for a in ACTIONS),
        frozenset(f.name for f in FEELINGS),
    )


def _same_category(prediction: str, answer: str) -> bool:
    return any(answer in words and prediction in words for words in _categories())


def _entity_list(prediction: str) -> bool:
    people, places = _categories()[0], _categories()[1]
    items = prediction.split(", ")
    for item in items:
        match = _ENTITY.fullmatch(item)
        if match is None:
            return False
        text, kind = match.groups()
        if text not in (people if kind == "person" else places):
            return False
    return True


def _string_result(prediction: str, answer: str) -> bool:
    if _NUMBER.fullmatch(answer):
        return _NUMBER.fullmatch(prediction) is not None
    if len(prediction) != len(answer):
        return False
    if answer.isupper():
        return re.fullmatch(r"[A-Z ]+", prediction) is not None
    return re.fullmatch(r"[A-Za-z]+", prediction) is not None


def well_formed(family: str, prediction: str, answer: str) -> bool:
    """True when ``prediction`` is the kind of reply a correct answer to this item would be.

    Surrounding whitespace is ignored, as in ``score``; nothing else is forgiven.
    """
    get_family(family)  # a ValueError naming the families
    for name, value in (("prediction", prediction), ("answer", answer)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str (got {type(value).__name__}); pass the decoded text")
    prediction, answer = prediction.strip(), answer.strip()
    if not prediction:
        return False
    if family in ("qa", "sentiment"):
        return _same_category(prediction, answer)
    if family == "entities":
        return _entity_list(prediction)
    if family == "translate":
        return (prediction.endswith("。") and _CHINESE.fullmatch(prediction) is not None
                and _HANZI.search(prediction) is not None)  # punctuation alone is no sentence
    if family == "arithmetic":
        return _NUMBER.fullmatch(prediction) is not None
    return _string_result(prediction, answer)  # strings
