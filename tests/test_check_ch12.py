"""Tests of the chapter 12 checks (sftlearn.check.ch12): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with independent ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch12

from conftest import failure_of, stub

# ------------------------------------------------------------------ the references themselves


def test_reference_log_uniform_is_evenly_spread_in_log_space():
    u = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    got = ch12.reference_log_uniform(u, 1e-4, 1e-2)
    assert torch.allclose(got, torch.tensor([1e-4, 1e-3, 1e-2], dtype=torch.float64), rtol=1e-12)


def test_reference_k_fold_matches_scikit_learn_fold_sizes_and_partition():
    from sklearn.model_selection import KFold

    for n, k in [(10, 3), (11, 4), (7, 7)]:
        ours = ch12.reference_k_fold(n, k, seed=3)
        theirs = list(KFold(n_splits=k).split(range(n)))
        assert sorted(len(v) for _, v in ours) == sorted(len(v) for _, v in theirs)
        assert sorted(i for _, v in ours for i in v) == list(range(n))
        for train, val in ours:
            assert sorted(train + val) == list(range(n))


def test_reference_accumulation_equals_one_big_batch():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).double()
    batches = ch12._micro_batches((3, 1, 6), seed=1)
    ch12.reference_accumulate_gradients(model, batches)
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    F.cross_entropy(model(x), y).backward()
    for a, p in zip(accumulated, model.parameters()):
        assert torch.allclose(a, p.grad, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- log_uniform


def right_log_uniform(u, low, high):
    if not 0 < low < high:
        raise ValueError("need 0 < low < high")
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def test_log_uniform_right(capsys):
    ch12.check_log_uniform(right_log_uniform)
    assert "✓ log_uniform: correct on 3 ranges" in capsys.readouterr().out


def test_log_uniform_right_in_base_10(capsys):
    def base_10(u, low, high):
        if not 0 < low < high:
            raise ValueError("bad range")
        return 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))

    ch12.check_log_uniform(base_10)
    assert "✓ log_uniform" in capsys.readouterr().out


def test_log_uniform_stub(capsys):
    ch12.check_log_uniform(stub)
    assert "log_uniform: not done yet" in capsys.readouterr().out


def _checked(fn):
    def wrapped(u, low, high):
        if not 0 < low < high:
            raise ValueError("bad range")
        return fn(u, low, high)
    return wrapped


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_checked(lambda u, lo, hi: lo + u * (hi - lo)), "uniform on a linear scale"),
        (_checked(lambda u, lo, hi: (hi / lo) ** u), "never starts at `low`"),
        (_checked(lambda u, lo, hi: torch.exp(math.log10(lo) + u * (math.log10(hi) - math.log10(lo)))),
         "mixes bases"),
        (_checked(lambda u, lo, hi: hi * (lo / hi) ** u), "ends are swapped"),
        (_checked(lambda u, lo, hi: torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))[:3]),
         "shape"),
        (lambda u, lo, hi: torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))),
         "should raise ValueError"),
        (lambda u, lo, hi: None, "log_uniform"),
    ],
)
def test_log_uniform_wrong_answers(answer, words):
    assert words in str(failure_of(ch12.check_log_uniform, answer))


def test_log_uniform_passed_a_result_not_a_function():
    assert "expected a function" in str(failure_of(ch12.check_log_uniform, torch.ones(3)))


# -------------------------------------------------------------------------------- k_fold


def right_k_fold(n, k, seed=0):
    if not 2 <= k <= n:
        raise ValueError("need 2 <= k <= n")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    folds = [order[i * n // k : (i + 1) * n // k] for i in range(k)]
    return [([x for j, f in enumerate(folds) if j != i for x in f], folds[i]) for i in range(k)]


def test_k_fold_right(capsys):
    ch12.check_k_fold(right_k_fold)
    assert "✓ k_fold: correct on 5 (n, k) pairs" in capsys.readouterr().out


def test_k_fold_returning_one_number_is_a_failure_not_a_crash():
    failure = failure_of(ch12.check_k_fold, lambda n, k, seed=0: torch.tensor(0))
    assert failure.message == "k_fold(n=10, k=5, seed=0) should return 5 folds (one (train, val) pair per fold), got tensor(0)."


def test_k_fold_right_with_numpy_and_sets(capsys):
    import numpy as np

    def numpy_folds(n, k, seed=0):
        if not 2 <= k <= n:
            raise ValueError("bad k")
        order = np.random.default_rng(seed).permutation(n)
        parts = np.array_split(order, k)
        return [(set(np.concatenate(parts[:i] + parts[i + 1 :]).tolist()), parts[i]) for i in range(k)]

    ch12.check_k_fold(numpy_folds)
    assert "✓ k_fold" in capsys.readouterr().out


def test_k_fold_stub(capsys):
    ch12.check_k_fold(stub)
    assert "k_fold: not done yet" in capsys.readouterr().out


def _guarded(fn):
    def wrapped(n, k, seed=0):
        if not 2 <= k <= n:
            raise ValueError("need 2 <= k <= n")
        return fn(n, k, seed)
    return wrapped


def _order(n, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


@_guarded
def leaky(n, k, seed):  # trains on everything, validation included
    order = _order(n, seed)
    return [(order, order[i * n // k : (i + 1) * n // k]) for i in range(k)]


@_guarded
def independent_samples(n, k, seed):  # each fold's validation drawn afresh: they overlap
    out = []
    for i in range(k):
        order = _order(n, seed * 1000 + i)
        val = order[: n // k]
        out.append((order[n // k :], val))
    return out


@_guarded
def big_last_fold(n, k, seed):  # size n // k for all but the last, which takes the rest
    order, size = _order(n, seed), n // k
    folds = [order[i * size : (i + 1) * size] for i in range(k - 1)] + [order[(k - 1) * size :]]
    return [([x for j, f in enumerate(folds) if j != i for x in f], folds[i]) for i in range(k)]


@_guarded
def drops_remainder(n, k, seed):  # the last n % k examples are never used
    order, size = _order(n, seed), n // k
    folds = [order[i * size : (i + 1) * size] for i in range(k)]
    return [([x for j, f in enumerate(folds) if j != i for x in f], folds[i]) for i in range(k)]


@_guarded
def remainder_only_trained(n, k, seed):  # folds of n // k; the last n % k examples are never validated
    order, size = _order(n, seed), n // k
    folds = [order[i * size : (i + 1) * size] for i in range(k)]
    return [([x for x in range(n) if x not in fold], fold) for fold in folds]


@_guarded
def unshuffled(n, k, seed):
    folds = [list(range(i * n // k, (i + 1) * n // k)) for i in range(k)]
    return [([x for j, f in enumerate(folds) if j != i for x in f], folds[i]) for i in range(k)]


@_guarded
def ignores_seed(n, k, seed):
    return right_k_fold(n, k, 12345)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (leaky, "leaks"),
        (independent_samples, "validated in fold"),
        (big_last_fold, "should differ by at most one"),
        (drops_remainder, "never uses"),
        (remainder_only_trained, "k_fold(n=11, k=3, seed=0) never validates 2 example(s)"),
        (unshuffled, "are consecutive runs of indices (0..4, 5..9, ...): the data are not shuffled"),
        (ignores_seed, "same folds for seed 0 and seed 1"),
        (lambda n, k, seed=0: right_k_fold(max(n, 2), min(max(k, 2), max(n, 2)), seed), "should raise ValueError"),
        (_guarded(lambda n, k, seed: right_k_fold(n, k, seed)[:-1]), "should return"),
        (_guarded(lambda n, k, seed: [v for _, v in right_k_fold(n, k, seed)]), "list of example indices"),
        (_guarded(lambda n, k, seed: [(t, v, 0) for t, v in right_k_fold(n, k, seed)]), "should be a pair"),
        (_guarded(lambda n, k, seed: [(t, [x + 0.5 for x in v]) for t, v in right_k_fold(n, k, seed)]),
         "not an index"),
        (lambda n, k, seed=0: None, "should return"),
    ],
)
def test_k_fold_wrong_answers(answer, words):
    assert words in str(failure_of(ch12.check_k_fold, answer))


def test_k_fold_random_every_call_is_not_reproducible():
    calls = []

    @_guarded
    def fresh(n, k, seed):
        calls.append(1)
        return right_k_fold(n, k, seed + len(calls))

    assert "different folds on two calls" in str(failure_of(ch12.check_k_fold, fresh))


# ------------------------------------------------------------------ accumulate_gradients


def right_accumulate(model, micro_batches):
    total = sum(len(y) for _, y in micro_batches)
    model.zero_grad()
    for x, y in micro_batches:
        (F.cross_entropy(model(x), y) * len(y) / total).backward()


def test_accumulate_right(capsys):
    ch12.check_accumulate_gradients(right_accumulate)
    assert "✓ accumulate_gradients: equal to one big batch's gradient" in capsys.readouterr().out


def test_accumulate_right_with_summed_losses(capsys):
    def summed(model, micro_batches):  # reduction="sum", divided once by the total: also right
        total = sum(len(y) for _, y in micro_batches)
        for p in model.parameters():
            p.grad = None
        for x, y in micro_batches:
            (F.cross_entropy(model(x), y, reduction="sum") / total).backward()

    ch12.check_accumulate_gradients(summed)
    assert "✓ accumulate_gradients" in capsys.readouterr().out


def test_accumulate_stub(capsys):
    ch12.check_accumulate_gradients(stub)
    assert "accumulate_gradients: not done yet" in capsys.readouterr().out


def never_cleared(model, micro_batches):
    total = sum(len(y) for _, y in micro_batches)
    for x, y in micro_batches:
        (F.cross_entropy(model(x), y) * len(y) / total).backward()


def no_backward(model, micro_batches):
    model.zero_grad(set_to_none=True)


def sum_of_means(model, micro_batches):  # the exercise's mistake: no weighting at all
    model.zero_grad()
    for x, y in micro_batches:
        F.cross_entropy(model(x), y).backward()


def divide_by_count(model, micro_batches):  # right only when the micro-batches are equal
    model.zero_grad()
    for x, y in micro_batches:
        (F.cross_entropy(model(x), y) / len(micro_batches)).backward()


def cleared_in_the_loop(model, micro_batches):
    total = sum(len(y) for _, y in micro_batches)
    for x, y in micro_batches:
        model.zero_grad()
        (F.cross_entropy(model(x), y) * len(y) / total).backward()


def divide_twice(model, micro_batches):  # a mean loss divided by the number of examples again
    total = sum(len(y) for _, y in micro_batches)
    model.zero_grad()
    for x, y in micro_batches:
        (F.cross_entropy(model(x), y) / total).backward()


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (sum_of_means, "never divided"),
        (divide_by_count, "right only when they are all the same size"),
        (cleared_in_the_loop, "only the last micro-batch"),
        (divide_twice, "divided twice"),
        (never_cleared, "left over from before"),
        (no_backward, "has no gradient"),
        (lambda model, batches: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_accumulate_wrong_answers(answer, words):
    assert words in str(failure_of(ch12.check_accumulate_gradients, answer))


def test_accumulate_mistakes_are_distinguishable():
    """The known mistakes give different gradients from the right one on every case (else the
    check could reject a right answer with a mistake's sentence)."""
    for case, sizes in enumerate(ch12.ACCUM_CASES):
        seed = 10 + case
        right = ch12._grads_of(ch12.reference_accumulate_gradients, sizes, seed)
        for rule in (ch12._divide_twice,) + ((ch12._sum_of_means,) if len(sizes) > 1 else ()):
            assert not torch.allclose(right, ch12._grads_of(rule, sizes, seed))


def test_k_fold_built_with_numpy_or_tensor_items_is_accepted(capsys):
    # np.array_split gives NumPy integers, iterating a tensor gives 0-d tensors: indices all the same
    import numpy as np

    def k_fold(n, k, seed=0):
        if not 2 <= k <= n:
            raise ValueError("need 2 <= k <= n")
        folds = np.array_split(np.random.default_rng(seed).permutation(n), k)
        return [([x for j, f in enumerate(folds) if j != i for x in f], list(torch.from_numpy(folds[i])))
                for i in range(k)]

    ch12.check_k_fold(k_fold)
    assert "✓ k_fold" in capsys.readouterr().out
