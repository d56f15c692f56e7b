"""The checks of chapter 05 (gradient descent): right answers pass, typical wrong ones are named."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch05
from sftlearn.optim import adam_step, adamw_step, momentum_step
from conftest import failure_of, stub


# ------------------------------------------------------------------ numerical gradient


def difference(quotient):
    """A student's finite-difference gradient: for each coordinate, ``quotient`` of the function
    at x nudged by +h and -h (and at x itself), which is where the versions below differ."""

    def gradient(f, x, h=1e-5):
        grad = torch.zeros_like(x)
        for i in range(x.numel()):
            nudge = torch.zeros_like(x)
            nudge[i] = h
            grad[i] = quotient(f(x + nudge), f(x - nudge), f(x), h)
        return grad

    return gradient


central = difference(lambda up, down, here, h: (up - down) / (2 * h))
forward = difference(lambda up, down, here, h: (up - here) / h)
over_h = difference(lambda up, down, here, h: (up - down) / h)
minus_first = difference(lambda up, down, here, h: (down - up) / (2 * h))
backward_difference = difference(lambda up, down, here, h: (here - down) / h)
over_2h_squared = difference(lambda up, down, here, h: (up - down) / (2 * h * h))


def all_at_once(f, x, h=1e-5):
    return torch.full_like(x, (f(x + h) - f(x - h)) / (2 * h))


def not_restored(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        x[i] += h
        plus = f(x)
        x[i] -= 2 * h
        grad[i] = (plus - f(x)) / (2 * h)
    return grad


def float32_result(f, x, h=1e-5):
    return central(f, x.float(), h)


def test_numerical_gradient_right_answer(capsys):
    ch05.check_numerical_gradient(central)
    assert "✓ numerical_gradient: agrees with the exact gradient on 4 functions" in capsys.readouterr().out


def test_numerical_gradient_returning_a_list_is_fine(capsys):
    ch05.check_numerical_gradient(lambda f, x, h: central(f, x, h).tolist())
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("fn, words", [
    (forward, "it is the forward difference (f(x + h) − f(x)) / h"),
    (over_h, "divided by h instead of 2h"),
    (minus_first, "wrong sign"),
    (all_at_once, "every coordinate is moved at once"),
    (not_restored, "x is changed in place and not put back"),
    (backward_difference, "it is the backward difference (f(x) − f(x − h)) / h"),
    (over_2h_squared, "the difference is divided by 2h² instead of 2h"),
])
def test_numerical_gradient_mistakes_are_named(fn, words):
    failure = failure_of(ch05.check_numerical_gradient, fn)
    assert words in failure.message


def test_numerical_gradient_forward_difference_hint_points_to_central():
    failure = failure_of(ch05.check_numerical_gradient, forward)
    assert "central difference" in failure.hint
    assert failure.message.startswith("the gradient of f(x) = Σ xᵢ² at x = [1.0, -2.0, 3.0]")


def test_numerical_gradient_float32_gets_a_dtype_hint():
    failure = failure_of(ch05.check_numerical_gradient, float32_result)
    assert "because it is computed in torch.float32" in failure.message
    assert "float64" in failure.hint


def test_numerical_gradient_stub_is_not_done(capsys):
    ch05.check_numerical_gradient(stub)
    assert "… numerical_gradient: not done yet" in capsys.readouterr().out


def test_numerical_gradient_passing_a_value_is_explained():
    failure = failure_of(ch05.check_numerical_gradient, torch.zeros(3))
    assert "expected a function" in failure.message


# --------------------------------------------------------------------------- momentum


def momentum_right(p, g, v, lr, mu):
    return momentum_step(p, g, v, lr, mu)


def momentum_dampened(p, g, v, lr, mu):
    v = mu * v + (1 - mu) * g
    return p - lr * v, v


def momentum_lr_inside(p, g, v, lr, mu):
    v = mu * v + lr * g
    return p - v, v


def momentum_old_velocity(p, g, v, lr, mu):
    return p - lr * v, mu * v + g


def momentum_uphill(p, g, v, lr, mu):
    v = mu * v + g
    return p + lr * v, v


def momentum_velocity_kept(p, g, v, lr, mu):
    return p - lr * (mu * v + g), v


def momentum_velocity_is_gradient(p, g, v, lr, mu):
    return p - lr * g, g


def momentum_velocity_minus_gradient(p, g, v, lr, mu):
    v = mu * v - g
    return p + lr * v, v


def momentum_steps_with_gradient(p, g, v, lr, mu):
    return p - lr * g, mu * v + g


def momentum_swapped(p, g, v, lr, mu):
    new_p, new_v = momentum_step(p, g, v, lr, mu)
    return new_v, new_p


def test_momentum_right_answer(capsys):
    ch05.check_momentum_step(momentum_right)
    out = capsys.readouterr().out
    assert "✓ momentum_step: correct on 3 inputs" in out
    assert "torch.optim.SGD(momentum=0.9)" in out


@pytest.mark.parametrize("fn, words", [
    (momentum_dampened, "it is an average μ·v + (1 − μ)·g"),
    (momentum_lr_inside, "it includes the learning rate"),
    (momentum_old_velocity, "the update uses the old velocity"),
    (momentum_uphill, "the update goes uphill"),
    (momentum_swapped, "returns the right values in the wrong order: (new_velocity, new_param)"),
    (momentum_velocity_kept, "the new velocity on the first step (velocity 0) is wrong: it was not updated"),
    (momentum_velocity_is_gradient, "it is just the gradient; the old velocity μ·v is missing"),
    (momentum_velocity_minus_gradient, "it has the wrong sign (v ← μ·v − g)"),
    (momentum_steps_with_gradient, "the update uses the gradient, not the velocity"),
])
def test_momentum_mistakes_are_named(fn, words):
    assert words in failure_of(ch05.check_momentum_step, fn).message


def test_momentum_returning_one_value_is_explained():
    failure = failure_of(ch05.check_momentum_step, lambda p, g, v, lr, mu: p - lr * g)
    assert "should return the tuple (new_param, new_velocity)" in failure.message


def test_momentum_stub_is_not_done(capsys):
    ch05.check_momentum_step(stub)
    assert "… momentum_step: not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------- Adam


def adam_right(p, g, m, v, t, lr, b1, b2, eps):
    return adam_step(p, g, m, v, t, lr, b1, b2, eps)


def adam_g_minus_m(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * (g - m)
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr * (new_m / (1 - b1**t)) / ((new_v / (1 - b2**t)).sqrt() + eps), new_m, new_v


def adam_no_correction(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr * new_m / (new_v.sqrt() + eps), new_m, new_v


def adam_garbled_correction(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr / (math.sqrt(1 - b2**t) * (1 - b1**t)) * new_m / (new_v.sqrt() + eps), new_m, new_v


def adam_only_m_corrected(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr * (new_m / (1 - b1**t)) / (new_v.sqrt() + eps), new_m, new_v


def adam_eps_inside(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr * (new_m / (1 - b1**t)) / (new_v / (1 - b2**t) + eps).sqrt(), new_m, new_v


def adam_by_hand(p, g, m, v, t, lr, b1, b2, eps, m_rule=None, v_rule=None, step=None, store=None, sign=-1.0,
                 t_used=None):
    """Adam written out as a student would, with one part replaceable by a mistaken one."""
    new_m = m_rule(g, m, b1, b2) if m_rule else b1 * m + (1 - b1) * g
    new_v = v_rule(g, v, b1, b2) if v_rule else b2 * v + (1 - b2) * g * g
    s = t if t_used is None else t_used(t)
    c1, c2 = 1 - b1**s, 1 - b2**s
    if step is None:
        update = lr * (new_m / c1) / ((new_v / c2).sqrt() + eps)
    else:
        update = step(new_m, new_v, c1, c2, lr, eps)
    new_p = p + sign * update
    return (new_p, *(store(new_m, new_v, c1, c2) if store else (new_m, new_v)))


def adam_stores_corrected(p, g, m, v, t, lr, b1, b2, eps):
    return adam_by_hand(p, g, m, v, t, lr, b1, b2, eps, store=lambda m, v, c1, c2: (m / c1, v))


def adam_v_of_g(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g
    return p, new_m, new_v


def adam_uphill(p, g, m, v, t, lr, b1, b2, eps):
    return adam_by_hand(p, g, m, v, t, lr, b1, b2, eps, sign=1.0)


def adam_old_moments(p, g, m, v, t, lr, b1, b2, eps):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps), new_m, new_v


def adam_t_from_zero(p, g, m, v, t, lr, b1, b2, eps):
    return adam_step(p, g, m, v, t + 1, lr, b1, b2, eps) if t > 1 else adam_step(p, g, m, v, t, lr, b1, b2, eps)


def test_adam_right_answer(capsys):
    ch05.check_adam_step(adam_right)
    out = capsys.readouterr().out
    assert "✓ adam_step: correct on 3 inputs (t = 1, 3 and 100)" in out
    assert "torch.optim.Adam" in out


@pytest.mark.parametrize("fn, words", [
    (adam_g_minus_m, "(1 − β₁)·(g − m), which shrinks the old average by 2β₁ − 1"),
    (adam_no_correction, "the bias corrections are missing (it uses m / (√v + ε)): at t = 1 the step is "
                         "3.16 times too large, (1 − β₁)/√(1 − β₂)"),
    (adam_garbled_correction, "√(1 − β₂ᵗ) divides the step instead of multiplying it"),
    (adam_only_m_corrected, "only m is bias-corrected"),
    (adam_eps_inside, "ε is inside the square root"),
    (adam_stores_corrected, "it is stored bias-corrected"),
    (adam_v_of_g, "it averages g instead of g²"),
    (adam_uphill, "the update goes uphill"),
    (adam_old_moments, "the update uses the old m and v"),
])
def test_adam_mistakes_are_named(fn, words):
    assert words in failure_of(ch05.check_adam_step, fn).message


def adam_variant(**part):
    return lambda *args: adam_by_hand(*args, **part)


@pytest.mark.parametrize("fn, words", [
    (adam_variant(m_rule=lambda g, m, b1, b2: b2 * m + (1 - b2) * g), "the new m at step t = 1 (m = v = 0) is "
                                                                       "wrong: it uses β₂ where β₁ belongs"),
    (adam_variant(m_rule=lambda g, m, b1, b2: b1 * m + g), "the factor (1 − β₁) in front of g is missing"),
    (adam_variant(m_rule=lambda g, m, b1, b2: m), "the new m at step t = 1 (m = v = 0) is wrong: it was not updated"),
    (adam_variant(v_rule=lambda g, v, b1, b2: b2 * v + (1 - b2) * (g * g - v)), "(1 − β₂)·(g² − v)"),
    (adam_variant(v_rule=lambda g, v, b1, b2: b1 * v + (1 - b1) * g * g), "it uses β₁ where β₂ belongs"),
    (adam_variant(v_rule=lambda g, v, b1, b2: v), "the new v at step t = 1 (m = v = 0) is wrong: it was not updated"),
    (adam_variant(store=lambda m, v, c1, c2: (m, v / c2)), "the new v at step t = 1 (m = v = 0) is wrong: it is "
                                                           "stored bias-corrected"),
    (adam_variant(step=lambda m, v, c1, c2, lr, eps: lr * m / ((v / c2).sqrt() + eps)),
     "only v is bias-corrected; m̂ = m / (1 − β₁ᵗ) is missing"),
    (adam_variant(step=lambda m, v, c1, c2, lr, eps: lr * (m / c2) / ((v / c1).sqrt() + eps)),
     "the two bias corrections are swapped"),
    (adam_variant(step=lambda m, v, c1, c2, lr, eps: lr * math.sqrt(c2) / c1 * m / (v.sqrt() + eps)),
     "ε is added before the bias correction of v"),
    (adam_variant(step=lambda m, v, c1, c2, lr, eps: lr * (m / c1) / (v / c2 + eps)),
     "it divides by v̂ instead of √v̂"),
    (adam_variant(t_used=lambda t: t - 1), "the bias corrections use t − 1 instead of t"),
    (adam_variant(t_used=lambda t: t + 1), "the bias corrections use t + 1 instead of t"),
])
def test_adam_more_mistakes_are_named(fn, words):
    assert words in failure_of(ch05.check_adam_step, fn).message


def test_adam_message_names_the_quantity_and_case():
    failure = failure_of(ch05.check_adam_step, adam_g_minus_m)
    assert failure.message.startswith("the new m at step t = 3 of a 2×3 parameter")
    assert failure.hint == "m ← β₁·m + (1 − β₁)·g."


def test_adam_wrong_step_number_is_caught_by_the_run():
    failure = failure_of(ch05.check_adam_step, adam_t_from_zero)
    assert "the new parameter" in failure.message


def test_adam_stub_is_not_done(capsys):
    ch05.check_adam_step(stub)
    assert "… adam_step: not done yet" in capsys.readouterr().out


def test_adam_crash_is_reported_plainly():
    def crashes(p, g, m, v, t, lr, b1, b2, eps):
        return p - lr * undefined_name  # noqa: F821

    failure = failure_of(ch05.check_adam_step, crashes)
    assert "raised NameError" in failure.message


# ------------------------------------------------------------------------------ AdamW


def adamw_right(p, g, m, v, t, lr, b1, b2, eps, wd):
    return adamw_step(p, g, m, v, t, lr, b1, b2, eps, wd)


def adamw_is_adam(p, g, m, v, t, lr, b1, b2, eps, wd):
    return adam_by_hand(p, g, m, v, t, lr, b1, b2, eps)


def adamw_coupled(p, g, m, v, t, lr, b1, b2, eps, wd):
    return adam_by_hand(p, g + wd * p, m, v, t, lr, b1, b2, eps)


def adamw_no_lr(p, g, m, v, t, lr, b1, b2, eps, wd):
    return adam_by_hand(p * (1 - wd), g, m, v, t, lr, b1, b2, eps)


def adamw_decay_after(p, g, m, v, t, lr, b1, b2, eps, wd):
    new_p, new_m, new_v = adam_by_hand(p, g, m, v, t, lr, b1, b2, eps)
    return new_p * (1 - lr * wd), new_m, new_v


def adamw_decay_grows(p, g, m, v, t, lr, b1, b2, eps, wd):
    return adam_by_hand(p * (1 + lr * wd), g, m, v, t, lr, b1, b2, eps)


def adamw_decay_in_fraction(p, g, m, v, t, lr, b1, b2, eps, wd):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = new_m / (1 - b1**t), new_v / (1 - b2**t)
    return p - lr * (m_hat + wd * p) / (v_hat.sqrt() + eps), new_m, new_v


def adamw_no_correction(p, g, m, v, t, lr, b1, b2, eps, wd):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    return p * (1 - lr * wd) - lr * new_m / (new_v.sqrt() + eps), new_m, new_v


def test_adamw_right_answer(capsys):
    ch05.check_adamw_step(adamw_right)
    out = capsys.readouterr().out
    assert "✓ adamw_step: correct on 4 inputs" in out
    assert "torch.optim.AdamW" in out


@pytest.mark.parametrize("fn, words", [
    (adamw_is_adam, "there is no weight decay: this is plain Adam"),
    (adamw_coupled, "weight decay was added to the gradient (an L2 penalty), so λθ enters m and v"),
    (adamw_no_lr, "the decay is not multiplied by the learning rate"),
    (adamw_decay_after, "the decay is applied to the already-updated θ"),
    (adamw_decay_in_fraction, "the decay λθ is divided by √v̂ + ε"),
    (adamw_no_correction, "the bias corrections are missing"),
    (adamw_decay_grows, "the decay has the wrong sign"),
])
def test_adamw_mistakes_are_named(fn, words):
    assert words in failure_of(ch05.check_adamw_step, fn).message


def test_adamw_missing_decay_hint_gives_the_rule():
    failure = failure_of(ch05.check_adamw_step, adamw_is_adam)
    assert failure.hint == "θ ← θ·(1 − η·λ), then the Adam step."


def test_adamw_stub_is_not_done(capsys):
    ch05.check_adamw_step(stub)
    assert "… adamw_step: not done yet" in capsys.readouterr().out


# -------------------------------------------------------------------------- train step


def train_right(model, x, y, lr):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()


def train_with_optimizer(model, x, y, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss  # a 0-d tensor is accepted too


def train_updates_outputs(model, x, y, lr):
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    (grad,) = torch.autograd.grad(loss, logits)
    logits = logits - lr * grad  # "updates" the outputs: the model never changes
    return loss.item()


def train_rebinds_local_name(model, x, y, lr):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    for p in model.parameters():
        p = p - lr * p.grad  # noqa: PLW2901 - the mistake under test
    return loss.item()


def train_never_clears(model, x, y, lr):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()


def train_uphill(model, x, y, lr):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p += lr * p.grad
    return loss.item()


def train_without_no_grad(model, x, y, lr):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    for p in model.parameters():
        p -= lr * p.grad
    return loss.item()


def train_weights_only(model, x, y, lr):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "weight" in name:
                p -= lr * p.grad
    return loss.item()


def train_returns_loss_after(model, x, y, lr):
    train_right(model, x, y, lr)
    return F.cross_entropy(model(x), y).item()


def test_train_step_right_answers(capsys):
    ch05.check_train_step(train_right)
    ch05.check_train_step(train_with_optimizer)
    out = capsys.readouterr().out
    assert out.count("✓ train_step: 3 steps in a row on a linear and a two-layer model") == 2
    assert "the loss went" in out


@pytest.mark.parametrize("fn, words", [
    (train_updates_outputs, "no parameter of the model has changed"),
    (train_rebinds_local_name, "no parameter of the model has changed"),
    (train_never_clears, "the gradients were not cleared"),
    (train_uphill, "it goes uphill"),
    (train_weights_only, "these parameters did not change: bias"),
    (train_returns_loss_after, "is the loss after the update"),
    (train_without_no_grad, "raised RuntimeError"),
])
def test_train_step_mistakes_are_named(fn, words):
    assert words in failure_of(ch05.check_train_step, fn).message


def test_train_step_outputs_mistake_explains_what_a_model_keeps():
    failure = failure_of(ch05.check_train_step, train_updates_outputs)
    assert "the parameters are what the model keeps" in failure.message
    assert "with torch.no_grad()" in failure.hint


def test_train_step_without_no_grad_gets_a_hint():
    failure = failure_of(ch05.check_train_step, train_without_no_grad)
    assert "torch.no_grad()" in failure.hint


def test_train_step_returning_nothing_is_explained():
    def no_return(model, x, y, lr):
        train_right(model, x, y, lr)

    failure = failure_of(ch05.check_train_step, no_return)
    assert "should return the loss (a number)" in failure.message


def test_train_step_stub_is_not_done(capsys):
    ch05.check_train_step(stub)
    assert "… train_step: not done yet" in capsys.readouterr().out


def test_grading_mode_fails_unfinished_work(monkeypatch):
    monkeypatch.setenv("SFTLEARN_GRADING", "1")
    failure = failure_of(ch05.check_adamw_step, stub)
    assert failure.message == "not done yet."
