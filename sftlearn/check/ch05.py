"""Checks for chapter 05, gradient descent.

- ``check_numerical_gradient(fn)``: ``fn(f, x, h)`` estimates ∇f(x) by central differences;
- ``check_momentum_step(fn)``: ``fn(param, grad, velocity, lr, momentum)`` is one step of
  SGD with momentum, returning ``(new_param, new_velocity)``;
- ``check_adam_step(fn)``: ``fn(param, grad, m, v, t, lr, beta1, beta2, eps)`` is one Adam
  step, returning ``(new_param, new_m, new_v)``;
- ``check_adamw_step(fn)``: the same with a last argument ``weight_decay``, for AdamW;
- ``check_train_step(fn)``: ``fn(model, x, y, lr)`` takes one plain gradient-descent step on
  the model's parameters for the cross-entropy loss and returns the loss before the step.

The references are the from-scratch optimizers of :mod:`sftlearn.optim`, which the tests
match against ``torch.optim`` to 1e-6. Each check also computes what the usual mistakes
produce (a forward difference, a missing bias correction, weight decay added to the
gradient, ...) so that it can name the mistake rather than only report a difference.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sftlearn.check._core import CheckFailure, call_student, checker, compare_arrays, short_repr
from sftlearn.device import seeded
from sftlearn.optim import adam_step, adamw_step, momentum_step

# ------------------------------------------------------------------ numerical gradient


def _sum_of_squares(x: torch.Tensor) -> float:
    return sum(v * v for v in x.tolist())


def _exp_and_sine(x: torch.Tensor) -> float:
    a, b, c = x.tolist()
    return math.exp(2 * a) + math.sin(b) * c


def _rosenbrock(x: torch.Tensor) -> float:
    a, b = x.tolist()
    return (1 - a) ** 2 + 100 * (b - a * a) ** 2


def _cube(x: torch.Tensor) -> float:
    return x.tolist()[0] ** 3


@dataclass(frozen=True)
class GradientCase:
    name: str
    f: Callable[[torch.Tensor], float]
    x: tuple[float, ...]
    h: float
    gradient: Callable[[list[float]], list[float]]  # the exact answer, by hand


GRADIENT_CASES = [
    GradientCase("f(x) = Σ xᵢ²", _sum_of_squares, (1.0, -2.0, 3.0), 1e-3,
                 lambda x: [2 * v for v in x]),
    GradientCase("f(x) = exp(2x₀) + sin(x₁)·x₂", _exp_and_sine, (0.5, 1.0, -2.0), 1e-3,
                 lambda x: [2 * math.exp(2 * x[0]), math.cos(x[1]) * x[2], math.sin(x[1])]),
    GradientCase("the Rosenbrock function", _rosenbrock, (-1.0, 1.5), 1e-4,
                 lambda x: [-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)]),
    GradientCase("f(x) = x₀³ (a single coordinate)", _cube, (2.0,), 1e-3, lambda x: [3 * x[0] ** 2]),
]


def _basis(n: int, i: int, h: float) -> torch.Tensor:
    e = torch.zeros(n, dtype=torch.float64)
    e[i] = h
    return e


def _difference_quotients(case: GradientCase) -> dict[str, Any]:
    """What the usual wrong finite-difference formulas give on this case."""
    x = torch.tensor(case.x, dtype=torch.float64)
    n, h, f = x.numel(), case.h, case.f
    forward = [(f(x + _basis(n, i, h)) - f(x)) / h for i in range(n)]
    backward = [(f(x) - f(x - _basis(n, i, h))) / h for i in range(n)]
    central_over_h = [(f(x + _basis(n, i, h)) - f(x - _basis(n, i, h))) / h for i in range(n)]
    central_over_h2 = [(f(x + _basis(n, i, h)) - f(x - _basis(n, i, h))) / (2 * h * h) for i in range(n)]
    central_negated = [-q / 2 for q in central_over_h]
    everything = (f(x + h) - f(x - h)) / (2 * h)
    # Perturb x in place and never put it back: every later coordinate sees a shifted point.
    shifted, not_restored = x.clone(), []
    for i in range(n):
        shifted[i] += h
        plus = f(shifted)
        shifted[i] -= 2 * h
        not_restored.append((plus - f(shifted)) / (2 * h))
    return {
        "it is the forward difference (f(x + h) − f(x)) / h, whose error shrinks only in proportion "
        "to h": (forward, "Use the central difference (f(x + h·eᵢ) − f(x − h·eᵢ)) / (2h): its error "
                 "shrinks like h²."),
        "it is the backward difference (f(x) − f(x − h)) / h, whose error shrinks only in proportion "
        "to h": (backward, "Use the central difference (f(x + h·eᵢ) − f(x − h·eᵢ)) / (2h)."),
        "the central difference is divided by h instead of 2h (the two points are 2h apart)":
            (central_over_h, "Divide f(x + h·eᵢ) − f(x − h·eᵢ) by 2h."),
        "it has the wrong sign, as when the difference is taken the wrong way round, "
        "f(x − h·eᵢ) − f(x + h·eᵢ)":
            (central_negated,
             "The slope is (f(x + h·eᵢ) − f(x − h·eᵢ)) / (2h): the value on the right minus the value on the left."),
        "the difference is divided by 2h² instead of 2h":
            (central_over_h2, "Divide by the distance between the two points, 2h, once."),
        "every coordinate is moved at once, which measures the slope along (1, 1, ..., 1), the sum of "
        "all partial derivatives": ([everything] * n, "Move one coordinate at a time: x + h·eᵢ where eᵢ "
                                    "is zero except for a 1 at position i."),
        "x is changed in place and not put back, so later coordinates are measured at a shifted point":
            (not_restored, "Work on a copy for each coordinate (`xp = x.clone(); xp[i] += h`)."),
    }


def _check_precision(name: str, got: Any, expected: torch.Tensor) -> None:
    """A float32 result that is right to a few digits only: say that precision, not the formula, is wrong."""
    if getattr(got, "dtype", None) not in (torch.float32, torch.float16, torch.bfloat16):
        return
    values = torch.as_tensor(got).detach().double()
    if values.shape != expected.shape or torch.allclose(values, expected, rtol=1e-5, atol=1e-6):
        return
    if torch.allclose(values, expected, rtol=1e-2, atol=1e-3):
        raise CheckFailure(
            f"{name} is right to only a few digits because it is computed in {got.dtype} "
            f"(the largest error is {(values - expected).abs().max().item():.2g}).",
            hint="Finite differences subtract two nearly equal numbers and lose many digits; float32 keeps "
                 "only about 7. Keep x's dtype (float64): `torch.zeros_like(x)`, and do not call `.float()`.")


@checker("numerical_gradient")
def check_numerical_gradient(numerical_gradient: Any) -> str:
    """``numerical_gradient(f, x, h)`` must return the central-difference estimate of ∇f(x)."""
    for case in GRADIENT_CASES:
        x = torch.tensor(case.x, dtype=torch.float64)
        got = call_student(numerical_gradient, case.f, x, case.h)
        expected = torch.tensor(case.gradient(list(case.x)), dtype=torch.float64)
        name = f"the gradient of {case.name} at x = {list(case.x)} (h = {case.h:g})"
        _check_precision(name, got, expected)
        # The exact derivative, to 1e-5 relative: central differences reach it at these h,
        # the one-sided ones (error ∝ h) do not.
        compare_arrays(name, got, expected, atol=1e-6, rtol=1e-5, mistakes=_distinct(_difference_quotients(case)),
                       hint="Check that you move only coordinate i, by +h and by −h, and divide by 2h.")
    return (f"agrees with the exact gradient on {len(GRADIENT_CASES)} functions, including "
            "Rosenbrock's and a single coordinate.")


# -------------------------------------------------------------------- helpers for steps


def _distinct(mistakes: dict[str, Any]) -> dict[str, Any]:
    """Merge mistakes that give the same values on this input, so the message names them all.

    (At t = 1 with β = (0.9, 0.999), for example, swapping Adam's two bias corrections and
    putting √(1 − β₂ᵗ) in the denominator happen to give the very same step.)
    """
    merged: dict[str, Any] = {}
    values: dict[str, torch.Tensor] = {}
    for description, produced in mistakes.items():
        value, hint = produced if isinstance(produced, tuple) else (produced, None)
        value = torch.as_tensor(value, dtype=torch.float64)
        twin = next((d for d, v in values.items() if v.shape == value.shape
                     and bool(torch.allclose(v, value, rtol=1e-4, atol=1e-5, equal_nan=True))), None)
        if twin is None:
            merged[description], values[description] = (value, hint), value
            continue
        old_value, old_hint = merged.pop(twin)
        combined = f"{twin}; on this input that is also what you get when {description}"
        merged[combined], values[combined] = (old_value, old_hint), values.pop(twin)
    return merged


def _unpack(result: Any, names: tuple[str, ...], fn_name: str) -> tuple[Any, ...]:
    """The student's returned tuple, or a plain failure if it is not one of the right length."""
    wanted = "(" + ", ".join(names) + ")"
    if not isinstance(result, (tuple, list)):
        raise CheckFailure(f"{fn_name} should return the tuple {wanted}, but it returned {short_repr(result)}.",
                           hint=f"End with `return {', '.join(names)}`.")
    if len(result) != len(names):
        raise CheckFailure(f"{fn_name} should return {len(names)} values {wanted}, but it returned {len(result)}.",
                           hint=f"End with `return {', '.join(names)}`.")
    return tuple(result)


