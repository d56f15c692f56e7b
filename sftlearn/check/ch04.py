"""Checks for chapter 04, probability, information and loss.

- ``check_entropy(fn)``: ``fn(p)`` is the entropy, in nats, of the distributions along the
  last dimension of ``p``, with 0 · log 0 counted as 0;
- ``check_cross_entropy_between(fn)``: ``fn(p, q)`` is the cross-entropy H(p, q) of two
  probability distributions and raises ``ValueError`` when either is not one (the "spot the
  mistake" exercise: a common mistake reports −log 0.9 as a negative loss, for a "distribution"
  [0.9, 0.1, 0.1] that sums to 1.1);
- ``check_cross_entropy(fn)``: ``fn(logits, targets)`` is the mean cross-entropy loss from
  logits, numerically stable for large logits, skipping targets equal to -100, as
  ``F.cross_entropy`` computes it;
- ``check_logit_gradients(fn)``: ``fn(z, y)`` returns the derivatives with respect to the logit
  z of the squared error and of the binary cross-entropy of σ(z) against the label y;
- ``check_bigram_probabilities(fn)``: ``fn(counts, k)`` is the add-k smoothed table of
  P(next | current) from a matrix of bigram counts;
- ``check_bigram_perplexity(fn)``: ``fn(probs, ids)`` is the perplexity of a bigram table on a
  sequence of token ids.

The references are written with torch's own functions (``F.cross_entropy``,
``torch.special.entr``, autograd) wherever torch has one, so that a student's from-scratch
version is compared with the library's. Each check also computes what the usual mistakes give
(a missing minus sign, log base 2, a sum where a mean belongs, ...) so it can name them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from sftlearn.check._core import (
    CheckFailure,
    NotDoneYet,
    as_number,
    call_student,
    checker,
    compare_arrays,
    short_repr,
)
from sftlearn.model import IGNORE_INDEX  # the label that cross-entropy skips

LN2 = math.log(2.0)

# ------------------------------------------------------------------- reference versions


def reference_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = −Σ p log p along the last dimension, in nats; entr(0) = 0."""
    return torch.special.entr(p).sum(dim=-1)


