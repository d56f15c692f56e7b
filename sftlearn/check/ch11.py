"""Checks for chapter 11, applications: classification, entity tagging and translation.

- ``check_f1_by_hand(fn)``: ``fn()`` returns the accuracy, the precision, recall and F1 of the
  "complaint" class, and the macro F1 of the complaint detector in the exercise (confusion
  matrix ``COMPLAINT_MATRIX``), worked out by hand;
- ``check_bio_entities(fn)``: ``fn(tags)`` reads one sentence's BIO tags into entities
  ``(type, start, end)``, ``end`` one past the last word, as ``sftlearn.metrics.bio_entities``
  (and the CoNLL evaluation script) does: an ``I-X`` that does not continue an ``X`` entity
  starts a new one;
- ``check_last_token_states(fn)``: ``fn(hidden, attention_mask)`` picks, for each row of a
  padded batch, the hidden state of its last real token, for right- and left-padded rows;
- ``check_chrf_sentence(fn)``: ``fn(hypothesis, reference)`` is the chrF score (0-100) of one
  translation, as ``sftlearn.metrics.chrf`` and sacreBLEU compute it;
- ``check_heldout_accuracy(fn)``: ``fn(model, tokenizer, pairs)`` is the accuracy of a
  sequence classifier on labelled texts, batched with padding and scored with the attention
  mask (the "spot the mistake" exercise: a common mistake leaves the mask out, so the head reads
  a padding position for every text shorter than the longest in its batch).

The references are the package's own metrics (``sftlearn.metrics``, ``sftlearn.heads``), which
its tests compare with scikit-learn, seqeval and sacreBLEU. Each check also computes what the
usual mistakes give, so it can name them.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Sequence

import torch
from torch import nn

from sftlearn.check._core import (
    CheckFailure,
    as_number,
    call_student,
    checker,
    close_to,
    compare_arrays,
    short_repr,
)
from sftlearn.config import GPTConfig
from sftlearn.heads import last_token_index
from sftlearn.metrics import accuracy, bio_entities, chrf, f1_score, precision_recall_f1

# ============================================================================ F1 by hand

# The exercise's complaint detector on 80 reviews: rows are the truth, columns the prediction,
# class 0 = an ordinary review, class 1 = a complaint.
COMPLAINT_MATRIX = [[50, 10], [5, 15]]


def _labels_from_matrix(matrix: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """Labels and predictions that have ``matrix`` as their confusion matrix."""
    labels, predictions = [], []
    for true, row in enumerate(matrix):
        for predicted, count in enumerate(row):
            labels += [true] * count
            predictions += [predicted] * count
    return labels, predictions


def reference_f1_by_hand() -> dict[str, float]:
    """The five numbers of the exercise, from ``sftlearn.metrics``."""
    y, p = _labels_from_matrix(COMPLAINT_MATRIX)
    scores = precision_recall_f1(y, p)
    return {
        "accuracy": accuracy(y, p),
        "precision": float(scores.precision[1]),
        "recall": float(scores.recall[1]),
        "f1": float(scores.f1[1]),
        "macro_f1": f1_score(y, p, average="macro"),
    }


def _f1_by_hand_mistakes() -> dict[str, list[tuple[float, str, str]]]:
    """For each answer, the values the usual mistakes give: (value, what went wrong, hint)."""
    (tn, fp), (fn, tp) = COMPLAINT_MATRIX
    p, r = tp / (tp + fp), tp / (tp + fn)
    p0, r0 = tn / (tn + fn), tn / (tn + fp)
    f1_0 = 2 * p0 * r0 / (p0 + r0)
    f1_1 = 2 * p * r / (p + r)
    macro_p, macro_r = (p0 + p) / 2, (r0 + r) / 2
    n = tn + fp + fn + tp
    weighted = (f1_0 * (tn + fp) + f1_1 * (fn + tp)) / n
    rows_cols = ("Precision looks down the *column* of the predicted class (everything called a "
                 "complaint); recall along the *row* of the true class (every real complaint).")
    return {
        "accuracy": [
            (tp / n, "it counts only the complaints found; accuracy counts every correct "
             "prediction, the ordinary reviews called ordinary too", "(TN + TP) / all."),
            (tp / (tp + fp + fn), "that is TP / (TP + FP + FN), which leaves out the true "
             "negatives", "(TN + TP) / all."),
        ],
        "precision": [
            (r, "that is the recall, TP / (TP + FN): precision divides by everything *predicted* "
             "a complaint", rows_cols),
            (p0, "that is the precision of the other class (ordinary reviews)",
             "The positive class here is class 1, the complaints."),
        ],
        "recall": [
            (p, "that is the precision, TP / (TP + FP): recall divides by every *true* complaint",
             rows_cols),
            (r0, "that is the recall of the other class (ordinary reviews)",
             "The positive class here is class 1, the complaints."),
        ],
        "f1": [
            ((p + r) / 2, "that is the arithmetic mean of precision and recall; F1 is their "
             "*harmonic* mean, 2PR / (P + R), which is pulled towards the smaller of the two",
             "F1 = 2PR / (P + R) = 2TP / (2TP + FP + FN)."),
            (f1_0, "that is the F1 of the other class (ordinary reviews)",
             "The positive class here is class 1, the complaints."),
        ],
        "macro_f1": [
            (weighted, "that is the *weighted* average (by the number of true examples of each "
             "class); the macro average gives both classes the same weight",
             "macro F1 = (F1 of class 0 + F1 of class 1) / 2."),
            (tp / n + tn / n, "that is the accuracy; with one label per example it equals the "
             "*micro* F1, not the macro F1", "Average the two per-class F1 scores."),
            (2 * macro_p * macro_r / (macro_p + macro_r), "that is the harmonic mean of the "
             "macro precision and the macro recall; macro F1 averages the per-class F1 scores",
             "Compute F1 for each class first, then average them."),
            (f1_1, "that is the F1 of the complaint class alone; the macro average includes the "
             "ordinary reviews' F1 too", "Average the F1 of both classes."),
        ],
    }


F1_KEYS = ("accuracy", "precision", "recall", "f1", "macro_f1")
F1_TOLERANCE = 2e-3  # "three decimals": 0.667 for 2/3 passes, the usual mistakes do not


@checker("f1_by_hand")
def check_f1_by_hand(f1_by_hand: Any) -> str:
    """``f1_by_hand()`` -> {"accuracy", "precision", "recall", "f1", "macro_f1"} for the complaint
    detector of the exercise (precision, recall and F1 of the complaint class)."""
    got = call_student(f1_by_hand)
    if not isinstance(got, dict):
        raise CheckFailure(f"f1_by_hand() should return a dict, but it returned {short_repr(got)}.",
                           hint="Return {'accuracy': ..., 'precision': ..., 'recall': ..., "
                                "'f1': ..., 'macro_f1': ...}.")
    missing = [k for k in F1_KEYS if k not in got]
    if missing:
        raise CheckFailure(f"the dict returned by f1_by_hand() has no {', '.join(map(repr, missing))}.",
                           hint=f"It needs the keys {', '.join(map(repr, F1_KEYS))}.")
    expected = reference_f1_by_hand()
    mistakes = _f1_by_hand_mistakes()
    for key in F1_KEYS:
        value = as_number(f"f1_by_hand()[{key!r}]", got[key])
        if abs(value - expected[key]) <= F1_TOLERANCE:
            continue
        if 1.5 < value <= 100.5 and abs(value / 100 - expected[key]) <= F1_TOLERANCE:
            raise CheckFailure(f"f1_by_hand()[{key!r}] = {value:g} looks like a percentage.",
                               hint="Give scores as fractions between 0 and 1 (0.75, not 75).")
        for wrong, what, hint in mistakes[key]:
            if abs(value - wrong) <= F1_TOLERANCE:
                raise CheckFailure(f"f1_by_hand()[{key!r}] = {value:.4g} is wrong: {what}.", hint)
        if abs(value - expected[key]) <= 0.005 + 1e-9:
            raise CheckFailure(
                f"f1_by_hand()[{key!r}] = {value:g} is the right value rounded to two decimals; "
                f"the check needs it to within {F1_TOLERANCE:g}.",
                hint="Give three decimals or more, or let Python compute the fraction (e.g. 65 / 80).")
        raise CheckFailure(f"f1_by_hand()[{key!r}] = {value:.4g} is not right.",
                           hint="Read TP, FP, FN and TN off the matrix first (rows are the truth, "
                                "columns the prediction), then use the formulas of the lesson.")
    return ("all five numbers are right: accuracy {accuracy:.3f} flatters a detector whose "
            "complaint F1 is only {f1:.3f}.".format(**expected))


# ========================================================================= BIO entities

Entity = tuple[str, int, int]


def _split(tag: str) -> tuple[str, str | None]:
    return (tag, None) if tag == "O" else tuple(tag.split("-", 1))  # type: ignore[return-value]


def _read_spans(tags: Sequence[str], *, lenient: bool = True, typed: bool = True,
                b_continues: bool = False, flush: bool = True) -> list[Entity]:
    """BIO tags to spans, with switches that reproduce the usual mistakes.

    lenient=False drops an I-X that does not continue an X entity (instead of starting one);
    typed=False lets I-Y continue an X entity; b_continues=True lets B-X continue an open X
    entity; flush=False forgets the entity still open at the end of the sentence.
    """
    spans: list[Entity] = []
    kind, start = None, 0
    for i, tag in enumerate(tags):
        prefix, tag_kind = _split(tag)
        continues = kind is not None and (
            (prefix == "I" and (tag_kind == kind or not typed))
            or (prefix == "B" and b_continues and tag_kind == kind)
        )
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if not continues and (prefix == "B" or (prefix == "I" and lenient)):
            kind, start = tag_kind, i
    if kind is not None and flush:
        spans.append((kind, start, len(tags)))
    return spans


def _bio_mistakes(tags: Sequence[str]) -> list[tuple[list[Entity], str, str]]:
    right = bio_entities(tags)
    return [
        ([(k, s, e - 1) for k, s, e in right],
         "the end is the index of the last word; here `end` is one *past* the last word, like a "
         "Python slice (words[start:end] is the entity)",
         "Close an entity at the index of the first word that does not continue it."),
        (_read_spans(tags, flush=False),
         "the entity that runs to the end of the sentence is missing",
         "After the loop, an entity may still be open: add it, ending at len(tags)."),
        (_read_spans(tags, b_continues=True),
         "two entities next to each other (B-PER B-PER) are merged into one; every B- starts a "
         "new entity", "Only an I- tag continues the open entity."),
        (_read_spans(tags, lenient=False),
         "an I- tag that follows O (or another type) is dropped; the evaluation scripts count it "
         "as the start of a new entity, so a tagger that forgets B- still gets credit for its "
         "spans", "When an I-X does not continue an open X entity, start a new X entity there."),
        (_read_spans(tags, typed=False),
         "an I- tag of another type continues the entity (B-PER I-LOC becomes one PER entity); "
         "I-LOC can only continue a LOC entity", "Compare the type after the dash as well."),
    ]


BIO_CASES: list[tuple[str, list[str]]] = [
    ("a name and a place", ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]),
    ("no entity at all", ["O", "O", "O"]),
    ("a place at the end of the sentence", ["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"]),
    ("two names side by side", ["B-PER", "B-PER", "I-PER", "O"]),
    ("an I- tag after O", ["O", "I-LOC", "I-LOC", "O", "B-PER"]),
    ("a type change inside a span", ["B-PER", "I-PER", "I-LOC", "O"]),
    ("a one-word sentence", ["B-PER"]),
    ("an empty sentence", []),
]


def _as_entities(name: str, got: Any) -> list[Entity]:
    if got is None:
        raise CheckFailure(f"{name} is None.", hint="Did your function forget to `return` the list?")
    if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple)):
        raise CheckFailure(f"{name} should be a list of (type, start, end) tuples, but it is "
                           f"{short_repr(got)}.")
    out = []
    for item in got:
        ok = isinstance(item, (list, tuple)) and len(item) == 3 and isinstance(item[0], str)
        if ok:
            try:
                out.append((item[0], int(item[1]), int(item[2])))
                continue
            except (TypeError, ValueError):
                pass
        raise CheckFailure(f"{name} contains {short_repr(item)}; each entity should be a tuple "
                           f"(type, start, end) such as ('PER', 0, 2).",
                           hint="The type is the part after 'B-' or 'I-', without the prefix.")
    return out


@checker("bio_entities")
def check_bio_entities(fn: Any) -> str:
    """``fn(tags)`` -> the list of entities ``(type, start, end)`` of one sentence."""
    for label, tags in BIO_CASES:
        name = f"bio_entities({tags})"
        got = _as_entities(name, call_student(fn, list(tags)))
        expected = bio_entities(tags)
        if sorted(got) == sorted(expected):
            continue
        if any(kind.startswith(("B-", "I-")) for kind, _, _ in got):
            raise CheckFailure(f"{name} returned {got}: the type should be given without its "
                               "B-/I- prefix ('PER', not 'B-PER').")
        for wrong, what, hint in _bio_mistakes(tags):
            if sorted(got) == sorted(wrong):
                raise CheckFailure(f"{name} on {label}: {what}. Got {got}, expected {expected}.",
                                   hint)
        raise CheckFailure(f"{name} on {label} returned {got}, expected {expected}.",
                           hint="B-X starts an X entity, I-X continues an open X entity (or starts "
                                "one if none is open), O ends the open entity.")
    return (f"correct on {len(BIO_CASES)} sentences, including neighbouring names, an I- without a "
            "B- and an entity at the very end.")


# =================================================================== last-token states


def reference_last_token_states(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """hidden (B, T, C), attention_mask (B, T) -> (B, C): each row's last real position."""
    last = last_token_index(hidden[..., 0], attention_mask)  # (B,)
    return hidden[torch.arange(hidden.shape[0]), last]  # (B, C)


