"""chrF: a translation score from overlapping pieces of characters.

Exact match is too harsh for translation: a sentence with one character wrong scores the same
as nonsense. chrF (Popović, 2015) gives partial credit by comparing **character n-grams**, the
runs of n consecutive characters, for n = 1 .. 6, with spaces removed first:

- for each n: precision P_n = matching n-grams / n-grams in the hypothesis, and recall
  R_n = matching n-grams / n-grams in the reference (an n-gram that occurs twice in one and
  once in the other matches once);
- P and R are the averages of P_n and R_n over the orders n that both sides are long enough
  to have (an order a reference sentence is too short for is skipped for that sentence,
  hypothesis n-grams included);
- chrF = (1 + β²)·P·R / (β²·P + R), with β = 2 (recall counts twice as much as precision),
  reported on a 0-100 scale.

Over many sentences the n-gram counts are added up first and the score is computed once
(a corpus score, not an average of sentence scores). These choices are sacreBLEU's defaults,
so the numbers agree with ``sacrebleu.corpus_chrf``. Working on characters suits Chinese, where
words are not separated by spaces.
"""

from __future__ import annotations

from collections import Counter
from numbers import Real
from typing import Sequence

from ..validation import check_int

__all__ = ["char_ngrams", "chrf"]


def char_ngrams(text: str, n: int) -> Counter:
    """Counts of the character n-grams of ``text`` with all whitespace removed."""
    text = "".join(text.split())
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf(hypotheses, references, max_order: int = 6, beta: float = 2.0) -> float:
    """The chrF score (0-100) of translations ``hypotheses`` against ``references``.

    Pass two equal-length lists of strings (one reference per hypothesis), or two strings
    for a single sentence.
    """
    hyps, refs = _pairs(hypotheses, references)
    check_int("max_order", max_order, fix="chrF uses 6.")
    if isinstance(beta, bool) or not isinstance(beta, Real) or not beta > 0:
        raise ValueError(f"beta must be a positive number (chrF uses 2), got {beta!r}.")
    # totals[n-1] = [n-grams in hypotheses, n-grams in references, matches], over the corpus
    totals = [[0, 0, 0] for _ in range(max_order)]
    for hyp, ref in zip(hyps, refs):
        for n in range(1, max_order + 1):
            h, r = char_ngrams(hyp, n), char_ngrams(ref, n)
            if not r:  # the reference is too short for this order: skip it for this sentence
                continue
            totals[n - 1][0] += sum(h.values())
            totals[n - 1][1] += sum(r.values())
            totals[n - 1][2] += sum((h & r).values())  # & keeps the smaller count of each n-gram
    orders = [(m / nh, m / nr) for nh, nr, m in totals if nh and nr]
    if not orders:  # nothing long enough to compare (e.g. empty strings)
        return 0.0
    precision = sum(p for p, _ in orders) / len(orders)
    recall = sum(r for _, r in orders) / len(orders)
    b2 = beta**2
    if precision + recall == 0:
        return 0.0
    return 100.0 * (1 + b2) * precision * recall / (b2 * precision + recall)


def _pairs(hypotheses, references) -> tuple[Sequence[str], Sequence[str]]:
    if isinstance(hypotheses, str) and isinstance(references, str):
        return [hypotheses], [references]
    for name, value in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(
                f"{name} must be a list of strings (or pass two strings for one sentence), got "
                f"{type(value).__name__}; give both arguments in the same form."
            )
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise TypeError(
                    f"{name}[{i}] is a {type(text).__name__}, not a string; decode token ids "
                    f"to text first (tokenizer.decode)."
                )
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} references; give exactly "
            f"one reference per translation, in the same order."
        )
    if len(hypotheses) == 0:
        raise ValueError("hypotheses and references are empty: there is nothing to score.")
    return hypotheses, references