def _check_order(got: tuple[Any, ...], expected: tuple[torch.Tensor, ...], names: tuple[str, ...],
                 fn_name: str) -> None:
    """Recognise the right values returned in the wrong order."""
    def same(a: Any, b: torch.Tensor) -> bool:
        try:
            a = torch.as_tensor(a).to(b.dtype)
        except (TypeError, ValueError, RuntimeError):
            return False
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-6))

    if all(same(g, e) for g, e in zip(got, expected)):
        return
    for order in itertools.permutations(range(len(names))):
        if all(same(got[k], expected[order[k]]) for k in range(len(names))):
            returned = ", ".join(names[j] for j in order)
            raise CheckFailure(f"{fn_name} returns the right values in the wrong order: ({returned}).",
                               hint=f"Return them as ({', '.join(names)}).")


# ------------------------------------------------------------------------- momentum


@dataclass(frozen=True)
class MomentumCase:
    param: torch.Tensor
    grad: torch.Tensor
    velocity: torch.Tensor
    lr: float
    momentum: float
    label: str


MOMENTUM_CASES = [
    MomentumCase(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 0.5, -1.0]), torch.zeros(3), 0.2, 0.9,
                 "the first step (velocity 0)"),
    MomentumCase(torch.tensor([[1.0, 2.0], [3.0, -4.0]]), torch.tensor([[0.2, -0.1], [0.0, 0.3]]),
                 torch.tensor([[1.5, -0.5], [2.0, 0.25]]), 0.05, 0.9, "a 2×2 parameter with a running velocity"),
    MomentumCase(torch.tensor([0.3, -0.7]), torch.tensor([1.0, 2.0]), torch.tensor([-0.4, 0.8]), 0.2, 0.0,
                 "momentum 0 (plain gradient descent)"),
]


