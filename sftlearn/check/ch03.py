"""Checks for chapter 03, attention.

- ``check_softmax(fn)``: a numerically stable softmax over the last dimension;
- ``check_self_attention_weights(fn)``: the "spot the mistake" exercise: a common mistake
  leaves a token's score with itself out of the softmax's denominator;
- ``check_weight_v2_for_v1(fn_or_value)``: the worked example's weight, a single number;
- ``check_attention(fn)``: scaled dot-product attention with an optional mask, returning
  ``(output, weights)``; it recognises a missing √d_k, scaling after the softmax, a mask
  that is ignored, inverted or applied after the softmax, and averaging the keys;
- ``check_causal_mask(fn)``: the lower-triangular boolean mask (True = may attend);
- ``check_split_heads(fn)`` and ``check_merge_heads(fn)``: reshaping for multi-head attention;
- ``check_causal_self_attention(fn)``: multi-head causal self-attention built from the
  weights of a :class:`sftlearn.attention.CausalSelfAttention`; compared with the module.

The reference versions below are what the checks compare with; ``tests/test_check_ch03.py``
confirms they agree with ``sftlearn.attention`` and with
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sftlearn.check._core import (CheckFailure, call_student, checker, close_to, compare_arrays,
                                  counting_calls, python_number, seeded_randn, short_repr)
from sftlearn.device import seeded

# ------------------------------------------------------------------- reference versions


def reference_softmax(scores: torch.Tensor) -> torch.Tensor:
    """softmax over the last dimension; subtracting the maximum keeps exp() from overflowing."""
    shifted = scores - scores.max(dim=-1, keepdim=True).values
    exps = shifted.exp()
    return exps / exps.sum(dim=-1, keepdim=True)


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
    *, scale: str | float = "sqrt", mask_mode: str = "before",
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d_k, masked) v, returning (output, weights).

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v), mask: bool, broadcastable to
    (..., T_q, T_k), True = may attend. ``scale`` and ``mask_mode`` produce the typical wrong
    versions: scale "none" | "d" | "after" (divide the weights after the softmax) | a number
    (divide the scores by it); mask_mode "ignore" | "after" (multiply the weights by the mask)
    | "inverted" | "zero" (forbidden scores set to 0 instead of -inf).
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1)  # (..., T_q, T_k)
    if scale == "sqrt":
        scores = scores / math.sqrt(d)
    elif scale == "d":
        scores = scores / d
    elif isinstance(scale, (int, float)):
        scores = scores / scale
    if mask is not None and mask_mode in ("before", "inverted", "zero"):
        allowed = mask if mask_mode != "inverted" else ~mask
        scores = scores.masked_fill(~allowed, 0.0 if mask_mode == "zero" else float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if scale == "after":
        weights = weights / math.sqrt(d)
    if mask is not None and mask_mode == "after":
        weights = weights * mask
    return weights @ v, weights


def reference_causal_mask(T: int) -> torch.Tensor:
    """(T, T) bool, True where key j ≤ query i: each position sees itself and the past."""
    return torch.ones(T, T, dtype=torch.bool).tril()


def reference_split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C/H): each head gets its own slice of the channels."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def reference_merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H·d): the heads' outputs side by side again."""
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)


def reference_causal_self_attention(
    x: torch.Tensor, attn: torch.nn.Module, *, scale: str | float = "sqrt", causal: bool = True,
    heads: str = "split", project: bool = True,
) -> torch.Tensor:
    """Multi-head causal self-attention with the weights of ``attn`` (a CausalSelfAttention).

    x: (B, T, C) -> (B, T, C). The keyword arguments produce the typical wrong versions:
    ``causal=False`` (no mask), ``heads="one"`` (one head over all C channels),
    ``heads="scrambled"`` (reshaped straight to (B, H, T, d)), ``project=False`` (no c_proj).
    """
    B, T, C = x.shape
    H = attn.n_head
    q, k, v = attn.c_attn(x).split(C, dim=-1)  # each (B, T, C)
    if heads == "one":
        H = 1
    if heads == "scrambled":
        q, k, v = (t.reshape(B, H, T, C // H) for t in (q, k, v))
    else:
        q, k, v = (reference_split_heads(t, H) for t in (q, k, v))  # (B, H, T, d)
    mask = reference_causal_mask(T) if causal else None
    y, _ = reference_attention(q, k, v, mask, scale=scale)  # (B, H, T, d)
    y = reference_merge_heads(y)  # (B, T, C)
    return attn.c_proj(y) if project else y


# ------------------------------------------------------------------------------ softmax

SOFTMAX_CASES = [
    torch.tensor([2.0, 0.0]),  # the worked example's first row
    torch.tensor([1.0, 1.0, 1.0]),  # three equal scores
    seeded_randn(3, 5, seed=1) * 2,
    seeded_randn(2, 3, 4, seed=2),
    torch.tensor([[0.0, float("-inf"), 1.0], [3.0, 3.0, float("-inf")]]),  # masked scores
    torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]]),  # exp() overflows
]