def _pooling_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(11)
    right = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1], [0, 1, 1, 1, 1]])
    return [
        ("right padding (texts of 5, 3 and 1 tokens)", torch.randn(3, 5, 4, generator=g), right),
        ("left padding (as for generation)", torch.randn(4, 5, 4, generator=g), left),
        ("a boolean mask", torch.randn(3, 5, 2, generator=g), right.bool()),
        ("no padding", torch.randn(2, 4, 3, generator=g), torch.ones(2, 4, dtype=torch.long)),
    ]


def _pooling_mistakes(hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, tuple[torch.Tensor, str]]:
    B = hidden.shape[0]
    real = mask.long()
    count = real.sum(dim=1)
    mean_real = (hidden * real[..., None]).sum(1) / count[:, None]
    mistakes = {
        "it takes the last position of every row, which is padding in a right-padded row": (
            hidden[:, -1], "Find each row's own last position whose mask is 1."),
        "it takes the first token of each row; in a causal model only the last real token has "
        "read the whole text": (hidden[:, 0], "Take the *last* real token."),
        "it averages over every position, padding included": (
            hidden.mean(dim=1), "This exercise asks for the last real token, not an average."),
        "it averages over the real tokens; the head of this chapter reads the last real token": (
            mean_real, "Take the last real token's state."),
    }
    by_count = hidden[torch.arange(B), (count - 1).clamp_min(0)]
    mistakes["it takes position (number of real tokens − 1), which is the last real token only "
             "when the padding is on the right; with left padding the text ends at the last column"] = (
        by_count, "Use the largest position whose mask is 1, e.g. `(positions * mask).argmax(dim=1)`.")
    return mistakes