def reference_cross_entropy_between(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """H(p, q) = −Σ p log q in nats; a term with p = 0 is 0 whatever q is."""
    return -torch.xlogy(p, q).sum(dim=-1)


def reference_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy over the positions whose target is not -100."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def reference_logit_gradients(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d/dz of (σ(z) − y)² and of the binary cross-entropy of σ(z) against y, by autograd."""
    z = z.detach().clone().requires_grad_(True)
    p = torch.sigmoid(z)
    (grad_mse,) = torch.autograd.grad(((p - y) ** 2).sum(), z)
    (grad_ce,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(z, y, reduction="sum"), z)
    return grad_mse, grad_ce


def reference_bigram_probabilities(counts: torch.Tensor, k: float) -> torch.Tensor:
    """P[i, j] = (counts[i, j] + k) / (Σ_j counts[i, j] + k·V): add-k smoothing, rows sum to 1."""
    counts = counts.double()
    probs = (counts + k) / (counts.sum(dim=1, keepdim=True) + k * counts.shape[1])
    return probs.float()


def reference_bigram_perplexity(probs: torch.Tensor, ids: torch.Tensor) -> float:
    """exp of the mean of −log P(ids[t+1] | ids[t]) over t = 0 .. len(ids) − 2."""
    nll = -probs.double()[ids[:-1], ids[1:]].log()
    return math.exp(nll.mean().item())


# ------------------------------------------------------------------------------- helpers


def _fmt(values: torch.Tensor) -> str:
    """A short readable list of numbers for messages."""
    return "[" + ", ".join(f"{v:g}" for v in values.tolist()) + "]"


def _same(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Whether two values (numbers or tensors) agree, NaN matching NaN."""
    try:
        a_t = torch.as_tensor(a, dtype=torch.float64)
        b_t = torch.as_tensor(b, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return a_t.shape == b_t.shape and bool(torch.isclose(a_t, b_t, rtol=rtol, atol=atol, equal_nan=True).all())


NAN_FROM_ZERO_HINT = (
    "`torch.xlogy(p, p)` computes p · log p and gives 0 where p is 0; "
    "or use `torch.where(p > 0, p * p.log(), 0.0)`."
)

# ------------------------------------------------------------------------------- entropy

ENTROPY_CASES: list[tuple[str, torch.Tensor]] = [
    ("a fair coin", torch.tensor([0.5, 0.5])),
    ("a fair four-sided die", torch.tensor([0.25, 0.25, 0.25, 0.25])),
    ("a loaded die", torch.tensor([0.7, 0.1, 0.1, 0.05, 0.05])),
    ("a certain outcome", torch.tensor([0.0, 1.0, 0.0])),
    ("a batch of three rows", torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])),
    ("float64 rows of shape (2, 2, 2)", torch.tensor([[[0.1, 0.9], [0.5, 0.5]], [[1.0, 0.0], [0.3, 0.7]]],
                                                     dtype=torch.float64)),
]


def _entropy_mistakes(p: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    n = p.shape[-1]
    with torch.no_grad():
        no_weights = -p.log().sum(dim=-1)
        mistakes: dict[str, Any] = {
            "it uses log base 2 (bits) instead of the natural log (nats); the two differ by a "
            "factor ln 2 ≈ 0.693": (expected / LN2, "Use `torch.log` (natural log), as PyTorch's losses do; "
                                    "divide by ln 2 only when you want bits."),
            "the minus sign is missing, so the entropy comes out negative (an entropy is never "
            "negative: −log p ≥ 0 for every probability p ≤ 1)": (-expected, "H(p) = −Σ p log p."),
            f"it averages the terms over the {n} outcomes instead of adding them": (
                expected / n, "Sum over the last dimension (`.sum(dim=-1)`), do not take the mean."),
        }
        if bool(torch.isfinite(no_weights).all()):
            mistakes["the log-probabilities are added without weighting each by its probability p "
                      "(it computes −Σ log p, not −Σ p log p)"] = (
                no_weights, "Multiply each log p by its p before adding.")
    return mistakes


@checker("entropy")
def check_entropy(entropy: Any) -> str:
    """``entropy(p)``: −Σ p log p over the last dimension, in nats, with 0 · log 0 = 0."""
    for label, p in ENTROPY_CASES:
        expected = reference_entropy(p)
        got = call_student(entropy, p.clone())
        name = f"entropy({_fmt(p) if p.dim() == 1 else label})"
        if isinstance(got, torch.Tensor) and got.dim() == 0 and p.dim() > 1:
            raise CheckFailure(
                f"entropy of {label} is one number, but it should be one entropy per distribution, "
                f"shape {tuple(expected.shape)}: the sum runs over the whole tensor.",
                hint="Sum over the last dimension only: `.sum(dim=-1)`.")
        if (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and bool((p == 0).any()) and bool(torch.isnan(got).any())):
            raise CheckFailure(
                f"{name} contains NaN: where p = 0 you compute 0 · log 0 = 0 · (−inf), which is NaN "
                "in floating point. An impossible outcome adds no uncertainty: its term is 0 "
                "(the limit of p log p as p → 0).", hint=NAN_FROM_ZERO_HINT)
        if p.dim() > 1 and isinstance(got, torch.Tensor) and not _same(got, expected):
            other = torch.special.entr(p).sum(dim=0)
            if _same(got, other):
                raise CheckFailure(
                    f"entropy of {label} sums over dimension 0 instead of the last dimension: each "
                    "distribution is a row (the last dimension).", hint="Use `.sum(dim=-1)`.")
        compare_arrays(name, got, expected, atol=1e-5, rtol=1e-4, mistakes=_entropy_mistakes(p, expected),
                       hint="H(p) = −Σᵢ pᵢ log pᵢ, summed over the last dimension.")
        if isinstance(got, torch.Tensor) and p.dtype == torch.float64 and got.dtype != torch.float64:
            raise CheckFailure(f"entropy of {label} is {got.dtype}, but the input was float64: "
                               "the answer should keep the input's precision.",
                               hint="Compute with the input's own tensor operations; avoid `.float()`.")
    return (f"correct on {len(ENTROPY_CASES)} inputs, including a certain outcome (0 · log 0 = 0) "
            "and batches of distributions.")


# -------------------------------------------------------------- cross_entropy_between


BETWEEN_CASES: list[tuple[list[float], list[float]]] = [
    ([1.0, 0.0, 0.0], [0.9, 0.05, 0.05]),
    ([0.5, 0.5], [0.5, 0.5]),
    ([0.2, 0.3, 0.5], [0.3, 0.3, 0.4]),
    ([1.0, 0.0, 0.0], [0.5, 0.5, 0.0]),  # q = 0 where p = 0: the term is 0
    ([0.0, 1.0], [1.0, 0.0]),            # a certain, wrong prediction: infinite loss
]

NOT_DISTRIBUTIONS: list[tuple[list[float], list[float], str]] = [
    ([1.0, 0.0, 0.0], [0.9, 0.1, 0.1], "q sums to 1.1"),
    ([1.0, 0.0, 0.0], [1.2, -0.1, -0.1], "q has negative entries"),
    ([0.6, 0.6, 0.0], [0.4, 0.3, 0.3], "p sums to 1.2"),
    ([0.5, 0.5], [0.6, 0.6], "q sums to 1.2"),
]


def _between_mistakes(p: torch.Tensor, q: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    with torch.no_grad():
        swapped = -torch.xlogy(q, p).sum()
        return {
            "it is negative. A cross-entropy is a loss and is never negative: each q ≤ 1, so "
            "log q ≤ 0 and −Σ p log q ≥ 0. The minus sign is missing": (
                -expected, "H(p, q) = −Σ p log q: the minus in front makes it positive."),
            "it uses log base 2 (bits); the course measures losses in nats, with the natural log": (
                expected / LN2, "Use `torch.log`, the natural log."),
            "the two distributions are swapped: it computes −Σ q log p. The average is taken under "
            "the true distribution p, and the log is of the model's q": (
                swapped, "H(p, q) = −Σ p log q, with p the target and q the prediction."),
        }


@checker("cross_entropy_between")
def check_cross_entropy_between(cross_entropy_between: Any) -> str:
    """``cross_entropy_between(p, q)``: −Σ p log q, and ValueError for a non-distribution."""
    for p_list, q_list in BETWEEN_CASES:
        p, q = torch.tensor(p_list), torch.tensor(q_list)
        expected = reference_cross_entropy_between(p, q)
        name = f"cross_entropy_between({p_list}, {q_list})"
        got = call_student(cross_entropy_between, p.clone(), q.clone())
        value = as_number(name, got)
        if math.isnan(value) and bool(((p == 0) & (q == 0)).any()):
            raise CheckFailure(
                f"{name} is NaN: where p = 0 and q = 0 you compute 0 · log 0 = 0 · (−inf). An "
                "outcome that never happens (p = 0) contributes 0, whatever the model says.",
                hint="`torch.xlogy(p, q)` computes p · log q and gives 0 where p is 0.")
        if math.isinf(expected.item()) and not math.isinf(value):
            raise CheckFailure(
                f"{name} is {value:.4g}, but it should be inf: the model is certain (q = 0) that the "
                "outcome that happens cannot happen, and −log 0 = ∞. Adding a small epsilon inside "
                "the log hides this.", hint="Do not clamp q or add an epsilon: compute −Σ p log q as it is.")
        compare_arrays(name, value, expected.item(), atol=1e-5, rtol=1e-4,
                       mistakes=_between_mistakes(p, q, expected),
                       hint="H(p, q) = −Σᵢ pᵢ log qᵢ with the natural log.")
    for p_list, q_list, problem in NOT_DISTRIBUTIONS:
        _expect_value_error(cross_entropy_between, p_list, q_list, problem)
    return (f"correct on {len(BETWEEN_CASES)} pairs of distributions (including a certain, wrong "
            f"prediction: inf) and raises ValueError on {len(NOT_DISTRIBUTIONS)} that are not "
            "distributions.")


def _expect_value_error(fn: Any, p_list: list[float], q_list: list[float], problem: str) -> None:
    """The student's function must refuse (ValueError) a p or q that is not a distribution."""
    name = f"cross_entropy_between({p_list}, {q_list})"
    try:
        result = fn(torch.tensor(p_list), torch.tensor(q_list))
    except NotImplementedError:
        raise NotDoneYet("`cross_entropy_between`") from None
    except ValueError as err:
        if not str(err).strip():
            raise CheckFailure(
                f"{name} raises ValueError, but with no message. Say what is wrong, so whoever "
                "sees the error can fix it.",
                hint='e.g. `raise ValueError(f"q must sum to 1, but it sums to {q.sum():.4g}")`.') from None
        return
    except Exception as err:  # noqa: BLE001 - any other kind of error is the student's to fix
        raise CheckFailure(
            f"{name} raised {type(err).__name__}, but a bad argument should raise ValueError "
            f"({problem}).", hint="`raise ValueError(\"...\")` with a message that says what is wrong. "
            "(An `assert` raises AssertionError, and is skipped when Python runs with -O.)") from None
    shown = f"{as_number(name, result):.4g}" if result is not None else "None"
    raise CheckFailure(
        f"{name} returned {shown}, but {problem}, so it is not a probability distribution and no "
        "cross-entropy should be computed: raise ValueError instead. A check like this would have "
        "caught the mistaken worked example.",
        hint="Check that every entry is ≥ 0 and that the entries sum to 1 (within a tolerance "
        "such as 1e-5, e.g. with `torch.isclose`), for p and for q.")


# ------------------------------------------------------------------------ cross_entropy


def _ce_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    plain = torch.randn(4, 3, generator=g) * 2
    ignored = torch.randn(5, 4, generator=g)
    batched = torch.randn(2, 3, 5, generator=g)
    big = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 500.0], [-800.0, -805.0, -790.0]])
    return [
        ("logits of shape (4, 3)", plain, torch.tensor([0, 2, 1, 1])),
        ("logits of shape (5, 4) with two targets -100", ignored, torch.tensor([1, -100, 3, -100, 0])),
        ("logits of shape (2, 3, 5) with targets (2, 3), one -100", batched,
         torch.tensor([[4, 0, 2], [1, -100, 3]])),
        ("large logits such as ±1000", big, torch.tensor([0, 2, 1])),
    ]


