"""The checks of chapter 13 (adversarial training): right answers pass, typical wrong ones are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch13
from sftlearn.gan import discriminator_loss, gan_step, generator_loss, straight_through_sample
from conftest import failure_of, stub

bce = F.binary_cross_entropy_with_logits

# ------------------------------------------------------------------ discriminator loss


def d_with_bce(real, fake):
    """A right answer written independently, with torch's own BCE-with-logits."""
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def d_probabilities(real, fake):
    """Right formula, but through probabilities: log(0) for a confident discriminator."""
    return -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())


def test_discriminator_loss_right_answers(capsys):
    ch13.check_discriminator_loss(discriminator_loss)
    ch13.check_discriminator_loss(d_with_bce)
    out = capsys.readouterr().out
    assert out.count("✓ discriminator_loss: correct on 4 batches") == 2


def ones(t):
    return torch.ones_like(t)


def zeros(t):
    return torch.zeros_like(t)


@pytest.mark.parametrize("fn, words", [
    (lambda r, f: bce(r, zeros(r)) + bce(f, ones(f)), "the labels are swapped"),
    (lambda r, f: (bce(r, ones(r)) + bce(f, zeros(f))) / 2, "the average of the two terms"),
    (lambda r, f: bce(torch.cat([r, f]), torch.cat([ones(r), zeros(f)])),
     "the mean over all real and generated logits together"),
    (lambda r, f: bce(r, ones(r)), "the generated points' term is missing"),
    (lambda r, f: bce(f, zeros(f)), "the real points' term is missing"),
    (lambda r, f: bce(r, ones(r), reduction="sum") + bce(f, zeros(f), reduction="sum"), "sums over each batch"),
    # V(D, G) = mean log D(x) + mean log(1 − D(G(z))), with log σ(ℓ) and log(1 − σ(ℓ)) = log σ(−ℓ)
    (lambda r, f: F.logsigmoid(r).mean() + F.logsigmoid(-f).mean(), "the minus signs are missing"),
    (d_probabilities, "sigmoid(40) rounds to exactly 1.0"),
    (lambda r, f: d_with_bce(r, f).item(), "is a Python number"),
    (lambda r, f: d_with_bce(r, f).detach().numpy(), "is a NumPy value"),
    (lambda r, f: np.float32(d_with_bce(r, f).item()), "is a NumPy value"),
    (lambda r, f: d_with_bce(r, f).detach(), "carries no gradient"),
    (lambda r, f: bce(r, ones(r), reduction="none").mean(dim=1), "should be a single number"),
])
def test_discriminator_loss_mistakes_are_named(fn, words):
    failure = failure_of(ch13.check_discriminator_loss, fn)
    assert words in str(failure), str(failure)


def test_discriminator_loss_stub_and_result_instead_of_function(capsys):
    ch13.check_discriminator_loss(stub)
    assert "… discriminator_loss: not done yet" in capsys.readouterr().out
    failure = failure_of(ch13.check_discriminator_loss, torch.tensor(1.0))
    assert "expected a function" in str(failure)


# ---------------------------------------------------------------------- generator loss


def test_generator_loss_right_answers(capsys):
    ch13.check_generator_loss(generator_loss)
    ch13.check_generator_loss(lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))
    out = capsys.readouterr().out
    assert out.count("✓ generator_loss: correct on 6 batches") == 2


@pytest.mark.parametrize("fn, words", [
    (lambda f: F.logsigmoid(-f).mean(), "it is the saturating loss"),  # mean log(1 − σ(ℓ))
    (lambda f: -bce(f, zeros(f)), "it is the saturating loss"),  # the same, from the library
    (lambda f: bce(f, zeros(f)), "look *more* fake"),
    (lambda f: F.logsigmoid(f).mean(), "its sign is flipped"),  # mean log D(G(z))
    (lambda f: bce(f, ones(f), reduction="sum"), "sums over the batch"),
    (lambda f: -torch.log(f).mean(), "uses the logits as if they were probabilities"),
    (lambda f: bce(f, ones(f)).item(), "is a Python number"),
])
def test_generator_loss_mistakes_are_named(fn, words):
    failure = failure_of(ch13.check_generator_loss, fn)
    assert words in str(failure), str(failure)


def test_generator_loss_stub(capsys):
    ch13.check_generator_loss(stub)
    assert "… generator_loss: not done yet" in capsys.readouterr().out


# ----------------------------------------------------------------------- a training step


