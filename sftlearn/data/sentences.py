"""The one generator of parallel English/Chinese sentences.

Every English-Chinese pair in the package comes from here: the bilingual part
of the pretraining corpus, the SFT translation task, the labelled translation
pairs, and (English side only) the sentences of the entity tasks. One
implementation means one source of truth for how a sentence is translated.

A template is a pair of format strings with named slots. ``fill_slots`` draws a
value for every slot from the lexicon (or uses values the caller fixes, so a
story can keep its hero); ``make_pair`` picks a template and formats both sides.

Example::

    >>> import random
    >>> p = make_pair(random.Random(1), "has_obj")
    >>> p.en, p.zh              # doctest: +SKIP
    ('Zoe has a purple coat.', '佐伊有一件紫色的外套。')
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .lexicon import (
    ACTIONS,
    ANIMALS,
    COLOURS,
    FEELINGS,
    FOODS,
    NUMBER_WORDS,
    PEOPLE,
    PLACES,
    THINGS,
    Person,
    Place,
    article,
)


@dataclass(frozen=True)
class PairTemplate:
    """One way of saying something, in both languages (slots in braces)."""

    id: str
    en: str
    zh: str


@dataclass(frozen=True)
class SentencePair:
    """An English sentence, its Chinese translation, and the entities it names.

    ``entities`` lists (text, kind) in the order they appear in ``en``, where kind is
    "person" or "place"; a pronoun subject ("She") is not an entity.
    """

    en: str
    zh: str
    template: str
    entities: tuple[tuple[str, str], ...]


# Slots: P/Pz person (name or capitalised pronoun), Pposs/Pposs_z possessive,
# Q/Qz a second person, place + prepositions, and one of each kind of thing.
PAIR_TEMPLATES: tuple[PairTemplate, ...] = (
    PairTemplate("live", "{P} lives {live_prep} {place}.", "{Pz}住在{place_live_z}。"),
    PairTemplate("go", "{P} goes to {place}.", "{Pz}去{place_z}。"),
    PairTemplate("act_at", "{P} {act3} {at_prep} {place}.", "{Pz}在{place_at_z}{act_z}。"),
    PairTemplate("likes_act", "{P} likes to {act}.", "{Pz}喜欢{act_z}。"),
    PairTemplate("feel", "{P} is {feel}.", "{Pz}很{feel_z}。"),
    PairTemplate("has_obj", "{P} has {a_colour_thing}.", "{Pz}有一{thing_mw}{colour_z}的{thing_z}。"),
    PairTemplate("sees_animal", "{P} sees {a_animal}.", "{Pz}看见一{animal_mw}{animal_z}。"),
    PairTemplate("has_animals", "{P} has {num} {animals}.", "{Pz}有{num_z}{animal_mw}{animal_z}。"),
    PairTemplate("animal_colour", "The {animal} is {colour}.", "这{animal_mw}{animal_z}是{colour_z}的。"),
    PairTemplate("poss_colour", "{Pposs} {thing} is {colour}.", "{Pposs_z}{thing_z}是{colour_z}的。"),
    PairTemplate("eats", "{P} {food_verb} {food}.", "{Pz}{food_verb_z}{food_z}。"),
    PairTemplate("likes_food", "{P} likes {food}.", "{Pz}喜欢{food_z}。"),
    PairTemplate("not_like", "{P} does not like {food}.", "{Pz}不喜欢{food_z}。"),
    PairTemplate("together", "{P} and {Q} {act} together.", "{Pz}和{Qz}一起{act_z}。"),
    PairTemplate("gives", "{P} gives {Q} {a_thing}.", "{Pz}给{Qz}一{thing_mw}{thing_z}。"),
    PairTemplate("meets", "{P} meets {Q} {at_prep} {place}.", "{Pz}在{place_at_z}遇见{Qz}。"),
    PairTemplate("go_with", "{P} and {Q} go to {place}.", "{Pz}和{Qz}去{place_z}。"),
)

_TEMPLATES_BY_ID = {t.id: t for t in PAIR_TEMPLATES}
PAIR_TEMPLATE_IDS: tuple[str, ...] = tuple(t.id for t in PAIR_TEMPLATES)


def pair_template(template_id: str) -> PairTemplate:
    """Look a template up by id; a ValueError lists the valid ids."""
    try:
        return _TEMPLATES_BY_ID[template_id]
    except KeyError:
        raise ValueError(
            f"unknown sentence template {template_id!r}; use one of {', '.join(PAIR_TEMPLATE_IDS)}"
        ) from None


def other_person(rng: random.Random, not_this: Person) -> Person:
    """A person different from ``not_this``."""
    while True:
        q = rng.choice(PEOPLE)
        if q != not_this:
            return q


def fill_slots(
    rng: random.Random,
    person: Person | None = None,
    friend: Person | None = None,
    place: Place | None = None,
    pronoun: bool = False,
) -> dict[str, str]:
    """A value for every slot of every template, both languages.

    Fixed arguments are used as given (a story keeps its hero); the rest are drawn
    from the lexicon. With ``pronoun=True`` the subject is "She"/"He" instead of a name.
    """
    p = person if person is not None else rng.choice(PEOPLE)
    q = friend if friend is not None else other_person(rng, p)
    pl = place if place is not None else rng.choice(PLACES)
    animal = rng.choice(ANIMALS)
    thing = rng.choice(THINGS)
    colour = rng.choice(COLOURS)
    food = rng.choice(FOODS)
    act = rng.choice(ACTIONS)
    feel = rng.choice(FEELINGS)
    _, num, num_z = rng.choice(NUMBER_WORDS)
    subject = p.subj.capitalize() if pronoun else p.name
    subject_z = p.zh_pronoun if pronoun else p.zh
    return {
        "P": subject,
        "Pz": subject_z,
        "Pposs": p.poss.capitalize() if pronoun else p.name + "'s",
        "Pposs_z": subject_z + "的",
        "Q": q.name,
        "Qz": q.zh,
        "place": pl.name,
        "live_prep": pl.live_prep,
        "at_prep": pl.at_prep,
        "place_z": pl.zh,
        "place_at_z": pl.zh_at,
        "place_live_z": pl.zh_live,
        "animal": animal.name,
        "animals": animal.plural,
        "a_animal": article(animal.name),
        "animal_z": animal.zh,
        "animal_mw": animal.mw,
        "num": num,
        "num_z": num_z,
        "thing": thing.name,
        "a_thing": article(thing.name),
        "a_colour_thing": article(f"{colour.name} {thing.name}"),
        "thing_z": thing.zh,
        "thing_mw": thing.mw,
        "colour": colour.name,
        "colour_z": colour.zh,
        "food": food.name,
        "food_verb": food.verb,
        "food_z": food.zh,
        "food_verb_z": food.zh_verb,
        "act": act.base,
        "act3": act.third,
        "act_z": act.zh,
        "feel": feel.name,
        "feel_z": feel.zh,
        # Which slots are entities, for tagging (the pronoun subject is not one).
        "_P_is_name": "" if pronoun else "1",
    }


def _entities(template: PairTemplate, slots: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(text, kind) for each person/place slot of the template, in English order."""
    found: list[tuple[int, str, str]] = []
    for slot, kind in (("{P}", "person"), ("{Pposs}", "person"), ("{Q}", "person"), ("{place}", "place")):
        pos = template.en.find(slot)
        if pos < 0:
            continue
        if slot in ("{P}", "{Pposs}") and not slots["_P_is_name"]:
            continue
        text = slots["Pposs"][:-2] if slot == "{Pposs}" else slots[slot[1:-1]]
        found.append((pos, text, kind))
    return tuple((text, kind) for _, text, kind in sorted(found))