def _ce_mistakes(logits: torch.Tensor, targets: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    flat_logits = logits.reshape(-1, logits.shape[-1]).double()
    flat_targets = targets.reshape(-1)
    keep = flat_targets != IGNORE_INDEX
    n_kept, n_all = int(keep.sum()), flat_targets.numel()
    picked_logits = flat_logits[keep, flat_targets[keep]]
    logp = F.log_softmax(flat_logits, dim=-1)[keep, flat_targets[keep]]
    mistakes: dict[str, Any] = {
        "the sign is wrong: a loss is −log p, which is never negative": (
            -expected, "The loss is minus the log-probability of the target."),
        "it is in bits (log base 2); F.cross_entropy uses the natural log": (
            expected / LN2, "Use the natural log (`torch.log`, `torch.logsumexp`)."),
        "it is the sum of the per-position losses; the loss is their mean": (
            expected * n_kept, "Divide by the number of positions that are scored."),
        "it uses the target's raw logit, −z_target, without the normaliser log Σ exp(z) that "
        "turns logits into log-probabilities": (
            -picked_logits.mean(), "log p_target = z_target − log Σⱼ exp(zⱼ) (the log-softmax)."),
        "it averages −p_target (probabilities), not −log p_target": (
            -logp.exp().mean(), "Take the log of the target's probability."),
    }
    if n_kept < n_all:
        mistakes["it divides by all the positions, including the ignored ones (target -100); the mean "
                 f"is over the {n_kept} scored positions only"] = (
            expected * n_kept / n_all, "Count only the positions where targets != -100.")
        clamped = flat_targets.clamp(min=0)
        mistakes["the ignored positions (target -100) are scored as if their target were class 0"] = (
            -F.log_softmax(flat_logits, dim=-1)[torch.arange(n_all), clamped].mean(),
            "Drop the positions with target -100 instead of replacing the -100.")
    return mistakes


UNSTABLE_HINT = ("Use log-sum-exp: log Σ exp(z) = m + log Σ exp(z − m) with m the largest logit "
                 "(`torch.logsumexp`), so exp() never sees a large number, and compute "
                 "log p = z − log Σ exp(z) directly instead of taking the log of a softmax.")


@checker("cross_entropy")
def check_cross_entropy(cross_entropy: Any) -> str:
    """``cross_entropy(logits, targets)`` must equal ``F.cross_entropy(..., ignore_index=-100)``."""
    for label, logits, targets in _ce_cases():
        expected = reference_cross_entropy(logits, targets)
        name = f"the loss for {label}"
        try:
            got = call_student(cross_entropy, logits.clone().requires_grad_(True), targets.clone())
        except CheckFailure as failure:
            raise _explain_ce_error(failure, label, targets) from None
        value = as_number(name, got)
        if "large" in label and not math.isfinite(value):
            raise CheckFailure(
                f"{name} is {value}: the computation is numerically unstable. exp(1000) overflows to "
                "inf in float32 (and exp(−1000) underflows to 0, whose log is −inf), although the "
                f"loss itself is an ordinary number, {expected.item():g}.", hint=UNSTABLE_HINT)
        if isinstance(got, torch.Tensor) and got.numel() == 1 and got.dim() > 0:
            raise CheckFailure(f"{name} has shape {tuple(got.shape)}; the mean loss should be a single "
                               "number, shape ().", hint="`.mean()` of a tensor has shape ().")
        compare_arrays(name, value, expected.item(), atol=1e-4, rtol=1e-5,
                       mistakes=_ce_mistakes(logits, targets, expected),
                       hint="The loss is the mean over scored positions of −log_softmax(logits)[target].")
        if not isinstance(got, torch.Tensor) or got.grad_fn is None:
            raise CheckFailure(
                f"{name} has the right value but is {short_repr(got)}, which carries no gradient: "
                "training calls `loss.backward()` on it.",
                hint="Stay with torch operations to the end: no `.item()`, `float(...)`, numpy or "
                "`torch.tensor(...)` of a result.")
    return ("agrees with F.cross_entropy(..., ignore_index=-100) on 4 inputs, including "
            "(B, T, C) logits, ignored targets and logits of ±1000.")


def _explain_ce_error(failure: CheckFailure, label: str, targets: torch.Tensor) -> CheckFailure:
    """A crash on 3-D logits or on -100 targets, said in words. (The cases come in an order
    that tells them apart: -100 targets first appear with 2-D logits.)"""
    if "raised" not in failure.message:
        return failure
    error = failure.message.split(" raised ", 1)[-1].split(" (on input")[0].rstrip(".") + "."
    if targets.dim() > 1:
        return CheckFailure(
            f"your function crashed on {label}; it raised {error} It should accept any leading "
            "dimensions, like a language model's (B, T, C) logits with (B, T) targets.",
            hint="Flatten first: `logits.reshape(-1, logits.shape[-1])` and `targets.reshape(-1)`.")
    if bool((targets == IGNORE_INDEX).any()):
        return CheckFailure(
            f"your function crashed on {label}; it raised {error} A target of -100 is not a class: "
            "it marks a position to ignore (padding, or a prompt token), and must not be used as an index.",
            hint="Build `keep = targets != -100` and score only those positions.")
    return failure


# -------------------------------------------------------------------- logit_gradients

GRADIENT_Z = torch.tensor([-8.0, -4.0, -1.0, 0.0, 1.0, 4.0, 8.0], dtype=torch.float64)
GRADIENT_CASES: list[tuple[str, torch.Tensor, torch.Tensor]] = [
    ("label y = 1", GRADIENT_Z, torch.ones_like(GRADIENT_Z)),
    ("label y = 0", GRADIENT_Z, torch.zeros_like(GRADIENT_Z)),
    ("mixed labels", torch.tensor([-3.0, 2.0, 0.5], dtype=torch.float64),
     torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)),
]