@checker("softmax")
def check_softmax(softmax: Any) -> str:
    """``softmax(scores)``: exp, then divide by the sum, over the last dimension; stable."""
    for scores in SOFTMAX_CASES:
        name = f"softmax({short_repr(scores)})"
        got = call_student(softmax, scores)
        expected = reference_softmax(scores)
        huge = bool((scores.isfinite() & (scores.abs() > 100)).any())
        masked = bool(scores.isneginf().any())
        broken = isinstance(got, torch.Tensor) and got.shape == expected.shape and not bool(
            torch.isfinite(got).all())
        if masked and broken and not huge:
            raise CheckFailure(
                f"{name} contains NaN or inf, from the −inf scores of masked positions: a row's "
                "−inf minus a row statistic that is itself −inf or inf (a mean, say) is NaN.",
                hint="Subtract each row's maximum, which is finite whenever any position is "
                "allowed: −inf − max = −inf, and exp(−inf) = 0, a weight of exactly zero.",
            )
        if huge and broken:
            one_max = (scores - scores.max()).exp()  # the whole tensor's maximum, not each row's
            slip = (one_max / one_max.sum(dim=-1, keepdim=True)).double()  # got may be float64
            if torch.allclose(got.double(), slip, atol=1e-6, equal_nan=True):
                raise CheckFailure(
                    f"{name} contains NaN: it subtracts one maximum, of the whole tensor, from "
                    "every row. A row far below that maximum (here the −1000 row, 2002 below it) "
                    "still underflows: every exp() of it rounds to 0, and 0 / 0 is NaN.",
                    hint="Take the maximum along the last dimension, one per row, and keep that "
                    "dimension so that it broadcasts: `scores.max(dim=-1, keepdim=True).values`.",
                )
            raise CheckFailure(
                f"{name} contains NaN or inf: exp(1000) is too large for a float (it becomes inf) "
                "and exp(−1000) rounds to 0, so the division gives inf / inf or 0 / 0, which is NaN.",
                hint="Subtract each row's own maximum (`scores.max(dim=-1, keepdim=True).values`) before "
                "exp(): the softmax does not change (the factor e^(−max) cancels) and the largest "
                "exponent in every row becomes e⁰ = 1.",
            )
        compare_arrays(
            name, got, expected, atol=1e-5, probabilities=True, dim=-1,
            mistakes={
                "it divides the scores by their sum, without exp()": (
                    scores / scores.sum(dim=-1, keepdim=True),
                    "softmax exponentiates first: exp(s_i) / Σ_j exp(s_j).",
                ),
                "it is not normalised: these are exp(scores), which do not sum to 1": (
                    scores.exp(), "Divide by the sum of the exponentials along the last dimension."),
            },
        )
    return (f"correct on {len(SOFTMAX_CASES)} inputs, including 2-D and 3-D scores, masked "
            "(−inf) scores and scores of ±1000.")


# ------------------------------------------------------------ spot the mistake: own score

V1, V2 = [1.0, 0.0, -1.0], [0.0, 1.0, 0.0]
WEIGHT_V2_FOR_V1 = 1 / (1 + math.e**2)  # e^0 / (e^2 + e^0), ≈ 0.1192

SELF_CASES = [
    torch.tensor([V1, V2]),  # the worked example
    torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    seeded_randn(4, 3, seed=3),
    seeded_randn(5, 8, seed=4) * 0.5,
    torch.tensor([[0.5, -0.5]]),  # a single token attends only to itself
]


