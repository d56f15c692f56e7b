"""The copying probe (``sftlearn.probes``) scores exactly the positions it says it scores.

What is proved here:
- a scripted model that copies by the induction rule (find the last earlier occurrence of the
  current token, predict what followed it) scores 100% on the second copy and 0% on the first;
  one that always repeats the current token scores 0% on both; one that predicts the token
  ``length`` places back scores 100% on the second copy too, so the scored window is the
  second copy and nothing else;
- a real GPT gives accuracies in [0, 1], leaves its training mode as it was and is deterministic
  for a seed;
- ``copy_scores`` on a hand-worked example: the guess for the second copy's first word is left
  out, whether right or wrong;
- ``doubled_lists`` writes each list of distinct words twice, the same lists for a seed;
- only words that are one token after a space are used;
- bad input names its fix: one string instead of a list, too few one-token words, two copies
  longer than the context, no lists.
"""

import pytest
import torch
from torch import nn

from sftlearn.config import GPTConfig
from sftlearn.device import seed_everything
from sftlearn.model import GPT
from sftlearn.probes import CopyingResult, copy_scores, copying_accuracy, doubled_lists, one_token_words

WORDS = [f"w{i}" for i in range(40)]


class WordTokenizer:
    """" w7" is one token (id 8); anything else is two tokens."""

    def encode(self, text):
        if text.startswith(" ") and text[1:] in WORDS:
            return [WORDS.index(text[1:]) + 1]
        return [0, 0]


class Scripted(nn.Module):
    """A fake model whose next-token guess at each position is ``rule(row, t)``."""

    def __init__(self, rule, block=64, vocab=len(WORDS) + 1):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=1, n_embd=4)
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the probe a device to read
        self.rule, self.vocab = rule, vocab

    def forward(self, ids):
        logits = torch.zeros(*ids.shape, self.vocab)  # (N, T, V)
        for n, row in enumerate(ids.tolist()):
            for t in range(len(row)):
                logits[n, t, self.rule(row, t)] = 1.0
        return logits, None


def induction(row, t):
    earlier = [s for s in range(t) if row[s] == row[t]]
    return row[earlier[-1] + 1] if earlier else 0


def test_an_induction_copier_gets_the_second_copy_and_not_the_first():
    result = copying_accuracy(Scripted(induction), WordTokenizer(), WORDS, lists=5, length=12)
    assert (result.first, result.second) == (0.0, 1.0)
    assert isinstance(result, CopyingResult) and "100% in the second" in str(result)


def test_repeating_the_current_token_scores_nothing():
    result = copying_accuracy(Scripted(lambda row, t: row[t]), WordTokenizer(), WORDS, lists=5, length=12)
    assert (result.first, result.second) == (0.0, 0.0)


def test_the_scored_window_is_exactly_the_second_copy():
    length = 10
    # Predicts token t + 1 as the token length - 1 places back: right exactly on the second
    # copy's positions 1..L-1, and (distinct words) never in the first copy.
    rule = lambda row, t: row[t + 1 - length] if t + 1 - length >= 0 else 0  # noqa: E731
    result = copying_accuracy(Scripted(rule), WordTokenizer(), WORDS, lists=4, length=length)
    assert (result.first, result.second) == (0.0, 1.0)


def test_a_real_gpt_is_scored_in_range_deterministically_and_keeps_its_mode():
    seed_everything(0)
    # with dropout, so that a probe which forgot model.eval() would score differently each time
    model = GPT(GPTConfig.preset("micro", vocab_size=len(WORDS) + 1, block_size=64, dropout=0.3)).train()
    a = copying_accuracy(model, WordTokenizer(), WORDS, lists=3, length=8, seed=1)
    b = copying_accuracy(model, WordTokenizer(), WORDS, lists=3, length=8, seed=1)
    assert a == b
    assert 0.0 <= a.first <= 1.0 and 0.0 <= a.second <= 1.0
    assert model.training


def test_the_probe_gives_every_submodule_its_own_mode_back():
    model = GPT(GPTConfig.preset("micro", vocab_size=len(WORDS) + 1, block_size=64, dropout=0.3)).train()
    model.transformer.h[0].eval()  # e.g. a frozen first block, deliberately without dropout
    before = {name: part.training for name, part in model.named_modules()}
    copying_accuracy(model, WordTokenizer(), WORDS, lists=2, length=8)
    assert {name: part.training for name, part in model.named_modules()} == before


def test_copy_scores_by_hand():
    ids = torch.tensor([[1, 2, 3, 1, 2, 3]])  # L = 3
    guesses = torch.tensor([2, 3, 1, 9, 3])  # for tokens 1..5: right, right, (token 3: left out), wrong, right
    logits = torch.nn.functional.one_hot(guesses, 10).float()[None]  # (1, 5, 10)
    assert copy_scores(logits, ids) == (1.0, 0.5)
    with pytest.raises(ValueError, match=r"\(N, 2L - 1, V\)"):
        copy_scores(logits[:, :4], ids)
    with pytest.raises(ValueError, match="written twice"):
        copy_scores(logits, ids[:, :5])


def test_doubled_lists_repeat_distinct_words_and_follow_the_seed():
    ids = doubled_lists(WordTokenizer(), WORDS, lists=4, length=7, seed=3)
    assert ids.shape == (4, 14) and torch.equal(ids[:, :7], ids[:, 7:])
    assert all(len(set(row[:7].tolist())) == 7 for row in ids)
    assert torch.equal(ids, doubled_lists(WordTokenizer(), WORDS, lists=4, length=7, seed=3))
    assert not torch.equal(ids, doubled_lists(WordTokenizer(), WORDS, lists=4, length=7, seed=4))


def test_only_one_token_words_are_used():
    assert one_token_words(WordTokenizer(), ["w1", "nope", "w3"]) == [2, 4]


def test_bad_input_names_the_fix():
    model = Scripted(induction, block=20)
    with pytest.raises(TypeError, match="list of words"):
        copying_accuracy(model, WordTokenizer(), "w1 w2 w3")
    with pytest.raises(ValueError, match="fewer than length"):
        copying_accuracy(model, WordTokenizer(), WORDS[:5] + ["nope"], length=8)
    with pytest.raises(ValueError, match="length <= 10"):
        copying_accuracy(model, WordTokenizer(), WORDS, length=11)
    with pytest.raises(ValueError, match="lists >= 1"):
        copying_accuracy(model, WordTokenizer(), WORDS, lists=0, length=4)
