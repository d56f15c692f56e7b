"""A small generative adversarial network (GAN) on a 2-D toy distribution (chapter 13).

The data are points drawn from a ring of Gaussians: ``n_modes`` little round clouds of
standard deviation ``std`` whose centres sit evenly on a circle. Such data are easy to plot
and make *mode collapse* easy to count: a generator that covers all the clouds is healthy,
one that piles its samples onto one or two of them has collapsed.

Two networks play a game:

- the **generator** ``G`` turns a random latent vector ``z`` into a point ``G(z)``;
- the **discriminator** ``D`` gives a point a *logit* ``ℓ``; ``D(x) = sigmoid(ℓ)`` is its
  probability that the point is real.

Every loss here takes logits, never probabilities: ``log sigmoid(ℓ) = −softplus(−ℓ)`` and
``log(1 − sigmoid(ℓ)) = −softplus(ℓ)`` are exact and never take the log of 0, which the
probability form does as soon as ``D`` is confident.

Contents: :func:`mode_centres`, :func:`ring_of_gaussians`, :func:`modes_covered`,
:func:`discriminator_loss`, :func:`generator_loss`, :func:`mlp`, :func:`gan_step` (one
training step, both players) and :func:`train_gan` (a whole run, recorded in a
:class:`GANHistory`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .validation import check_betas, check_int

# ------------------------------------------------------------------------------ the data


def mode_centres(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The centres of the ring's clouds, evenly spaced on a circle: shape (n_modes, 2)."""
    check_int("n_modes", n_modes, fix="Use e.g. n_modes=8.")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}; use e.g. radius=2.0.")
    angles = torch.arange(n_modes, dtype=torch.float32) * (2 * math.pi / n_modes)  # (M,)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)  # (M, 2)


def ring_of_gaussians(
    n: int,
    n_modes: int = 8,
    radius: float = 2.0,
    std: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points from an equal mixture of ``n_modes`` round Gaussians on a circle: (n, 2).

    Each point picks a cloud uniformly at random, then adds Gaussian noise of standard
    deviation ``std`` to both coordinates. Pass ``generator`` for a reproducible draw.
    """
    check_int("n (the number of points)", n)
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}; use e.g. std=0.1.")
    centres = mode_centres(n_modes, radius)  # (M, 2)
    which = torch.randint(0, n_modes, (n,), generator=generator)  # (n,)
    noise = torch.randn(n, 2, generator=generator)  # (n, 2)
    return centres[which] + std * noise  # (n, 2)


def modes_covered(
    samples: torch.Tensor,
    centres: torch.Tensor,
    std: float,
    min_share: float = 0.03,
) -> tuple[int, float]:
    """How many modes the samples cover, and the share of samples that land on any mode.

    A sample *lands on* a mode when it lies within 3·std of the mode's centre (a real point
    does so with probability 1 − e^(−4.5) ≈ 0.989, in two dimensions). A mode is *covered*
    when at least ``min_share`` of all samples land on it: a generator that spreads evenly
    over 8 modes puts 1/8 = 0.125 on each, one that has collapsed puts almost nothing on most.

    Returns ``(number of modes covered, share of samples within 3·std of some mode)``.
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() != 2 or samples.shape[1] != 2:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"samples must be a tensor of shape (n, 2), got {shape}; "
                         "pass the generated points as rows.")
    if samples.shape[0] == 0:
        raise ValueError("samples is empty; generate at least one point.")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], got {min_share!r}.")
    distances = torch.cdist(samples.detach().float(), centres.float())  # (n, M)
    nearest, which = distances.min(dim=1)  # (n,), (n,)
    on_a_mode = nearest <= 3 * std  # (n,)
    counts = torch.bincount(which[on_a_mode], minlength=centres.shape[0])  # (M,)
    covered = int((counts >= min_share * samples.shape[0]).sum())
    return covered, float(on_a_mode.float().mean())


