"""Tests of sftlearn.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sftlearn.metrics import perplexity, perplexity_from_logits

# ---------------------------------------------------------------------------- perplexity


def test_perplexity_is_exp_of_the_mean_cross_entropy():
    assert perplexity(0.0) == 1.0
    assert perplexity(1.0) == pytest.approx(math.e)
    assert perplexity(torch.tensor(2.0)) == pytest.approx(math.exp(2.0))
    assert perplexity(torch.tensor([0.5])) == pytest.approx(math.exp(0.5))
    assert perplexity(np.float32(0.25)) == pytest.approx(math.exp(0.25))


def test_perplexity_of_a_uniform_guess_is_the_vocabulary_size():
    for vocab in (2, 292, 50_000):
        assert perplexity(math.log(vocab)) == pytest.approx(vocab)


def test_perplexity_of_an_infinite_or_huge_loss_is_infinite():
    assert perplexity(math.inf) == math.inf
    assert perplexity(1000.0) == math.inf


def test_perplexity_returns_a_python_float_and_keeps_gradients_out():
    loss = torch.tensor(1.5, requires_grad=True)
    value = perplexity(loss * 1)
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (-0.105, ValueError, "never negative"),
        (math.nan, ValueError, "NaN"),
        (torch.tensor([0.1, 0.2]), ValueError, "loss.mean()"),
        (True, TypeError, "bool"),
        ("2.0", TypeError, "got str"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_perplexity_rejects_bad_input_with_a_fix(bad, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        perplexity(bad)


# ----------------------------------------------------------------- perplexity_from_logits


def test_perplexity_from_logits_matches_torch_and_ignores_minus_100():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    targets[0, 3:] = -100
    kept = targets != -100
    expected = math.exp(F.cross_entropy(logits[kept], targets[kept]).item())
    assert perplexity_from_logits(logits, targets) == pytest.approx(expected, rel=1e-6)


def test_perplexity_from_logits_of_equal_logits_is_the_vocabulary_size():
    logits = torch.zeros(3, 4, 11)
    targets = torch.randint(0, 11, (3, 4), generator=torch.Generator().manual_seed(1))
    assert perplexity_from_logits(logits, targets) == pytest.approx(11.0, rel=1e-6)


def test_perplexity_from_logits_of_a_certain_and_right_model_is_one():
    logits = torch.full((4, 3), -1e4)
    targets = torch.tensor([0, 2, 1, 1])
    logits[torch.arange(4), targets] = 1e4
    assert perplexity_from_logits(logits, targets) == pytest.approx(1.0)


def test_perplexity_from_logits_bad_input():
    with pytest.raises(ValueError, match="nothing to score"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([-100, -100]))
    with pytest.raises(ValueError, match="do not match"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer token ids"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="two tensors"):
        perplexity_from_logits([[0.0, 0.0]], torch.tensor([0]))
