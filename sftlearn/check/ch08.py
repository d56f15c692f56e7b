"""Checks for chapter 08, pretraining.

- ``check_lm_block(fn)``: ``fn(ids, start, block_size)`` returns ``(inputs, targets)``, the
  next-token block ``ids[start : start+T]`` and ``ids[start+1 : start+T+1]``, and raises
  ``ValueError`` when the block would run past the end of ``ids``;
- ``check_temperature_probs(fn)``: ``fn(logits, temperature)`` is ``softmax(logits / τ)`` along
  the last dimension (the "spot the mistake" exercise: a common mistake divides the
  *probabilities* by τ and renormalises, which leaves them unchanged);
- ``check_top_k_filter(fn)``: ``fn(logits, k)`` keeps the k largest logits of each row and sets
  the others to ``-inf``;
- ``check_top_p_filter(fn)``: ``fn(logits, p)`` keeps the smallest set of most likely tokens
  whose probabilities add up to at least p (the token that crosses p is kept) and sets the
  others to ``-inf``;
- ``check_heldout_perplexity(fn)``: ``fn(batch_losses, batch_tokens)`` is the perplexity of a
  whole held-out set from the mean loss of each batch and its number of target tokens.

The references use the package's own code where it has some (``sftlearn.generation``,
``sftlearn.metrics``), so a student's from-scratch version is compared with what the course's
models use. Each check also computes what the usual mistakes give, so it can name them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sftlearn.check._core import (
    CheckFailure,
    NotDoneYet,
    as_number,
    call_student,
    checker,
    compare_arrays,
    short_repr,
)
from sftlearn.generation import filter_logits

NEG_INF = float("-inf")

# ------------------------------------------------------------------- reference versions


def reference_lm_block(ids: torch.Tensor, start: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids[start : start+T], ids[start+1 : start+T+1])``: inputs and the next tokens."""
    return ids[start : start + block_size], ids[start + 1 : start + block_size + 1]


def reference_temperature_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits.double() / temperature, dim=-1).to(logits.dtype)


def _rows(logits: torch.Tensor) -> torch.Tensor:
    return logits[None] if logits.dim() == 1 else logits


def reference_top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    return filter_logits(_rows(logits), top_k=k).reshape(logits.shape)


def reference_top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    return filter_logits(_rows(logits), top_p=p).reshape(logits.shape)


def reference_heldout_perplexity(batch_losses, batch_tokens) -> float:
    """exp(Σ loss_b · n_b / Σ n_b): every target token counts once, whatever its batch."""
    losses = torch.as_tensor(batch_losses, dtype=torch.float64)
    tokens = torch.as_tensor(batch_tokens, dtype=torch.float64)
    return math.exp(float((losses * tokens).sum() / tokens.sum()))


# ------------------------------------------------------------------------------- helpers


