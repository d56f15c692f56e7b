"""sftlearn.validation.check_int, check_seed and check_betas, and the arguments across the package that they guard."""

import numpy as np
import pytest
import torch

from sftlearn.config import GPTConfig
from sftlearn.generation import filter_logits
from sftlearn.recurrent import causal_conv1d
from sftlearn.train import TrainConfig
from sftlearn.device import seed_everything
from sftlearn.data import sft_examples, story_corpus
from sftlearn.validation import check_betas, check_int, check_seed


@pytest.mark.parametrize("value, minimum", [(1, 1), (7, 1), (0, 0), (2, 2), (10**12, 1)])
def test_accepts_ints_from_the_minimum_up_and_returns_them(value, minimum):
    assert check_int("n", value, minimum=minimum) is value


@pytest.mark.parametrize(
    "value, minimum, message",
    [
        (0, 1, "n must be a positive int, got 0."),
        (-3, 1, "n must be a positive int, got -3."),
        (-1, 0, "n must be an int >= 0, got -1."),
        (1, 2, "n must be an int >= 2, got 1."),
        # Right-looking values of the wrong type say their type.
        (2.0, 1, "n must be a positive int, got 2.0 (of type float)."),
        (True, 1, "n must be a positive int, got True (of type bool)."),
        (False, 0, "n must be an int >= 0, got False (of type bool)."),
        ("4", 1, "n must be a positive int, got '4' (of type str)."),
        (None, 1, "n must be a positive int, got None (of type NoneType)."),
        (np.int64(3), 1, f"n must be a positive int, got {np.int64(3)!r} (of type int64)."),
        (torch.tensor(3), 1, "n must be a positive int, got tensor(3) (of type Tensor)."),
    ],
)
def test_refuses_everything_else_with_the_whole_message(value, minimum, message):
    with pytest.raises(ValueError) as info:
        check_int("n", value, minimum=minimum)
    assert str(info.value) == message


def test_the_fix_follows_the_problem():
    with pytest.raises(ValueError) as info:
        check_int("LoRA rank r", 0, fix="Typical values are 4, 8 or 16.")
    assert str(info.value) == (
        "LoRA rank r must be a positive int, got 0. Typical values are 4, 8 or 16.")


@pytest.mark.parametrize("seed", [0, 7, -1, 2**40])
def test_check_seed_accepts_any_int_negative_too(seed):
    assert check_seed(seed) is seed


@pytest.mark.parametrize("seed, kind", [(True, "bool"), (1.0, "float"), ("0", "str"), (None, "NoneType"),
                                        (np.int64(3), "int64")])
def test_check_seed_refuses_other_types_with_a_type_error(seed, kind):
    with pytest.raises(TypeError) as info:
        check_seed(seed)
    assert str(info.value) == f"seed must be an int (got {kind}); pass e.g. seed=0"


@pytest.mark.parametrize("call", [lambda: seed_everything(1.0),
                                  lambda: sft_examples("train", n_per_family=1, seed=1.0),
                                  lambda: story_corpus(1, seed=1.0)])
def test_every_seed_argument_reads_the_same(call):
    with pytest.raises(TypeError, match=r"^seed must be an int \(got float\); pass e\.g\. seed=0$"):
        call()


# Arguments that were checked less strictly before the shared check: each slip below used to pass
# the check and fail later (or not at all) with a message that did not name the argument.
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: TrainConfig(max_steps=True),
         r"TrainConfig\.max_steps must be a positive int, got True \(of type bool\)"),
        (lambda: TrainConfig(batch_size=8.0),
         r"TrainConfig\.batch_size must be a positive int, got 8\.0 \(of type float\)"),
        (lambda: TrainConfig(early_stopping_patience=2.5),
         r"TrainConfig\.early_stopping_patience must be a positive int, got 2\.5 \(of type float\)\. Or None"),
        (lambda: TrainConfig(eval_batches=True), r"TrainConfig\.eval_batches must be a positive int"),
        (lambda: TrainConfig(warmup_steps=1.5), r"TrainConfig\.warmup_steps must be an int >= 0"),
        (lambda: causal_conv1d(torch.zeros(1, 1, 4), torch.zeros(1, 1, 2), dilation=True),
         r"dilation must be a positive int, got True \(of type bool\)"),
        (lambda: filter_logits(torch.zeros(1, 5), top_k=2.5),
         r"top_k must be a positive int, got 2\.5 \(of type float\)"),
        (lambda: GPTConfig(n_layer=2.0),
         r"GPTConfig\.n_layer must be a positive int, got 2\.0 \(of type float\)"),
    ],
)
def test_package_arguments_use_the_shared_check(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_optional_settings_still_pass():
    config = TrainConfig(eval_batches=None, warmup_steps=0, early_stopping_patience=None,
                         length_groups=0)
    assert (config.eval_batches, config.warmup_steps, config.early_stopping_patience) == (None, 0, None)
    kept = filter_logits(torch.tensor([[3.0, 1.0, 2.0]]), top_k=2)
    assert torch.isinf(kept).tolist() == [[False, True, False]]


def test_betas_come_back_as_two_plain_floats_and_bad_ones_are_named():
    assert check_betas("betas", [np.float32(0.5), 0.999], "(0.9, 0.95)") == (0.5, 0.999)
    assert all(type(b) is float for b in check_betas("betas", (0, 0.9), "(0.9, 0.95)"))
    for bad in [(0.9,), (0.9, 1.0), (True, 0.9), "0.9, 0.95", (0.9, float("nan")), None]:
        with pytest.raises(ValueError, match=r"GANConfig\.betas must be two numbers in \[0, 1\).*e\.g\. \(0\.5, 0\.999\)"):
            check_betas("GANConfig.betas", bad, "(0.5, 0.999)")