def _momentum_mistakes(c: MomentumCase) -> tuple[dict[str, Any], dict[str, Any]]:
    """(velocity mistakes, parameter mistakes) for one case."""
    mu, lr, p, g, v0 = c.momentum, c.lr, c.param, c.grad, c.velocity
    v = mu * v0 + g
    velocity = {
        "it is an average μ·v + (1 − μ)·g; torch's SGD adds the whole gradient, v ← μ·v + g":
            (mu * v0 + (1 - mu) * g, "Drop the (1 − μ) factor: v ← μ·v + g."),
        "it includes the learning rate (v ← μ·v + η·g); here the velocity holds gradients only, and η "
        "multiplies it in the parameter update": (mu * v0 + lr * g, "v ← μ·v + g, then θ ← θ − η·v."),
        "it was not updated (it is the old velocity)": (v0, "Compute v ← μ·v + g and return the new v."),
        "it is just the gradient; the old velocity μ·v is missing": (g, "v ← μ·v + g."),
        "it has the wrong sign (v ← μ·v − g); with the convention θ ← θ − η·v, v must add the gradient":
            (mu * v0 - g, "v ← μ·v + g."),
    }
    param = {
        "the update goes uphill (θ + η·v); gradient descent subtracts": (p + lr * v, "θ ← θ − η·v."),
        "the update uses the old velocity; update v first, then use the new v": (
            p - lr * v0, "v ← μ·v + g first, then θ ← θ − η·v with that new v."),
        "the update uses the gradient, not the velocity, so momentum has no effect": (
            p - lr * g, "θ ← θ − η·v."),
    }
    return velocity, param


