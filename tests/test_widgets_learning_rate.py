"""The learning-rate explorer: the maths, the static sweep, and the widget driven without a browser."""

from __future__ import annotations

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest

from sftlearn.widgets import learning_rate as lrw


def test_one_step_multiplies_each_coordinate_by_its_factor():
    path = lrw.gd_path(0.05, a=1.0, b=10.0, start=(-4.0, 1.5), steps=2)
    assert path.shape == (3, 2)
    np.testing.assert_allclose(path[1], [-4.0 * 0.95, 1.5 * 0.5])
    np.testing.assert_allclose(path[2], [-4.0 * 0.95**2, 1.5 * 0.25])
    assert lrw.step_factors(0.05) == pytest.approx((0.95, 0.5))


def test_loss_of_the_start_and_the_best_rate():
    assert lrw.quadratic_loss(np.array([-4.0, 1.5])) == pytest.approx(0.5 * (16 + 10 * 2.25))
    assert lrw.best_lr(1.0, 10.0) == pytest.approx(2 / 11)
    assert lrw.sweep_lrs() == (0.02, 0.18, 0.21)


@pytest.mark.parametrize("lr, verdict", [
    (0.005, "too small"), (0.02, "too small"), (0.05, "too small"),
    (0.1, "about right"), (0.18, "about right"), (0.19, "about right"),
    (0.199, "too large"), (0.2, "too large"),
    (0.21, "diverges"), (0.3, "diverges"),
])
def test_verdicts_on_the_default_bowl(lr, verdict):
    assert lrw.assess(lr).verdict == verdict


def test_the_verdict_follows_the_steepness():
    # The same rate that is fine on a gentle bowl diverges on a steep one (2/b = 0.08 for b = 25).
    assert lrw.assess(0.3, b=4.0).verdict == "about right"
    assert lrw.assess(0.3, b=25.0).verdict == "diverges"
    # every position of the steepness slider, and a fine grid (two digits rounded 2/19 = 0.105
    # up to 0.11, past the band, for b near 18)
    slider = np.arange(lrw.STEEPNESS[0], lrw.STEEPNESS[1] + 1e-9, 0.5)
    for b in [*slider, *np.arange(13.5, 18.5, 0.01)]:
        verdicts = [lrw.assess(lr, b=float(b)).verdict for lr in lrw.sweep_lrs(b=float(b))]
        assert verdicts[1:] == ["about right", "diverges"], b
    assert lrw.sweep_lrs(b=18.0)[1] == 0.105 and lrw.sweep_lrs(b=10.0)[1] == 0.18


def test_diverging_loss_grows_and_converging_loss_falls():
    good = lrw.assess(0.18)
    assert good.loss_end < 1e-3 * good.loss_start
    bad = lrw.assess(0.25)
    assert bad.loss_end > 1e6 * bad.loss_start
    assert "2/b = 0.2" in bad.explanation


def test_a_long_diverging_run_ends_at_infinity_without_warnings():
    # 2,000 steps at 0.3 leave the range of a float: the loss is +inf (not NaN), quietly.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = lrw.gd_path(0.3, steps=2000)
        outcome = lrw.assess(0.3, steps=2000)
        explorer = lrw.LearningRateExplorer(lr=0.3, steps=2000)
    assert not np.isnan(path).any() and np.isinf(path[-1, 1])
    assert outcome.verdict == "diverges" and outcome.loss_end == math.inf
    assert "∞" in explorer.status.value


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="learning rate must be ≥ 0"):
        lrw.gd_path(-0.1)
    with pytest.raises(ValueError, match="curvatures must be positive"):
        lrw.assess(0.1, a=0.0)
    with pytest.raises(ValueError, match="swap them"):
        lrw.assess(0.1, a=10.0, b=1.0)
    with pytest.raises(ValueError, match="positive whole number"):
        lrw.gd_path(0.1, steps=0)
    with pytest.raises(ValueError, match="at least one learning rate"):
        lrw.sweep_figure(lrs=())
    with pytest.raises(ValueError, match=r"lr = 0.5 is outside the explorer's slider, which runs "
                                         r"from 0.00316228 to 0.316228"):
        lrw.LearningRateExplorer(lr=0.5, draw=False)
    with pytest.raises(ValueError, match="steepness = 40.0 is outside"):
        lrw.LearningRateExplorer(steepness=40.0, draw=False)


def test_sweep_figure_has_a_panel_per_rate_and_a_loss_panel():
    fig = lrw.sweep_figure()
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["η = 0.02: too small", "η = 0.18: about right", "η = 0.21: diverges", "loss"]
        assert fig.axes[-1].get_yscale() == "log"
    finally:
        plt.close(fig)


def test_headless_explorer_draws_the_static_sweep(monkeypatch):
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    assert lrw.learning_rate_explorer() is None
    assert len(shown) == 1 and len(shown[0].axes) == 4
    plt.close("all")
    # what the live explorer refuses, the static one refuses too, in the same words
    with pytest.raises(ValueError, match=r"lr = 5 is outside the explorer's slider, which runs from 0.00316228 to 0.316228"):
        lrw.learning_rate_explorer(lr=5)
    with pytest.raises(ValueError, match="steepness = 0.5 is outside the explorer's slider"):
        lrw.learning_rate_explorer(steepness=0.5)


def test_live_and_static_explorers_refuse_the_same_starting_values(monkeypatch):
    monkeypatch.delenv("SFTLEARN_HEADLESS", raising=False)
    monkeypatch.setattr(lrw, "headless", lambda: False)
    with pytest.raises(ValueError, match=r"lr = 5 is outside the explorer's slider, which runs from 0.00316228 to 0.316228"):
        lrw.learning_rate_explorer(lr=5)
    with pytest.raises(ValueError, match="steepness = 0.5 is outside the explorer's slider"):
        lrw.learning_rate_explorer(steepness=0.5)


def test_widget_reacts_to_the_learning_rate_slider():
    explorer = lrw.LearningRateExplorer(lr=0.05)
    assert explorer.verdict == "too small"
    assert "η = 0.05: too small" in explorer.status.value
    first_image = bytes(explorer.image.value)
    assert first_image.startswith(b"\x89PNG")

    explorer.lr.value = 0.25
    assert explorer.verdict == "diverges"
    assert "η = 0.25: diverges" in explorer.status.value
    assert np.abs(explorer.path[-1]).max() > 1e3  # it really left the bowl
    assert bytes(explorer.image.value) != first_image  # and the picture was redrawn

    explorer.lr.value = 0.18
    assert explorer.verdict == "about right"
    assert np.abs(explorer.path[-1]).max() < 0.05  # from 4 away to within 0.05 of the minimum


def test_widget_reacts_to_the_steepness_slider():
    explorer = lrw.LearningRateExplorer(lr=0.1, draw=False)
    assert explorer.verdict == "about right"
    explorer.steepness.value = 25.0  # 2/b = 0.08 < 0.1
    assert explorer.verdict == "diverges"
    assert "2/b = 0.08" in explorer.status.value
    explorer.steepness.value = 1.0
    assert explorer.verdict == "too small"  # a round bowl wants η near 1
    assert math.isclose(explorer.outcome.factors[0], 0.9)


def test_the_widget_panel_holds_the_controls():
    explorer = lrw.LearningRateExplorer(draw=False)
    controls = explorer.widget.children[0].children
    assert controls == (explorer.lr, explorer.steepness)
    assert explorer.lr.description == "learning rate η"
