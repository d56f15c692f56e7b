"""What every instruction task family shares: templates, examples, the item a family draws.

A *family* (question answering, sentiment, ...) knows how to draw one random
``Item``: the user's prompt, the canonical answer, the template it used, and
the *key* that decides its split (see ``splits.py``). ``sft.py`` turns items
into ``SFTExample`` conversations and keeps each split's keys apart.

A *template* is one phrasing of the instruction. Some are held out: they are
used only in the split "test_heldout", to measure whether a fine-tuned model
follows instructions worded in a way it never saw in training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Template:
    """One phrasing of a family's instruction; ``text`` is a format string."""

    id: str
    text: str
    heldout: bool = False


@dataclass(frozen=True)
class Item:
    """One drawn task instance, before it becomes a conversation."""

    prompt: str  # the user's message
    answer: str  # the canonical answer (exactly what a model should reply)
    template: str  # the template id
    key: str  # decides the split; equal keys always share a split


@dataclass(frozen=True)
class SFTExample:
    """One instruction-tuning conversation.

    ``messages`` is ``[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]``;
    ``answer`` repeats the assistant's reply (the canonical answer that ``score`` compares
    with); ``template`` is the id of the instruction phrasing used.
    """

    family: str
    messages: list[dict] = field(hash=False)
    answer: str
    template: str

    @property
    def prompt(self) -> str:
        """The user's message (the text a model is asked to respond to)."""
        return self.messages[0]["content"]


@dataclass(frozen=True)
class Family:
    """A task family: its name, its templates and the function that draws an item.

    ``draw(rng, templates)`` must use only the templates it is given, so that the
    held-out templates stay out of train, val and test.
    """

    name: str
    templates: tuple[Template, ...]
    draw: Callable[[random.Random, tuple[Template, ...]], Item]
    description: str
    # True when the split key is the whole prompt (arithmetic, strings). A held-out
    # prompt then cannot occur in any other split, so test_heldout needs no bucket.
    key_is_prompt: bool = False
    # True when the key is a sentence of the shared generator, which the pretraining text may
    # contain (``splits.in_pretraining_text``): val and test then skip those sentences.
    key_is_sentence: bool = False

    def templates_for(self, heldout: bool) -> tuple[Template, ...]:
        return tuple(t for t in self.templates if t.heldout == heldout)