def make_pair(
    rng: random.Random,
    template: str | None = None,
    person: Person | None = None,
    friend: Person | None = None,
    place: Place | None = None,
    pronoun: bool = False,
) -> SentencePair:
    """One English sentence and its Chinese translation.

    ``template`` is a template id (see ``PAIR_TEMPLATE_IDS``); None picks one at random.
    """
    tpl = rng.choice(PAIR_TEMPLATES) if template is None else pair_template(template)
    slots = fill_slots(rng, person=person, friend=friend, place=place, pronoun=pronoun)
    return SentencePair(
        en=tpl.en.format(**slots),
        zh=tpl.zh.format(**slots),
        template=tpl.id,
        entities=_entities(tpl, slots),
    )


# Words are runs of letters or digits; "'s" and each punctuation mark are their own token.
_WORD_RE = re.compile(r"[A-Za-z]+|[0-9]+|'s|[^\sA-Za-z0-9]")


def tokenize_words(text: str) -> list[str]:
    """Split English text into words for tagging: "Mia's hat." -> ["Mia", "'s", "hat", "."]."""
    return _WORD_RE.findall(text)


def chinese_fragments() -> list[str]:
    """The Chinese text of every template (used to build the alphabet)."""
    return [t.zh for t in PAIR_TEMPLATES]
