"""Choosing a learning rate: gradient descent on a stretched bowl, with a slider.

The surface is the quadratic ``L(x, y) = ½ (a·x² + b·y²)`` with ``a ≤ b``: a bowl that is
gentle along x (curvature ``a``) and steep along y (curvature ``b``). Its gradient is
``(a·x, b·y)``, so one step of gradient descent with learning rate η multiplies each
coordinate by its own factor::

    x ← (1 − η·a)·x        y ← (1 − η·b)·y

Everything about the learning rate can be read off these two factors:

- both lie in (−1, 1): the path converges; the factor closest to ±1 sets the pace;
- ``1 − η·b < 0``: y changes sign every step, the path zig-zags across the valley;
- ``|1 − η·b| > 1``, that is ``η > 2/b``: each step overshoots further, the path diverges;
- the best fixed rate is ``η = 2/(a + b)``, where the two factors are equally far from 0.

:func:`learning_rate_explorer` shows it: a slider for η (and one for the steepness ``b``)
redraws the path and the loss curve and names the outcome. When no front end can draw
widgets (:func:`sftlearn.widgets.headless`), it draws :func:`sweep_figure` instead, a
static comparison of a rate that is too small, one that is about right and one that is
too large. :class:`LearningRateExplorer` holds the widget; its logic runs without a
browser: set ``explorer.lr.value`` and read ``explorer.verdict``, ``explorer.status.value``
or ``explorer.path``.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from sftlearn.widgets import Explorer, check_in_range, check_slider_value, figure_png, headless

START = (-4.0, 1.5)  # far along the gentle direction, a little way up the steep one
STEPS = 25


# ----------------------------------------------------------------------------- the maths


def _check_surface(a: float, b: float) -> None:
    if not (a > 0 and b > 0):
        raise ValueError(f"the curvatures must be positive, got a = {a}, b = {b}; "
                         "a bowl curves upwards in every direction.")
    if a > b:
        raise ValueError(f"a = {a} is larger than b = {b}; x is the gentle direction, so pass a ≤ b "
                         "(swap them).")


def quadratic_loss(xy: np.ndarray, a: float = 1.0, b: float = 10.0) -> np.ndarray:
    """``L(x, y) = ½ (a·x² + b·y²)`` for points ``xy`` of shape ``(..., 2)``; returns shape ``(...)``."""
    xy = np.asarray(xy, dtype=float)
    with np.errstate(over="ignore"):  # far along a diverging path the square passes 1e308: inf
        return 0.5 * (a * xy[..., 0] ** 2 + b * xy[..., 1] ** 2)


def gd_path(lr: float, a: float = 1.0, b: float = 10.0, start: tuple[float, float] = START,
            steps: int = STEPS) -> np.ndarray:
    """The points visited by ``steps`` steps of gradient descent, shape ``(steps + 1, 2)``.

    Row 0 is the start; row k is the point after k steps of ``θ ← θ − η·∇L(θ)``.
    """
    if lr < 0:
        raise ValueError(f"the learning rate must be ≥ 0, got {lr}.")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps}.")
    _check_surface(a, b)
    curvature = np.array([a, b])  # the gradient of L at θ is curvature * θ
    path = np.empty((int(steps) + 1, 2))
    path[0] = start
    # A diverging path may pass 1e308 and become inf; after that, inf − inf would make it NaN
    # (and its loss NaN, which a plot leaves out), so an infinite coordinate stays infinite,
    # as far off as a float can say. np.where computes the NaN it then discards: no warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(int(steps)):
            path[k + 1] = np.where(np.isinf(path[k]), path[k], path[k] - lr * curvature * path[k])
    return path


def step_factors(lr: float, a: float = 1.0, b: float = 10.0) -> tuple[float, float]:
    """``(1 − η·a, 1 − η·b)``: what one step multiplies x and y by."""
    _check_surface(a, b)
    return 1 - lr * a, 1 - lr * b


def best_lr(a: float = 1.0, b: float = 10.0) -> float:
    """The fixed learning rate that converges fastest on this bowl, ``2/(a + b)``."""
    _check_surface(a, b)
    return 2 / (a + b)


@dataclass(frozen=True)
class Outcome:
    """What a learning rate does on the bowl, in numbers and in words."""

    lr: float
    verdict: str        # "too small", "about right", "too large" or "diverges"
    loss_start: float
    loss_end: float
    factors: tuple[float, float]
    explanation: str


def assess(lr: float, a: float = 1.0, b: float = 10.0, start: tuple[float, float] = START,
           steps: int = STEPS) -> Outcome:
    """Run gradient descent and say whether ``lr`` is too small, about right, too large or diverging.

    The slower of the two factors, ``ρ = max(|1 − η·a|, |1 − η·b|)``, is how much the
    distance to the minimum shrinks per step (eventually). ``ρ > 1`` diverges. "about
    right" means at least half the speed of the best fixed rate in log terms,
    ``ρ ≤ √ρ*`` with ``ρ* = (b − a)/(b + a)`` (or ρ ≤ 0.5 on an almost round bowl).
    Otherwise the direction that sets ρ tells which way to move: the gentle one means the
    steps are too short, the steep one that they overshoot.
    """
    path = gd_path(lr, a, b, start, steps)
    losses = quadratic_loss(path, a, b)
    fx, fy = step_factors(lr, a, b)
    rho = max(abs(fx), abs(fy))
    best = best_lr(a, b)
    rho_best = max(abs(f) for f in step_factors(best, a, b))
    factors = f"each step multiplies x by {fx:.3g} and y by {fy:.3g}"
    if rho > 1:
        verdict = "diverges"
        worst = fy if abs(fy) >= abs(fx) else fx
        why = (f"{factors}; |{worst:.3g}| > 1, so every step overshoots the valley floor by more than "
               f"the last. Above η = 2/b = {2 / b:.3g} the steep direction blows up.")
    elif rho <= max(np.sqrt(rho_best), 0.5):
        verdict = "about right"
        why = (f"{factors}, so the path converges quickly. The best fixed rate here is "
               f"2/(a + b) = {best:.3g}, with factors ±{rho_best:.3g}.")
    elif abs(fx) >= abs(fy):
        verdict = "too small"
        why = (f"{factors}; the gentle direction keeps {fx:.3g} of its distance every step, so the "
               f"path crawls along the valley. A larger η would help (the best is 2/(a + b) = {best:.3g}).")
    else:
        verdict = "too large"
        shrink = "never shrinks" if abs(fy) >= 1 - 1e-12 else f"keeps {abs(fy):.3g} of its size"
        why = (f"{factors}; y flips sign every step and {shrink}, so the path "
               f"zig-zags across the valley. A smaller η would help (the best is 2/(a + b) = {best:.3g}).")
    return Outcome(lr, verdict, float(losses[0]), float(losses[-1]), (fx, fy), why)


# ----------------------------------------------------------------------------- drawing


def _contours(ax: plt.Axes, a: float, b: float) -> None:
    xs = np.linspace(-4.5, 4.5, 121)
    ys = np.linspace(-2.5, 2.5, 81)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)  # (81, 121, 2)
    levels = np.geomspace(0.05, 60, 12)
    ax.contour(xs, ys, quadratic_loss(grid, a, b), levels=levels, colors="0.75", linewidths=0.7)
    ax.plot(0, 0, marker="*", color="black", markersize=8)
    ax.set_xlim(-4.5, 4.5)
    ax.set_ylim(-2.5, 2.5)
    ax.set_xlabel("x (gentle)")
    ax.set_ylabel("y (steep)")


def _draw_path(ax: plt.Axes, outcome: Outcome, a: float, b: float, start, steps: int, color: str) -> None:
    _contours(ax, a, b)
    path = gd_path(outcome.lr, a, b, start, steps)
    shown = path[np.all(np.abs(path) < 50, axis=1)]  # a diverging path leaves the picture
    ax.plot(shown[:, 0], shown[:, 1], "-o", color=color, markersize=3, linewidth=1)
    ax.set_title(f"η = {outcome.lr:g}: {outcome.verdict}", fontsize=10)


def _draw_losses(ax: plt.Axes, outcomes: list[Outcome], colors: list[str], a: float, b: float,
                 start, steps: int) -> None:
    for outcome, color in zip(outcomes, colors):
        losses = quadratic_loss(gd_path(outcome.lr, a, b, start, steps), a, b)
        # A diverging loss leaves the picture at 1e12: a log axis reaching up to 1e308 (or inf)
        # would squash every other curve flat, and matplotlib's ticks overflow there.
        ax.semilogy(np.where(losses < 1e12, losses, np.nan), color=color, label=f"η = {outcome.lr:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("loss", fontsize=10)
    ax.legend(fontsize=8)


COLORS = ("tab:blue", "tab:green", "tab:red")


def sweep_lrs(a: float = 1.0, b: float = 10.0) -> tuple[float, float, float]:
    """Three rates for the static sweep: one that crawls, one near the best 2/(a + b), one past 2/b.

    For a = 1, b = 10 they are 0.02, 0.18 and 0.21.
    """
    _check_surface(a, b)
    best = float(f"{best_lr(a, b):.2g}")
    if assess(best, a, b).verdict != "about right":
        # two digits can round 2/(a + b) past the band (b = 18: 0.105 -> 0.11); keep three
        best = float(f"{best_lr(a, b):.3g}")
    return float(f"{0.2 / b:.2g}"), best, float(f"{2.1 / b:.2g}")


def sweep_figure(lrs: tuple[float, ...] | None = None, a: float = 1.0, b: float = 10.0,
                 start: tuple[float, float] = START, steps: int = STEPS) -> plt.Figure:
    """The static picture: one path per learning rate, and their loss curves side by side.

    ``lrs`` defaults to :func:`sweep_lrs`: too small, about right and too large for this bowl.
    """
    lrs = sweep_lrs(a, b) if lrs is None else tuple(lrs)
    if not lrs:
        raise ValueError("give at least one learning rate to draw, e.g. lrs=(0.02, 0.18, 0.21).")
    outcomes = [assess(lr, a, b, start, steps) for lr in lrs]
    colors = [COLORS[i % len(COLORS)] for i in range(len(lrs))]
    fig, axes = plt.subplots(1, len(lrs) + 1, figsize=(3.2 * (len(lrs) + 1), 3.0))
    for ax, outcome, color in zip(axes[:-1], outcomes, colors):
        _draw_path(ax, outcome, a, b, start, steps, color)
    _draw_losses(axes[-1], outcomes, colors, a, b, start, steps)
    fig.suptitle(f"gradient descent on ½({a:g}·x² + {b:g}·y²), {steps} steps", fontsize=11)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the widget

# The sliders' ranges (the learning rate's on a log scale: exponents of 10): interesting rates
# span two decades, from crawling to diverging.
LR_EXPONENTS = (-2.5, -0.5)
STEEPNESS = (1.0, 25.0)


class LearningRateExplorer(Explorer):
    """A learning-rate slider and a steepness slider over a picture of the path.

    ``lr`` and ``steepness`` are the ipywidgets sliders; ``status`` (an HTML widget)
    names the outcome, ``image`` shows the path and the loss curve, ``widget`` is the
    whole panel. After any slider moves, ``outcome``, ``verdict`` and ``path`` describe
    the new setting. Display it as the last line of a cell, or with ``display(explorer)``.
    """

    def __init__(self, lr: float = 0.05, steepness: float = 10.0, steps: int = STEPS,
                 start: tuple[float, float] = START, draw: bool = True):
        import ipywidgets as w  # imported here: the package must import without it

        self.steps, self.start, self.draw = steps, start, draw
        self.lr = w.FloatLogSlider(value=lr, base=10, min=LR_EXPONENTS[0], max=LR_EXPONENTS[1], step=0.01,
                                   description="learning rate η", readout_format=".3f",
                                   style={"description_width": "initial"}, continuous_update=False)
        self.steepness = w.FloatSlider(value=steepness, min=STEEPNESS[0], max=STEEPNESS[1], step=0.5,
                                       description="steepness b", style={"description_width": "initial"},
                                       continuous_update=False)
        check_slider_value("lr", lr, self.lr)
        check_slider_value("steepness", steepness, self.steepness)
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.widget = w.VBox([w.HBox([self.lr, self.steepness]), self.status, self.image])
        self.lr.observe(self._update, names="value")
        self.steepness.observe(self._update, names="value")
        self._update()

    @property
    def verdict(self) -> str:
        return self.outcome.verdict

    def _update(self, change: object = None) -> None:
        """Recompute the path for the sliders' values, and redraw."""
        b = float(self.steepness.value)
        self.outcome = assess(float(self.lr.value), 1.0, b, self.start, self.steps)
        self.path = gd_path(self.outcome.lr, 1.0, b, self.start, self.steps)
        o = self.outcome
        end = f"{o.loss_end:.3g}" if np.isfinite(o.loss_end) else "∞"
        self.status.value = (f"<b>η = {o.lr:.3g}: {o.verdict}.</b> The loss went from {o.loss_start:.3g} to "
                             f"{end} in {self.steps} steps; {o.explanation}")
        if self.draw:
            self.image.value = self._png()

    def _png(self) -> bytes:
        fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.0))
        color = {"diverges": "tab:red", "too large": "tab:orange", "too small": "tab:blue"}.get(
            self.outcome.verdict, "tab:green")
        b = float(self.steepness.value)
        _draw_path(left, self.outcome, 1.0, b, self.start, self.steps, color)
        _draw_losses(right, [self.outcome], [color], 1.0, b, self.start, self.steps)
        fig.tight_layout()
        return figure_png(fig)


def learning_rate_explorer(lr: float = 0.05, steepness: float = 10.0, steps: int = STEPS):
    """Show the explorer, or :func:`sweep_figure` when widgets cannot be drawn.

    Returns the :class:`LearningRateExplorer` (displayed when it ends a cell), or ``None``
    after showing the static figure.
    """
    if headless():
        check_in_range("lr", lr, 10 ** LR_EXPONENTS[0], 10 ** LR_EXPONENTS[1])
        check_in_range("steepness", steepness, *STEEPNESS)
        sweep_figure(b=steepness, steps=steps)
        plt.show()
        return None
    return LearningRateExplorer(lr=lr, steepness=steepness, steps=steps)
