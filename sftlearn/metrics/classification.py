"""Classification metrics: how often, and in which way, predicted classes are wrong.

Classes are integer ids 0 .. K-1. Everything here follows from the **confusion matrix**
``M[i, j]`` = number of examples of true class i predicted as class j (rows are the truth,
as in scikit-learn). For one class c:

- true positives  ``TP = M[c, c]``; false positives ``FP`` = column c minus TP (predicted c,
  were not); false negatives ``FN`` = row c minus TP (were c, predicted something else);
- **precision** ``TP / (TP + FP)``: of the examples called c, the share that are c;
- **recall** ``TP / (TP + FN)``: of the examples that are c, the share found;
- **F1** ``2·TP / (2·TP + FP + FN)``, the harmonic mean of the two.

A ratio with nothing to count (0 / 0, e.g. the precision of a class never predicted) is
reported as 0, as scikit-learn does by default.

Averages over classes: **macro** F1 is the plain mean of the per-class F1s (every class counts
the same, however rare); **weighted** weighs them by support (the number of true examples);
**micro** F1 pools TP, FP and FN over all classes first. With one label per example every
error is one FP and one FN, so micro precision = micro recall = micro F1 = accuracy. Macro and
weighted averages include the classes that occur in the labels or the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..validation import check_int

AVERAGES = ("macro", "micro", "weighted")

__all__ = ["accuracy", "confusion_matrix", "ClassScores", "precision_recall_f1", "f1_score"]


def accuracy(labels, predictions) -> float:
    """Share of examples whose predicted class equals the true class."""
    y, p = _label_arrays(labels, predictions)
    return float((y == p).mean())


def confusion_matrix(labels, predictions, num_classes: int | None = None) -> np.ndarray:
    """Counts (K, K) of true class (row) against predicted class (column).

    ``num_classes`` defaults to one more than the largest class id seen; pass it to fix K
    (a label at or above it is an error, which catches labels from the wrong mapping).
    """
    y, p = _label_arrays(labels, predictions, num_classes)
    K = _num_classes(y, p, num_classes)
    matrix = np.zeros((K, K), dtype=np.int64)
    np.add.at(matrix, (y, p), 1)  # one count per (true, predicted) pair
    return matrix


@dataclass
class ClassScores:
    """Per-class precision, recall, F1 and support (true examples), each an array (K,)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    def table(self, names: Sequence[str] | None = None) -> str:
        """A readable table, one row per class."""
        K = len(self.f1)
        if names is not None and len(names) != K:
            raise ValueError(f"got {len(names)} class names for {K} classes; give one per class")
        names = [str(n) for n in names] if names is not None else [str(c) for c in range(K)]
        width = max(len(n) for n in names + ["class"])
        rows = [f"{'class':<{width}}  precision  recall     f1  support"]
        for c in range(K):
            rows.append(f"{names[c]:<{width}}  {self.precision[c]:9.3f}  {self.recall[c]:6.3f}  "
                        f"{self.f1[c]:5.3f}  {self.support[c]:7d}")
        return "\n".join(rows)


def precision_recall_f1(labels, predictions, num_classes: int | None = None) -> ClassScores:
    """Precision, recall and F1 of every class, from the confusion matrix."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    tp, fp, fn = _counts(matrix)
    return ClassScores(
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        support=matrix.sum(axis=1),
    )


def f1_score(labels, predictions, average: str = "macro", num_classes: int | None = None) -> float:
    """F1 averaged over classes: ``"macro"``, ``"micro"`` or ``"weighted"`` (see module doc)."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}.")
    matrix = confusion_matrix(labels, predictions, num_classes)
    tp, fp, fn = _counts(matrix)
    if average == "micro":
        return float(_ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()))
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0  # seen as label or prediction
    if average == "macro":
        return float(f1[present].mean())
    support = matrix.sum(axis=1)
    return float((f1 * support).sum() / support.sum())


# ------------------------------------------------------------------------------ helpers
def _counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix)
    return tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp


def _ratio(top, bottom):
    """top / bottom, with 0 where bottom is 0 (nothing to count)."""
    top, bottom = np.asarray(top, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def _num_classes(y: np.ndarray, p: np.ndarray, num_classes: int | None) -> int:
    return num_classes if num_classes is not None else int(max(y.max(), p.max())) + 1


def _label_arrays(labels, predictions, num_classes: int | None = None):
    """Two equal-length 1-D int64 arrays of class ids, or a clear error."""
    if num_classes is not None:
        check_int("num_classes", num_classes,
                  fix="Or None for one more than the largest class id seen.")
    y = _as_ids(labels, "labels")
    p = _as_ids(predictions, "predictions")
    if len(y) != len(p):
        raise ValueError(
            f"got {len(y)} labels but {len(p)} predictions; they must pair up one to one "
            f"(same examples, same order)."
        )
    if len(y) == 0:
        raise ValueError("labels and predictions are empty: there is nothing to score.")
    for name, values in (("labels", y), ("predictions", p)):
        low, high = int(values.min()), int(values.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            bad = low if low < 0 else high
            limit = f"0..{num_classes - 1}" if num_classes is not None else "0 or more"
            raise ValueError(
                f"{name} contain class {bad}, outside the class range {limit}. Class ids are "
                f"0..K-1: map the labels to ids"
                + (f" or pass num_classes={high + 1}." if low >= 0 else ".")
            )
    return y, p


def _as_ids(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of class ids, got one string {values!r}.")
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be one flat sequence of class ids, got shape {array.shape}; for "
            f"scores of shape (N, K) take .argmax(-1) first, for nested lists flatten them."
        )
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise TypeError(
            f"{name} must be integer class ids, got dtype {array.dtype}; if these are scores or "
            f"probabilities take .argmax(-1) first, if they are names map them to ids."
        )
    return array.astype(np.int64)