def _own_score_variants(X: torch.Tensor) -> dict[str, Any]:
    scores = X @ X.T  # (T, T)
    eye = torch.eye(len(X), dtype=torch.bool)
    d = X.shape[-1]
    exps = scores.exp()
    # weight_buggy of the exercise: e^(s_ij) / (1 + Σ_{k≠i} e^(s_ik)), for every j, j = i included
    others = exps.sum(dim=-1, keepdim=True) - exps.diagonal()[:, None]
    return {
        "the score of each token with itself is left out of the denominator (as if it were 0, "
        "so 1 stands where e^(x_i·x_i) belongs)": (
            exps / (1 + others),
            "The denominator sums e^(s_ik) over every k, including k = i: "
            "for v1 that is e^(v1·v1) = e², not 1.",
        ),
        "each token's score with itself is replaced by 0 before the softmax, so e⁰ = 1 stands "
        "where e^(x_i·x_i) belongs": (
            torch.softmax(scores.masked_fill(eye, 0.0), dim=-1),
            "Keep the diagonal of X Xᵀ: for v1 the score with itself is v1·v1 = 2, and e² belongs "
            "in the softmax.",
        ),
        "each token is not allowed to look at itself at all": (
            torch.softmax(scores.masked_fill(eye, float("-inf")), dim=-1),
            "Self-attention includes the token itself: keep the diagonal of the score matrix.",
        ),
        "the scores are divided by √d; this exercise uses the plain dot products X Xᵀ, "
        "as in the worked example": torch.softmax(scores / math.sqrt(d), dim=-1),
    }


@checker("self_attention_weights")
def check_self_attention_weights(self_attention_weights: Any) -> str:
    """``self_attention_weights(X)``: softmax over each row of the dot products X Xᵀ."""
    for X in SELF_CASES:
        name = f"self_attention_weights({short_repr(X)})"
        got = call_student(self_attention_weights, X)
        expected = torch.softmax(X @ X.T, dim=-1)
        mistakes = _own_score_variants(X) if len(X) > 1 else {}
        compare_arrays(name, got, expected, atol=1e-5, probabilities=True, dim=-1, mistakes=mistakes)
    return (f"correct on {len(SELF_CASES)} inputs; for the worked example the weight of v2 for v1 "
            f"is 1/(1 + e²) ≈ {WEIGHT_V2_FOR_V1:.3f}.")


@checker("weight_v2_for_v1")
def check_weight_v2_for_v1(value: Any) -> str:
    """The weight v1 gives to v2 in the worked example: e⁰ / (e² + e⁰) = 1/(1 + e²).

    ``value`` is the number, or a function of no arguments that returns it.
    """
    if callable(value):
        value = call_student(value)
    if value is None:
        raise CheckFailure("expected a number, but got None.", hint="Did you forget to `return` the weight?")
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise CheckFailure(f"expected a single number, but got a tensor of shape {tuple(value.shape)}.",
                           hint="Pick the one entry: row 0 (v1 looking), column 1 (at v2).")
    value = python_number(value)  # a one-element tensor or a NumPy float is a number too
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailure(f"expected a number, but got {short_repr(value)}.")
    known = {
        0.5: "0.5 is what the common mistake gives: it puts 1 (= e⁰) in the denominator where v1's "
        "score with itself, e^(v1·v1) = e², belongs.",
        1 / (1 + math.e): "1/(1 + e) ≈ 0.269 is the weight v2 gives to v1 (row 2), not the weight "
        "v1 gives to v2.",
        math.e**2 / (1 + math.e**2): "e²/(1 + e²) ≈ 0.881 is the weight v1 gives to itself.",
        1.0: "a weight of 1 would mean v1 looks only at v2; but v1 also looks at itself, with score "
        "v1·v1 = 2.",
        1 / 3: "1/3 is the weight for three equal scores; here there are two tokens with different scores.",
    }
    for wrong, message in known.items():
        if abs(value - wrong) < 1e-3:
            raise CheckFailure(message, hint="Write out both scores of v1: s11 = v1·v1 and s12 = v1·v2, then "
                               "take e^(s12) / (e^(s11) + e^(s12)).")
    if not abs(value - WEIGHT_V2_FOR_V1) <= 1e-3:  # written so that NaN fails too
        raise CheckFailure(f"the weight is {value:.4g}, but it should be about {WEIGHT_V2_FOR_V1:.3f}.",
                           hint="s11 = v1·v1 = 2 and s12 = v1·v2 = 0; the weight is e^(s12) / (e^(s11) + e^(s12)).")
    return f"1/(1 + e²) ≈ {WEIGHT_V2_FOR_V1:.4f}."


