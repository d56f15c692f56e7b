"""Labelled sets for the applications chapter: classification, tagging, translation.

* ``sentiment_classification``: (review, label) with label 1 = positive, 0 =
  negative, exactly balanced (the two counts differ by at most one). The label
  follows the rule in ``reviews.py``: the last clause decides, so
  "The soup is not bad, but the tea is cold." is 0.
* ``entity_tagging``: (words, tags) with BIO tags from ``ENTITY_TAGS``. Entities
  span several words, so I- tags occur: "the old mill" -> B-LOC I-LOC I-LOC,
  "Li Na" -> B-PER I-PER.
* ``translation_pairs``: (English, Chinese) from the shared sentence generator.

Each set is split by the same hash rule as the SFT data, with the SFT family's
namespace for entities and translation, so a tagging (or translation) test
sentence is never a training sentence of the SFT entities (or translate) family.
A tagging validation or test sentence is also never one of the pretraining
text's bilingual lines (``splits.in_pretraining_text``), which are exactly the
translation training sentences. The other way round is allowed: a translation
test sentence can be a tagging training sentence (28 of the 200 default ones
are), which teaches its tags, never its Chinese. A short generic sentence ("Tom
lives in the city.") can still occur, unlabelled, inside a story, as any
sentence of the world can (22 of the 200 default tagging test sentences occur
in the 4 M characters that ``tiny-base`` reads).
"""

from __future__ import annotations

import random
from typing import Callable, TypeVar

from ..validation import check_seed
from .reviews import labelled_review
from .sentences import SentencePair, make_pair, tokenize_words
from .splits import PLAIN_SPLITS, bucket, check_count, check_split, in_pretraining_text

ENTITY_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
DEFAULT_LABELLED_SIZES: dict[str, int] = {"train": 2000, "val": 200, "test": 200}
_KIND_TO_TAG = {"person": "PER", "place": "LOC"}

T = TypeVar("T")


def _collect(
    name: str,
    split: str,
    n: int | None,
    seed: int,
    namespace: str,
    draw: Callable[[random.Random, int], tuple[str, T]],
    unseen_in_pretraining: bool = False,
) -> list[T]:
    """Draw items until ``n`` distinct ones fall in ``split``; ``draw`` returns (key, item).

    ``unseen_in_pretraining``: the keys are generated sentences, and a validation or test one
    must not be a bilingual line of the pretraining text."""
    check_split(split, PLAIN_SPLITS)
    check_seed(seed)
    n = DEFAULT_LABELLED_SIZES[split] if n is None else check_count(n, "n")
    rng = random.Random(f"sftlearn/labelled/{name}/{split}/{seed}")
    seen: set[str] = set()
    out: list[T] = []
    fruitless = 0  # draws in a row that added nothing: stop when the space runs out
    while len(out) < n and fruitless < 20_000:
        key, item = draw(rng, len(out))
        fruitless += 1
        if key in seen or bucket(namespace, key) != split:
            continue
        if unseen_in_pretraining and split != "train" and in_pretraining_text(key):
            continue
        fruitless = 0
        seen.add(key)
        out.append(item)
    if len(out) == n:
        return out
    raise ValueError(f"could only make {len(out)} distinct {name} items for split {split!r}; ask for fewer (n)")


def sentiment_classification(split: str, n: int | None = None, seed: int = 0) -> list[tuple[str, int]]:
    """(review, label) pairs, label 1 positive / 0 negative, alternating 1, 0, 1, 0, ..."""

    def draw(rng: random.Random, index: int) -> tuple[str, tuple[str, int]]:
        label = 1 - index % 2  # alternate, so the set is balanced exactly
        text = labelled_review(rng, label)
        return text, (text, label)

    return _collect("sentiment_classification", split, n, seed, "sentiment_review", draw)


def bio_tags(pair: SentencePair) -> tuple[list[str], list[str]]:
    """Words of ``pair.en`` and their BIO tags (entities found in order of appearance)."""
    words = tokenize_words(pair.en)
    tags = ["O"] * len(words)
    start = 0
    for text, kind in pair.entities:
        span = tokenize_words(text)
        for i in range(start, len(words) - len(span) + 1):
            if words[i : i + len(span)] == span:
                tag = _KIND_TO_TAG[kind]
                tags[i] = f"B-{tag}"
                for j in range(i + 1, i + len(span)):
                    tags[j] = f"I-{tag}"
                start = i + len(span)
                break
        else:  # cannot happen for generated pairs; guard against template edits
            raise ValueError(f"entity {text!r} not found in {pair.en!r}; check the sentence templates")
    return words, tags


def entity_tagging(split: str, n: int | None = None, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """(words, tags) pairs; tags are from ``ENTITY_TAGS``."""

    def draw(rng: random.Random, index: int) -> tuple[str, tuple[list[str], list[str]]]:
        while True:
            pair = make_pair(rng, pronoun=rng.random() < 0.15)
            # Keep only a few sentences without any entity (all "O"): they are easy.
            if pair.entities or rng.random() < 0.2:
                return pair.en, bio_tags(pair)

    return _collect("entity_tagging", split, n, seed, "entities", draw, unseen_in_pretraining=True)


def translation_pairs(split: str, n: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """(English, Chinese) sentence pairs."""

    def draw(rng: random.Random, index: int) -> tuple[str, tuple[str, str]]:
        pair = make_pair(rng, pronoun=rng.random() < 0.2)
        return pair.en, (pair.en, pair.zh)

    return _collect("translation_pairs", split, n, seed, "translate", draw)
