"""Checks for chapter 12, training in practice.

- ``check_log_uniform(fn)``: ``fn(u, low, high)`` turns uniform numbers ``u`` in [0, 1) into
  samples spread evenly on a *log* scale between ``low`` and ``high`` (how random search draws a
  learning rate), and refuses ``low <= 0`` or ``high <= low`` with a ``ValueError``;
- ``check_k_fold(fn)``: ``fn(n, k, seed)`` returns ``k`` pairs ``(train_indices, val_indices)``
  that split ``range(n)`` for k-fold cross-validation: every example is validated exactly once,
  never trained on in the fold that validates it, and fold sizes differ by at most one;
- ``check_accumulate_gradients(fn)``: ``fn(model, micro_batches)`` leaves in each parameter's
  ``.grad`` the gradient of the mean loss over *all* examples of all micro-batches, what one big
  batch would give (the "spot the mistake" exercise: a common mistake sums the micro-batches'
  mean losses without weighting them, which makes the gradient k times too large).

Each check compares with a reference on several inputs, edge cases included, and recognises the
usual wrong answers by the value they produce.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from sftlearn.check._core import (
    CheckFailure,
    NotDoneYet,
    call_student,
    checker,
    compare_arrays,
    is_collection,
    python_number,
    short_repr,
)
from sftlearn.device import seeded

# ------------------------------------------------------------------- reference versions


def reference_log_uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``low * (high / low) ** u``: equal steps in ``u`` are equal *ratios* of the result."""
    u = torch.as_tensor(u, dtype=torch.float64)
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def reference_k_fold(n: int, k: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Shuffle ``range(n)`` with ``seed``, cut it into k nearly equal folds; fold i validates."""
    if k < 2 or k > n:
        raise ValueError(f"k-fold needs 2 <= k <= n, got k={k} with n={n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    folds = [order[i * n // k : (i + 1) * n // k] for i in range(k)]
    return [(sorted(x for j, f in enumerate(folds) if j != i for x in f), sorted(folds[i]))
            for i in range(k)]


def reference_accumulate_gradients(model: torch.nn.Module, micro_batches) -> None:
    """Gradient of the mean cross-entropy over every example: each micro-batch's mean loss is
    weighted by its share of all the examples, so unequal micro-batches count correctly."""
    total = sum(len(y) for _, y in micro_batches)
    model.zero_grad(set_to_none=True)
    for x, y in micro_batches:
        loss = F.cross_entropy(model(x), y)  # the mean over this micro-batch
        (loss * len(y) / total).backward()


# ------------------------------------------------------------------------------- helpers


def _expect_value_error(fn: Any, args: tuple, what: str, hint: str) -> None:
    """The student's function must refuse ``args`` with a ValueError."""
    try:
        fn(*args)
    except NotImplementedError:
        raise NotDoneYet(f"`{getattr(fn, '__name__', 'your function')}`") from None
    except ValueError:
        return
    except Exception as err:  # noqa: BLE001 - any other error is the wrong kind
        raise CheckFailure(f"{what} raised {type(err).__name__} ({err}); it should raise ValueError.",
                           hint=hint) from None
    raise CheckFailure(f"{what} returned a result; it should raise ValueError.", hint=hint)


# --------------------------------------------------------------------------- log-uniform

U = torch.tensor([0.0, 0.25, 0.5, 0.75, 0.999], dtype=torch.float64)
LOG_CASES: list[tuple[float, float]] = [(1e-4, 1e-1), (0.5, 2.0), (1e-5, 1.0)]


@checker("log_uniform")
def check_log_uniform(log_uniform: Any) -> str:
    """``log_uniform(u, low, high)`` == ``low * (high / low) ** u`` for u in [0, 1)."""
    for low, high in LOG_CASES:
        name = f"log_uniform(u, low={low:g}, high={high:g})"
        got = call_student(log_uniform, U.clone(), low, high)
        mistakes = {
            "the samples are uniform on a linear scale (low + u·(high − low)), so almost all of "
            "them land in the top decade and small values are hardly ever tried": (
                low + U * (high - low), "Interpolate between log(low) and log(high), then exp."),
            "the result never starts at `low`: it is (high/low)**u, which runs from 1 to "
            "high/low": (
                (high / low) ** U, "Add log(low) before taking exp (or multiply by low)."),
            "it mixes bases: the logs are base 10 but the result is exp(), base e": (
                torch.exp(math.log10(low) + U * (math.log10(high) - math.log10(low))),
                "Use the same base for both: math.log with torch.exp, or log10 with 10 ** (...)."),
            "the ends are swapped: u = 0 gives high instead of low": (
                reference_log_uniform(1 - U, low, high), "u = 0 should give low, u → 1 give high."),
        }
        compare_arrays(name, got, reference_log_uniform(U, low, high), rtol=1e-4, atol=0.0,
                       hint="log_uniform(u) = exp(log(low) + u · (log(high) − log(low))).",
                       mistakes=mistakes)
    for args, what in (((U.clone(), 0.0, 1.0), "log_uniform(u, low=0, high=1)"),
                       ((U.clone(), -1e-3, 1.0), "log_uniform(u, low=-0.001, high=1)"),
                       ((U.clone(), 1e-2, 1e-3), "log_uniform(u, low=0.01, high=0.001)")):
        _expect_value_error(log_uniform, args, what,
                            "A log scale needs 0 < low < high: check both and raise ValueError "
                            "with a message that says so.")
    return (f"correct on {len(LOG_CASES)} ranges, and it refuses a range that is not "
            f"positive or whose ends are in the wrong order.")


# -------------------------------------------------------------------------------- k-fold

FOLD_CASES: list[tuple[int, int]] = [(10, 5), (11, 3), (7, 7), (100, 4), (9, 2)]


def _index_list(name: str, value: Any, n: int) -> list[int]:
    """A student's index collection (list, tuple, range, tensor, array) as a list of ints."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    elif hasattr(value, "tolist"):  # numpy arrays
        value = value.tolist()
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    if not isinstance(value, (list, tuple, range)):
        raise CheckFailure(f"{name} should be a list of example indices, got {short_repr(value)}.",
                           hint="Return each fold as (train_indices, val_indices), two lists of ints.")
    out = []
    for v in value:
        v = python_number(v)  # np.int64 from np.array_split, a 0-d tensor from a tensor's items
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise CheckFailure(f"{name} contains {short_repr(v)}, which is not an index 0..{n - 1}.",
                               hint="Indices are ints that point at examples: 0, 1, ..., n − 1.")
        out.append(v)
    return out


def _folds(k_fold: Any, n: int, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    name = f"k_fold(n={n}, k={k}, seed={seed})"
    got = call_student(k_fold, n, k, seed)
    if not is_collection(got) or len(got) != k:
        raise CheckFailure(f"{name} should return {k} folds (one (train, val) pair per fold), got "
                           f"{short_repr(got)}.", hint="Return a list with one (train, val) pair per fold.")
    folds = []
    for i, pair in enumerate(got):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise CheckFailure(f"fold {i} of {name} should be a pair (train_indices, val_indices), "
                               f"got {short_repr(pair)}.")
        folds.append((_index_list(f"the train indices of fold {i} of {name}", pair[0], n),
                      _index_list(f"the validation indices of fold {i} of {name}", pair[1], n)))
    return folds


def _check_fold_structure(folds, n: int, k: int, seed: int) -> None:
    name = f"k_fold(n={n}, k={k}, seed={seed})"
    everything = set(range(n))
    for i, (train, val) in enumerate(folds):
        leaked = set(train) & set(val)
        if leaked:
            raise CheckFailure(
                f"fold {i} of {name} leaks: {len(leaked)} example(s) (e.g. {min(leaked)}) are in "
                f"both its training and its validation indices. The model would be scored on "
                f"examples it was trained on, and the estimate would look better than it is.",
                hint="A fold trains on every example *except* its own validation examples.")
        if len(set(val)) != len(val) or len(set(train)) != len(train):
            raise CheckFailure(f"fold {i} of {name} lists an example twice.",
                               hint="Each index appears once per fold: in train or in val.")
        missing = everything - set(train) - set(val)
        if missing:
            raise CheckFailure(
                f"fold {i} of {name} never uses {len(missing)} example(s) (e.g. {min(missing)}): "
                f"they are neither trained on nor validated.",
                hint="train + val of every fold together are all n examples.")
    seen: dict[int, int] = {}
    for i, (_, val) in enumerate(folds):
        for v in val:
            if v in seen:
                raise CheckFailure(
                    f"example {v} is validated in fold {seen[v]} and again in fold {i} of {name}. "
                    f"The validation parts must not overlap: then every example is scored exactly "
                    f"once and the k scores are computed on different data.",
                    hint="Shuffle the indices once, then cut that one order into k pieces.")
            seen[v] = i
    unvalidated = everything - set(seen)
    if unvalidated:
        raise CheckFailure(
            f"{name} never validates {len(unvalidated)} example(s) (e.g. {min(unvalidated)}): they "
            f"are in no fold's validation indices, only ever trained on. Every example should be "
            f"validated exactly once, so the k validation parts together are all {n} examples.",
            hint="Cut the whole shuffled order into k pieces, leaving nothing over: fold i can be "
                 "order[i * n // k : (i + 1) * n // k].")
    sizes = sorted(len(val) for _, val in folds)
    if sizes[-1] - sizes[0] > 1:
        raise CheckFailure(
            f"the validation folds of {name} have sizes {sizes}: they should differ by at most one "
            f"({n} = {k} folds of {n // k} or {n // k + 1}); one big last fold gets a different "
            f"weight in the average.",
            hint="Fold i can be order[i * n // k : (i + 1) * n // k].")


@checker("k_fold")
def check_k_fold(k_fold: Any) -> str:
    """``k_fold(n, k, seed)``: k (train, val) pairs; val folds partition range(n), no leakage."""
    for n, k in FOLD_CASES:
        folds = _folds(k_fold, n, k, seed=0)
        _check_fold_structure(folds, n, k, 0)
    n, k = 20, 4
    first, again, other = (_folds(k_fold, n, k, s) for s in (0, 0, 1))
    if first != again:
        raise CheckFailure(f"k_fold(n={n}, k={k}, seed=0) gave different folds on two calls: the "
                           f"same seed must give the same folds, or results cannot be reproduced.",
                           hint="Use a generator seeded with `seed` (torch.Generator().manual_seed(seed)).")
    # Unshuffled folds are the same for every seed too: look for them first, or their own sentence
    # never shows.
    ordered = [list(range(i * n // k, (i + 1) * n // k)) for i in range(k)]
    if [sorted(val) for _, val in first] == ordered:
        raise CheckFailure(f"the folds of k_fold(n={n}, k={k}, seed=0) are consecutive runs of "
                           f"indices (0..4, 5..9, ...): the data are not shuffled, so a dataset "
                           f"stored in order (e.g. sorted by label) gives unrepresentative folds.",
                           hint="Shuffle range(n) with the seeded generator before cutting it.")
    if first == other:
        raise CheckFailure(f"k_fold(n={n}, k={k}) gives the same folds for seed 0 and seed 1: the "
                           f"examples are not shuffled by the seed.",
                           hint="Shuffle range(n) with a generator seeded by `seed` before cutting it.")
    for args in ((5, 1, 0), (4, 5, 0)):
        _expect_value_error(k_fold, args, f"k_fold(n={args[0]}, k={args[1]})",
                            "k-fold needs 2 <= k <= n (k = 1 leaves nothing to train on, k > n "
                            "leaves empty folds): raise ValueError otherwise.")
    return (f"correct on {len(FOLD_CASES)} (n, k) pairs, leave-one-out included: every example is "
            f"validated exactly once and never trained on in its own fold; the seed decides "
            f"the shuffle; bad k is refused.")


# ------------------------------------------------------------------ gradient accumulation

FEATURES, CLASSES = 5, 3
# sizes of the micro-batches in each case: equal, unequal, a single one
ACCUM_CASES: list[tuple[int, ...]] = [(4, 4, 4, 4), (3, 1, 6), (8,)]


def _accum_model(seed: int) -> torch.nn.Module:
    with seeded(seed):
        return torch.nn.Linear(FEATURES, CLASSES).double()


def _micro_batches(sizes: tuple[int, ...], seed: int):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, FEATURES, generator=g, dtype=torch.float64),
             torch.randint(0, CLASSES, (b,), generator=g)) for b in sizes]


def _grads(model: torch.nn.Module) -> torch.Tensor | None:
    """All parameter gradients in one flat vector (None if any parameter has none)."""
    if any(p.grad is None for p in model.parameters()):
        return None
    return torch.cat([p.grad.detach().reshape(-1) for p in model.parameters()])


def _grads_of(rule, sizes, seed) -> torch.Tensor:
    model = _accum_model(seed)
    rule(model, _micro_batches(sizes, seed))
    return _grads(model)


def _sum_of_means(model, batches) -> None:  # the mistake in the exercise: no weighting
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()


def _divide_by_count(model, batches) -> None:  # right only for equal micro-batches
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        (F.cross_entropy(model(x), y) / len(batches)).backward()


def _last_only(model, batches) -> None:  # zero_grad inside the loop
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        (F.cross_entropy(model(x), y) * len(y) / sum(len(b) for _, b in batches)).backward()


def _divide_twice(model, batches) -> None:
    total = sum(len(y) for _, y in batches)
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        (F.cross_entropy(model(x), y) / total).backward()


@checker("accumulate_gradients")
def check_accumulate_gradients(accumulate_gradients: Any) -> str:
    """After ``accumulate_gradients(model, micro_batches)`` the parameters hold the gradient of
    the mean loss over all examples (what one batch of all of them would give)."""
    for case, sizes in enumerate(ACCUM_CASES):
        seed = 10 + case
        name = f"the gradient after accumulating micro-batches of sizes {list(sizes)}"
        model = _accum_model(seed)
        # Stale gradients from an earlier step: a correct function clears them first.
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        call_student(accumulate_gradients, model, _micro_batches(sizes, seed))
        got = _grads(model)
        if got is None:
            raise CheckFailure(f"after accumulate_gradients(model, micro_batches) with sizes "
                               f"{list(sizes)}, a parameter has no gradient (.grad is None).",
                               hint="Call .backward() on each micro-batch's (weighted) loss.")
        expected = _grads_of(reference_accumulate_gradients, sizes, seed)
        stale = expected + 1.0
        mistakes = {
            "it is the gradient of the *sum* of the micro-batches' mean losses, "
            f"{len(sizes)} times too large when they are equal: the loss was never divided": (
                _grads_of(_sum_of_means, sizes, seed),
                "Weight each micro-batch's mean loss by len(y) / (examples in all micro-batches)."),
            "it keeps the gradients left over from before (each .grad started at 1 here): "
            "backward() adds to .grad, it never replaces it": (
                stale, "Clear the gradients once at the start (model.zero_grad())."),
            "only the last micro-batch is left: the gradients are cleared inside the loop, "
            "which throws away every micro-batch before it": (
                _grads_of(_last_only, sizes, seed), "Call zero_grad() once, before the loop."),
            "the mean losses are divided by the total number of examples, but each is already "
            "a mean over its micro-batch, so they are divided twice": (
                _grads_of(_divide_twice, sizes, seed),
                "Multiply the mean loss by len(y) / total, don't just divide by total."),
        }
        if len(set(sizes)) > 1:
            mistakes[
                "each micro-batch is divided by the number of micro-batches, which is right only "
                "when they are all the same size: here the small ones count as much as the big "
                "ones"] = (_grads_of(_divide_by_count, sizes, seed),
                           "Weight by each micro-batch's share of the examples: len(y) / total.")
        compare_arrays(name, got, expected, rtol=1e-6, atol=1e-9, mistakes=mistakes,
                       hint="Its gradient must equal that of F.cross_entropy over all the "
                            "examples of all micro-batches in one batch.")
    return (f"equal to one big batch's gradient for {len(ACCUM_CASES)} sets of micro-batches "
            f"(equal sizes, unequal sizes, a single one), with stale gradients cleared.")