# ----------------------------------------------------------------------------- attention


def _attention_cases() -> list[tuple[str, tuple, torch.Tensor | None]]:
    """(description, (q, k, v), mask) for the attention check."""
    causal5 = reference_causal_mask(5)
    padding = torch.tensor([True, True, True, False])[None, :]  # (1, T_k): the last key is padding
    return [
        ("3 queries, 4 keys, d_k = 8", (seeded_randn(3, 8, seed=10), seeded_randn(4, 8, seed=11), seeded_randn(4, 8, seed=12)), None),
        ("a batch of 2 × 2 heads with a causal mask", (
            seeded_randn(2, 2, 5, 16, seed=13) * 2, seeded_randn(2, 2, 5, 16, seed=14) * 2, seeded_randn(2, 2, 5, 16, seed=15)),
         causal5),
        ("3 queries and 4 keys with a padding mask, d_v = 5 ≠ d_k = 6", (
            seeded_randn(3, 6, seed=16) * 2, seeded_randn(4, 6, seed=17) * 2, seeded_randn(4, 5, seed=18)), padding),
    ]


def _attention_mistakes(q, k, v, mask) -> tuple[dict[str, Any], dict[str, Any]]:
    """Known wrong weights and outputs for these inputs, with their descriptions."""
    d = q.shape[-1]
    weights: dict[str, Any] = {
        f"the scores are not divided by √d_k (here √{d} ≈ {math.sqrt(d):.3g})": (
            reference_attention(q, k, v, mask, scale="none")[1],
            "Divide q·kᵀ by math.sqrt(d_k) before the softmax.",
        ),
        f"the scores are divided by d_k = {d} instead of √d_k": (
            reference_attention(q, k, v, mask, scale="d")[1], "Use math.sqrt(d_k), not d_k."),
        "the scaling by √d_k is applied after the softmax instead of to the scores before it, so "
        "the rows sum to 1/√d_k instead of 1": (
            reference_attention(q, k, v, mask, scale="after")[1],
            "Scale the scores, then take the softmax: softmax(q kᵀ / √d_k).",
        ),
    }
    if mask is not None:
        weights.update({
            "the mask is ignored, so queries give weight to keys they must not see": (
                reference_attention(q, k, v, None)[1],
                "Set the forbidden scores to −inf before the softmax: "
                "`scores.masked_fill(~mask, float('-inf'))`.",
            ),
            "the mask is applied after the softmax, so the rows no longer sum to 1": (
                reference_attention(q, k, v, mask, mask_mode="after")[1],
                "Mask the scores (−inf) before the softmax; the softmax then spreads each row's "
                "weight over the allowed keys only.",
            ),
            "the forbidden scores are set to 0 instead of −inf, so forbidden keys still get "
            "weight (exp(0) = 1 is an ordinary score)": (
                reference_attention(q, k, v, mask, mask_mode="zero")[1],
                "Fill with float('-inf'): exp(−inf) = 0 is the only score that gives weight 0.",
            ),
            "the mask is used the wrong way round: True means 'may attend', but your weights are "
            "non-zero exactly where it is False": (
                reference_attention(q, k, v, mask, mask_mode="inverted")[1],
                "Fill the scores where the mask is False: `masked_fill(~mask, ...)`.",
            ),
        })
    expected_weights = reference_attention(q, k, v, mask)[1]
    outputs: dict[str, Any] = {}
    if k.shape[-1] == v.shape[-1]:
        outputs["it averages the keys instead of the values (weights @ k)"] = (
            expected_weights @ k, "The output mixes the value vectors: weights @ v.")
    return weights, outputs