def _gradient_mistakes(z: torch.Tensor, y: torch.Tensor, which: str) -> dict[str, Any]:
    p = torch.sigmoid(z)
    if which == "mse":
        return {
            "it is the derivative with respect to the probability p = σ(z), 2(p − y), not with "
            "respect to the logit z. The chain rule multiplies by σ'(z) = σ(z)(1 − σ(z))": (
                2 * (p - y), "d/dz (σ(z) − y)² = 2(σ(z) − y) · σ(z)(1 − σ(z))."),
            "the factor σ'(z) is written as σ(z), not σ(z)(1 − σ(z))": 2 * (p - y) * p,
        }
    return {
        "it is the derivative with respect to the probability p = σ(z), not with respect to the "
        "logit z": (torch.where(y == 1, -1 / p, 1 / (1 - p)),
                    "Differentiate −[y log σ(z) + (1 − y) log(1 − σ(z))] with respect to z; "
                    "σ'(z) = σ(z)(1 − σ(z)) cancels the 1/σ(z)."),
        "it still has the factor σ'(z) = σ(z)(1 − σ(z)), which the log cancels": (
            (p - y) * p * (1 - p), "After the chain rule, simplify: the σ'(z) = σ(z)(1 − σ(z)) cancels "
            "against the 1/σ(z) (or 1/(1 − σ(z))) that the log brings."),
    }


