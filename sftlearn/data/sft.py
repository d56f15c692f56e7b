"""Instruction (SFT) data: conversations from every task family, split without leakage.

``sft_examples("train")`` draws examples family by family. Each family has its
own random stream (seeded by family, split and seed), so asking for fewer
families or a different split never changes the examples of another.

How the splits are kept apart (see ``splits.py``):

* every item has a key (the content, or for arithmetic/strings the whole
  prompt); the hash of the key decides the split, and an item drawn for the
  wrong split is thrown away and redrawn;
* "test_heldout" draws test-bucket contents rendered only with held-out
  templates, which no other split uses (for arithmetic and strings, whose key
  is the whole prompt, any held-out prompt is new, so no bucket is needed);
* a prompt is never repeated within a split, and in the evaluation splits
  ("val", "test", "test_heldout") neither is a key: each evaluation item asks
  about new content, not the same sentence in other words (the training split
  may hold one sentence under two instructions, which is harmless there);
* a validation or test item whose key is one of the pretraining text's bilingual
  lines (``splits.in_pretraining_text``: the translation training sentences) is
  thrown away too (entity lists). A short generic sentence can still occur,
  unlabelled, inside a story.

The examples of the families are interleaved (qa, sentiment, ..., qa, ...), so
any prefix of the list has all families in equal measure.
"""

from __future__ import annotations

import random
from typing import Iterable

from ..validation import check_seed
from .splits import SFT_SPLITS, bucket, check_count, check_split, content_bucket, in_pretraining_text
from .tasks import TASK_FAMILIES, SFTExample, get_family

# Examples per family for each split, when n_per_family is not given.
DEFAULT_SIZES: dict[str, int] = {"train": 1500, "val": 100, "test": 100, "test_heldout": 100}
# Give up (with a clear error) after this many draws in a row that add nothing new:
# the family has run out of distinct prompts for this split.
_MAX_FRUITLESS_DRAWS = 20_000


def _check_families(families: Iterable[str] | str | None) -> tuple[str, ...]:
    if families is None:
        return TASK_FAMILIES
    if isinstance(families, str):
        families = (families,)
    names = tuple(families)
    for name in names:
        get_family(name)  # raises a ValueError naming the valid families
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        # The same family twice would draw the same examples twice: every prompt repeated.
        raise ValueError(f"families names {', '.join(map(repr, repeated))} more than once; "
                         "list each family once")
    if not names:
        raise ValueError(f"families is empty; pass None for all or some of {', '.join(TASK_FAMILIES)}")
    return names


def family_examples(family: str, split: str, n: int, seed: int = 0) -> list[SFTExample]:
    """``n`` distinct examples of one family for one split."""
    fam = get_family(family)
    check_split(split, SFT_SPLITS)
    check_count(n, "n")
    check_seed(seed)
    rng = random.Random(f"sftlearn/sft/{family}/{split}/{seed}")
    templates = fam.templates_for(heldout=split == "test_heldout")
    wanted = content_bucket(split)
    seen: set[str] = set()  # prompts taken
    seen_keys: set[str] = set()  # their keys; an evaluation split takes each key once
    out: list[SFTExample] = []
    fruitless = 0
    while len(out) < n and fruitless < _MAX_FRUITLESS_DRAWS:
        item = fam.draw(rng, templates)
        fruitless += 1
        if item.prompt in seen or (split != "train" and item.key in seen_keys):
            continue
        if not (split == "test_heldout" and fam.key_is_prompt) and bucket(family, item.key) != wanted:
            continue
        if fam.key_is_sentence and split != "train" and in_pretraining_text(item.key):
            continue
        fruitless = 0
        seen.add(item.prompt)
        seen_keys.add(item.key)
        messages = [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.answer}]
        out.append(SFTExample(family, messages, item.answer, item.template))
    if len(out) < n:
        raise ValueError(
            f"could only make {len(out)} distinct {family!r} examples for split {split!r} "
            f"(asked for {n}); ask for fewer with n_per_family"
        )
    return out


def sft_examples(
    split: str,
    n_per_family: int | None = None,
    seed: int = 0,
    families: Iterable[str] | str | None = None,
) -> list[SFTExample]:
    """Instruction examples for ``split`` ("train", "val", "test" or "test_heldout").

    ``n_per_family`` defaults to ``DEFAULT_SIZES[split]``; ``families`` (a name or
    names from ``TASK_FAMILIES``) defaults to all. The result interleaves families.
    """
    check_split(split, SFT_SPLITS)
    n = DEFAULT_SIZES[split] if n_per_family is None else check_count(n_per_family, "n_per_family")
    names = _check_families(families)
    per_family = [family_examples(name, split, n, seed) for name in names]
    return [ex for group in zip(*per_family) for ex in group]


def score(family: str, prediction: str, answer: str) -> bool:
    """Exact match after stripping surrounding whitespace (and nothing else).

    The same rule for every family; case, punctuation and spacing inside the
    answer all count, so "Tea" or "the tea" do not match "tea".
    """
    get_family(family)
    for name, value in (("prediction", prediction), ("answer", answer)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str (got {type(value).__name__}); pass the model's decoded text")
    return prediction.strip() == answer.strip()