@checker("last_token_states")
def check_last_token_states(fn: Any) -> str:
    """``fn(hidden, attention_mask)`` -> (B, C), the state at each row's last real token."""
    for label, hidden, mask in _pooling_cases():
        expected = reference_last_token_states(hidden, mask)
        got = call_student(fn, hidden.clone(), mask.clone())
        name = f"last_token_states on {label}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not close_to(got, expected, atol=1e-6):
            for description, (wrong, hint) in _pooling_mistakes(hidden, mask).items():
                if torch.allclose(got.double(), wrong.double(), atol=1e-6):
                    raise CheckFailure(f"{name} is wrong: {description}.", hint)
        compare_arrays(name, got, expected, atol=1e-6, rtol=1e-5,
                       hint="Row b needs hidden[b, t] at the largest t with attention_mask[b, t] = 1.")
    return "correct on 4 batches: right padding, left padding, a boolean mask and no padding."


# ================================================================================ chrF


def _ngrams(text: str, n: int, strip: bool = True) -> Counter:
    text = "".join(text.split()) if strip else text
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def _chrf_variant(hyp: str, ref: str, *, beta: float = 2.0, orders: int = 6, strip: bool = True,
                  clip: bool = True, average_f: bool = False) -> float:
    """chrF with switches that reproduce the usual mistakes (defaults: the real chrF)."""
    ps, rs, fs = [], [], []
    for n in range(1, orders + 1):
        h, r = _ngrams(hyp, n, strip), _ngrams(ref, n, strip)
        if not h or not r:
            continue
        match = sum((h & r).values()) if clip else sum(c for g, c in h.items() if g in r)
        p, rec = match / sum(h.values()), match / sum(r.values())
        ps.append(p)
        rs.append(rec)
        fs.append((1 + beta**2) * p * rec / (beta**2 * p + rec) if p + rec else 0.0)
    if not ps:
        return 0.0
    if average_f:
        return 100 * sum(fs) / len(fs)
    p, rec = sum(ps) / len(ps), sum(rs) / len(rs)
    return 100 * (1 + beta**2) * p * rec / (beta**2 * p + rec) if p + rec else 0.0