@checker("attention")
def check_attention(attention: Any) -> str:
    """``attention(q, k, v, mask=None)`` must return ``(output, weights)``."""
    for description, (q, k, v), mask in _attention_cases():
        args = (q, k, v) if mask is None else (q, k, v, mask)
        got = call_student(attention, *args)
        expected_out, expected_w = reference_attention(q, k, v, mask)
        where = f"on {description}"
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise CheckFailure(
                f"attention(...) should return a pair (output, weights), but returned {short_repr(got)} "
                f"({where}).",
                hint="End with `return weights @ v, weights`.",
            )
        got_out, got_w = got
        if (isinstance(got_out, torch.Tensor) and isinstance(got_w, torch.Tensor)
                and got_out.shape == expected_w.shape and got_w.shape == expected_out.shape
                and expected_w.shape != expected_out.shape):
            raise CheckFailure(f"attention(...) returns (weights, output) ({where}); the order is "
                               "(output, weights).", hint="`return output, weights`.")
        weight_mistakes, output_mistakes = (
            ({}, {}) if close_to(got_w, expected_w) and close_to(got_out, expected_out)
            else _attention_mistakes(q, k, v, mask))  # only worked out when something is wrong
        compare_arrays(f"the weight matrix for {description}", got_w, expected_w, atol=1e-5, probabilities=True, dim=-1,
                       d=q.shape[-1], mistakes=weight_mistakes,
                       hint="Weights are softmax(q kᵀ / √d_k) over the keys (the last dimension).")
        compare_arrays(f"the output for {description}", got_out, expected_out, atol=1e-5, mistakes=output_mistakes,
                       hint="Your weights are right, so look at the last step: output = weights @ v.")
    return ("correct on 3 inputs: cross-attention shapes (3 queries, 4 keys), a batch of heads with "
            "a causal mask, and a padding mask with d_v ≠ d_k.")


# ---------------------------------------------------------------------------- causal mask

MASK_SIZES = [2, 5, 8, 1]  # T = 2 first: the smallest mask that shows every mistake


@checker("causal_mask")
def check_causal_mask(causal_mask: Any) -> str:
    """``causal_mask(T)``: (T, T) bool, True where key j ≤ query i."""
    for T in MASK_SIZES:
        name = f"causal_mask({T})"
        got = call_student(causal_mask, T)
        expected = reference_causal_mask(T)
        if isinstance(got, torch.Tensor) and got.shape == (T, T) and T > 1:
            g = got.to(torch.bool) if got.dtype != torch.bool and bool(((got == 0) | (got == 1)).all()) else got
            if g.dtype == torch.bool:
                _diagnose_mask(name, g, T)
        compare_arrays(name, got, expected,
                       hint="Row i is query i; column j is key j; True where j ≤ i.")
    return (f"correct for T = {', '.join(map(str, sorted(MASK_SIZES)))}: every position sees itself and "
            "the past, never the future.")


def _diagnose_mask(name: str, got: torch.Tensor, T: int) -> None:
    expected = reference_causal_mask(T)
    if bool((got == expected).all()):
        return
    if bool((got == ~expected).all()):
        raise CheckFailure(
            f"{name} is True exactly where looking is forbidden: it marks the blocked positions, "
            "but the convention here is True = may attend.",
            hint="Keep the lower triangle including the diagonal: `torch.ones(T, T, dtype=torch.bool).tril()`.",
        )
    future = got & ~expected
    if bool(future.any()):
        i, j = (int(n) for n in future.nonzero()[0])
        raise CheckFailure(
            f"{name} lets position {i} look at position {j}, which comes after it: a future leak. A "
            "language model trained with this mask can read the token it has to predict.",
            hint="Only keys at or before the query may be True (j ≤ i): the lower triangle, "
            "`.tril()`, not `.triu()`.",
        )
    if bool((got == expected & ~torch.eye(T, dtype=torch.bool)).all()):
        raise CheckFailure(
            f"{name} does not let a position see itself (the diagonal is False). Position 0 then "
            "has nothing to attend to: the softmax of a row of −inf is NaN.",
            hint="Include the diagonal: `.tril()` (offset 0), not `.tril(-1)`.",
        )


# ------------------------------------------------------------------------- heads

SPLIT_CASES = [((2, 3, 8), 2), ((1, 4, 12), 3), ((2, 2, 6), 1), ((1, 5, 8), 8)]


