"""Which food did the reviewer like? Sentiment with negation and mixed feelings.

Each review praises one food and criticises another, often with negation
("the tea is not bad, but the soup is hardly warm"); see ``reviews.py`` for how
clauses get their polarity. The question asks for the liked or the disliked
food, and the answer is that food's name ("tea"). A plain positive/negative
label would let a constant answer score 50%; asking for the food makes the
answer depend on the review (with twelve foods a constant answer scores about
1 in 12; the most common food of a 100-review split, 13-16%).

Split key: the review and the question.
"""

from __future__ import annotations

import random

from ..reviews import two_item_review
from .base import Family, Item, Template

TEMPLATES: tuple[Template, ...] = (
    Template("sentiment.0", "Review: {review}\n{question}"),
    Template("sentiment.1", "{review} {question}"),
    Template("sentiment.2", "Read the review. {review}\n{question}"),
    Template("sentiment.3", 'Customer: "{review}"\n{question}'),
    Template("sentiment.h0", "Someone wrote: {review}\n{question}", heldout=True),
    Template("sentiment.h1", "{question}\nReview: {review}", heldout=True),
)

LIKE_QUESTION = "Which food did they like?"
DISLIKE_QUESTION = "Which food did they not like?"


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    review = two_item_review(rng)
    if rng.random() < 0.5:
        question, answer = LIKE_QUESTION, review.liked.name
    else:
        question, answer = DISLIKE_QUESTION, review.disliked.name
    template = rng.choice(templates)
    return Item(
        prompt=template.text.format(review=review.text, question=question),
        answer=answer,
        template=template.id,
        key=f"{review.text}\n{question}",
    )


FAMILY = Family("sentiment", TEMPLATES, draw, "name the food a review liked or did not like")