CHRF_CASES: list[tuple[str, str, str]] = [
    ("a perfect translation", "汤姆喜欢梨。", "汤姆喜欢梨。"),
    ("one word wrong", "汤姆喜欢苹果。", "汤姆喜欢梨。"),
    ("a short hypothesis", "汤姆。", "汤姆住在村子里。"),
    ("a repeated character", "好好好好好", "你好"),
    ("English with spaces", "the cat sat on the mat", "the cat sits on a mat"),
    ("nothing in common", "猫", "狗"),
    ("an empty hypothesis", "", "汤姆喜欢梨。"),
    ("a tab and a new line, whitespace like a space", "the\tcat sat\non the mat", "the cat sat on the mat"),
]


def _chrf_mistakes(hyp: str, ref: str) -> list[tuple[float, str, str]]:
    right = chrf(hyp, ref)
    return [
        (right / 100, "it is on a 0-1 scale; chrF is reported from 0 to 100", "Multiply by 100."),
        (_chrf_variant(hyp, ref, beta=1.0), "it uses β = 1 (the plain F1); chrF uses β = 2, "
         "which weighs recall twice as much as precision", "F_β = (1 + β²)·P·R / (β²·P + R) with β = 2."),
        (_chrf_variant(hyp, ref, beta=0.5), "it weighs precision more than recall (β and 1/β "
         "swapped)", "F_β = (1 + β²)·P·R / (β²·P + R): β² multiplies P in the denominator."),
        (_chrf_variant(hyp, ref, clip=False), "an n-gram that occurs more often in the hypothesis "
         "than in the reference is counted as matching every time", "Count a match at most as "
         "often as the n-gram occurs in the reference: `(h & r)` keeps the smaller count."),
        (_chrf_variant(hyp, ref, strip=False), "the spaces are kept; chrF removes all whitespace "
         "before cutting the text into n-grams", "`''.join(text.split())` removes it."),
        (_chrf_variant(hyp.replace(" ", ""), ref.replace(" ", ""), strip=False), "only the "
         "spaces are removed; tabs and new lines are whitespace too, and chrF removes them all",
         "`''.join(text.split())` removes every kind of whitespace."),
        (_chrf_variant(hyp, ref, average_f=True), "it averages an F-score per order; chrF "
         "averages precision and recall over the orders first, then takes one F-score",
         "Average P_n and R_n over n, then compute F_β once."),
        (_chrf_variant(hyp, ref, orders=4), "it stops at 4-grams; chrF uses n = 1 to 6",
         "Loop over n = 1, 2, ..., 6."),
    ]


