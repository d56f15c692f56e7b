"""Checks for chapter 13, adversarial training.

- ``check_discriminator_loss(fn)``: ``fn(real_logits, fake_logits)`` is the discriminator's
  binary cross-entropy from logits, ``−mean log D(x) − mean log(1 − D(G(z)))``;
- ``check_generator_loss(fn)``: ``fn(fake_logits)`` is the non-saturating generator loss,
  ``−mean log D(G(z))``;
- ``check_gan_step(fn)``: ``fn(generator, discriminator, opt_g, opt_d, real, z)`` takes one
  discriminator step then one generator step and returns both losses;
- ``check_straight_through(fn)``: ``fn(logits, noise, tau)`` returns a one-hot sample whose
  gradient is that of the soft sample ``softmax((logits + noise) / tau)``.

The references are :mod:`sftlearn.gan`, whose tests match torch's binary cross-entropy and
``F.gumbel_softmax(hard=True)``. Each check also computes what the usual mistakes give
(labels swapped, the saturating loss, fakes not detached, no gradient through the sample,
...) so that it can name the mistake.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sftlearn.check._core import CheckFailure, call_student, checker, compare_arrays, expect, short_repr
from sftlearn.device import seeded
from sftlearn.gan import discriminator_loss, generator_loss, mlp, straight_through_sample

# --------------------------------------------------------------------------------- inputs


def _logit_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(description, real logits, fake logits): unequal batch sizes, a confident discriminator."""
    g = torch.Generator().manual_seed(13)
    return [
        ("a small batch", torch.tensor([[2.0], [0.5], [-1.0]]), torch.tensor([[-1.5], [0.3]])),
        ("random logits (8 real, 5 fake)", 2 * torch.randn(8, 1, generator=g), 2 * torch.randn(5, 1, generator=g)),
        ("an undecided discriminator (all logits 0)", torch.zeros(4, 1), torch.zeros(6, 1)),
        ("a very confident discriminator (logits ±40)", torch.tensor([[40.0], [-40.0]]), torch.tensor([[-40.0], [40.0]])),
    ]


def _call_keeping_grad(fn: Any, *args: torch.Tensor) -> Any:
    """Call the student's ``fn`` on these very tensors, so that their ``.grad`` shows what reached them.

    (:func:`call_student` passes copies, which protects the checker's inputs but hides the gradient.)
    """
    if not callable(fn):
        return call_student(fn, *args)  # reports "expected a function"

    def call() -> Any:
        return fn(*args)

    call.__name__ = getattr(fn, "__name__", "your function")
    return call_student(call)


def _as_loss(name: str, got: Any) -> torch.Tensor:
    """The student's loss as a 0-d tensor that carries a gradient, or a plain failure."""
    if isinstance(got, (numbers.Real, np.ndarray)) and not isinstance(got, (bool, np.bool_)):
        kind = "a Python number" if isinstance(got, (int, float)) else "a NumPy value"
        raise CheckFailure(
            f"{name} is {kind} ({short_repr(got)}), so no gradient can flow back through it.",
            hint="Return the tensor itself; `.item()`, `float(...)` and `.numpy()` cut it off "
                 "from autograd.")
    if not isinstance(got, torch.Tensor):
        raise CheckFailure(f"{name} should be a tensor holding one number, but it is {short_repr(got)}.",
                           hint="Did your function forget to `return` the loss?")
    if got.numel() != 1:
        raise CheckFailure(f"{name} should be a single number, but it has shape {tuple(got.shape)}.",
                           hint="Average over the batch with `.mean()`.")
    expect(got.requires_grad, f"{name} carries no gradient: it has been detached from the logits.",
           hint="Compute it with torch operations on the logits, without `.detach()`, `.item()` or `torch.no_grad()`.")
    return got.reshape(())


def _non_finite_hint(name: str, got: torch.Tensor, description: str) -> None:
    """A loss that overflows only on the ±40 logits: the probability form, not the formula, is wrong."""
    if "confident" in description and not bool(torch.isfinite(got.detach()).all()):
        raise CheckFailure(
            f"{name} is {got.item()}.",
            hint="In float32, sigmoid(40) rounds to exactly 1.0 (and sigmoid(−200) to 0), so log(1 − 1) "
                 "or log(0) is −inf. Work with the logits: "
                 "−log σ(ℓ) = softplus(−ℓ) and −log(1 − σ(ℓ)) = softplus(ℓ) (`F.softplus`), or use "
                 "`F.binary_cross_entropy_with_logits`.")


# ------------------------------------------------------------------ discriminator loss