def _arange(shape: tuple[int, ...]) -> torch.Tensor:
    """0, 1, 2, ... as floats: every number says where it came from."""
    return torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)


def _catch_view_error(fn: Any, *args: Any) -> Any:
    try:
        return call_student(fn, *args)
    except CheckFailure as failure:
        if "view size is not compatible" in failure.message:
            raise CheckFailure(
                failure.message,
                hint="After a transpose the numbers are no longer laid out row by row, so `.view` "
                "refuses; use `.reshape(...)` (or `.contiguous().view(...)`).",
            ) from None
        raise


@checker("split_heads")
def check_split_heads(split_heads: Any) -> str:
    """``split_heads(x, n_head)``: (B, T, C) -> (B, n_head, T, C / n_head)."""
    for shape, H in SPLIT_CASES:
        x = _arange(shape)
        name = f"split_heads(x of shape {shape}, n_head={H})"
        got = _catch_view_error(split_heads, x, H)
        B, T, C = shape
        expected = reference_split_heads(x, H)
        if isinstance(got, torch.Tensor) and got.shape == (B, T, H, C // H) and T != H:
            raise CheckFailure(
                f"{name} has shape {tuple(got.shape)} but should have shape {tuple(expected.shape)}: "
                "the channels are split, but the head dimension must come before time.",
                hint="Follow the view with `.transpose(1, 2)`.",
            )
        scrambled = x.reshape(B, H, T, C // H)
        compare_arrays(name, got, expected, atol=0, mistakes={
            "it has the right shape, but the numbers are in the wrong places: reshaping (B, T, C) "
            "straight to (B, H, T, C/H) mixes the channels of different tokens into one row": (
                scrambled, "First view as (B, T, H, C/H), so that each token's channels are cut into "
                "heads, then `.transpose(1, 2)`."),
        })
    return f"correct on {len(SPLIT_CASES)} shapes, including one head and one channel per head."


@checker("merge_heads")
def check_merge_heads(merge_heads: Any) -> str:
    """``merge_heads(y)``: (B, H, T, d) -> (B, T, H·d), the inverse of ``split_heads``."""
    for shape, H in SPLIT_CASES:
        B, T, C = shape
        y = reference_split_heads(_arange(shape), H).contiguous()  # (B, H, T, d)
        name = f"merge_heads(y of shape {tuple(y.shape)})"
        got = _catch_view_error(merge_heads, y)
        expected = reference_merge_heads(y)
        compare_arrays(name, got, expected, atol=0, mistakes={
            "it has the right shape, but the numbers are in the wrong places: reshaping (B, H, T, d) "
            "straight to (B, T, C) without moving the head dimension back mixes tokens": (
                y.reshape(B, T, C), "Transpose first, `.transpose(1, 2)` to (B, T, H, d), then reshape."),
        })
    return (f"correct on {len(SPLIT_CASES)} shapes; merge_heads(split_heads(x, H)) gives x back.")


# ------------------------------------------------------------- causal self-attention


def _attention_module(n_embd: int, n_head: int, seed: int):
    from sftlearn.attention import CausalSelfAttention
    from sftlearn.config import GPTConfig

    config = GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_head=n_head, n_embd=n_embd, attention="math")
    with seeded(seed):
        attn = CausalSelfAttention(config).eval()
    # Larger random weights than GPT's initialisation, so that every mistake shows clearly.
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + p.numel())) * 0.5)
    return attn


CSA_CASES = [((2, 6, 16), 4), ((1, 5, 12), 3), ((1, 1, 8), 2)]


