"""Train / validation / test splits that can never leak into each other.

The idea: every generated example has a *key* (for most task families the
content without the instruction wording, e.g. the passage and the question).
We hash the key and use the hash to put the example in exactly one split.
Because the split is a pure function of the key, the same content can never
land in two splits, whatever the seed, the order of generation or the machine.

We hash with ``hashlib`` and never with Python's ``hash()``: ``hash()`` of a
string changes from one Python process to the next (PYTHONHASHSEED), which
would make the splits differ between runs.

Held-out *templates* (instruction phrasings) are a second guarantee: they are
used only in the split "test_heldout", whose contents also come from the test
bucket.

One more rule keeps evaluation sentences out of *pretraining*: the story corpus
interleaves English sentences with their Chinese (``stories.bilingual_block``),
and those are the translation task's training sentences. Any other task whose
items are such sentences (entity lists, entity tagging) must not evaluate on
one of them: ``in_pretraining_text`` tells which they are.
"""

from __future__ import annotations

import hashlib

# The splits of SFT data, in the order they are usually reported.
SFT_SPLITS: tuple[str, ...] = ("train", "val", "test", "test_heldout")
# The splits of the story corpus and of the labelled sets (no held-out templates there).
PLAIN_SPLITS: tuple[str, ...] = ("train", "val", "test")

# Fraction of the key space that goes to each plain split.
TRAIN_FRACTION = 0.8
VAL_FRACTION = 0.1  # the remaining 0.1 is test


def unit_hash(namespace: str, key: str) -> float:
    """A number in [0, 1) that depends only on ``namespace`` and ``key``.

    ``namespace`` (e.g. the family name) decorrelates families, so that a sentence
    used by two families is not forced into the same split for both.
    """
    digest = hashlib.blake2b(f"{namespace}\x00{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def bucket(namespace: str, key: str) -> str:
    """The plain split ("train", "val" or "test") that ``key`` belongs to."""
    u = unit_hash(namespace, key)
    if u < TRAIN_FRACTION:
        return "train"
    if u < TRAIN_FRACTION + VAL_FRACTION:
        return "val"
    return "test"


def in_pretraining_text(sentence: str) -> bool:
    """Can ``sentence`` (from the shared sentence generator) be a bilingual line of the
    pretraining corpus? Exactly the translation task's training sentences are."""
    return bucket("translate", sentence) == "train"


def content_bucket(split: str) -> str:
    """The key bucket a split draws from: "test_heldout" reuses the test bucket."""
    return "test" if split == "test_heldout" else split


def check_split(split: object, allowed: tuple[str, ...] = SFT_SPLITS) -> str:
    """Return ``split`` if it is one of ``allowed``; otherwise raise a helpful error."""
    if not isinstance(split, str) or split not in allowed:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(allowed)}")
    return split


def check_count(n: object, name: str = "n") -> int:
    """Return ``n`` if it is a non-negative int; otherwise raise a helpful error."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int (got {type(n).__name__}); pass e.g. {name}=100")
    if n < 0:
        raise ValueError(f"{name} must be >= 0 (got {n}); pass a count such as {name}=100")
    return n