def step_with_torch_bce(generator, discriminator, opt_g, opt_d, real, z):
    """A right answer written independently of sftlearn.gan."""
    fake = generator(z)
    opt_d.zero_grad()
    real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    judged = discriminator(fake)
    g_loss = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def step_not_detached(generator, discriminator, opt_g, opt_d, real, z):
    opt_g.zero_grad()
    opt_d.zero_grad()
    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake))
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(discriminator(generator(z)))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def step_saturating(generator, discriminator, opt_g, opt_d, real, z):
    fake = generator(z)
    opt_d.zero_grad()
    real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
    d_loss = bce(real_logits, ones(real_logits)) + bce(fake_logits, zeros(fake_logits))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    judged = discriminator(fake)
    g_loss = -bce(judged, zeros(judged))  # mean log(1 − D(G(z))), minimised
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def step_no_zero_d(generator, discriminator, opt_g, opt_d, real, z):
    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = generator_loss(discriminator(fake))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def step_wrong_return(*args):
    gan_step(*args)
    return None


def step_swapped_return(*args):
    d, g = gan_step(*args)
    return g, d


def test_gan_step_right_answers(capsys):
    ch13.check_gan_step(gan_step)
    ch13.check_gan_step(step_with_torch_bce)
    out = capsys.readouterr().out
    assert out.count("✓ gan_step: both players match the reference") == 2


@pytest.mark.parametrize("fn, words", [
    (step_not_detached, "the generated points are not detached"),
    (step_saturating, "the saturating loss"),
    (step_no_zero_d, "the discriminator's gradients are never zeroed"),
    (step_wrong_return, "should be a pair (d_loss, g_loss)"),
    (step_swapped_return, "the discriminator's loss returned at step 1"),
])
def test_gan_step_mistakes_are_named(fn, words):
    failure = failure_of(ch13.check_gan_step, fn)
    assert words in str(failure), str(failure)


def test_gan_step_stub(capsys):
    ch13.check_gan_step(stub)
    assert "… gan_step: not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------- straight-through


def st_hard_only(logits, noise, tau):
    return F.one_hot((logits + noise).argmax(-1), logits.shape[-1]).float()


def st_soft_only(logits, noise, tau):
    return torch.softmax((logits + noise) / tau, -1)


def st_written_out(logits, noise, tau):
    soft = torch.softmax((logits + noise) / tau, -1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def st_no_noise(logits, noise, tau):
    soft = torch.softmax(logits / tau, -1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def st_no_tau(logits, noise, tau):
    soft = torch.softmax(logits + noise, -1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def test_straight_through_right_answer(capsys):
    ch13.check_straight_through(straight_through_sample)
    ch13.check_straight_through(st_written_out)
    assert capsys.readouterr().out.count("✓ straight_through: one-hot forward values") == 2


@pytest.mark.parametrize("fn, words", [
    (st_hard_only, "carries no gradient: argmax and one_hot are not differentiable"),
    (st_soft_only, "it is the soft sample"),
    (st_no_noise, "the noise is ignored"),
    (st_no_tau, "the temperature tau is left out"),
])
def test_straight_through_mistakes_are_named(fn, words):
    failure = failure_of(ch13.check_straight_through, fn)
    assert words in str(failure), str(failure)


def test_straight_through_stub(capsys):
    ch13.check_straight_through(stub)
    assert "… straight_through: not done yet" in capsys.readouterr().out


def test_generator_loss_through_log_sigmoid_fails_on_a_certain_discriminator():
    failure = failure_of(ch13.check_generator_loss, lambda f: -torch.log(torch.sigmoid(f)).mean())
    assert "logits −200) is inf" in failure.message


def test_gan_step_with_the_generator_first_or_never_zeroed_is_named():
    def step(generator, discriminator, opt_g, opt_d, real, z, *, g_first=False, zero_g=True):
        fake = generator(z)

        def d_step():
            opt_d.zero_grad()
            r, f = discriminator(real), discriminator(fake.detach())
            d = bce(r, ones(r)) + bce(f, zeros(f))
            d.backward()
            opt_d.step()
            return d

        def g_step():
            if zero_g:
                opt_g.zero_grad()
            judged = discriminator(fake)
            g = bce(judged, ones(judged))
            g.backward()
            opt_g.step()
            return g

        if g_first:
            g = g_step()
            d = d_step()
        else:
            d = d_step()
            g = g_step()
        return d.item(), g.item()

    assert "takes its step before the discriminator" in failure_of(
        ch13.check_gan_step, lambda *a: step(*a, g_first=True)).message
    assert "the generator's gradients are never zeroed" in failure_of(
        ch13.check_gan_step, lambda *a: step(*a, zero_g=False)).message