@checker("momentum_step")
def check_momentum_step(momentum_step_fn: Any) -> str:
    """``momentum_step(param, grad, velocity, lr, momentum)`` → ``(new_param, new_velocity)``."""
    names = ("new_param", "new_velocity")
    for c in MOMENTUM_CASES:
        result = call_student(momentum_step_fn, c.param, c.grad, c.velocity, c.lr, c.momentum)
        got = _unpack(result, names, "momentum_step")
        expected = momentum_step(c.param, c.grad, c.velocity, c.lr, c.momentum)
        _check_order(got, expected, names, "momentum_step")
        velocity_mistakes, param_mistakes = _momentum_mistakes(c)
        where = f"on {c.label}"
        compare_arrays(f"the new velocity {where}", got[1], expected[1], mistakes=_distinct(velocity_mistakes),
                       hint="v ← μ·v + g.")
        compare_arrays(f"the new parameter {where}", got[0], expected[0], mistakes=_distinct(param_mistakes),
                       hint="θ ← θ − η·v, with the new v.")
    _check_momentum_run(momentum_step_fn)
    return (f"correct on {len(MOMENTUM_CASES)} inputs, and 5 steps in a row match "
            "torch.optim.SGD(momentum=0.9).")


def _check_momentum_run(momentum_step_fn: Any) -> None:
    """Five steps fed back into the student's function, against torch's optimizer."""
    target = torch.tensor([1.0, -1.0, 2.0])
    theta = torch.nn.Parameter(torch.tensor([3.0, 0.0, -1.0]))
    opt = torch.optim.SGD([theta], lr=0.05, momentum=0.9)
    p, v = theta.detach().clone(), torch.zeros(3)
    for step in range(1, 6):
        opt.zero_grad()
        loss = ((theta - target) ** 2).sum()
        loss.backward()
        grad = theta.grad.detach().clone()
        opt.step()
        p, v = _unpack(call_student(momentum_step_fn, p, grad, v, 0.05, 0.9), ("new_param", "new_velocity"),
                       "momentum_step")
        compare_arrays(f"the parameter after {step} steps (torch.optim.SGD(momentum=0.9) as reference)",
                       p, theta.detach(), atol=1e-6)
        p, v = torch.as_tensor(p).float(), torch.as_tensor(v).float()


# ---------------------------------------------------------------------- Adam, AdamW


@dataclass(frozen=True)
class AdamCase:
    param: torch.Tensor
    grad: torch.Tensor
    m: torch.Tensor
    v: torch.Tensor
    t: int
    lr: float
    beta1: float
    beta2: float
    eps: float
    label: str


ADAM_CASES = [
    AdamCase(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.1, -2.0, 0.003]), torch.zeros(3), torch.zeros(3),
             1, 0.01, 0.9, 0.999, 1e-8, "at step t = 1 (m = v = 0)"),
    AdamCase(torch.tensor([[1.0, -0.5, 0.25], [2.0, 0.0, -3.0]]),
             torch.tensor([[0.3, -0.2, 0.0], [1.5, 0.05, -0.4]]),
             torch.tensor([[0.1, -0.05, 0.0], [0.4, 0.02, -0.1]]),
             torch.tensor([[0.02, 0.01, 0.0], [0.3, 0.001, 0.02]]),
             3, 0.001, 0.9, 0.95, 1e-8, "at step t = 3 of a 2×3 parameter with one zero gradient"),
    AdamCase(torch.tensor([0.8, -0.3]), torch.tensor([0.002, -0.001]), torch.tensor([0.0015, -0.0005]),
             torch.tensor([4e-6, 2e-6]), 100, 0.1, 0.8, 0.99, 1e-3,
             "at step t = 100 with small gradients and ε = 1e-3"),
]

ADAMW_CASES = [  # (case, weight_decay)
    (AdamCase(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.1, -2.0, 0.0]), torch.zeros(3), torch.zeros(3),
              1, 0.1, 0.9, 0.999, 1e-8, "at step t = 1 with one zero gradient"), 0.1),
    (ADAM_CASES[1], 0.2),
    (AdamCase(torch.tensor([1.5, -2.5]), torch.tensor([0.02, -0.01]), torch.tensor([0.015, -0.005]),
              torch.tensor([4e-4, 2e-4]), 10, 0.05, 0.9, 0.99, 1e-8, "at step t = 10"), 0.5),
    (ADAM_CASES[2], 0.0),
]