@checker("logit_gradients")
def check_logit_gradients(logit_gradients: Any) -> str:
    """``logit_gradients(z, y)`` returns (d/dz (σ(z) − y)², d/dz BCE(σ(z), y)), elementwise."""
    for label, z, y in GRADIENT_CASES:
        grad_mse, grad_ce = reference_logit_gradients(z, y)
        got = call_student(logit_gradients, z.clone(), y.clone())
        fn_name = f"logit_gradients(z, y) for {label}"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailure(f"{fn_name} should return two tensors (grad_mse, grad_ce), but it "
                               f"returned {short_repr(got)}.", hint="End with `return grad_mse, grad_ce`.")
        got_mse, got_ce = got
        if _same(got_mse, grad_ce) and _same(got_ce, grad_mse):
            raise CheckFailure(f"{fn_name}: the two gradients are right but returned in the wrong order.",
                               hint="Return the squared-error gradient first: `return grad_mse, grad_ce`.")
        z_text = _fmt(z)
        compare_arrays(f"grad_mse (the squared-error gradient) at z = {z_text}, {label}", got_mse, grad_mse,
                       atol=1e-7, rtol=1e-5, mistakes=_gradient_mistakes(z, y, "mse"),
                       hint="d/dz (σ(z) − y)² = 2(σ(z) − y) · σ'(z).")
        compare_arrays(f"grad_ce (the cross-entropy gradient) at z = {z_text}, {label}", got_ce, grad_ce,
                       atol=1e-7, rtol=1e-5, mistakes=_gradient_mistakes(z, y, "ce"),
                       hint="For the binary cross-entropy the derivative with respect to the logit is "
                       "remarkably simple: work it out for y = 1 first.")
    return ("both gradients agree with autograd on 3 cases, including confidently wrong logits "
            "(z = −8 with y = 1).")