def _discriminator_mistakes(real: torch.Tensor, fake: torch.Tensor) -> dict[str, Any]:
    sp = F.softplus
    return {
        "the labels are swapped: real points are scored as fake and generated ones as real":
            (sp(real).mean() + sp(-fake).mean(),
             "Real points have label 1, so their term is −log D(x); generated points have label 0."),
        "it is the average of the two terms, half the sum that this exercise asks for":
            ((sp(-real).mean() + sp(fake).mean()) / 2,
             "Add the mean over the real batch and the mean over the generated batch."),
        "it is the mean over all real and generated logits together, which weights the two batches by their sizes":
            (torch.cat([sp(-real), sp(fake)]).mean(),
             "Take the mean of each batch separately, then add the two means."),
        "the generated points' term is missing": (sp(-real).mean(), "Add −mean log(1 − D(G(z)))."),
        "the real points' term is missing": (sp(fake).mean(), "Add −mean log D(x)."),
        "it sums over each batch instead of averaging": (sp(-real).sum() + sp(fake).sum(),
                                                         "Use `.mean()` so the loss does not grow with the batch."),
        "the minus signs are missing: this is the value V(D, G) itself, which D maximises":
            (-(sp(-real).mean() + sp(fake).mean()), "A loss to minimise is −V: −log D(x) − log(1 − D(G(z)))."),
    }


@checker("discriminator_loss")
def check_discriminator_loss(discriminator_loss_fn: Any) -> str:
    """``fn(real_logits, fake_logits)`` must be −mean log σ(real) − mean log(1 − σ(fake))."""
    for description, real, fake in _logit_cases():
        real_in, fake_in = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
        got = _as_loss(f"the loss for {description}", _call_keeping_grad(discriminator_loss_fn, real_in, fake_in))
        _non_finite_hint(f"the loss for {description}", got, description)
        expected = discriminator_loss(real, fake)
        compare_arrays(f"the loss for {description}", got.detach(), expected, atol=1e-5, rtol=1e-5,
                       mistakes={k: (v.detach(), h) for k, (v, h) in _discriminator_mistakes(real, fake).items()})
        # The gradient with respect to the logits (what actually trains D) must match too.
        got.backward()
        real_ref, fake_ref = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
        discriminator_loss(real_ref, fake_ref).backward()
        for which, tensor, ref in (("real", real_in, real_ref), ("generated", fake_in, fake_ref)):
            expect(tensor.grad is not None, f"no gradient reaches the {which} logits.",
                   hint="Compute the loss from the logits with torch operations.")
            compare_arrays(f"the gradient of the loss for {description} with respect to the {which} logits",
                           tensor.grad, ref.grad, atol=1e-5, rtol=1e-5)
    return "correct on 4 batches, including unequal batch sizes and a very confident discriminator."


# ---------------------------------------------------------------------- generator loss


def _generator_mistakes(fake: torch.Tensor) -> dict[str, Any]:
    sp = F.softplus
    return {
        "it is the saturating loss mean log(1 − D(G(z))), whose gradient vanishes when D catches the generator":
            (-sp(fake).mean(), "Minimise −log D(G(z)) instead: the same goal, a strong gradient when D(G(z)) is small."),
        "it is −mean log(1 − D(G(z))): minimising it makes the generated points look *more* fake":
            (sp(fake).mean(), "That is the discriminator's term for generated points. The generator wants D(G(z)) "
                              "near 1: minimise −log D(G(z))."),
        "its sign is flipped: minimising mean log D(G(z)) pushes D(G(z)) towards 0":
            (-sp(-fake).mean(), "A loss is ≥ 0 here: −log D(G(z)) = softplus(−ℓ)."),
        "it sums over the batch instead of averaging": (sp(-fake).sum(), "Use `.mean()`."),
        "it uses the logits as if they were probabilities (−mean log ℓ)":
            (-torch.log(fake).mean(), "Turn a logit into D's probability with a sigmoid first, or use softplus(−ℓ)."),
    }


@checker("generator_loss")
def check_generator_loss(generator_loss_fn: Any) -> str:
    """``fn(fake_logits)`` must be the non-saturating loss −mean log σ(fake)."""
    cases = [(f"generated points' logits ({d})", fake) for d, _, fake in _logit_cases()]
    cases.append(("a generator the discriminator has caught (logits −6)", torch.full((4, 1), -6.0)))
    # sigmoid(−200) is 0 in float32: only a loss computed from the logits stays finite
    cases.append(("a generator caught by a very confident discriminator (logits −200)",
                  torch.full((3, 1), -200.0)))
    for description, fake in cases:
        fake_in = fake.clone().requires_grad_(True)
        name = f"the loss for {description}"
        got = _as_loss(name, _call_keeping_grad(generator_loss_fn, fake_in))
        _non_finite_hint(name, got, description)
        compare_arrays(name, got.detach(), generator_loss(fake), atol=1e-5, rtol=1e-5,
                       mistakes={k: (v.detach(), h) for k, (v, h) in _generator_mistakes(fake).items()})
        got.backward()
        ref = fake.clone().requires_grad_(True)
        generator_loss(ref).backward()
        expect(fake_in.grad is not None, "no gradient reaches the logits.",
               hint="Compute the loss from the logits with torch operations.")
        compare_arrays(f"the gradient of {name}", fake_in.grad, ref.grad, atol=1e-6, rtol=1e-5)
    return (f"correct on {len(cases)} batches; on a caught generator (D(G(z)) ≈ 0.0025) its gradient per point is "
            "≈ −1/n, where the saturating loss's is ≈ −0.0025/n.")