@checker("chrf_sentence")
def check_chrf_sentence(fn: Any) -> str:
    """``fn(hypothesis, reference)`` -> chrF (0-100) of one sentence, as sacreBLEU's default."""
    for label, hyp, ref in CHRF_CASES:
        expected = chrf(hyp, ref)
        name = f"chrf_sentence({hyp!r}, {ref!r})"
        value = as_number(name, call_student(fn, hyp, ref))
        if abs(value - expected) <= 1e-6 * max(1.0, abs(expected)):
            continue
        for wrong, what, hint in _chrf_mistakes(hyp, ref):
            if abs(value - wrong) <= 1e-6 * max(1.0, abs(wrong)):
                raise CheckFailure(f"{name} ({label}) = {value:.4g} is wrong: {what}.", hint)
        if expected == 0.0 and value != value:  # NaN
            raise CheckFailure(f"{name} ({label}) is NaN: a 0/0 where nothing matches.",
                               hint="When P + R = 0 (or no order can be compared) the score is 0.")
        raise CheckFailure(f"{name} ({label}) = {value:.4g}, but chrF is {expected:.4g}.",
                           hint="For n = 1..6 count the character n-grams of both texts (all "
                                "whitespace removed), skip an order either text is too short for, average "
                                "P_n and R_n, then F_β with β = 2, times 100.")
    return (f"correct on {len(CHRF_CASES)} sentence pairs, including a repeated character, spaces, "
            "a tab and a new line, and an empty hypothesis.")


