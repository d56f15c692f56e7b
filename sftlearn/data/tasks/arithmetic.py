"""Small sums and differences, bare or as word problems about the world.

Half the items are expressions ("What is 7 + 5?"), half are word problems
("Mia has 3 pears. She gets 4 more. How many pears does she have now?").
Operands are 0..MAX_OPERAND (word problems start at 1); differences are never
negative. The answer is the number in digits, nothing else ("12").

The number facts are few (like a times table) and meant to be learned, so the
split key is the whole prompt: a test prompt is never seen in training, but
the sum 3 + 4 may be met again in other words.
"""

from __future__ import annotations

import random

from ..lexicon import PEOPLE
from ..sentences import other_person
from ..stories import COUNTABLES, count_phrase
from .base import Family, Item, Template

MAX_OPERAND = 9

# Expression templates: {a} {op} {b}. Word templates say which operation they use.
TEMPLATES: tuple[Template, ...] = (
    Template("arithmetic.expr.0", "What is {a} {op} {b}?"),
    Template("arithmetic.expr.1", "Compute {a} {op} {b}."),
    Template("arithmetic.expr.2", "{a} {op} {b} ="),
    Template("arithmetic.expr.3", "Calculate {a} {op} {b}."),
    Template("arithmetic.add.0", "{P} has {A}. {S} gets {b} more. How many {items} does {s} have now?"),
    Template("arithmetic.add.1", "{P} has {A} and {Q} has {B}. How many {items} do they have together?"),
    Template("arithmetic.sub.0", "{P} has {A} and gives {b} to {Q}. How many {items} does {s} have left?"),
    Template("arithmetic.sub.1", "There {be} {A}. {P} takes {b}. How many {items} are left?"),
    Template("arithmetic.expr.h0", "Work out {a} {op} {b}.", heldout=True),
    Template("arithmetic.add.h0", "{P} buys {A}, then {b} more. How many {items} in all?", heldout=True),
    Template("arithmetic.sub.h0", "{P} had {A} and lost {b}. How many {items} are left?", heldout=True),
)


def draw(rng: random.Random, templates: tuple[Template, ...]) -> Item:
    template = rng.choice(templates)
    kind = template.id.split(".")[1]  # "expr", "add" or "sub"
    low = 0 if kind == "expr" else 1
    a, b = rng.randint(low, MAX_OPERAND), rng.randint(low, MAX_OPERAND)
    op = rng.choice("+-") if kind == "expr" else ("+" if kind == "add" else "-")
    if op == "-":
        a, b = max(a, b), min(a, b)
    result = a + b if op == "+" else a - b
    p = rng.choice(PEOPLE)
    item = rng.choice(COUNTABLES)
    prompt = template.text.format(
        a=a,
        b=b,
        op=op,
        A=count_phrase(a, item),
        be="is" if a == 1 else "are",  # "There is 1 bag.", "There are 3 bags."
        B=count_phrase(b, item),
        items=item[1],
        P=p.name,
        S=p.subj.capitalize(),
        s=p.subj,
        Q=other_person(rng, p).name,
    )
    return Item(prompt=prompt, answer=str(result), template=template.id, key=prompt)


FAMILY = Family("arithmetic", TEMPLATES, draw, "add or subtract small numbers", key_is_prompt=True)