def _moment_mistakes(c: AdamCase, grad: torch.Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the usual mistakes make of m and v (``grad`` is the gradient that should enter them)."""
    b1, b2, t = c.beta1, c.beta2, c.t
    first = "m ← β₁·m + (1 − β₁)·g"
    second = "v ← β₂·v + (1 − β₂)·g²"
    m_mistakes = {
        "it is computed as β₁·m + (1 − β₁)·(g − m), which shrinks the old average by 2β₁ − 1 instead "
        "of β₁; its weights no longer add up to one, and for a constant gradient it settles at g/2":
            (b1 * c.m + (1 - b1) * (grad - c.m), first + "."),
        "it is stored bias-corrected; keep the raw average m and correct a copy, m̂ = m / (1 − β₁ᵗ)":
            ((b1 * c.m + (1 - b1) * grad) / (1 - b1**t), "Return m, not m̂."),
        "it uses β₂ where β₁ belongs": (b2 * c.m + (1 - b2) * grad, first + "."),
        "the factor (1 − β₁) in front of g is missing": (b1 * c.m + grad, first + "."),
        "it was not updated": (c.m, first + "."),
    }
    v_mistakes = {
        "it is computed as β₂·v + (1 − β₂)·(g² − v), which shrinks the old average by 2β₂ − 1 instead "
        "of β₂; for a constant gradient it settles at g²/2": (b2 * c.v + (1 - b2) * (grad**2 - c.v), second + "."),
        "it averages g instead of g² (it must stay positive, since the step divides by its square root)":
            (b2 * c.v + (1 - b2) * grad, second + "."),
        "it is stored bias-corrected; keep the raw average v and correct a copy, v̂ = v / (1 − β₂ᵗ)":
            ((b2 * c.v + (1 - b2) * grad**2) / (1 - b2**t), "Return v, not v̂."),
        "it uses β₁ where β₂ belongs": (b1 * c.v + (1 - b1) * grad**2, second + "."),
        "it was not updated": (c.v, second + "."),
    }
    return m_mistakes, v_mistakes


def _update_mistakes(c: AdamCase, start: torch.Tensor, m_old: torch.Tensor, v_old: torch.Tensor,
                     m: torch.Tensor, v: torch.Tensor) -> dict[str, Any]:
    """What the usual mistakes in the update make of the new parameter.

    ``start`` is the parameter the Adam update is applied to (for AdamW, the decayed one);
    ``m`` and ``v`` are the correct new moments, ``m_old`` and ``v_old`` the ones passed in.
    """
    b1, b2, t, lr, eps = c.beta1, c.beta2, c.t, c.lr, c.eps
    c1, c2 = 1 - b1**t, 1 - b2**t
    m_hat, v_hat = m / c1, v / c2
    formula = "θ ← θ − η·m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ) and v̂ = v / (1 − β₂ᵗ)."
    # At t = 1 (m = v = 0 before the step) a missing correction scales the step by a constant;
    # saying which constant tells the student which correction is missing.
    no_correction = (1 - b1) / math.sqrt(1 - b2) if t == 1 else None
    factor = f": at t = 1 the step is {no_correction:.3g} times too large, (1 − β₁)/√(1 − β₂)" if no_correction else ""
    with torch.no_grad():
        return {
            "the bias corrections are missing (it uses m / (√v + ε))" + factor:
                (start - lr * m / (v.sqrt() + eps),
                 "m and v start at 0, so early on they are too small by the factors (1 − β₁ᵗ) and (1 − β₂ᵗ); "
                 "divide them by those factors. " + formula),
            "only m is bias-corrected; v̂ = v / (1 − β₂ᵗ) is missing": (start - lr * m_hat / (v.sqrt() + eps), formula),
            "only v is bias-corrected; m̂ = m / (1 − β₁ᵗ) is missing": (start - lr * m / (v_hat.sqrt() + eps), formula),
            "√(1 − β₂ᵗ) divides the step instead of multiplying it: the correction of v sits under the "
            "square root in the denominator, so it ends up in the numerator":
                (start - lr / (math.sqrt(c2) * c1) * m / (v.sqrt() + eps), formula),
            "the two bias corrections are swapped (β₂ᵗ for m and β₁ᵗ for v)":
                (start - lr * (m / c2) / ((v / c1).sqrt() + eps), formula),
            "ε is inside the square root, √(v̂ + ε); it belongs outside, √v̂ + ε":
                (start - lr * m_hat / (v_hat + eps).sqrt(), formula),
            "ε is added before the bias correction of v, (√v + ε)/√(1 − β₂ᵗ); add it to √v̂":
                (start - lr * m_hat / ((v.sqrt() + eps) / math.sqrt(c2)), formula),
            "it divides by v̂ instead of √v̂": (start - lr * m_hat / (v_hat + eps), formula),
            "the update goes uphill (θ + ...); descent subtracts": (start + lr * m_hat / (v_hat.sqrt() + eps), formula),
            **_off_by_one(c, start, m, v),
            "the update uses the old m and v; update them first, then use the new ones":
                (start - lr * (m_old / c1) / ((v_old / c2).sqrt() + eps), formula),
        }


def _off_by_one(c: AdamCase, start: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> dict[str, Any]:
    """The step when the bias corrections use t − 1 or t + 1 instead of t."""
    hint = "t is this step's number, counted from 1; use it as it is in 1 − β₁ᵗ and 1 − β₂ᵗ."
    mistakes = {}
    for shift, words in ((-1, "t − 1"), (1, "t + 1")):
        s = c.t + shift
        with torch.no_grad(), torch.autograd.set_detect_anomaly(False):
            c1 = 1 - c.beta1**s
            c2 = 1 - c.beta2**s
            if c1 == 0 or c2 == 0:
                value = torch.full_like(start, float("nan"))  # 0/0: what a division by 1 − β⁰ = 0 gives
            else:
                value = start - c.lr * (m / c1) / ((v / c2).sqrt() + c.eps)
        mistakes[f"the bias corrections use {words} instead of t"] = (value, hint)
    return mistakes


def _check_adam_like(fn: Any, fn_name: str, c: AdamCase, weight_decay: float | None) -> None:
    """Run the student's Adam or AdamW step on one case and explain any difference."""
    args: tuple[Any, ...] = (c.param, c.grad, c.m, c.v, c.t, c.lr, c.beta1, c.beta2, c.eps)
    if weight_decay is not None:
        args = args + (weight_decay,)
    names = ("new_param", "new_m", "new_v")
    got = _unpack(call_student(fn, *args), names, fn_name)
    wd = weight_decay or 0.0
    step = adamw_step if weight_decay is not None else adam_step
    extra = {"weight_decay": wd} if weight_decay is not None else {}
    expected = step(c.param, c.grad, c.m, c.v, c.t, lr=c.lr, beta1=c.beta1, beta2=c.beta2, eps=c.eps, **extra)
    _check_order(got, expected, names, fn_name)
    where = c.label + (f" (weight decay {wd:g})" if weight_decay is not None else "")

    m_mistakes, v_mistakes = _moment_mistakes(c, c.grad)
    if weight_decay:
        # Coupled L2: λθ added to the gradient, so it enters m and v (that is Adam, not AdamW).
        coupled = adam_step(c.param, c.grad, c.m, c.v, c.t, lr=c.lr, beta1=c.beta1, beta2=c.beta2, eps=c.eps,
                            weight_decay=wd)
        words = ("weight decay was added to the gradient (an L2 penalty), so λθ enters m and v. In AdamW the "
                 "decay is decoupled: m and v see the loss's gradient only, and θ is shrunk separately")
        m_mistakes = {words: (coupled[1], "Leave m and v as in Adam; shrink θ by (1 − η·λ) on its own."), **m_mistakes}
        v_mistakes = {words: (coupled[2], "Leave m and v as in Adam; shrink θ by (1 − η·λ) on its own."), **v_mistakes}
    compare_arrays(f"the new m {where}", got[1], expected[1], mistakes=_distinct(m_mistakes),
                   hint="m ← β₁·m + (1 − β₁)·g.")
    compare_arrays(f"the new v {where}", got[2], expected[2], mistakes=_distinct(v_mistakes),
                   hint="v ← β₂·v + (1 − β₂)·g².")

    m, v = expected[1], expected[2]
    decayed = c.param * (1 - c.lr * wd)
    param_mistakes = _update_mistakes(c, decayed, c.m, c.v, m, v)
    if weight_decay:
        adam_only = adam_step(c.param, c.grad, c.m, c.v, c.t, lr=c.lr, beta1=c.beta1, beta2=c.beta2,
                              eps=c.eps)[0]
        update = c.param - adam_only  # the Adam part of the step, η·m̂/(√v̂ + ε)
        v_hat = v / (1 - c.beta2**c.t)
        decoupled = "θ ← θ·(1 − η·λ), then the Adam step."
        param_mistakes = {
            "there is no weight decay: this is plain Adam. AdamW also shrinks θ by the factor (1 − η·λ) "
            "at every step": (adam_only, decoupled),
            "θ·λ was added to the gradient as an L2 penalty; in AdamW the decay is decoupled from the "
            "gradient": (coupled[0], decoupled),
            "the decay is not multiplied by the learning rate: θ is shrunk by (1 − λ) instead of "
            "(1 − η·λ)": (c.param * (1 - wd) - update, decoupled),
            "the decay is applied to the already-updated θ; decay the old θ (torch does it first)":
                ((c.param - update) * (1 - c.lr * wd), decoupled),
            "the decay has the wrong sign: θ grows by (1 + η·λ) instead of shrinking": (
                c.param * (1 + c.lr * wd) - update, decoupled),
            "the decay λθ is divided by √v̂ + ε like the gradient, which is what decoupling avoids":
                (c.param - update - c.lr * wd * c.param / (v_hat.sqrt() + c.eps), decoupled),
            **param_mistakes,
        }
    compare_arrays(f"the new parameter {where}", got[0], expected[0], mistakes=_distinct(param_mistakes),
                   hint="θ ← θ − η·m̂ / (√v̂ + ε)" + (", after shrinking θ by (1 − η·λ)." if weight_decay else "."))


@checker("adam_step")
def check_adam_step(adam_step_fn: Any) -> str:
    """``adam_step(param, grad, m, v, t, lr, beta1, beta2, eps)`` → ``(new_param, new_m, new_v)``."""
    for case in ADAM_CASES:
        _check_adam_like(adam_step_fn, "adam_step", case, weight_decay=None)
    _check_run(adam_step_fn, "adam_step", None)
    return (f"correct on {len(ADAM_CASES)} inputs (t = 1, 3 and 100), and 5 steps in a row match "
            "torch.optim.Adam.")


@checker("adamw_step")
def check_adamw_step(adamw_step_fn: Any) -> str:
    """``adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)`` → ``(new_param, new_m, new_v)``."""
    for case, weight_decay in ADAMW_CASES:
        _check_adam_like(adamw_step_fn, "adamw_step", case, weight_decay=weight_decay)
    _check_run(adamw_step_fn, "adamw_step", 0.1)
    return (f"correct on {len(ADAMW_CASES)} inputs (including weight decay 0 and a coordinate whose "
            "gradient is 0), and 5 steps in a row match torch.optim.AdamW.")


def _check_run(fn: Any, fn_name: str, weight_decay: float | None) -> None:
    """Five steps fed back into the student's function, against torch.optim.Adam / AdamW."""
    target = torch.tensor([1.0, -1.0, 2.0])
    theta = torch.nn.Parameter(torch.tensor([3.0, 0.0, -1.0]))
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-8
    if weight_decay is None:
        opt: torch.optim.Optimizer = torch.optim.Adam([theta], lr=lr, betas=(b1, b2), eps=eps)
        reference = "torch.optim.Adam"
    else:
        opt = torch.optim.AdamW([theta], lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
        reference = "torch.optim.AdamW"
    p, m, v = theta.detach().clone(), torch.zeros(3), torch.zeros(3)
    for t in range(1, 6):
        opt.zero_grad()
        ((theta - target) ** 2).sum().backward()
        grad = theta.grad.detach().clone()
        opt.step()
        args = (p, grad, m, v, t, lr, b1, b2, eps) + (() if weight_decay is None else (weight_decay,))
        p, m, v = _unpack(call_student(fn, *args), ("new_param", "new_m", "new_v"), fn_name)
        compare_arrays(f"the parameter after {t} steps ({reference} as reference)", p, theta.detach(), atol=1e-6,
                       hint="Each call gets the step number t = 1, 2, 3, ...; use it in the bias corrections.")
        p, m, v = (torch.as_tensor(a).float() for a in (p, m, v))


# ----------------------------------------------------------------------- train step


def _train_problem(kind: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A small classifier and a fixed batch: inputs (8, 5), labels (8,) in 0..2."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 5, generator=g)
    y = torch.randint(0, 3, (8,), generator=g)
    with seeded(5):
        if kind == "linear":
            model: torch.nn.Module = torch.nn.Linear(5, 3)
        else:
            model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    return model, x, y


def _reference_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    model.zero_grad(set_to_none=True)
    return loss.item()


def _loss_value(value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckFailure(f"train_step should return the loss (a number), but {what} it returned {short_repr(value)}.",
                       hint="End with `return loss.item()`.")


@checker("train_step")
def check_train_step(train_step: Any) -> str:
    """``train_step(model, x, y, lr)``: one gradient-descent step on the parameters; returns the loss."""
    lr = 0.5
    losses: list[float] = []
    for kind in ("linear", "two-layer"):
        model, x, y = _train_problem(kind)
        reference = copy.deepcopy(model)
        losses = []
        for step in (1, 2, 3):
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            try:
                returned = call_student(train_step, model, x, y, lr)
            except CheckFailure as failure:
                if "leaf Variable" in failure.message or "in-place operation" in failure.message:
                    raise CheckFailure(failure.message, hint="Update the parameters inside `with torch.no_grad():`; "
                                       "otherwise autograd would try to record the update itself.") from None
                raise
            loss_before = _reference_step(reference, x, y, lr)
            where = f"step {step} on the {kind} model"
            _compare_parameters(model, reference, before, lr, step, where)
            got_loss = _loss_value(returned, f"at {where}")
            if not math.isclose(got_loss, loss_before, rel_tol=1e-5, abs_tol=1e-6):
                after = F.cross_entropy(reference(x), y).item()
                if math.isclose(got_loss, after, rel_tol=1e-5, abs_tol=1e-6):
                    raise CheckFailure(f"at {where}, the returned loss ({got_loss:.5g}) is the loss after the update; "
                                       f"return the one the gradient was computed from ({loss_before:.5g}).")
                raise CheckFailure(f"at {where}, the returned loss is {got_loss:.5g}, but the cross-entropy of "
                                   f"model(x) against y is {loss_before:.5g}.",
                                   hint="loss = F.cross_entropy(model(x), y); return loss.item().")
            losses.append(got_loss)
    return (f"3 steps in a row on a linear and a two-layer model match plain gradient descent "
            f"(the loss went {' → '.join(f'{value:.3f}' for value in losses)}).")


def _compare_parameters(model: torch.nn.Module, reference: torch.nn.Module, before: dict[str, torch.Tensor],
                        lr: float, step: int, where: str) -> None:
    """The student's parameters after a step against the reference, with the usual mistakes named."""
    params = dict(model.named_parameters())
    expected = dict(reference.named_parameters())
    if set(params) != set(expected):
        raise CheckFailure(f"after {where}, the model has different parameters ({', '.join(sorted(params))}); "
                           "train_step must update the model it is given, not replace its layers.")
    unchanged = [n for n in params if torch.equal(params[n].detach(), before[n])]
    if len(unchanged) == len(params):
        raise CheckFailure(
            f"after {where}, no parameter of the model has changed. Updating the outputs (or a copy, or a "
            "local name as in `p = p - lr * p.grad`) trains nothing: the parameters are what the model keeps.",
            hint="After loss.backward(), change each tensor of model.parameters() in place: "
                 "`p -= lr * p.grad` inside `with torch.no_grad():`.")
    if unchanged:
        raise CheckFailure(f"after {where}, these parameters did not change: {', '.join(unchanged)}.",
                           hint="Update every tensor in model.parameters(), biases included.")
    for n, p in params.items():
        change = p.detach() - before[n]
        want = expected[n].detach() - before[n]
        mistakes: dict[str, Any] = {
            "it goes uphill (θ + η·∇L); gradient descent subtracts the gradient": (-want, "θ ← θ − η·∇L."),
        }
        if step > 1 and p.grad is not None:
            # backward() adds to .grad: a step that never clears it moves by −η·(g₁ + ... + g_k),
            # and leaves that sum in .grad.
            mistakes["the gradients were not cleared, so this step used the sum of this step's and the "
                     "earlier steps' gradients (backward() adds to .grad)"] = (
                -lr * p.grad.detach(),
                "Clear them every step: `model.zero_grad()` before backward(), or set `p.grad = None`.")
        compare_arrays(f"the change of {n} after {where}", change, want, atol=1e-6, rtol=1e-4,
                       mistakes=mistakes, hint=f"The change should be −η·∇L = −{lr}·p.grad.")
