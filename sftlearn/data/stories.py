"""The pretraining corpus: short stories about the world, and bilingual blocks.

A story has a *cast* drawn once at the start - a hero, a friend, a home, a place
to visit, a pet, a coloured object, a food, a hobby, a feeling - and every
sentence of the story uses the same cast. So inside one story the hero keeps
their name, pronoun, home and belongings; only the hero is ever called
"she"/"he" (the friend is always named). Grammar alone can still leave a
pronoun ambiguous: when the friend has the hero's gender, the "he" of "Paul
gives him 1 more, so now he has 3 lamps", or a "He ..." right after a sentence
about the friend, could mean the friend (in a small share of stories).

The sentences deliberately look like the fine-tuning data: facts like those the
QA passages are made of, food reviews with negation, little sums, words spelled
backwards or in capitals. A model pretrained on them has already read the
vocabulary and the sentence shapes that the SFT tasks use.

About one block in eight is *bilingual*: English sentences from the shared
sentence-pair generator (``sentences.py``), each followed on the next line by
its Chinese translation. Those pairs are filtered with the translation task's
split, so a test translation never appears in the training corpus.

Determinism: one ``random.Random`` per (seed, split), stories generated in
order, so ``pretraining_text(n)`` is a prefix of ``pretraining_text(2 * n)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..validation import check_seed
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
    Colour,
    Feeling,
    Food,
    Person,
    Place,
    Thing,
    article,
    spelling_words,
)
from .reviews import two_item_review
from .sentences import PAIR_TEMPLATE_IDS, make_pair, other_person
from .splits import PLAIN_SPLITS, bucket, check_count, check_split

# Fraction of corpus blocks that are bilingual (English line, Chinese line, ...).
PARALLEL_FRACTION = 0.125
# Countable things for the little sums in stories: (singular, plural).
COUNTABLES: tuple[tuple[str, str], ...] = (
    ("apple", "apples"),
    ("egg", "eggs"),
    ("pear", "pears"),
    ("dumpling", "dumplings"),
) + tuple((t.name, t.plural) for t in THINGS)


def count_phrase(n: int, item: tuple[str, str]) -> str:
    """ "1 apple", "3 apples"."""
    return f"{n} {item[0] if n == 1 else item[1]}"


@dataclass(frozen=True)
class Cast:
    """Everything one story is about; fixed for the whole story."""

    hero: Person
    friend: Person
    home: Place
    visit: Place
    pet: Animal
    pet_colour: Colour
    thing: Thing
    thing_colour: Colour
    food: Food
    action: Action
    feeling: Feeling


def draw_cast(rng: random.Random) -> Cast:
    hero = rng.choice(PEOPLE)
    home, visit = rng.sample(PLACES, 2)
    return Cast(
        hero=hero,
        friend=other_person(rng, hero),
        home=home,
        visit=visit,
        pet=rng.choice(ANIMALS),
        pet_colour=rng.choice(COLOURS),
        thing=rng.choice(THINGS),
        thing_colour=rng.choice(COLOURS),
        food=rng.choice(FOODS),
        action=rng.choice(ACTIONS),
        feeling=rng.choice(FEELINGS),
    )


# --- sentences of a story -------------------------------------------------------
# Each function returns one or two sentences about the cast. "S" is the hero's
# capitalised pronoun, "s" the lower-case one.


def _opening(rng: random.Random, c: Cast) -> str:
    h, home = c.hero, c.home
    kind = "girl" if h.gender == "f" else "boy"
    return rng.choice(
        (
            f"{h.name} lives {home.live_prep} {home.name}.",
            f"{h.name} is {article(kind)} who lives {home.live_prep} {home.name}.",
            f"There is {article(kind)} called {h.name}. {h.subj.capitalize()} lives {home.live_prep} {home.name}.",
            f"This is {h.name}. {h.subj.capitalize()} lives {home.live_prep} {home.name}.",
        )
    )


def _thing(rng: random.Random, c: Cast) -> str:
    S = c.hero.subj.capitalize()
    col, thing = c.thing_colour.name, c.thing.name
    return rng.choice(
        (
            f"{S} has {article(col + ' ' + thing)}.",
            f"{S} has {article(thing)}. The {thing} is {col}.",
            f"{c.hero.name}'s {thing} is {col}.",
        )
    )


def _pet(rng: random.Random, c: Cast) -> str:
    S = c.hero.subj.capitalize()
    pet, col = c.pet.name, c.pet_colour.name
    return rng.choice(
        (
            f"{S} has {article(pet)}. {c.hero.poss.capitalize()} {pet} is {col}.",
            f"{S} has {article(col + ' ' + pet)}.",
            f"{c.hero.name} has {article(pet)} and likes to {c.action.base}.",
        )
    )


def _outing(rng: random.Random, c: Cast) -> str:
    s, f, v = c.hero.subj, c.friend.name, c.visit
    when = rng.choice(("Every morning", "One day", "In the afternoon", "On Sunday"))
    return rng.choice(
        (
            f"{when}, {s} goes to {v.name} with {f}.",
            f"{when}, {c.hero.name} and {f} {c.action.base} {v.at_prep} {v.name}.",
            f"{c.hero.name} meets {f} {v.at_prep} {v.name}.",
        )
    )


def _animals_seen(rng: random.Random, c: Cast) -> str:
    v = c.visit
    animal = rng.choice(ANIMALS)
    n = rng.randint(2, 9)
    return f"{v.at_prep.capitalize()} {v.name}, {c.hero.subj} sees {n} {animal.plural}."


def _likes(rng: random.Random, c: Cast) -> str:
    S = c.hero.subj.capitalize()
    return rng.choice(
        (
            f"{S} likes to {c.action.base}.",
            f"{S} {c.food.verb} {c.food.name} with {c.friend.name}.",
            f"{c.friend.name} gives {c.hero.obj} {article(c.thing.name)}.",
        )
    )


def _review(rng: random.Random, c: Cast) -> str:
    other = c.food
    while other == c.food:
        other = rng.choice(FOODS)
    foods = (c.food, other) if rng.random() < 0.5 else (other, c.food)
    review = two_item_review(rng, foods)
    first, second = (review.liked, review.disliked) if rng.random() < 0.5 else (review.disliked, review.liked)
    end = rng.choice(
        (
            f" {c.hero.subj.capitalize()} likes the {review.liked.name} best.",
            f" {c.hero.subj.capitalize()} does not like the {review.disliked.name}.",
            "",
        )
    )
    return f"{c.hero.name} tries the {first.name} and the {second.name}. {review.text}{end}"


def _sum(rng: random.Random, c: Cast) -> str:
    item = rng.choice(COUNTABLES)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    h, f, s, o = c.hero.name, c.friend.name, c.hero.subj, c.hero.obj
    if rng.random() < 0.5:
        return f"{h} has {count_phrase(a, item)}. {f} gives {o} {b} more, so now {s} has {count_phrase(a + b, item)}."
    a, b = max(a, b), min(a, b)
    return f"{h} has {count_phrase(a, item)} and gives {b} to {f}. Now {s} has {count_phrase(a - b, item)}."


def _spelling(rng: random.Random, c: Cast) -> str:
    word = rng.choice(spelling_words())
    S = c.hero.subj.capitalize()
    return rng.choice(
        (
            f'{S} writes the word "{word}" backwards: "{word[::-1]}".',
            f'{S} writes "{word.upper()}" in big letters.',
            f'The word "{word}" has {len(word)} letters.',
        )
    )


def _closing(rng: random.Random, c: Cast) -> str:
    s = c.hero.subj
    return rng.choice(
        (
            f"In the evening, {s} goes back to {c.home.name}.",
            f"At night, {s} is {c.feeling.name}.",
            f"{c.hero.name} is {c.feeling.name} today.",
            f"Later, {s} is {c.feeling.name} and goes home.",
        )
    )


_MIDDLES = (_thing, _pet, _outing, _animals_seen, _likes, _review, _sum, _spelling)


def english_story(rng: random.Random) -> str:
    """One story: an opening, three to five middle parts, a closing."""
    cast = draw_cast(rng)
    middles = rng.sample(_MIDDLES, rng.randint(3, 5))
    parts = [_opening(rng, cast)] + [m(rng, cast) for m in middles] + [_closing(rng, cast)]
    return " ".join(parts)


def bilingual_block(rng: random.Random, split: str) -> str:
    """Up to five English sentences about one hero, each followed by its Chinese.

    Every pair's English side belongs to ``split`` of the translation task. Three to five
    templates are drawn; a template with no sentence of ``split`` after 20 tries is skipped,
    which in the small validation and test splits (a tenth of the sentences each) often
    leaves one or two pairs: their bilingual blocks are shorter than the training split's.
    """
    cast = draw_cast(rng)
    lines: list[str] = []
    hero, friend = cast.hero, cast.friend
    hero_named = friend_named = False
    for tid in rng.sample(PAIR_TEMPLATE_IDS, rng.randint(3, 5)):
        # "She"/"He" only once the hero has been named, and never when it could
        # mean the friend instead.
        pronoun_ok = hero_named and (not friend_named or friend.gender != hero.gender)
        # With the hero and home fixed, some templates have only a few possible
        # sentences, none of which may be in this split: give up on those after a
        # few tries rather than loop forever.
        for _ in range(20):
            pronoun = pronoun_ok and rng.random() < 0.5
            pair = make_pair(rng, tid, person=hero, friend=friend, place=cast.home, pronoun=pronoun)
            if bucket("translate", pair.en) == split:
                lines += [pair.en, pair.zh]
                names = [text for text, kind in pair.entities if kind == "person"]
                hero_named = hero_named or hero.name in names
                friend_named = friend_named or friend.name in names
                break
    return "\n".join(lines)


def _check_story_split(split: object) -> str:
    return check_split(split, PLAIN_SPLITS)


def iter_stories(seed: int = 0, split: str = "train"):
    """Yield corpus blocks (stories and bilingual blocks) forever, deterministically.

    A block is kept only if its hash puts it in ``split``, so no block is shared
    between the train, val and test corpora.
    """
    check_seed(seed)
    _check_story_split(split)
    rng = random.Random(f"sftlearn/stories/{split}/{seed}")
    while True:
        if rng.random() < PARALLEL_FRACTION:
            block = bilingual_block(rng, split)
        else:
            block = english_story(rng)
        if bucket("story", block) == split:
            yield block


def story_corpus(n_stories: int, seed: int = 0, split: str = "train") -> list[str]:
    """The first ``n_stories`` corpus blocks (about 1 in 8 is a bilingual block)."""
    check_count(n_stories, "n_stories")
    out: list[str] = []
    if n_stories == 0:
        _check_story_split(split)
        check_seed(seed)
        return out
    for block in iter_stories(seed, split):
        out.append(block)
        if len(out) == n_stories:
            break
    return out


def pretraining_text(n_chars: int = 1_000_000, seed: int = 0, split: str = "train") -> str:
    """Corpus blocks joined by blank lines, cut to exactly ``n_chars`` characters.

    The cut may end mid-story; a shorter text is always a prefix of a longer one.
    """
    check_count(n_chars, "n_chars")
    _check_story_split(split)
    check_seed(seed)
    parts: list[str] = []
    total = -2  # the joined length: a blank line ("\n\n") goes between blocks, not after the last
    if n_chars > 0:
        for block in iter_stories(seed, split):
            parts.append(block)
            total += 2 + len(block)
            if total >= n_chars:
                break
    return "\n\n".join(parts)[:n_chars]