# ======================================================== held-out accuracy (spot the mistake)


class PaddingSensitiveClassifier(nn.Module):
    """A stand-in for a fine-tuned ``SequenceClassifier`` that behaves like one with padding.

    It predicts "positive" (1) unless the review contains a negation word, a naive rule that
    is right on some reviews and wrong on others. Like the real head it reads the hidden state
    at the last real token (``sftlearn.heads.last_token_index``); where that position, or any
    position before it, is padding that the attention mask does not hide, the state is not a
    summary of the review, and this stand-in then predicts 0.
    """

    NEGATIONS = ("not", "never", "hardly")

    def __init__(self, tokenizer, num_labels: int = 2):
        super().__init__()
        self.tokenizer = tokenizer
        self.num_labels = num_labels
        # A real head reports its body's config; code that reads model.config.block_size (as the
        # exercise's snippet does) gets what a fine-tuned tiny-base would give it.
        self.config = GPTConfig.preset("tiny", vocab_size=tokenizer.vocab_size, block_size=128)
        self.anchor = nn.Parameter(torch.zeros(1))  # so next(model.parameters()) finds a device

    def forward(self, input_ids, targets=None, attention_mask=None):
        pad = self.tokenizer.pad_id
        last = last_token_index(input_ids, attention_mask)  # (B,)
        logits = torch.zeros(input_ids.shape[0], self.num_labels)
        for b, t in enumerate(last.tolist()):
            seen = input_ids[b, : t + 1]
            visible = seen if attention_mask is None else seen[attention_mask[b, : t + 1].bool()]
            if bool((visible == pad).any()):  # padding read as if it were text
                label = 0
            else:
                words = self.tokenizer.decode(visible.tolist()).lower().replace(",", " ").split()
                label = 0 if any(w in self.NEGATIONS for w in words) else 1
            logits[b, label] = 1.0
        return logits + 0 * self.anchor, None

    @torch.no_grad()
    def predict(self, input_ids, attention_mask=None):
        logits, _ = self(input_ids, attention_mask=attention_mask)
        return logits.argmax(dim=-1)


