"""Can a model copy what it has just read? The repeated-list probe for induction heads.

Show a model a list of random words, then the same list again. On the first copy the next
word cannot be known; on the second it can, by finding the previous occurrence of the current
word and reading off the word that followed it. Transformers that have learned this trick
(an *induction head*: one head marks every token with its predecessor, a second looks for that
mark) predict the second copy almost perfectly; language models grow such heads during
pretraining on large amounts of text. A model without them does no better on the second copy
than on the first: it cannot copy a word from its prompt. (Copying is one thing answering from a
passage needs, not the only one: chapter 09 shows a base that copies answering hardly better.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .modes import evaluation_mode


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


def doubled_lists(tokenizer, words, lists: int = 32, length: int = 24, seed: int = 0) -> torch.Tensor:
    """``lists`` random lists of ``length`` distinct one-token ``words``, each written twice:
    a (lists, 2 * length) tensor of ids."""
    if isinstance(words, str):
        raise TypeError("words must be a list of words, not one string")
    if lists < 1 or length < 2:
        raise ValueError(f"need lists >= 1 and length >= 2 (got lists={lists}, length={length})")
    vocab = sorted(set(one_token_words(tokenizer, words)))
    if len(vocab) < length:
        raise ValueError(f"only {len(vocab)} of the words are one token each, fewer than "
                         f"length={length}; pass more words or a smaller length")
    rng = random.Random(seed)
    rows = [rng.sample(vocab, length) for _ in range(lists)]
    return torch.tensor([row + row for row in rows])  # (lists, 2 * length)


def copy_scores(logits: torch.Tensor, ids: torch.Tensor) -> tuple[float, float]:
    """Greedy next-token accuracy on the first and on the second copy of doubled lists.

    ``ids`` is (N, 2L), each row a list and its repeat; ``logits`` is (N, 2L - 1, V), the
    model's output for ``ids[:, :-1]``, so position t predicts token t + 1. Each copy is scored
    on the L - 1 tokens after its first word (tokens 1..L-1 and L+1..2L-1): nothing before a
    copy's first word predicts it.
    """
    if ids.dim() != 2 or ids.shape[1] % 2 or ids.shape[1] < 4:
        raise ValueError(f"ids must be (N, 2L) with L >= 2, each row a list written twice; "
                         f"got shape {tuple(ids.shape)}")
    n, two_l = ids.shape
    if logits.dim() != 3 or tuple(logits.shape[:2]) != (n, two_l - 1):
        raise ValueError(f"logits must be (N, 2L - 1, V) = ({n}, {two_l - 1}, V), the output for "
                         f"ids[:, :-1]; got shape {tuple(logits.shape)}")
    length = two_l // 2
    right = (logits.argmax(-1) == ids[:, 1:]).float()  # (N, 2L - 1): the guess at t for token t + 1
    # right[:, t - 1] scores token t: tokens 1..L-1 are right[:, :L-1]; tokens L+1..2L-1 are
    # right[:, L:] (token L, the second copy's first word, is right[:, L-1], left out).
    return right[:, : length - 1].mean().item(), right[:, length:].mean().item()


@torch.no_grad()
def copying_accuracy(model, tokenizer, words, lists: int = 32, length: int = 24,
                     seed: int = 0) -> CopyingResult:
    """How often ``model`` predicts the next word of a list of ``length`` distinct ``words``
    shown twice, on the first copy and on the second (``lists`` random lists).

    Only words that are one token (after a space) are used, so "the next word" is the next
    token.
    """
    ids = doubled_lists(tokenizer, words, lists, length, seed)  # (N, 2L)
    if 2 * length > model.config.block_size:
        raise ValueError(f"two copies of {length} words do not fit the model's context of "
                         f"{model.config.block_size} tokens; use length <= {model.config.block_size // 2}")
    ids = ids.to(next(model.parameters()).device)
    with evaluation_mode(model):
        logits, _ = model(ids[:, :-1])  # (N, 2L - 1, V)
    first, second = copy_scores(logits, ids)
    return CopyingResult(first, second, lists, length)
