"""Can a model copy what it has just read? The repeated-list probe for induction heads.

Show a model a list of random words, then the same list again. On the first copy the next
word cannot be known; on the second it can, by finding the previous occurrence of the current
word and reading off the word that followed it. Transformers that have learned this trick
(an *induction head*: one head marks every token with its predecessor, a second looks for that
mark) predict the second copy almost perfectly; language models grow such heads during
pretraining on large amounts of text. A model without them does no better on the second copy
than on the first, and then cannot answer questions by copying from a passage either.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CopyingResult:
    """Next-token accuracy (greedy) on the first and the second copy of each list."""

    first: float
    second: float
    lists: int
    length: int

    def __str__(self) -> str:
        return (f"copying {self.lists} lists of {self.length} words: next word right "
                f"{self.first:.0%} of the time in the first copy, {self.second:.0%} in the second")


def one_token_words(tokenizer, words) -> list[int]:
    """The ids of those ``words`` that the tokenizer writes, after a space, as one token."""
    ids = []
    for word in words:
        encoded = tokenizer.encode(" " + word)
        if len(encoded) == 1:
            ids.append(encoded[0])
    return ids


@torch.no_grad()
def copying_accuracy(model, tokenizer, words, lists: int = 32, length: int = 24,
                     seed: int = 0) -> CopyingResult:
    """How often ``model`` predicts the next word of a list of ``length`` distinct ``words``
    shown twice, on the first copy and on the second (``lists`` random lists).

    Only words that are one token (after a space) are used, so "the next word" is the next
    token. The first position of each copy is not scored: nothing predicts it.
    """
    if isinstance(words, str):
        raise TypeError("words must be a list of words, not one string")
    if lists < 1 or length < 2:
        raise ValueError(f"need lists >= 1 and length >= 2 (got lists={lists}, length={length})")
    if 2 * length > model.config.block_size:
        raise ValueError(f"two copies of {length} words do not fit the model's context of "
                         f"{model.config.block_size} tokens; use length <= {model.config.block_size // 2}")
    vocab = sorted(set(one_token_words(tokenizer, words)))
    if len(vocab) < length:
        raise ValueError(f"only {len(vocab)} of the words are one token each, fewer than "
                         f"length={length}; pass more words or a smaller length")
    rng = random.Random(seed)
    rows = [rng.sample(vocab, length) for _ in range(lists)]
    ids = torch.tensor([row + row for row in rows], device=next(model.parameters()).device)  # (N, 2L)
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(ids[:, :-1])  # (N, 2L - 1, V): position t predicts token t + 1
    finally:
        model.train(was_training)
    right = (logits.argmax(-1) == ids[:, 1:]).float()  # (N, 2L - 1)
    # right[:, t] scores the guess for token t + 1: tokens 1..L-1 are the first copy (token 0
    # cannot be predicted), tokens L+1..2L-1 the second (token L, the first word again, is
    # left out too, so both copies are scored on the same L - 1 positions).
    first = right[:, : length - 1].mean().item()
    second = right[:, length:].mean().item()
    return CopyingResult(first, second, lists, length)
