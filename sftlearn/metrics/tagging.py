"""Entity-level scores for BIO tagging (named-entity recognition).

BIO tags mark spans of words: ``B-PER`` begins a person's name, ``I-PER`` continues it, ``O``
is outside any entity. "Li Na met Tom" is ``B-PER I-PER O B-PER``: two entities,
``(PER, 0, 2)`` and ``(PER, 3, 4)`` (type, first word, one past the last word).

Scoring per *tag* flatters a tagger: getting "Li" right and "Na" wrong is half right per tag,
but the name is wrong. Entity-level scores count a predicted entity as correct only if its
type, start and end all match a true entity exactly:

- precision = correct / predicted entities, recall = correct / true entities, F1 their
  harmonic mean (0 where there is nothing to count).

Reading tags into spans follows the CoNLL evaluation script (and ``seqeval``'s default mode):
an ``I-X`` that does not continue an ``X`` entity (after ``O``, at the start, or after another
type) starts a new entity, so a tagger that never writes ``B-`` is not scored as finding
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["bio_entities", "EntityScores", "entity_f1"]

Entity = tuple[str, int, int]  # (type, start, end): words start .. end-1


def bio_entities(tags: Sequence[str]) -> list[Entity]:
    """The entities in one sentence's BIO tags, as ``(type, start, end)``."""
    _check_tags(tags, "tags")
    entities: list[Entity] = []
    kind, start = None, 0  # the entity being read, if any
    for i, tag in enumerate(tags):
        prefix, tag_kind = (tag, None) if tag == "O" else tag.split("-", 1)
        continues = prefix == "I" and tag_kind == kind
        if kind is not None and not continues:  # the open entity ends before word i
            entities.append((kind, start, i))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = tag_kind, i
    if kind is not None:
        entities.append((kind, start, len(tags)))
    return entities


@dataclass
class EntityScores:
    """Entity-level precision, recall and F1, overall and per entity type."""

    precision: float
    recall: float
    f1: float
    true_entities: int
    predicted_entities: int
    correct: int
    per_type: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    # per_type[kind] = (precision, recall, f1, number of true entities of that kind)

    def __str__(self) -> str:
        lines = [f"{'type':<6} precision  recall     f1  support"]
        for kind, (p, r, f, n) in sorted(self.per_type.items()):
            lines.append(f"{kind:<6} {p:9.3f}  {r:6.3f}  {f:5.3f}  {n:7d}")
        lines.append(f"{'all':<6} {self.precision:9.3f}  {self.recall:6.3f}  {self.f1:5.3f}  "
                     f"{self.true_entities:7d}")
        return "\n".join(lines)


def entity_f1(true_tags, predicted_tags) -> EntityScores:
    """Score predicted BIO tags against the true ones, entity by entity.

    Both arguments are a list of sentences, each a list of tags (one per word), or a single
    sentence given as one list of tags. Entities never cross sentence boundaries.
    """
    true_sents = _sentences(true_tags, "true_tags")
    pred_sents = _sentences(predicted_tags, "predicted_tags")
    if len(true_sents) != len(pred_sents):
        raise ValueError(
            f"got {len(true_sents)} true sentences but {len(pred_sents)} predicted ones; they "
            f"must pair up one to one."
        )
    true_set, pred_set = set(), set()
    for k, (t, p) in enumerate(zip(true_sents, pred_sents)):
        if len(t) != len(p):
            raise ValueError(
                f"sentence {k} has {len(t)} true tags but {len(p)} predicted tags; predict "
                f"exactly one tag per word."
            )
        _check_tags(t, f"true_tags[{k}]")
        _check_tags(p, f"predicted_tags[{k}]")
        true_set |= {(k, *e) for e in bio_entities(t)}  # (sentence, type, start, end)
        pred_set |= {(k, *e) for e in bio_entities(p)}
    correct = true_set & pred_set
    per_type = {}
    for kind in sorted({e[1] for e in true_set | pred_set}):
        n_true = sum(e[1] == kind for e in true_set)
        n_pred = sum(e[1] == kind for e in pred_set)
        n_correct = sum(e[1] == kind for e in correct)
        per_type[kind] = (*_prf(n_correct, n_true, n_pred), n_true)
    p, r, f = _prf(len(correct), len(true_set), len(pred_set))
    return EntityScores(p, r, f, len(true_set), len(pred_set), len(correct), per_type)


def _prf(correct: int, n_true: int, n_pred: int) -> tuple[float, float, float]:
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _sentences(tags, name: str) -> list[Sequence[str]]:
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise TypeError(
            f"{name} must be a list of sentences, each a list of tags like ['B-PER', 'I-PER', "
            f"'O'], got {type(tags).__name__}."
        )
    if len(tags) and all(isinstance(t, str) for t in tags):
        spaced = [t for t in tags if any(ch.isspace() for ch in t)]
        if spaced:
            # 'B-PER I-PER O' is a whole sentence written as one string, not a tag
            raise ValueError(
                f"{name} holds strings with spaces ({spaced[0]!r}): "
                f"each looks like a sentence of space-separated tags. Pass lists of tags, e.g. "
                f"[s.split() for s in {name}]."
            )
        return [tags]  # one sentence
    for k, sentence in enumerate(tags):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(
                f"{name}[{k}] must be a list of tags, got {type(sentence).__name__}; pass a list "
                f"of sentences or a single sentence, not a mix."
            )
    if len(tags) == 0:
        raise ValueError(f"{name} is empty: there is nothing to score.")
    return list(tags)


def _check_tags(tags: Sequence[str], name: str) -> None:
    for i, tag in enumerate(tags):
        ok = isinstance(tag, str) and (
            tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)
        )
        if not ok:
            raise ValueError(
                f"{name}[{i}] = {tag!r} is not a BIO tag; tags are 'O', 'B-<TYPE>' or "
                f"'I-<TYPE>' (e.g. 'B-PER'). Map label ids to tag names first."
            )