# ---------------------------------------------------------------------------- the losses


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of discriminator logits, got {type(logits).__name__}.")
    if logits.numel() == 0:
        raise ValueError(f"{name} is empty; pass the discriminator's logits for a non-empty batch.")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross-entropy: real points labelled 1, generated ones 0.

    ``−mean log D(x) − mean log(1 − D(G(z)))``, the sum of the two batch means, computed
    from logits (``−log sigmoid(ℓ) = softplus(−ℓ)``, ``−log(1 − sigmoid(ℓ)) = softplus(ℓ)``).
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated points.

    - non-saturating (the default, the one to use): ``−mean log D(G(z))``;
    - ``saturating=True``: ``mean log(1 − D(G(z)))``, the minimax game taken literally. Its
      gradient vanishes exactly when the generator is worst (``D(G(z))`` near 0); the
      lesson shows why.
    """
    _check_logits("fake_logits", fake_logits)
    if saturating:
        return -F.softplus(fake_logits).mean()  # log(1 − σ(ℓ)) = −softplus(ℓ)
    return F.softplus(-fake_logits).mean()  # −log σ(ℓ) = softplus(−ℓ)


# --------------------------------------------------------------------------- the players


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """A two-hidden-layer perceptron, the shape of both players here.

    LeakyReLU rather than ReLU: a unit that is switched off for every input passes no
    gradient, and in a game that changes its targets every step, dead units do not recover.
    """
    for name, value in (("n_in", n_in), ("hidden", hidden), ("n_out", n_out)):
        check_int(name, value)
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, n_out),
    )


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    saturating: bool = False,
) -> tuple[float, float]:
    """One round of the game: a discriminator step, then a generator step. Returns both losses.

    1. The discriminator learns from real points and generated ones. The generated points are
       ``detach()``-ed: this step must not reach back into the generator.
    2. The generator is then judged by the *updated* discriminator and moved to fool it.
    Each player's gradients are zeroed right before its own backward pass, because the other
    player's backward pass also writes into them (``backward`` adds to ``.grad``).
    """
    fake = generator(z)  # (B, 2)

    opt_d.zero_grad()
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    d_loss.backward()
    opt_d.step()

    opt_g.zero_grad()
    g_loss = generator_loss(discriminator(fake), saturating=saturating)
    g_loss.backward()  # also fills the discriminator's .grad, which step 1 clears next time
    opt_g.step()
    return float(d_loss.detach()), float(g_loss.detach())


# ------------------------------------------------------------------------------ training


@dataclass
class GANConfig:
    """Everything that defines a run of :func:`train_gan`.

    ``g_steps`` is how many generator steps follow each discriminator step (the usual choice
    is 1). With more, the generator keeps chasing a judge that has stopped learning: the
    lesson's recipe for mode collapse.
    """

    n_modes: int = 8
    radius: float = 2.0
    std: float = 0.1
    latent_dim: int = 2
    hidden: int = 64
    batch_size: int = 128
    steps: int = 1200
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    saturating: bool = False
    g_steps: int = 1
    log_every: int = 25
    snapshot_steps: tuple[int, ...] = (0, 200, 500, 1200)
    n_eval: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_modes", "latent_dim", "hidden", "batch_size", "g_steps", "log_every", "n_eval"):
            check_int(f"GANConfig.{name}", getattr(self, name))
        check_int("GANConfig.steps", self.steps, minimum=0)
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise ValueError(f"learning rates must be positive, got lr_g={self.lr_g}, lr_d={self.lr_d}.")
        self.betas = check_betas("GANConfig.betas", self.betas, "(0.5, 0.999)")
        late = [s for s in self.snapshot_steps if not 0 <= s <= self.steps]
        if late:
            raise ValueError(f"snapshot_steps {late} lie outside 0..steps={self.steps}; "
                             "remove them or raise steps (the default snapshots end at 1200: "
                             "pass snapshot_steps for a shorter run).")


@dataclass
class GANHistory:
    """What :func:`train_gan` records.

    Every ``log_every`` steps: the step, both losses, the mean of ``D`` on real and on
    generated points, and the modes covered by ``n_eval`` generated points. ``snapshots``
    maps each of ``snapshot_steps`` to the generated points (n_eval, 2) at that step.
    """

    step: list[int] = field(default_factory=list)
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    on_mode: list[float] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    generator: nn.Module | None = None
    discriminator: nn.Module | None = None


def train_gan(config: GANConfig | None = None) -> GANHistory:
    """Train a GAN on the ring of Gaussians and record how the game went (CPU, seconds).

    Seeds torch's global generator with ``config.seed`` first (the players' weights and noise
    come from it), so a run is repeatable; the real batches and the evaluation points have
    generators of their own."""
    config = config or GANConfig()
    torch.manual_seed(config.seed)
    data = torch.Generator().manual_seed(config.seed + 1)  # the real batches
    centres = mode_centres(config.n_modes, config.radius)
    generator = mlp(config.latent_dim, config.hidden, 2)
    discriminator = mlp(2, config.hidden, 1)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    # One fixed set of latent vectors for every evaluation, so snapshots are comparable.
    z_eval = torch.randn(config.n_eval, config.latent_dim, generator=torch.Generator().manual_seed(config.seed + 2))
    real_eval = ring_of_gaussians(config.n_eval, config.n_modes, config.radius, config.std,
                                  generator=torch.Generator().manual_seed(config.seed + 3))
    history = GANHistory(generator=generator, discriminator=discriminator)

    def record(step: int, d_loss: float, g_loss: float) -> None:
        with torch.no_grad():
            fake = generator(z_eval)  # (n_eval, 2)
            d_real = torch.sigmoid(discriminator(real_eval)).mean()
            d_fake = torch.sigmoid(discriminator(fake)).mean()
        covered, on_mode = modes_covered(fake, centres, config.std)
        history.step.append(step)
        history.d_loss.append(d_loss)
        history.g_loss.append(g_loss)
        history.d_real.append(float(d_real))
        history.d_fake.append(float(d_fake))
        history.modes.append(covered)
        history.on_mode.append(on_mode)
        if step in config.snapshot_steps:
            history.snapshots[step] = fake.clone()

    with torch.no_grad():  # the losses before any training, for the first point of the curves
        z = torch.randn(config.batch_size, config.latent_dim)
        real = ring_of_gaussians(config.batch_size, config.n_modes, config.radius, config.std, generator=data)
        fake_logits = discriminator(generator(z))
        first = (float(discriminator_loss(discriminator(real), fake_logits)),
                 float(generator_loss(fake_logits, config.saturating)))
    record(0, *first)
    for step in range(1, config.steps + 1):
        real = ring_of_gaussians(config.batch_size, config.n_modes, config.radius, config.std, generator=data)
        z = torch.randn(config.batch_size, config.latent_dim)  # (B, latent_dim)
        d_loss, g_loss = gan_step(generator, discriminator, opt_g, opt_d, real, z, config.saturating)
        for _ in range(config.g_steps - 1):  # extra generator steps against the same judge
            opt_g.zero_grad()
            fake_logits = discriminator(generator(torch.randn(config.batch_size, config.latent_dim)))
            generator_loss(fake_logits, config.saturating).backward()
            opt_g.step()
        if step % config.log_every == 0 or step in config.snapshot_steps:
            record(step, d_loss, g_loss)
    return history


# ------------------------------------------------------------------------ discrete outputs


def straight_through_sample(logits: torch.Tensor, noise: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """A one-hot token choice that still passes a gradient back to ``logits``.

    Forward: the one-hot vector of ``argmax(logits + noise)``, exactly (with Gumbel noise
    ``−log(−log U)`` this is a sample from ``softmax(logits)``). Backward: the gradient of
    the *soft* sample ``softmax((logits + noise) / tau)``: the straight-through
    Gumbel-softmax estimator. ``y_hard − y_soft.detach() + y_soft`` has the value of
    ``y_hard`` and the gradient of ``y_soft``.

    Shapes: ``logits`` and ``noise`` (..., V); the result (..., V).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(noise, torch.Tensor):
        raise TypeError("logits and noise must both be tensors of shape (..., V).")
    if logits.shape != noise.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and noise {tuple(noise.shape)} must have the same "
                         "shape; draw one noise value per logit.")
    if not tau > 0:
        raise ValueError(f"tau (the temperature) must be positive, got {tau!r}; use e.g. tau=1.0.")
    y_soft = torch.softmax((logits + noise) / tau, dim=-1)  # (..., V)
    # (...,) from the noisy logits themselves: float32 softmax can tie two close ones
    index = (logits + noise).argmax(dim=-1)
    y_hard = F.one_hot(index, logits.shape[-1]).to(y_soft.dtype)  # (..., V)
    return y_hard - y_soft.detach() + y_soft
