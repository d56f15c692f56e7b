"""evaluation_mode: eval mode for a moment, then every submodule back in its own mode.

A frozen body kept in eval mode under a part that trains (with dropout) is the case that
matters: restoring only the top-level flag (``model.train(was_training)``) turned the body
back to training mode, dropout on. The functions that evaluate a model for a moment
(generate, evaluate_loss here; predict, attention_maps and the copying probe in their own
test files) must leave such a model exactly as they found it.
"""

import pytest
import torch

from sftlearn.generation import generate
from sftlearn.model import GPT
from sftlearn.modes import evaluation_mode
from sftlearn.train import evaluate_loss

from conftest import VOCAB, cyclic_blocks, stack_collate


def modes(model):
    return {name: part.training for name, part in model.named_modules()}


def half_frozen(micro_config):
    """A GPT in training mode (dropout 0.3) whose first block is deliberately in eval mode."""
    torch.manual_seed(0)
    model = GPT(micro_config.with_(dropout=0.3)).train()
    model.transformer.h[0].eval()
    return model


def test_every_part_is_in_eval_mode_inside_and_back_in_its_own_mode_after(micro_config):
    model = half_frozen(micro_config)
    before = modes(model)
    assert any(before.values()) and not all(before.values())  # a real mixture
    with evaluation_mode(model) as inside:
        assert inside is model
        assert not any(modes(model).values())
    assert modes(model) == before


def test_the_modes_come_back_after_an_exception(micro_config):
    model = half_frozen(micro_config)
    before = modes(model)
    with pytest.raises(RuntimeError, match="stop"):
        with evaluation_mode(model):
            raise RuntimeError("stop")
    assert modes(model) == before


def test_generate_leaves_every_part_in_its_own_mode(micro_config):
    model = half_frozen(micro_config)
    before = modes(model)
    generate(model, torch.randint(0, VOCAB, (2, 4)), 3, greedy=True)
    assert modes(model) == before


def test_evaluate_loss_leaves_every_part_in_its_own_mode(micro_config):
    model = half_frozen(micro_config)
    before = modes(model)
    evaluate_loss(model, cyclic_blocks(4, block=16), stack_collate, batch_size=2)
    assert modes(model) == before
