"""Metrics: single numbers that say how good a model's predictions are.

A loss is what training minimises; a metric is what we report. One file per kind of task:

- ``language_model``: :func:`perplexity`, :func:`perplexity_from_logits` (chapter 04);
- ``classification``: :func:`accuracy`, :func:`confusion_matrix`,
  :func:`precision_recall_f1` (per class), :func:`f1_score` (macro, micro, weighted);
- ``tagging``: :func:`bio_entities` and :func:`entity_f1`, entity-level scores for BIO tags;
- ``translation``: :func:`chrf`, a character n-gram score for translations.

Everything is importable from here: ``from sftlearn.metrics import f1_score``.
"""

from .classification import ClassScores, accuracy, confusion_matrix, f1_score, precision_recall_f1
from .language_model import IGNORE_INDEX, perplexity, perplexity_from_logits
from .tagging import EntityScores, bio_entities, entity_f1
from .translation import char_ngrams, chrf

__all__ = [
    "IGNORE_INDEX",
    "ClassScores",
    "EntityScores",
    "accuracy",
    "bio_entities",
    "char_ngrams",
    "chrf",
    "confusion_matrix",
    "entity_f1",
    "f1_score",
    "perplexity",
    "perplexity_from_logits",
    "precision_recall_f1",
]
