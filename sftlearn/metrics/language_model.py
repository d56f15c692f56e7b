"""Perplexity: the language-model loss in a friendlier unit.

A loss is what training minimises; a metric is what we report. **Perplexity** is the average
cross-entropy per token, exponentiated, so that it reads as "the number of equally likely
tokens the model is choosing between". A model that spreads its probability evenly over a
vocabulary of V tokens has perplexity exactly V; a model that is always sure and always right
has perplexity 1.

- :func:`perplexity` turns a mean cross-entropy (in nats, natural log) into a perplexity;
- :func:`perplexity_from_logits` computes it straight from a model's logits and targets,
  skipping the targets marked ``-100`` as the loss does.

Chapter 04 introduces these.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F

from ..model import IGNORE_INDEX  # targets with this value are not scored (padding, prompt tokens)


def perplexity(mean_cross_entropy: float | torch.Tensor) -> float:
    """``exp(mean_cross_entropy)``: the perplexity of a model whose average loss per token is
    ``mean_cross_entropy`` nats.

    ``mean_cross_entropy`` is a Python number or a one-element tensor, measured with the
    natural log (as ``F.cross_entropy`` and the course's models report it). ``inf`` (a model
    that gave some observed token probability 0) gives ``inf``.

    >>> perplexity(0.0)
    1.0
    >>> round(perplexity(math.log(292)), 6)  # a uniform guess over 292 tokens
    292.0
    """
    value = _as_number(mean_cross_entropy)
    if math.isnan(value):
        raise ValueError(
            "perplexity got NaN as the mean cross-entropy: the loss itself is broken "
            "(look for exp() of large numbers or log of 0 where the loss is computed)"
        )
    if value < 0:
        raise ValueError(
            f"perplexity got a negative mean cross-entropy ({value:.4g}), but a cross-entropy is "
            "never negative (it is -log p with p <= 1); check the sign of the loss"
        )
    try:
        return math.exp(value)
    except OverflowError:  # a loss above ~709 nats: the perplexity is beyond a float
        return math.inf


def perplexity_from_logits(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> float:
    """The perplexity of predictions ``logits`` (..., V) on ``targets`` (...), ignoring
    positions whose target is ``ignore_index``.

    It is ``perplexity(F.cross_entropy(...))``: the mean is over the scored positions only.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            "perplexity_from_logits expects two tensors, logits (..., V) and targets (...), got "
            f"{type(logits).__name__} and {type(targets).__name__}"
        )
    if logits.dim() < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not match targets of shape "
            f"{tuple(targets.shape)}: logits need one extra last dimension, the vocabulary "
            "(e.g. logits (B, T, V) with targets (B, T))"
        )
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer token ids, got {targets.dtype} "
                        f"(use targets.long())")
    if targets.numel() == 0:
        raise ValueError("targets is empty: there is nothing to score; pass at least one "
                         "token id")
    scored = targets != ignore_index
    if not bool(scored.any()):
        raise ValueError(
            f"every target is {ignore_index} (ignored), so there is nothing to score; "
            "pass targets that contain at least one real token id"
        )
    vocab = logits.shape[-1]
    bad = scored & ((targets < 0) | (targets >= vocab))
    if bool(bad.any()):
        raise ValueError(
            f"targets must be token ids in 0..{vocab - 1} (or {ignore_index} to ignore a position), "
            f"but one is {int(targets[bad][0])}"
        )
    with torch.no_grad():
        # half-precision logits are scored in float32; float64 ones keep their precision
        scores = logits if logits.dtype == torch.float64 else logits.float()
        # cross_entropy takes int64 class ids only; int32 or int16 ones are the same ids
        loss = F.cross_entropy(scores.reshape(-1, vocab), targets.reshape(-1).long(),
                               ignore_index=ignore_index)
    return perplexity(loss)


def _as_number(value: float | torch.Tensor) -> float:
    """A Python float from a number or a one-element tensor, or a clear error."""
    if isinstance(value, bool):
        raise TypeError("perplexity expects a mean cross-entropy (a number), got a bool")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"perplexity expects the MEAN cross-entropy, one number, but got a tensor of shape "
                f"{tuple(value.shape)}; average the per-token losses first (loss.mean())"
            )
        return float(value.detach().reshape(()).item())
    if isinstance(value, Real):
        return float(value)
    raise TypeError(
        f"perplexity expects a mean cross-entropy as a number or a one-element tensor, "
        f"got {type(value).__name__}"
    )