# ----------------------------------------------------------------------- a training step


def _reference_step(generator, discriminator, opt_g, opt_d, real, z, *, detach=True, saturating=False,
                    zero_d=True, g_zero_late=True, zero_g=True, g_first=False) -> tuple[float, float]:
    """The correct step (defaults) and its usual mistakes, switched on by the keywords."""
    if not g_zero_late and zero_g:
        opt_g.zero_grad()  # one zero_grad at the top: D's backward below then leaks into G's .grad
    fake = generator(z)

    def d_step() -> torch.Tensor:
        if zero_d:
            opt_d.zero_grad()
        d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach() if detach else fake))
        d_loss.backward()
        opt_d.step()
        return d_loss

    def g_step() -> torch.Tensor:
        if g_zero_late and zero_g:
            opt_g.zero_grad()
        # Without detach, D's backward pass has freed the graph through the generator, so generate
        # again (same z, same generator: the same points).
        g_loss = generator_loss(discriminator(fake if detach else generator(z)), saturating=saturating)
        g_loss.backward()
        opt_g.step()
        return g_loss

    if g_first:  # the generator moves first, against the discriminator of the last step
        g_loss = g_step()
        d_loss = d_step()
    else:
        d_loss = d_step()
        g_loss = g_step()
    return float(d_loss.detach()), float(g_loss.detach())


_STEP_MISTAKES: dict[str, tuple[dict[str, bool], str]] = {
    "the generated points are not detached in the discriminator's loss, so its backward pass also fills the "
    "generator's gradients, and the generator's step then follows them (helping the discriminator)":
        ({"detach": False, "g_zero_late": False},
         "Use `fake.detach()` in the discriminator's loss, and zero the generator's gradients right before its own "
         "backward pass."),
    "the generator uses the saturating loss log(1 − D(G(z)))":
        ({"saturating": True}, "Use the non-saturating loss −log D(G(z))."),
    "the discriminator's gradients are never zeroed, so each step adds to the last (including what the generator's "
    "backward pass left in them)":
        ({"zero_d": False}, "Call `opt_d.zero_grad()` before `d_loss.backward()`."),
    "the generator's gradients are never zeroed, so its step follows the sum of this step's gradient and every "
    "earlier one":
        ({"zero_g": False}, "Call `opt_g.zero_grad()` right before `g_loss.backward()`."),
    "the generator takes its step before the discriminator, so it is judged by last step's discriminator":
        ({"g_first": True}, "Update the discriminator first, then compute the generator's loss with the "
                            "updated discriminator."),
}


def _players(seed: int):
    with seeded(seed):
        generator, discriminator = mlp(2, 8, 2), mlp(2, 8, 1)
    return generator, discriminator


def _run(step_fn: Callable, seed: int, n_steps: int, student: bool, **mistake):
    """Run ``n_steps`` of ``step_fn`` from fixed players, inputs and stale gradients; return everything."""
    generator, discriminator = _players(seed)
    opt_g = torch.optim.SGD(generator.parameters(), lr=0.05)
    opt_d = torch.optim.SGD(discriminator.parameters(), lr=0.05)
    for p in list(generator.parameters()) + list(discriminator.parameters()):
        p.grad = torch.full_like(p, 0.5)  # left over from an earlier step: a correct step clears them
    g = torch.Generator().manual_seed(seed + 100)
    losses = []
    for _ in range(n_steps):
        real = torch.randn(16, 2, generator=g) + 1.0
        z = torch.randn(16, 2, generator=g)
        if student:
            losses.append(call_student(step_fn, generator, discriminator, opt_g, opt_d, real, z))
        else:
            losses.append(step_fn(generator, discriminator, opt_g, opt_d, real, z, **mistake))
    params = torch.cat([p.detach().flatten() for p in list(generator.parameters()) + list(discriminator.parameters())])
    return losses, params