def _same(a: Any, b: Any) -> bool:
    """Whether two tensors have the same shape and values (-inf matching -inf)."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    return bool(torch.isclose(a.double(), b.double(), rtol=1e-4, atol=1e-6, equal_nan=True).all())


def _fmt(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in t.tolist()) + "]"


# ------------------------------------------------------------------------------ lm_block

CORPUS_IDS = torch.tensor([12, 40, 7, 33, 33, 9, 21, 5, 18, 27, 3, 44, 16, 8])  # 14 token ids
BLOCK_CASES: list[tuple[int, int]] = [(0, 4), (3, 5), (9, 4), (0, 13), (6, 1)]
PAST_THE_END: list[tuple[int, int]] = [(10, 4), (0, 14), (13, 1)]


def _block_mistakes(ids: torch.Tensor, start: int, T: int) -> dict[str, tuple[torch.Tensor, str]]:
    """What the usual mistakes return as the targets."""
    mistakes = {
        "the targets are the inputs themselves, not shifted by one. A model trained on them "
        "only learns to copy the token it is reading": (
            ids[start : start + T], "targets[t] must be the token that comes after inputs[t]: "
            "start the targets one position later."),
    }
    if start >= 1:
        mistakes["the targets are shifted the wrong way: they are the tokens *before* the "
                 "inputs. A language model predicts the next token, not the previous one"] = (
            ids[start - 1 : start + T - 1], "Slice the targets from start + 1, not start - 1.")
    return mistakes


@checker("lm_block")
def check_lm_block(lm_block: Any) -> str:
    """``lm_block(ids, start, block_size)`` -> (ids[start:start+T], ids[start+1:start+T+1])."""
    ids = CORPUS_IDS
    for start, T in BLOCK_CASES:
        name = f"lm_block(ids, start={start}, block_size={T})"
        got = call_student(lm_block, ids.clone(), start, T)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailure(f"{name} should return two tensors (inputs, targets), but it returned "
                               f"{short_repr(got)}.", hint="End with `return inputs, targets`.")
        inputs, targets = got
        want_x, want_y = reference_lm_block(ids, start, T)
        if _same(inputs, want_y) and _same(targets, want_x):
            raise CheckFailure(f"{name}: inputs and targets are swapped.",
                               hint="Return the inputs (what the model reads) first: `return inputs, targets`.")
        for what, value in (("inputs", inputs), ("targets", targets)):
            if isinstance(value, torch.Tensor) and value.dim() == 1 and len(value) == T + 1:
                raise CheckFailure(
                    f"{name}: the {what} have {T + 1} tokens, one too many. A block holds "
                    f"block_size = {T} inputs and {T} targets; together they span {T + 1} "
                    "consecutive tokens, because the targets are the inputs moved by one.",
                    hint="inputs = ids[start : start + block_size]; the targets start one later.")
        compare_arrays(f"the inputs of {name}", inputs, want_x,
                       hint="The inputs are the block_size tokens from position start on.")
        mistakes = _block_mistakes(ids, start, T)
        for description, (wrong, hint) in mistakes.items():
            if _same(targets, wrong):
                raise CheckFailure(f"the targets of {name} are wrong: {description}.", hint)
        compare_arrays(f"the targets of {name}", targets, want_y,
                       hint="targets[t] is the token after inputs[t], i.e. ids[start + 1 + t].")
    for start, T in PAST_THE_END:
        _expect_past_the_end_error(lm_block, ids, start, T)
    return (f"correct on {len(BLOCK_CASES)} blocks (including the longest block that fits) and it "
            f"refuses {len(PAST_THE_END)} that would run past the end.")


def _expect_past_the_end_error(fn: Any, ids: torch.Tensor, start: int, T: int) -> None:
    name = f"lm_block(ids, start={start}, block_size={T}) with len(ids) = {len(ids)}"
    try:
        result = fn(ids.clone(), start, T)
    except NotImplementedError:
        raise NotDoneYet("`lm_block`") from None
    except ValueError as err:
        if not str(err).strip():
            raise CheckFailure(f"{name} raises ValueError, but with no message. Say what is wrong.",
                               hint='e.g. `raise ValueError(f"the block needs {start + block_size + 1} '
                               'tokens but ids has only {len(ids)}")`.') from None
        return
    except Exception as err:  # noqa: BLE001 - any other kind of error is the student's to fix
        raise CheckFailure(f"{name} raised {type(err).__name__}, but a block that does not fit "
                           "should raise ValueError.",
                           hint="Check `start + block_size + 1 > len(ids)` first and raise ValueError.") from None
    shapes = ""
    if isinstance(result, (tuple, list)) and len(result) == 2 and all(isinstance(r, torch.Tensor) for r in result):
        shapes = f" (inputs of length {len(result[0])}, targets of length {len(result[1])})"
    raise CheckFailure(
        f"{name} returned a block{shapes}, but that block needs {start + T + 1} tokens: "
        f"{T} inputs plus one more for the last target. Python slicing never complains, it "
        "quietly returns fewer tokens, so the block would be short. Raise ValueError instead.",
        hint="Check `start + block_size + 1 > len(ids)` before slicing.")


# ----------------------------------------------------------------------- temperature_probs


def _temperature_cases() -> list[tuple[str, torch.Tensor, float]]:
    z = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    batch = torch.tensor([[3.0, 1.0, 0.0, -2.0], [0.5, 0.5, 1.5, -1.0], [0.0, 0.0, 0.0, 0.0]])
    return [
        ("logits [2, 1, 0.5, 0, -1] at τ = 1", z, 1.0),
        ("the same logits at τ = 0.5 (sharper)", z, 0.5),
        ("the same logits at τ = 2 (flatter)", z, 2.0),
        ("a batch of 3 rows at τ = 0.7", batch, 0.7),
        ("large logits [900, 880, 0] at τ = 0.1", torch.tensor([900.0, 880.0, 0.0]), 0.1),
        # one maximum for the whole batch would underflow the second row: each row needs its own
        ("a batch of a large and a small row at τ = 0.1",
         torch.tensor([[900.0, 880.0, 0.0], [1.0, 0.5, 0.0]]), 0.1),
    ]


NO_EFFECT = (
    "the temperature has no effect: these are the model's probabilities at τ = 1. Dividing "
    "probabilities by τ and then renormalising divides every one of them by the same number, "
    "which the renormalisation undoes")


def _temperature_mistakes(z: torch.Tensor, T: float) -> dict[str, tuple[torch.Tensor, str]]:
    if T == 1:
        return {}  # at τ = 1 the usual mistakes give the right answer
    return {
        NO_EFFECT: (torch.softmax(z.double(), dim=-1),
                    "Apply the temperature to the logits, before the softmax: softmax(logits / τ)."),
        "the logits are multiplied by τ instead of divided, so a small τ flattens the "
        "distribution and a large τ sharpens it, the opposite of what temperature means": (
            torch.softmax(z.double() * T, dim=-1), "Divide: softmax(logits / τ)."),
    }


@checker("temperature_probs")
def check_temperature_probs(temperature_probs: Any) -> str:
    """``temperature_probs(logits, τ)`` = softmax(logits / τ) along the last dimension."""
    for label, z, T in _temperature_cases():
        expected = reference_temperature_probs(z, T)
        got = call_student(temperature_probs, z.clone(), T)
        name = f"temperature_probs for {label}"
        if isinstance(got, torch.Tensor) and got.shape == z.shape and not bool(torch.isclose(
                got.double().sum(-1), torch.ones(()).double(), atol=1e-4).all()):
            scaled = torch.softmax(z.double(), -1) / T
            if _same(got, scaled):
                raise CheckFailure(
                    f"{name} does not sum to 1: the probabilities were divided by τ after the "
                    "softmax and not renormalised. (Renormalising would not help either: it would "
                    "undo the division and leave the temperature with no effect.)",
                    hint="Apply the temperature to the logits, before the softmax: softmax(logits / τ).")
        if isinstance(got, torch.Tensor) and got.shape == z.shape and bool(torch.isnan(got).any()):
            if z.dim() == 2 and bool(torch.isnan(got[1]).any()) and not bool(torch.isnan(got[0]).any()):
                raise CheckFailure(
                    f"{name} contains NaN in the small row: one maximum was subtracted for the "
                    "whole batch, so every exp() of that row underflowed to 0, and 0 / 0 is NaN.",
                    hint="Subtract each row's own maximum: `s.max(dim=-1, keepdim=True).values`.")
            raise CheckFailure(
                f"{name} contains NaN: exp() of large logits overflowed.",
                hint="Use `torch.softmax`, which subtracts the largest logit before exp(), or do so yourself.")
        if z.dim() == 2 and isinstance(got, torch.Tensor) and _same(got, torch.softmax(z.double() / T, 0)):
            raise CheckFailure(f"{name} normalises each column instead of each row: the softmax "
                               "runs over the wrong dimension.", hint="Use `dim=-1`, the vocabulary.")
        compare_arrays(name, got, expected, atol=1e-5, rtol=1e-4, probabilities=True, dim=-1,
                       mistakes=_temperature_mistakes(z, T),
                       hint="softmax(logits / τ) over the last dimension.")
    return (f"correct on {len(_temperature_cases())} inputs: τ < 1 sharpens, τ > 1 flattens, "
            "a batch of rows and large logits without overflow, each row on its own scale.")


# ---------------------------------------------------------------------------- top_k_filter


def _top_k_cases() -> list[tuple[str, torch.Tensor, int]]:
    z = torch.tensor([1.5, -0.3, 2.2, 0.7, -1.1, 0.1])
    batch = torch.tensor([[0.2, 3.0, -1.0, 1.0, 0.5], [2.0, -2.0, 0.3, 0.1, 1.2]])
    return [
        ("logits [1.5, -0.3, 2.2, 0.7, -1.1, 0.1] with k = 3", z, 3),
        ("the same logits with k = 1 (greedy)", z, 1),
        ("the same logits with k = 6 (everything)", z, 6),
        ("a batch of 2 rows with k = 2", batch, 2),
        ("the same logits with k = 10, more than the vocabulary", z, 10),
    ]


def _kept_count(got: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(got).sum(-1)


@checker("top_k_filter")
def check_top_k_filter(top_k_filter: Any) -> str:
    """``top_k_filter(logits, k)``: the k largest logits of each row stay, the rest become -inf."""
    for label, z, k in _top_k_cases():
        expected = reference_top_k_filter(z, k)
        name = f"top_k_filter for {label}"
        got = call_student(top_k_filter, z.clone(), k)
        if isinstance(got, torch.Tensor) and got.shape == z.shape and not _same(got, expected):
            finite = torch.isfinite(got)
            if bool(finite.all()) and k < z.shape[-1]:
                if bool(torch.isclose(got.double().sum(-1), torch.ones(()).double(), atol=1e-4).all()):
                    raise CheckFailure(f"{name} sums to 1: it returns probabilities, but it should "
                                       "return logits with the dropped ones set to -inf.",
                                       hint="Do not apply softmax here; the sampler does that after filtering.")
                zeroed = torch.where(expected == NEG_INF, torch.zeros_like(z), z)
                if _same(got, zeroed):
                    raise CheckFailure(
                        f"{name} sets the dropped logits to 0, but a logit of 0 is an ordinary score: "
                        "after the softmax those tokens still get probability e⁰ / Σ, often more "
                        "than the kept ones with negative logits.",
                        hint="Set them to float('-inf'), whose exp() is exactly 0.")
            want = _kept_count(expected)
            have = _kept_count(got)
            if not torch.equal(have, want):
                if got.dim() == 2 and int(have.sum()) == k:
                    raise CheckFailure(f"{name} keeps {k} tokens in the whole batch, not {k} in each row.",
                                       hint="Find the k-th largest logit of each row: `torch.topk(logits, k, dim=-1)`.")
                if bool((have == want + 1).all()):
                    raise CheckFailure(f"{name} keeps {k + 1} tokens per row, one too many.",
                                       hint="Keep a logit when it is ≥ the k-th largest, and count from 1.")
                if bool((have == want - 1).all()):
                    raise CheckFailure(f"{name} keeps {int(want.min()) - 1} tokens per row, one too few.",
                                       hint="Keep a logit when it is ≥ the k-th largest (the k-th itself stays).")
            kept_small = filter_logits(_rows(-z), top_k=k).reshape(z.shape)
            if _same(torch.isfinite(got), torch.isfinite(kept_small)) and k < z.shape[-1]:
                raise CheckFailure(f"{name} keeps the k *smallest* logits, the least likely tokens.",
                                   hint="`torch.topk` returns the largest values by default (largest=True).")
        hint = "Keep logits ≥ the k-th largest of their row; set the others to float('-inf')."
        _check_kept_tokens(name, z, got, expected, hint)
        compare_arrays(name, got, expected, hint=hint)
    return ("correct on 5 inputs, including k = 1, a batch of rows, and k larger than the "
            "vocabulary.")


# ---------------------------------------------------------------------------- top_p_filter


def _top_p_cases() -> list[tuple[str, torch.Tensor, float]]:
    # softmax([2.0, 0.2, 1.0, -0.5, 0.6]) ≈ [0.5334, 0.0882, 0.1962, 0.0438, 0.1315]
    z = torch.tensor([2.0, 0.2, 1.0, -0.5, 0.6])
    batch = torch.tensor([[0.1, 0.3, 2.5, 0.2], [1.0, 1.3, 0.2, 0.9]])
    return [
        ("logits [2, 0.2, 1, -0.5, 0.6] with p = 0.7", z, 0.7),
        ("the same logits with p = 0.9", z, 0.9),
        ("the same logits with p = 0.3 (the top token alone has more)", z, 0.3),
        ("the same logits with p = 1.0 (everything)", z, 1.0),
        ("a batch of 2 rows with p = 0.6", batch, 0.6),
    ]


def _top_p_mistakes(z: torch.Tensor, p: float) -> dict[str, tuple[torch.Tensor, str]]:
    probs = torch.softmax(z.double(), -1)
    sorted_p, order = torch.sort(probs, descending=True, dim=-1)
    cum = sorted_p.cumsum(-1)

    def unsort(drop_sorted: torch.Tensor) -> torch.Tensor:
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        return z.masked_fill(drop, NEG_INF)

    mistakes = {
        "it drops the token that crosses p: it keeps only tokens whose running total is still "
        "≤ p, so the kept tokens add up to *less* than p (and when the top token alone has "
        "more than p, nothing at all is kept)": (
            unsort(cum > p), "Keep a token while the total of the tokens *before* it is still < p: "
            "the token that crosses p belongs to the set."),
        "the running total is taken in vocabulary order instead of from the most likely token "
        "down": (
            z.masked_fill(probs.cumsum(-1) - probs >= p, NEG_INF),
            "Sort the probabilities in descending order first (`torch.sort(..., descending=True)`), "
            "then add them up."),
        "the mask was worked out in sorted order but applied to the logits in vocabulary "
        "order": (
            z.masked_fill(cum - sorted_p >= p, NEG_INF),
            "Put the mask back in vocabulary order before using it: `drop.scatter(-1, order, "
            "drop_sorted)` with the `order` that `torch.sort` returned."),
    }
    return mistakes


def _check_kept_tokens(name: str, z: torch.Tensor, got: Any, expected: torch.Tensor,
                       hint: str) -> None:
    """When ``got`` is the logits ``z`` with some set to -inf, but not the right ones: name the
    tokens kept and the ones that should be (clearer than "wrong at 3 positions")."""
    if not (isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point()):
        return
    have, want = torch.isfinite(got), torch.isfinite(expected)
    a_filter = bool((torch.isneginf(got) | (got == z)).all())  # kept logits unchanged
    if not a_filter or torch.equal(have, want):
        return
    where = ""
    if got.dim() == 2:
        row = int((have != want).any(dim=-1).nonzero()[0])
        have, want, where = have[row], want[row], f" in row {row}"
    kept, should = have.nonzero().flatten().tolist(), want.nonzero().flatten().tolist()
    raise CheckFailure(f"{name} keeps the tokens at positions {kept}{where}, but should keep "
                       f"{should}.", hint=hint)


@checker("top_p_filter")
def check_top_p_filter(top_p_filter: Any) -> str:
    """``top_p_filter(logits, p)``: the smallest set of most likely tokens with total ≥ p stays."""
    for label, z, p in _top_p_cases():
        expected = reference_top_p_filter(z, p)
        name = f"top_p_filter for {label}"
        got = call_student(top_p_filter, z.clone(), p)
        if isinstance(got, torch.Tensor) and got.shape == z.shape and not _same(got, expected):
            if bool(torch.isinf(got).all(dim=-1).any()):
                raise CheckFailure(
                    f"{name} drops every token, so there is nothing left to sample. This happens "
                    "when the token that crosses p is dropped and the most likely token alone "
                    "already has more than p.",
                    hint="The most likely token is always kept: keep a token while the total of the "
                    "tokens before it is < p.")
            for description, (wrong, hint) in _top_p_mistakes(z, p).items():
                if _same(got, wrong):
                    raise CheckFailure(f"{name} is wrong: {description}.", hint)
            finite = torch.isfinite(got)
            if bool(finite.all()) and p < 1:
                zeroed = torch.where(expected == NEG_INF, torch.zeros_like(z), z)
                if _same(got, zeroed):
                    raise CheckFailure(
                        f"{name} sets the dropped logits to 0, but a logit of 0 is an ordinary score "
                        "and those tokens would still be sampled.",
                        hint="Set them to float('-inf'), whose exp() is exactly 0.")
                if bool(torch.isclose(got.double().sum(-1), torch.ones(()).double(), atol=1e-4).all()):
                    raise CheckFailure(f"{name} sums to 1: it returns probabilities, but it should "
                                       "return logits with the dropped ones set to -inf.",
                                       hint="Use the probabilities to decide, then mask the logits.")
        hint = ("Sort the probabilities from the most likely down, add them up, keep a token "
                "while the total before it is < p; set the others to float('-inf').")
        _check_kept_tokens(name, z, got, expected, hint)
        compare_arrays(name, got, expected, hint=hint)
    return ("correct on 5 inputs, including the token that crosses p, a top token that alone "
            "exceeds p, p = 1 and a batch of rows.")


# --------------------------------------------------------------------- heldout_perplexity

PERPLEXITY_CASES: list[tuple[str, list[float], list[int]]] = [
    ("three full batches and a short last one", [1.20, 1.05, 1.10, 2.40], [4096, 4096, 4096, 512]),
    ("two batches of equal size", [0.9, 1.3], [1000, 1000]),
    ("a single batch", [1.7], [256]),
    ("a tiny first batch with a high loss", [3.0, 1.0, 1.2], [10, 2000, 1990]),
]


def _exp(x: float) -> float:
    return math.exp(x) if x < 709 else math.inf


def _perplexity_mistakes(losses: list[float], tokens: list[int]) -> dict[str, tuple[float, str]]:
    l = torch.tensor(losses, dtype=torch.float64)
    n = torch.tensor(tokens, dtype=torch.float64)
    weighted = float((l * n).sum() / n.sum())
    mistakes = {
        "it averages the batch losses as if every batch had the same number of tokens. A short "
        "last batch then counts as much as a full one": (
            math.exp(float(l.mean())), "Weight each batch's mean loss by its number of tokens: "
            "Σ loss_b · n_b / Σ n_b, then exp."),
        "it averages the perplexities of the batches; perplexity is exp of the mean loss over "
        "all tokens, and exp of an average is not the average of exps": (
            float((l.exp() * n).sum() / n.sum()), "Average the losses (weighted by tokens) first, "
            "then take exp once."),
        "it is the mean loss, not the perplexity": (
            weighted, "Perplexity = exp(mean loss per token)."),
        "it is exp of the total loss summed over tokens, not of the mean": (
            _exp(float((l * n).sum())), "Divide by the number of tokens before exp."),
        "it uses base 2: 2 ** loss. The losses are in nats (natural log), so the perplexity is "
        "e ** loss": (2 ** weighted, "Use `math.exp`."),
    }
    if len(losses) > 1:
        mistakes["it divides the summed loss by the number of batches instead of the number of "
                 "tokens"] = (_exp(float((l * n).sum()) / len(losses)),
                              "Divide by Σ n_b, the number of target tokens.")
    return mistakes


# Every slip that takes exp of a total overflows on the cases above (exp of thousands), so there
# they all look alike. On these two small batches exp(Σ loss·n) = e⁵⁰ and exp(Σ loss·n / 2) = e²⁵
# fit even in float32, and each slip gives its own number.
OVERFLOW_PROBE: tuple[list[float], list[int]] = ([2.0, 1.5], [10, 20])


def _overflow_diagnosis(heldout_perplexity: Any) -> tuple[str, str]:
    """(sentence, hint) for an answer that overflows on a real case, from what it gives on
    OVERFLOW_PROBE."""
    losses, tokens = OVERFLOW_PROBE
    try:
        got = as_number("probe", call_student(heldout_perplexity, list(losses), list(tokens)))
    except (CheckFailure, NotDoneYet):
        got = math.nan
    where = f"on losses {losses} and tokens {tokens}, where nothing overflows, it gives {got:.6g}"
    if math.isfinite(got):
        if math.isclose(got, reference_heldout_perplexity(losses, tokens), rel_tol=1e-5):
            return (f"a number in between is too large for a float ({where}, the right answer). "
                    "exp of a sum over thousands of tokens does not fit in a float.",
                    "Divide the summed loss by the number of tokens before taking exp.")
        for description, (wrong, hint) in _perplexity_mistakes(losses, tokens).items():
            if math.isclose(got, wrong, rel_tol=1e-5):
                return f"{description} ({where}, as that mistake does).", hint
    return ("it takes exp of a number far too large for a float. The mean loss per token is about "
            "1 to 3 here; exp of it is small. A total (a sum over thousands of tokens) has probably "
            "not been divided by the number of tokens.",
            "exp(Σ loss_b · n_b / Σ n_b): divide before taking exp.")


@checker("heldout_perplexity")
def check_heldout_perplexity(heldout_perplexity: Any) -> str:
    """``heldout_perplexity(batch_losses, batch_tokens)`` = exp(Σ loss·n / Σ n)."""
    for label, losses, tokens in PERPLEXITY_CASES:
        expected = reference_heldout_perplexity(losses, tokens)
        name = f"heldout_perplexity for {label} (losses {losses}, tokens {tokens})"
        try:
            raw = call_student(heldout_perplexity, list(losses), list(tokens))
        except CheckFailure as failure:
            if "OverflowError" in failure.message:
                sentence, hint = _overflow_diagnosis(heldout_perplexity)
                raise CheckFailure(f"{name} overflowed: {sentence}", hint=hint) from None
            raise
        got = as_number(name, raw)
        if math.isinf(got):  # torch.exp and numpy.exp give inf where math.exp raises OverflowError
            sentence, hint = _overflow_diagnosis(heldout_perplexity)
            raise CheckFailure(f"{name} is inf, but should be {expected:.6g}: {sentence}", hint)
        if not math.isclose(got, expected, rel_tol=1e-5):
            for description, (wrong, hint) in _perplexity_mistakes(losses, tokens).items():
                if math.isclose(got, wrong, rel_tol=1e-5):
                    raise CheckFailure(f"{name} is {got:.6g}, but should be {expected:.6g}: {description}.",
                                       hint)
            raise CheckFailure(f"{name} is {got:.6g}, but should be {expected:.6g}.",
                               hint="exp(Σ loss_b · n_b / Σ n_b): the mean loss per token over the "
                               "whole set, then exp.")
    return (f"correct on {len(PERPLEXITY_CASES)} sets of batches, including a short last batch "
            "(weighted by its tokens, as evaluate_loss does).")
