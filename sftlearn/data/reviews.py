"""Short food reviews with negation and mixed feelings, and the rule that labels them.

A *clause* says one thing about one food: "the soup is cold" (negative),
"the tea is not bad" (positive), "the cake is hardly fresh" (negative).
Its polarity is the polarity of the adjective, flipped by a negation word.
Because "bad" can appear in a positive clause and "fresh" in a negative one,
a model cannot label reviews by spotting single words.

Reviews join clauses. The rule for the overall label of a review:

* one clause: its polarity;
* "A and B": both clauses have the same polarity, which is the label;
* "A, but B" / "A, yet B" / "A, while B" / "Although A, B": the clauses disagree
  and the *last* clause (B) decides.

The SFT sentiment task uses two-item reviews whose clauses disagree and asks
which food the reviewer liked (or did not like); the labelled set uses the rule
above to give each review a 0/1 label. The stories reuse the same reviews, so a
pretrained model has read them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .lexicon import FOODS, Food

POSITIVE_WORDS: tuple[str, ...] = ("good", "great", "tasty", "lovely", "fresh", "warm", "sweet", "nice")
NEGATIVE_WORDS: tuple[str, ...] = ("bad", "awful", "bland", "cold", "stale", "salty", "dry", "sour")
INTENSIFIERS: tuple[str, ...] = ("very", "really", "so")
# "hardly" only sounds right before a positive word ("hardly fresh"), so it is
# used only to turn a positive word negative.
NEGATORS: tuple[str, ...] = ("not", "never")


@dataclass(frozen=True)
class Clause:
    """One statement about one food, with its polarity (1 liked, 0 not liked)."""

    food: Food
    text: str  # lower-case start: "the tea is not bad"
    polarity: int


def make_clause(rng: random.Random, food: Food, polarity: int) -> Clause:
    """A clause about ``food`` whose meaning is ``polarity`` (1 positive, 0 negative)."""
    verb = "are" if food.plural else "is"
    form = rng.random()
    if form < 0.45:  # plain: the adjective carries the polarity
        words = POSITIVE_WORDS if polarity else NEGATIVE_WORDS
        adj = rng.choice(words)
        if rng.random() < 0.3:
            adj = f"{rng.choice(INTENSIFIERS)} {adj}"
    elif form < 0.85 or polarity:  # negated: an opposite word, flipped
        words = NEGATIVE_WORDS if polarity else POSITIVE_WORDS
        adj = f"{rng.choice(NEGATORS)} {rng.choice(words)}"
    else:  # "hardly" + a positive word is negative
        adj = f"hardly {rng.choice(POSITIVE_WORDS)}"
    return Clause(food, f"the {food.name} {verb} {adj}", polarity)


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


# Ways to join two clauses that disagree; the last clause decides the overall label.
CONTRAST_FORMS: tuple[str, ...] = (
    "{A}, but {b}.",
    "{A}, yet {b}.",
    "{A}, while {b}.",
    "Although {a}, {b}.",
    "{A}. {B}.",
)


def join_contrast(rng: random.Random, first: Clause, second: Clause) -> str:
    form = rng.choice(CONTRAST_FORMS)
    return form.format(A=capitalise(first.text), a=first.text, B=capitalise(second.text), b=second.text)


@dataclass(frozen=True)
class TwoItemReview:
    """A review of two foods, one liked and one not."""

    text: str
    liked: Food
    disliked: Food


def two_item_review(rng: random.Random, foods: tuple[Food, Food] | None = None) -> TwoItemReview:
    """Two different foods, opposite polarities, in a random order and joining form.

    ``foods`` fixes the (liked, disliked) pair; by default two are drawn at random.
    """
    liked, disliked = rng.sample(FOODS, 2) if foods is None else foods
    good = make_clause(rng, liked, 1)
    bad = make_clause(rng, disliked, 0)
    first, second = (good, bad) if rng.random() < 0.5 else (bad, good)
    return TwoItemReview(join_contrast(rng, first, second), liked, disliked)


def labelled_review(rng: random.Random, label: int) -> str:
    """A review whose overall polarity, by the module's rule, is ``label``."""
    form = rng.random()
    if form < 0.3:  # one clause
        return capitalise(make_clause(rng, rng.choice(FOODS), label).text) + "."
    a, b = rng.sample(FOODS, 2)
    if form < 0.5:  # "and": both agree
        first, second = make_clause(rng, a, label), make_clause(rng, b, label)
        return f"{capitalise(first.text)} and {second.text}."
    # contrast: the last clause decides
    first, second = make_clause(rng, a, 1 - label), make_clause(rng, b, label)
    return join_contrast(rng, first, second)


def review_label(text: str) -> int:
    """Label a review by the module's rule, reading the text back (used in tests).

    The last clause decides; a clause is positive when its adjective is positive
    and not negated, or negative and negated.
    """
    last = text.rstrip(".").replace(". ", ", ").split(", ")[-1]
    last = last.split(" and ")[-1]
    words = last.split()
    adjective = words[-1]
    negated = any(w in ("not", "never", "hardly") for w in words)
    positive = adjective in POSITIVE_WORDS
    if not positive and adjective not in NEGATIVE_WORDS:
        raise ValueError(f"cannot read the adjective of review {text!r}")
    return int(positive != negated)