# ------------------------------------------------------------------- bigram probabilities

BIGRAM_COUNTS = torch.tensor([
    [0, 5, 3, 2],
    [4, 0, 0, 6],
    [1, 1, 1, 1],
    [0, 0, 0, 0],  # a token never seen in front of another one
])
PROBABILITY_CASES: list[tuple[str, torch.Tensor, float]] = [
    ("integer counts, k = 1", BIGRAM_COUNTS, 1.0),
    ("integer counts, k = 0.1", BIGRAM_COUNTS, 0.1),
    ("float counts with no zero row, k = 0 (plain relative frequencies)",
     torch.tensor([[2.0, 6.0, 0.0], [1.0, 1.0, 2.0], [0.0, 0.0, 3.0]]), 0.0),
    ("a 5 × 5 table, k = 0.5", torch.arange(25.0).reshape(5, 5) % 7, 0.5),
]


def _probability_mistakes(counts: torch.Tensor, k: float) -> dict[str, Any]:
    c = counts.double()
    v = c.shape[1]
    mistakes: dict[str, Any] = {
        "the rows do not sum to 1: k is added to every count, but k·V is not added to the row "
        f"total (each of the V = {v} entries of a row got k more)": (
            (c + k) / c.sum(dim=1, keepdim=True),
            "Divide by Σⱼ counts[i, j] + k·V."),
        "it is P(current | next), normalised over columns: P(next | current) divides each row "
        "by that row's total": (
            (c + k) / (c.sum(dim=0, keepdim=True) + k * c.shape[0]), "Sum over dim=1 (along a row)."),
        "it divides by the total of the whole table, which gives the joint probability P(current, "
        "next), not the conditional P(next | current)": (
            (c + k) / (c.sum() + k * c.numel()), "Divide each row by its own total."),
    }
    if k > 0:
        mistakes["k is added only to the zero counts; add-k smoothing adds k to every count"] = (
            torch.where(c == 0, c + k, c) / torch.where(c == 0, c + k, c).sum(dim=1, keepdim=True),
            "Add k to every count, then divide by the new row total.")
    return mistakes


@checker("bigram_probabilities")
def check_bigram_probabilities(bigram_probabilities: Any) -> str:
    """``bigram_probabilities(counts, k)`` is the add-k smoothed P(next | current) table."""
    for label, counts, k in PROBABILITY_CASES:
        expected = reference_bigram_probabilities(counts, k)
        got = call_student(bigram_probabilities, counts.clone(), k)
        name = f"bigram_probabilities(counts, k={k:g}) for {label}"
        if isinstance(got, torch.Tensor) and not got.is_floating_point():
            raise CheckFailure(f"{name} holds integers ({got.dtype}), so every probability was rounded "
                               "down to 0 or 1.", hint="Turn the counts into floats first: `counts.float()`.")
        compare_arrays(name, got, expected, atol=1e-6, rtol=1e-4, probabilities=True, dim=1,
                       mistakes=_probability_mistakes(counts, k),
                       hint="P[i, j] = (counts[i, j] + k) / (Σⱼ counts[i, j] + k·V).")
    return (f"correct on {len(PROBABILITY_CASES)} tables, including a row of zeros (uniform after "
            "smoothing) and k = 0.")