HELDOUT_PAIRS: list[tuple[str, int]] = [
    ("The tea is good.", 1),
    ("The soup is not bad, but the tea is cold.", 0),
    ("The rice is never dry.", 1),
    ("The cake is sweet and the pears are fresh.", 1),
    ("The eggs are stale.", 0),
    ("Although the bread is very stale, the pears are lovely.", 1),
    ("The noodles are hardly tasty.", 0),
    ("The milk is cold, yet the cheese is not salty.", 1),
    ("The apples are so nice.", 1),
    ("The dumplings are awful.", 0),
]


@functools.lru_cache(maxsize=1)
def _course_tokenizer():
    """The tokenizer of the course's base model, as its zoo recipe builds it (once)."""
    from sftlearn import zoo

    return zoo.recipe("tiny-base").make_tokenizer()


def reference_heldout_accuracy(model, tokenizer, pairs) -> float:
    """Accuracy of ``model`` on ``pairs``, padded batch scored with the attention mask."""
    from sftlearn.heads import collate_classification, encode_classification

    batch = collate_classification(encode_classification(tokenizer, pairs, 10_000), tokenizer.pad_id)
    predicted = model.predict(batch["input_ids"], batch["attention_mask"])
    return accuracy(batch["targets"], predicted)


def _heldout_no_mask(model, tokenizer, pairs) -> float:
    from sftlearn.heads import collate_classification, encode_classification

    batch = collate_classification(encode_classification(tokenizer, pairs, 10_000), tokenizer.pad_id)
    return accuracy(batch["targets"], model.predict(batch["input_ids"]))


@checker("heldout_accuracy")
def check_heldout_accuracy(fn: Any, tokenizer: Any = None) -> str:
    """``fn(model, tokenizer, pairs)`` -> accuracy on ``pairs``, with the attention mask."""
    if tokenizer is None:
        tokenizer = _course_tokenizer()
    model = PaddingSensitiveClassifier(tokenizer)
    cases = [("10 reviews of different lengths", HELDOUT_PAIRS),
             ("the same reviews in another order", HELDOUT_PAIRS[::-1][:7]),
             ("one review", HELDOUT_PAIRS[1:2])]
    for label, pairs in cases:
        expected = reference_heldout_accuracy(model, tokenizer, pairs)
        name = f"heldout_accuracy on {label}"
        value = as_number(name, call_student(fn, model, tokenizer, list(pairs)))
        if abs(value - expected) < 1e-6:
            continue
        if 1.5 < value <= 100.5 and abs(value / 100 - expected) < 1e-6:
            raise CheckFailure(f"{name} = {value:g} looks like a percentage.",
                               hint="Return a fraction between 0 and 1, as sftlearn.metrics.accuracy does.")
        no_mask = _heldout_no_mask(model, tokenizer, pairs)
        if abs(value - no_mask) < 1e-6:
            raise CheckFailure(
                f"{name} = {value:.3g}, but it should be {expected:.3g}: the batch is scored "
                "without its attention mask, so for every review shorter than the longest one the "
                "head reads a padding position instead of the review's last token.",
                hint="Pass batch['attention_mask'] to the model (or to model.predict).")
        if abs(value - (1 - expected)) < 1e-6:
            raise CheckFailure(f"{name} = {value:.3g} is the error rate; accuracy is the share of "
                               f"correct predictions ({expected:.3g} here).")
        raise CheckFailure(f"{name} = {value:.3g}, but it should be {expected:.3g}.",
                           hint="Encode the pairs, collate them into a padded batch, predict with "
                                "the attention mask and compare with the batch's targets.")
    return ("correct: every review is read at its own last token (with a padded batch, that "
            "takes its attention mask).")


__all__ = [
    "COMPLAINT_MATRIX",
    "HELDOUT_PAIRS",
    "PaddingSensitiveClassifier",
    "check_bio_entities",
    "check_chrf_sentence",
    "check_f1_by_hand",
    "check_heldout_accuracy",
    "check_last_token_states",
    "reference_f1_by_hand",
    "reference_heldout_accuracy",
    "reference_last_token_states",
]