def _pair(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailure(f"{name} should be a pair (d_loss, g_loss), but it is {short_repr(value)}.",
                           hint="End with `return d_loss.item(), g_loss.item()`.")
    out = []
    for part in value:
        if isinstance(part, torch.Tensor) and part.numel() == 1:
            out.append(float(part.detach()))
        elif isinstance(part, (int, float)) and not isinstance(part, bool):
            out.append(float(part))
        else:
            raise CheckFailure(f"{name} should hold two numbers, but one is {short_repr(part)}.")
    return out[0], out[1]


@checker("gan_step")
def check_gan_step(gan_step_fn: Any) -> str:
    """Two steps of ``fn`` from stale gradients must leave both players where the reference leaves them."""
    for seed in (0, 1):
        got_losses, got_params = _run(gan_step_fn, seed, 2, student=True)
        want_losses, want_params = _run(_reference_step, seed, 2, student=False)
        mistakes = {}
        for words, (switches, hint) in _STEP_MISTAKES.items():
            mistakes[words] = (_run(_reference_step, seed, 2, student=False, **switches)[1], hint)
        compare_arrays("the players' parameters after two steps", got_params, want_params, atol=1e-6, rtol=1e-5,
                       mistakes=mistakes,
                       hint="Follow the order: zero D's gradients, D's loss on real and detached fake points, "
                            "backward, D's step; then zero G's gradients, G's loss from the updated D, backward, G's step.")
        for i, (got, want) in enumerate(zip(got_losses, want_losses)):
            d_got, g_got = _pair(f"what your function returned at step {i + 1}", got)
            compare_arrays(f"the discriminator's loss returned at step {i + 1}", d_got, want[0], atol=1e-5)
            compare_arrays(f"the generator's loss returned at step {i + 1}", g_got, want[1], atol=1e-5)
    return "both players match the reference after two steps from two starts, and the returned losses are right."


# ------------------------------------------------------------------- straight-through


def _st_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(7)
    uniform = torch.rand(3, 6, generator=g).clamp(1e-6, 1 - 1e-6)
    return [
        ("3 rows of 6 logits with Gumbel noise, tau = 0.5", torch.randn(3, 6, generator=g),
         -torch.log(-torch.log(uniform)), 0.5),
        ("one row, no noise, tau = 1", torch.tensor([[0.2, 1.5, -0.3, 0.9]]), torch.zeros(1, 4), 1.0),
        ("2 × 2 positions (a 3-D tensor of logits), tau = 2", torch.randn(2, 2, 5, generator=g),
         torch.randn(2, 2, 5, generator=g), 2.0),
    ]


@checker("straight_through")
def check_straight_through(straight_through_fn: Any) -> str:
    """Forward: exactly one-hot at argmax(logits + noise). Backward: the soft sample's gradient."""
    for description, logits, noise, tau in _st_cases():
        logits_in = logits.clone().requires_grad_(True)
        got = _call_keeping_grad(straight_through_fn, logits_in, noise.clone(), tau)
        expected = straight_through_sample(logits, noise, tau).detach()
        name = f"the sample for {description}"
        soft = torch.softmax((logits + noise) / tau, dim=-1)
        compare_arrays(name, got, expected, atol=1e-6, rtol=0.0, mistakes={
            "it is the soft sample softmax((logits + noise) / tau), not a one-hot vector":
                (soft, "The forward value must be the hard one-hot: y_hard − y_soft.detach() + y_soft."),
            "the noise is ignored: it is the one-hot of argmax(logits), which always picks the same token":
                (F.one_hot(logits.argmax(-1), logits.shape[-1]).float(), "Take the argmax of logits + noise."),
        })
        expect(isinstance(got, torch.Tensor) and got.requires_grad,
               f"{name} carries no gradient: argmax and one_hot are not differentiable, so nothing reaches the "
               "logits.",
               hint="Add the soft sample's gradient: y_hard − y_soft.detach() + y_soft.")
        weights = torch.linspace(-1.0, 2.0, logits.numel()).reshape(logits.shape)
        (got * weights).sum().backward()
        ref_logits = logits.clone().requires_grad_(True)
        (straight_through_sample(ref_logits, noise, tau) * weights).sum().backward()
        untempered = logits.clone().requires_grad_(True)
        (torch.softmax(untempered + noise, -1) * weights).sum().backward()
        expect(logits_in.grad is not None, "no gradient reaches the logits.",
               hint="Compute the soft sample from `logits` itself, not from a detached copy.")
        compare_arrays(f"the gradient with respect to the logits for {description}", logits_in.grad, ref_logits.grad,
                       atol=1e-6, rtol=1e-5, mistakes={
                           "the temperature tau is left out of the soft sample":
                               (untempered.grad, "y_soft = softmax((logits + noise) / tau).")} if tau != 1.0 else None)
    return "one-hot forward values and the soft sample's gradient on 3 inputs, including a 3-D batch and tau = 2."
