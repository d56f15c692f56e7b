"""sftlearn.data: a small synthetic world and everything the course trains on.

No corpus is downloaded. From a seed, this package generates a consistent world
(people with pronouns, places, animals, objects, colours, foods, actions,
feelings, in English and Chinese) and from it:

- ``pretraining_text`` / ``story_corpus``: short stories, about one block in eight
  bilingual (English sentence, then its Chinese translation);
- ``sft_examples``: instruction conversations in six task families
  (``TASK_FAMILIES``), each with an exact answer checked by ``score``, and
  ``well_formed`` saying whether a reply has the form of an answer at all;
- ``sentiment_classification``, ``entity_tagging`` (``ENTITY_TAGS``),
  ``translation_pairs``: labelled sets for the applications chapter;
- ``alphabet``: every character any of it can contain;
- ``corpus_stats`` / ``format_stats``: sizes, timings, majority-answer rates.

Everything is deterministic (same seed, same bytes on every machine) and split
into train / val / test (and, for SFT, test_heldout) without leakage.

Module map, in reading order: lexicon (words) -> world (facts about people) ->
sentences (the English/Chinese pair generator) -> reviews (sentiment) -> stories
(the corpus) -> splits (hash-based splits) -> tasks/ (one file per family) ->
sft (conversations and scoring) -> forms -> labelled -> charset -> stats ->
tokenizer_text (what the base models' BPE tokenizer is trained on).
"""

from .charset import alphabet
from .forms import well_formed
from .labelled import ENTITY_TAGS, entity_tagging, sentiment_classification, translation_pairs
from .sft import DEFAULT_SIZES, score, sft_examples
from .splits import PLAIN_SPLITS, SFT_SPLITS
from .stats import corpus_stats, format_stats
from .stories import pretraining_text, story_corpus
from .tasks import TASK_FAMILIES, SFTExample

__all__ = [
    "DEFAULT_SIZES",
    "ENTITY_TAGS",
    "PLAIN_SPLITS",
    "SFT_SPLITS",
    "SFTExample",
    "TASK_FAMILIES",
    "alphabet",
    "corpus_stats",
    "entity_tagging",
    "format_stats",
    "pretraining_text",
    "score",
    "sentiment_classification",
    "sft_examples",
    "story_corpus",
    "translation_pairs",
    "well_formed",
]
