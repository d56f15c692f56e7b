"""String transformations: reverse a word, upper-case it, count its letters.

Four operations, each with its own phrasings:

* reverse    'Spell cat backwards.'                   -> "tac"
* upper      'Write "red hat" in capital letters.'     -> "RED HAT"
* count      'How many letters are in "forest"?'       -> "6"
* count_char 'Count the letter e in cheese.'           -> "3"  (lower-case words only)

Words are single words of 3-8 letters from the world's lexicon (names keep their
capital letter, so reversing "Mia" gives "aiM") or, RANDOM_FRACTION of the time,
made-up lower-case strings of 3-6 letters ("kzpo"), which the model can only
handle by learning the operation itself. Upper-casing sometimes gets a two-word
phrase ("red hat"). The answer is the result and nothing else.

The counting operations are rarer than the others so that no single number is
a common answer. As for arithmetic, the facts are few, so the split key is the
whole prompt.
"""

from __future__ import annotations

import random
import string

from ..lexicon import COLOURS, THINGS, spelling_words
from .base import Family, Item, Template

TEMPLATES: tuple[Template, ...] = (
    Template("strings.reverse.0", 'Reverse the word "{w}".'),
    Template("strings.reverse.1", "Spell {w} backwards."),
    Template("strings.reverse.2", "Write {w} in reverse."),
    Template("strings.upper.0", 'Write "{w}" in capital letters.'),
    Template("strings.upper.1", "Upper-case: {w}"),
    Template("strings.upper.2", "Make {w} upper case."),
    Template("strings.count.0", 'How many letters are in "{w}"?'),
    Template("strings.count.1", "Count the letters in {w}."),
    Template("strings.count.2", "Length of the word {w}?"),
    Template("strings.count_char.0", 'How many times does "{c}" appear in "{w}"?'),
    Template("strings.count_char.1", "Count the letter {c} in {w}."),
    Template("strings.count_char.2", 'Number of "{c}" in "{w}"?'),
    Template("strings.reverse.h0", "What is {w} read from the end?", heldout=True),
    Template("strings.upper.h0", "Change {w} to capitals.", heldout=True),
    Template("strings.count.h0", "Give the number of letters in {w}.", heldout=True),
    Template("strings.count_char.h0", "In {w}, how often does {c} occur?", heldout=True),
)

# How often each operation is drawn.
OPERATION_WEIGHTS: dict[str, float] = {"reverse": 0.32, "upper": 0.32, "count": 0.24, "count_char": 0.12}
_OPERATIONS = tuple(OPERATION_WEIGHTS)  # insertion order, not hash order
RANDOM_FRACTION = 0.4  # share of made-up strings instead of lexicon words
_WORDS = spelling_words()
_LOWER_WORDS = tuple(w for w in _WORDS if w.islower())


def _word(rng: random.Random, lower_only: bool) -> str:
    """A lexicon word, or a made-up string of 3-6 lower-case letters."""
    if rng.random() < RANDOM_FRACTION:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 6)))
    return rng.choice(_LOWER_WORDS if lower_only else _WORDS)


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    op = rng.choices(_OPERATIONS, weights=[OPERATION_WEIGHTS[o] for o in _OPERATIONS])[0]
    template = rng.choice([t for t in templates if t.id.split(".")[1] == op])
    c = ""
    if op == "count_char":
        word = _word(rng, lower_only=True)
        c = rng.choice(word)
        answer = str(word.count(c))
    elif op == "upper" and rng.random() < 0.3:
        word = f"{rng.choice(COLOURS).name} {rng.choice(THINGS).name}"
        answer = word.upper()
    else:
        word = _word(rng, lower_only=False)
        answer = {"reverse": word[::-1], "upper": word.upper(), "count": str(len(word))}[op]
    prompt = template.text.format(w=word, c=c)
    return Item(prompt=prompt, answer=answer, template=template.id, key=prompt)


FAMILY = Family(
    "strings", TEMPLATES, draw, "reverse, upper-case or count the letters of a word", key_is_prompt=True
)
