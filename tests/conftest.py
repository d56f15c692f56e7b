"""Shared fixtures: small models and toy data that make the tests fast."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # tests never open windows
# Notebook kernels started by this test session (nbval, exercise runs) inherit this: explorers
# draw static figures instead of widgets that no browser would ever display.
os.environ.setdefault("SFTLEARN_HEADLESS", "1")
# Lessons end with a cell of claims (sftlearn.claims): under the tests a claim of the text that
# the run does not bear out fails the notebook instead of being reported.
os.environ.setdefault("SFTLEARN_STRICT_CLAIMS", "1")

from sftlearn.check import CheckFailure
from sftlearn.config import GPTConfig
from sftlearn.model import GPT

VOCAB = 61


def stack_collate(items):
    """Collate equal-length example dicts by stacking (no padding needed)."""
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def cyclic_blocks(n_blocks=64, block=32, vocab=VOCAB, seed=0):
    """Next-token blocks cut from a random but repeating sequence: learnable, not trivial."""
    g = torch.Generator().manual_seed(seed)
    period = torch.randint(0, vocab, (97,), generator=g)
    seq = period.repeat(n_blocks * block // 97 + 3)
    return [
        {"input_ids": seq[i * block : i * block + block], "targets": seq[i * block + 1 : i * block + block + 1]}
        for i in range(n_blocks)
    ]


def failure_of(fn, *args, **kwargs) -> CheckFailure:
    """The CheckFailure that ``fn(*args, **kwargs)`` raises (the test fails if it does not)."""
    with pytest.raises(CheckFailure) as info:
        fn(*args, **kwargs)
    return info.value


def stub(*args, **kwargs):
    """An exercise the student has not done yet, exactly as the generated exercises have it."""
    raise NotImplementedError("Exercise: replace this line with your code")


@pytest.fixture
def micro_config():
    return GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64)


def lively(model, std=0.3, seed=0):
    """Redraw every weight matrix with a larger spread. An untrained GPT with tied embeddings
    greedily repeats its prompt's last token for ever, so tests comparing two ways of
    generating would compare two constant rows; with these weights the tokens vary and
    depend on the whole prompt. Returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=g) * std)
    return model


@pytest.fixture
def micro_model(micro_config):
    torch.manual_seed(0)
    return GPT(micro_config)
