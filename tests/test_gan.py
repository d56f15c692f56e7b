"""Tests of sftlearn.gan: the ring of Gaussians, mode counting, the two GAN losses and a training step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.gan import (
    GANConfig,
    discriminator_loss,
    gan_step,
    generator_loss,
    mlp,
    mode_centres,
    modes_covered,
    ring_of_gaussians,
    straight_through_sample,
    train_gan,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: several CPU threads only fight over hand-offs (badly, on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------ the data


def test_mode_centres_lie_evenly_on_the_circle():
    centres = mode_centres(8, 2.0)
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    assert torch.allclose(centres[0], torch.tensor([2.0, 0.0]), atol=1e-6)
    assert torch.allclose(centres[2], torch.tensor([0.0, 2.0]), atol=1e-6)
    # Neighbours are 2·r·sin(π/8) apart.
    gaps = (centres - centres.roll(1, dims=0)).norm(dim=1)
    assert torch.allclose(gaps, torch.full((8,), 4 * math.sin(math.pi / 8)), atol=1e-5)


def test_ring_samples_have_the_right_clouds():
    points = ring_of_gaussians(40_000, n_modes=4, radius=3.0, std=0.2, generator=torch.Generator().manual_seed(0))
    centres = mode_centres(4, 3.0)
    which = torch.cdist(points, centres).argmin(dim=1)
    shares = torch.bincount(which, minlength=4).float() / len(points)
    assert torch.allclose(shares, torch.full((4,), 0.25), atol=0.01)
    for k in range(4):
        cloud = points[which == k]
        assert torch.allclose(cloud.mean(0), centres[k], atol=0.01)
        assert torch.allclose(cloud.std(0), torch.full((2,), 0.2), atol=0.01)


def test_ring_samples_are_reproducible_with_a_generator():
    a = ring_of_gaussians(10, generator=torch.Generator().manual_seed(3))
    b = ring_of_gaussians(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_modes_covered_counts_modes_with_enough_samples():
    centres = mode_centres(8, 2.0)
    # 60 points on mode 0, 38 on mode 3, 2 on mode 5 (2% < 3%), 0 elsewhere.
    samples = torch.cat([centres[0].repeat(60, 1), centres[3].repeat(38, 1) + 0.05, centres[5].repeat(2, 1)])
    covered, on_mode = modes_covered(samples, centres, std=0.1)
    assert covered == 2
    assert on_mode == pytest.approx(1.0)
    # Points farther than 3·std from every centre land on no mode.
    far = torch.zeros(100, 2)  # the centre of the ring
    assert modes_covered(far, centres, std=0.1) == (0, 0.0)


def test_modes_covered_by_real_data_is_all_of_them():
    centres = mode_centres(8, 2.0)
    real = ring_of_gaussians(4000, std=0.1, generator=torch.Generator().manual_seed(0))
    covered, on_mode = modes_covered(real, centres, std=0.1)
    assert covered == 8
    assert on_mode == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # P(radius ≤ 3σ) in 2-D


@pytest.mark.parametrize("call, words", [
    (lambda: mode_centres(0), "n_modes must be a positive int"),
    (lambda: mode_centres(8, radius=-1.0), "radius must be positive"),
    (lambda: ring_of_gaussians(0), "positive int"),
    (lambda: ring_of_gaussians(5, std=0.0), "std must be positive"),
    (lambda: modes_covered(torch.zeros(5, 3), mode_centres(), 0.1), "shape (n, 2)"),
    (lambda: modes_covered(torch.zeros(0, 2), mode_centres(), 0.1), "empty"),
    (lambda: modes_covered(torch.zeros(5, 2), mode_centres(), 0.1, min_share=0.0), "min_share"),
])
def test_bad_data_arguments_are_explained(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


# ---------------------------------------------------------------------------- the losses


def test_discriminator_loss_is_binary_cross_entropy():
    torch.manual_seed(0)
    real, fake = torch.randn(7, 1) * 3, torch.randn(5, 1) * 3
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros_like(fake)))
    assert torch.allclose(discriminator_loss(real, fake), expected, atol=1e-5)


def test_generator_losses_match_their_formulas_and_stay_finite():
    fake = torch.tensor([[-2.0], [0.0], [3.0]])
    d = torch.sigmoid(fake)
    assert torch.allclose(generator_loss(fake), -torch.log(d).mean(), atol=1e-6)
    assert torch.allclose(generator_loss(fake, saturating=True), torch.log(1 - d).mean(), atol=1e-6)
    # A very confident discriminator: the probability form would take log(0); the logit form does not.
    extreme = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(generator_loss(extreme)) and torch.isfinite(generator_loss(extreme, saturating=True))
    assert torch.isfinite(discriminator_loss(extreme, extreme))


def test_the_saturating_loss_has_no_gradient_when_the_generator_is_caught():
    """d/dℓ log(1 − σ(ℓ)) = −σ(ℓ) → 0 as D(G(z)) → 0, while d/dℓ [−log σ(ℓ)] = σ(ℓ) − 1 → −1."""
    logit = torch.tensor([-6.0], requires_grad=True)
    generator_loss(logit, saturating=True).backward()
    assert logit.grad.item() == pytest.approx(-torch.sigmoid(torch.tensor(-6.0)).item(), rel=1e-5)
    assert abs(logit.grad.item()) < 0.003
    logit.grad = None
    generator_loss(logit).backward()
    assert logit.grad.item() == pytest.approx(torch.sigmoid(torch.tensor(-6.0)).item() - 1, rel=1e-5)


@pytest.mark.parametrize("call, error, words", [
    (lambda: discriminator_loss([0.1], torch.zeros(2)), TypeError, "real_logits must be a tensor"),
    (lambda: discriminator_loss(torch.zeros(2), torch.zeros(0)), ValueError, "fake_logits is empty"),
    (lambda: generator_loss(0.5), TypeError, "fake_logits must be a tensor"),
    (lambda: mlp(2, 0, 1), ValueError, "hidden must be a positive int"),
    (lambda: GANConfig(batch_size=0), ValueError, "batch_size"),
    (lambda: GANConfig(steps=10, snapshot_steps=(0, 50)), ValueError, "outside 0..steps=10"),
    (lambda: GANConfig(lr_g=0.0), ValueError, "learning rates must be positive"),
    (lambda: GANConfig(betas=(0.5,)), ValueError, "betas must be two numbers in [0, 1)"),
    (lambda: GANConfig(betas=(0.5, 1.0)), ValueError, "betas must be two numbers"),
    (lambda: GANConfig(steps=300), ValueError, "pass snapshot_steps for a shorter run"),
])
def test_bad_loss_and_config_arguments_are_explained(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


# ------------------------------------------------------------------------ training step


def _players(seed=0):
    torch.manual_seed(seed)
    generator, discriminator = mlp(2, 8, 2), mlp(2, 8, 1)
    return generator, discriminator


def test_gan_step_matches_a_hand_written_step():
    """Reference: the two updates written out with plain SGD arithmetic, no optimizer objects."""
    generator, discriminator = _players()
    g_ref, d_ref = copy.deepcopy(generator), copy.deepcopy(discriminator)
    real, z, lr = torch.randn(16, 2), torch.randn(16, 2), 0.1
    opt_g = torch.optim.SGD(generator.parameters(), lr=lr)
    opt_d = torch.optim.SGD(discriminator.parameters(), lr=lr)
    for p in list(generator.parameters()) + list(discriminator.parameters()):
        p.grad = torch.ones_like(p)  # stale gradients that a correct step must clear
    d_value, g_value = gan_step(generator, discriminator, opt_g, opt_d, real, z)

    # Discriminator: gradient of its BCE with respect to its own parameters only.
    fake = g_ref(z).detach()
    d_bce = (F.binary_cross_entropy_with_logits(d_ref(real), torch.ones(16, 1))
             + F.binary_cross_entropy_with_logits(d_ref(fake), torch.zeros(16, 1)))
    grads = torch.autograd.grad(d_bce, list(d_ref.parameters()))
    with torch.no_grad():
        for p, g in zip(d_ref.parameters(), grads):
            p -= lr * g
    # Generator: judged by the updated discriminator, non-saturating loss.
    g_bce = F.binary_cross_entropy_with_logits(d_ref(g_ref(z)), torch.ones(16, 1))
    grads = torch.autograd.grad(g_bce, list(g_ref.parameters()))
    with torch.no_grad():
        for p, g in zip(g_ref.parameters(), grads):
            p -= lr * g

    assert d_value == pytest.approx(d_bce.item(), rel=1e-5)
    assert g_value == pytest.approx(g_bce.item(), rel=1e-5)
    for got, want in zip(list(generator.parameters()) + list(discriminator.parameters()),
                         list(g_ref.parameters()) + list(d_ref.parameters())):
        assert torch.allclose(got, want, atol=1e-6)


def test_a_short_run_records_everything_and_is_reproducible():
    config = GANConfig(steps=60, log_every=20, snapshot_steps=(0, 60), n_eval=200)
    a, b = train_gan(config), train_gan(config)
    assert a.step == [0, 20, 40, 60]
    assert set(a.snapshots) == {0, 60} and a.snapshots[60].shape == (200, 2)
    assert a.d_loss == b.d_loss and torch.equal(a.snapshots[60], b.snapshots[60])
    assert all(0 < v < 1 for v in a.d_real + a.d_fake)
    # Untrained D is unsure (≈ 0.5 everywhere): its BCE starts near 2·log 2.
    assert a.d_loss[0] == pytest.approx(2 * math.log(2), abs=0.1)


# ------------------------------------------------------------------------ discrete outputs


def test_straight_through_matches_torch_gumbel_softmax_with_hard_true():
    """torch's F.gumbel_softmax draws its noise as −log(Exp(1)); the same seed gives the same noise."""
    logits = torch.randn(4, 6, requires_grad=True)
    weights = torch.randn(4, 6)
    torch.manual_seed(5)
    reference = F.gumbel_softmax(logits, tau=0.7, hard=True)
    (reference * weights).sum().backward()
    want_grad, logits.grad = logits.grad.clone(), None
    torch.manual_seed(5)
    noise = -torch.empty_like(logits).exponential_().log()
    got = straight_through_sample(logits, noise, tau=0.7)
    (got * weights).sum().backward()
    assert torch.equal(got.detach(), reference.detach())
    assert set(got.detach().unique().tolist()) == {0.0, 1.0} and torch.equal(got.detach().sum(-1), torch.ones(4))
    assert torch.allclose(logits.grad, want_grad, atol=1e-6)


def test_straight_through_picks_the_argmax_of_the_noisy_logits_even_when_softmax_ties():
    # logits + noise = [0, 1e-8]: a float32 softmax gives exactly [0.5, 0.5], whose argmax is 0
    logits, noise = torch.tensor([0.0, 1e-8]), torch.zeros(2)
    assert torch.equal(torch.softmax(logits + noise, -1), torch.tensor([0.5, 0.5]))
    assert straight_through_sample(logits, noise).detach().tolist() == [0.0, 1.0]


def test_argmax_and_multinomial_pass_no_gradient():
    logits = torch.randn(3, 5, requires_grad=True)
    assert not logits.argmax(-1).requires_grad
    assert not torch.multinomial(torch.softmax(logits, -1), 1).requires_grad


@pytest.mark.parametrize("call, error, words", [
    (lambda: straight_through_sample(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "same shape"),
    (lambda: straight_through_sample(torch.zeros(3), torch.zeros(3), tau=0.0), ValueError, "tau"),
    (lambda: straight_through_sample([0.0], torch.zeros(1)), TypeError, "must both be tensors"),
])
def test_bad_straight_through_arguments_are_explained(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