@checker("causal_self_attention")
def check_causal_self_attention(causal_self_attention: Any) -> str:
    """``causal_self_attention(x, attn)`` must equal ``attn(x)[0]`` for a CausalSelfAttention ``attn``."""
    for i, (shape, H) in enumerate(CSA_CASES):
        attn = _attention_module(shape[-1], H, seed=20 + i)
        x = seeded_randn(*shape, seed=30 + i)
        name = f"the output for x of shape {shape} with {H} heads"
        with torch.no_grad():
            with counting_calls(attn) as calls:
                got = call_student(causal_self_attention, x, attn)
            if calls:
                raise CheckFailure(
                    f"{name}: your function calls the module itself (`attn(x)` or "
                    f"`attn.forward(x)`), which is the answer the check compares with; the "
                    f"exercise is to compute it from the module's weights.",
                    hint="Use attn.c_attn, split into heads, scores, mask, softmax, weights @ v, "
                    "merge the heads, attn.c_proj.")
            expected = attn(x)[0]
            if close_to(got, expected, atol=1e-4):
                if shape[1] > 1:
                    _check_no_future_leak(causal_self_attention, x, attn, got, name)
                continue
            variants = {
                "the causal mask is missing, so each position also looks at later ones (a future leak)": (
                    reference_causal_self_attention(x, attn, causal=False),
                    "Mask the scores with the lower-triangular mask before the softmax."),
                "the scores are not divided by √d_k (d_k is the size of one head, C / n_head)": (
                    reference_causal_self_attention(x, attn, scale="none"),
                    "Divide by math.sqrt(C // n_head) before the softmax."),
                f"the scores are divided by √C = √{shape[-1]}, the model's width, instead of by "
                f"√d_k = √{shape[-1] // H}, one head's size": (
                    reference_causal_self_attention(x, attn, scale=math.sqrt(shape[-1])),
                    "Each head's scores are dot products of d_k = C / n_head numbers: divide by "
                    "math.sqrt(C // n_head)."),
                "the scaling by √d_k is applied after the softmax instead of before it": (
                    reference_causal_self_attention(x, attn, scale="after"),
                    "Scale the scores, not the weights."),
                "the output projection c_proj is missing": (
                    reference_causal_self_attention(x, attn, project=False),
                    "Finish with `attn.c_proj(y)` after merging the heads."),
                "it uses one head over all C channels instead of n_head heads": (
                    reference_causal_self_attention(x, attn, heads="one"),
                    "Split q, k and v into attn.n_head heads of C / n_head channels each."),
                "the heads are split wrongly: reshaping (B, T, C) straight to (B, H, T, d) mixes tokens": (
                    reference_causal_self_attention(x, attn, heads="scrambled"),
                    "view(B, T, H, d) then transpose(1, 2), as in split_heads."),
            }
            # The known mistakes first: several of them also leak, but their own sentence says more.
            _check_variants(name, got, expected, variants)
            if shape[1] > 1:
                _check_no_future_leak(causal_self_attention, x, attn, got, name)
            compare_arrays(name, got, expected, atol=1e-4, d=shape[-1] // H,
                           hint="Compare each step with the lesson: c_attn, split, scores, mask, softmax, "
                           "weights @ v, merge, c_proj.")
    return ("matches sftlearn's CausalSelfAttention on 3 inputs (several heads, a single token), "
            "and changing a later token never changes an earlier output.")


def _check_variants(name: str, got: Any, expected: torch.Tensor, variants: dict[str, tuple]) -> None:
    """Fail with a variant's sentence when ``got`` is what that known mistake produces."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return
    got = got.detach().float()
    if torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
        return
    for description, (value, hint) in variants.items():
        if torch.allclose(got, value, atol=1e-4, rtol=1e-4):
            raise CheckFailure(f"{name} is wrong: {description}.", hint)


def _check_no_future_leak(fn: Any, x: torch.Tensor, attn, got: Any, name: str) -> None:
    """Change the last token; the outputs at every earlier position must stay the same."""
    if not isinstance(got, torch.Tensor) or got.shape != x.shape:
        return  # the shape message from compare_arrays is clearer
    changed = x.clone()
    changed[:, -1] = changed[:, -1] + 3.0
    again = call_student(fn, changed, attn)
    if not isinstance(again, torch.Tensor) or again.shape != x.shape:
        return
    moved = (again[:, :-1] - got[:, :-1]).abs().amax(dim=(0, 2))  # (T-1,)
    if bool((moved > 1e-5).any()):
        first = int((moved > 1e-5).nonzero()[0])
        raise CheckFailure(
            f"{name}: a future leak. Changing only the last token changed the output at position "
            f"{first} (by up to {float(moved[first]):.3g}); a position must not depend on later ones.",
            hint="Set the scores of later keys to −inf with the causal mask before the softmax.",
        )