# -------------------------------------------------------------------- bigram perplexity

_TABLE = reference_bigram_probabilities(BIGRAM_COUNTS, 1.0)
PERPLEXITY_CASES: list[tuple[str, torch.Tensor, torch.Tensor]] = [
    ("a 4-token table and 8 ids", _TABLE, torch.tensor([0, 1, 3, 3, 2, 0, 2, 1])),
    ("a uniform table over 6 tokens", torch.full((6, 6), 1 / 6), torch.tensor([5, 0, 0, 3, 1, 4, 2])),
    ("a table of relative frequencies and 2 ids (one prediction)",
     reference_bigram_probabilities(torch.tensor([[2.0, 6.0, 0.0], [1.0, 1.0, 2.0], [0.0, 0.0, 3.0]]), 0.0),
     torch.tensor([0, 1])),
    ("a 5-token table and 12 ids", reference_bigram_probabilities(torch.arange(25.0).reshape(5, 5) % 7, 0.5),
     torch.tensor([4, 4, 1, 0, 2, 3, 3, 0, 1, 2, 4, 0])),
]


def _perplexity_mistakes(probs: torch.Tensor, ids: torch.Tensor) -> dict[str, Any]:
    p = probs.double()
    here, after = ids[:-1], ids[1:]
    nll = -p[here, after].log()
    mistakes: dict[str, Any] = {
        "it is the mean cross-entropy (the loss), not the perplexity, which is exp of it": (
            nll.mean(), "Perplexity = exp(mean of −log P(next | current))."),
        "it is exp of the SUM of the losses; the perplexity is exp of their MEAN": (
            nll.sum().exp(), "Average the −log p values before taking exp."),
        "it averages 1/p over the positions (an arithmetic mean). Perplexity is exp of the mean of "
        "−log p, which is a geometric mean of 1/p": (
            (1 / p[here, after]).mean(), "Take the mean of −log p, then exp."),
        "it mixes bases: log base 2 for the losses but exp for the perplexity (use 2 ** with log2, "
        "or exp with the natural log)": (nll / LN2).mean().exp(),
        "the table is read the wrong way round, P(current | next): row = the token before, "
        "column = the token after": (
            (-p[after, here].log()).mean().exp(), "Look up probs[ids[t], ids[t + 1]]."),
        "it scores each token against itself, probs[ids[t], ids[t]], instead of the pair "
        "(ids[t], ids[t + 1])": (
            (-p[here, here].log()).mean().exp(), "The pairs are (ids[:-1], ids[1:])."),
        "it scores every token against itself, probs[ids, ids], instead of the pairs "
        "(ids[t], ids[t + 1])": (
            (-p[ids, ids].log()).mean().exp(), "The pairs are (ids[:-1], ids[1:])."),
    }
    if ids.numel() > 2:
        mistakes["it predicts each token from the one two places back: the pairs are off by one"] = (
            (-p[ids[:-2], ids[2:]].log()).mean().exp(), "The pairs are (ids[:-1], ids[1:]).")
    return mistakes


@checker("bigram_perplexity")
def check_bigram_perplexity(bigram_perplexity: Any) -> str:
    """``bigram_perplexity(probs, ids)`` = exp(mean −log probs[ids[t], ids[t+1]])."""
    for label, probs, ids in PERPLEXITY_CASES:
        expected = reference_bigram_perplexity(probs, ids)
        got = call_student(bigram_perplexity, probs.clone(), ids.clone())
        name = f"the perplexity for {label}"
        value = as_number(name, got)
        compare_arrays(name, value, expected, atol=1e-5, rtol=1e-4,
                       mistakes=_perplexity_mistakes(probs, ids),
                       hint="Score every pair (ids[t], ids[t + 1]); perplexity = exp(mean −log p).")
    return (f"correct on {len(PERPLEXITY_CASES)} sequences, including a uniform table (perplexity = "
            "the vocabulary size) and a single prediction.")
