"""Checks for chapter 00, the welcome chapter: how exercises and checks work.

One check for the lesson's demonstration and four small exercises, one of each kind a
chapter uses:

- ``check_count_words(fn)``: the lesson's demonstration (right, unfinished, wrong);
- ``check_count_characters(fn)``: a function returning a number (the "spot the mistake"
  exercise: a common mistake counts UTF-8 bytes instead of characters);
- ``check_normalise(fn)``: a function returning a tensor (probabilities); it recognises
  a common slip, leaving a weight's own term out of the denominator;
- ``check_linear_parameter_count(fn_or_value)``: a count, from a function of the layer's
  sizes or as a single number computed in a cell;
- ``check_first_mention(fn)``: a function returning a string, using the glossary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sftlearn.check._core import CheckFailure, call_student, checker, compare_arrays, short_repr

WORD_CASES = ["the cat sat", "", "  two   spaces ", "one", "line\nbreak\tand tab"]


@checker("count_words")
def check_count_words(count_words: Any) -> str:
    """``count_words(text)`` must return how many whitespace-separated words ``text`` has."""
    for text in WORD_CASES:
        got = call_student(count_words, text)
        expected = len(text.split())
        if got is None:
            raise CheckFailure(f"count_words({text!r}) returned None.",
                               hint="Did you forget to `return` the count?")
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            raise CheckFailure(f"count_words({text!r}) should return a whole number (an int), "
                               f"but returned {short_repr(got)}.")
        if got == expected:
            continue
        if got == text.count(" ") + 1:  # also what len(text.split(" ")) gives
            raise CheckFailure(
                f"count_words({text!r}) returned {got}, but the text has {expected} words: "
                "counting spaces and adding one goes wrong for empty text, repeated spaces "
                "and line breaks.",
                hint="`text.split()` (with no argument) splits on any run of whitespace.",
            )
        raise CheckFailure(f"count_words({text!r}) returned {got}, but the text has {expected} words.")
    return f"correct on {len(WORD_CASES)} strings, including empty text and repeated spaces."


CHARACTER_CASES = ["hello", "", "hello world", "你好", "tokens!\n"]


@checker("count_characters")
def check_count_characters(count_characters: Any) -> str:
    """``count_characters(text)`` must return how many characters ``text`` has."""
    for text in CHARACTER_CASES:
        got = call_student(count_characters, text)
        _check_character_count(text, got)
    return f"correct on {len(CHARACTER_CASES)} strings, including the empty string and Chinese text."


def _check_character_count(text: str, got: Any) -> None:
    expected = len(text)
    if got is None:
        raise CheckFailure(f"count_characters({text!r}) returned None.",
                           hint="Did you forget to `return` the count?")
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise CheckFailure(f"count_characters({text!r}) should return a whole number (an int), "
                           f"but returned {short_repr(got)}.")
    if got == expected:
        return
    if got == len(text.encode("utf-8")):
        raise CheckFailure(
            f"count_characters({text!r}) returned {got}, the number of UTF-8 bytes, not characters.",
            hint="'你' is one character but three bytes; `len` of a str counts characters.",
        )
    if got == len(text.split()):
        raise CheckFailure(f"count_characters({text!r}) returned {got}: that counts words, not characters.")
    if got == len(text) - text.count(" "):
        raise CheckFailure(f"count_characters({text!r}) returned {got}: spaces are characters too.")
    if got == len(text.strip()):
        raise CheckFailure(f"count_characters({text!r}) returned {got}, but the text has {expected} "
                           "characters: a line break at the end is a character too.",
                           hint="Do not strip the text before counting.")
    raise CheckFailure(f"count_characters({text!r}) returned {got}, but the text has {expected} characters.")


NORMALISE_CASES = [
    torch.tensor([1.0, 1.0, 2.0]),
    torch.tensor([[1.0, 3.0], [5.0, 5.0], [0.0, 2.0]]),
    torch.tensor([7.0]),
]


@checker("normalise")
def check_normalise(normalise: Any) -> str:
    """``normalise(w)`` must divide non-negative weights by their sum along the last dimension.

    Recognises the mistake of leaving each weight's own term out of the denominator
    (``w / (w.sum() - w)``), which turns ``[e, e, e]`` into 0.5 each instead of 1/3.
    """
    for weights in NORMALISE_CASES:
        got = call_student(normalise, weights)
        total = weights.sum(dim=-1, keepdim=True)
        leave_one_out = (
            weights / (total - weights),
            "Divide by the sum of ALL the weights of the row, the weight itself included: "
            "[e, e, e] becomes 1/3 each, not 0.5.",
        )
        compare_arrays(
            f"normalise({short_repr(weights)})", got, weights / total, probabilities=True,
            mistakes={
                "each weight is divided by the sum of the other weights, "
                "leaving its own weight out of the denominator": leave_one_out,
                "it is the softmax of the weights, which exponentiates them first": (
                    torch.softmax(weights, dim=-1),
                    "The weights are already non-negative: divide them by their sum as they are.",
                ),
            },
        )
    return f"correct on {len(NORMALISE_CASES)} inputs, including a batch of rows and a single weight."


LINEAR_IN, LINEAR_OUT = 3, 4
# (inputs, outputs) for the function form; the first case tells the usual mistakes apart.
LINEAR_CASES = [(3, 4), (2, 3), (10, 1), (1, 1), (64, 256)]


@checker("linear_parameter_count")
def check_linear_parameter_count(answer: Any) -> str:
    """The number of parameters of a linear layer ``torch.nn.Linear(n_in, n_out)``.

    ``answer`` is either a function ``linear_parameter_count(n_in, n_out)``, tried on
    several sizes, or a number: the count for ``nn.Linear(3, 4)``.
    """
    if not callable(answer):
        count = _as_whole_number(answer, "the answer should be a whole number, but it is")
        _diagnose_linear_count(count, LINEAR_IN, LINEAR_OUT, subject=f"{count}")
        return (f"nn.Linear({LINEAR_IN}, {LINEAR_OUT}) has {LINEAR_IN * LINEAR_OUT} weights "
                f"and {LINEAR_OUT} biases.")
    first_count = None
    for n_in, n_out in LINEAR_CASES:
        call = f"linear_parameter_count({n_in}, {n_out})"
        got = call_student(answer, n_in, n_out)
        if got is None:
            raise CheckFailure(f"{call} returned None.", hint="Did you forget to `return` the count?")
        count = _as_whole_number(got, f"{call} should return a whole number, but returned")
        if first_count is not None and count == first_count:
            raise CheckFailure(
                f"{call} returned {count}, the same as for nn.Linear({LINEAR_IN}, {LINEAR_OUT}): "
                "the count must depend on the layer's sizes.",
                hint="Compute it from the arguments n_in and n_out, not from fixed numbers.",
            )
        _diagnose_linear_count(count, n_in, n_out, subject=f"{call} returned {count}, which")
        first_count = count if first_count is None else first_count
    return (f"correct for {len(LINEAR_CASES)} layer sizes; e.g. nn.Linear({LINEAR_IN}, {LINEAR_OUT}) "
            f"has {LINEAR_IN * LINEAR_OUT} weights and {LINEAR_OUT} biases.")


def _diagnose_linear_count(count: int, n_in: int, n_out: int, subject: str) -> None:
    """Return quietly if ``count`` is right for ``nn.Linear(n_in, n_out)``; else say what it counts."""
    weights = n_in * n_out
    if count == weights + n_out:
        return
    if count == weights:
        raise CheckFailure(f"{subject} counts the weight matrix ({n_in} × {n_out}) only.",
                           hint="A Linear layer also has a bias: one number per output.")
    if count == weights + n_in:
        raise CheckFailure(f"{subject} gives the bias one entry per input; it has one per output "
                           f"({n_out}), since b is added to the {n_out} outputs of Wx.")
    if count == n_in + n_out:
        raise CheckFailure(f"{subject} adds the two sizes; the weight matrix has one number per "
                           "(input, output) pair.")
    raise CheckFailure(f"{subject} is not the number of parameters of nn.Linear({n_in}, {n_out}).",
                       hint="Count the weight matrix (inputs × outputs) and the bias (one per output); "
                       "`sum(p.numel() for p in layer.parameters())` lets you verify your reasoning.")


def _as_whole_number(value: Any, complaint: str) -> int:
    """Accept an int, a numpy integer, a whole float or a one-element integer tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise CheckFailure(f"{complaint} {short_repr(value)}.")


FIRST_MENTION_CASES = ["token", "Perplexity", "BPE", "困惑度", "lora"]


@checker("first_mention")
def check_first_mention(first_mention: Any) -> str:
    """``first_mention(term)`` must return ``**<English term>** (<Chinese>)`` from the glossary."""
    from sftlearn.glossary import lookup

    for query in FIRST_MENTION_CASES:
        entry = lookup(query)
        got = call_student(first_mention, query)
        expected = f"**{entry.term}** ({entry.chinese})"
        if got is None:
            raise CheckFailure(f"first_mention({query!r}) returned None.",
                               hint="Did you forget to `return` the string?")
        if not isinstance(got, str):
            raise CheckFailure(f"first_mention({query!r}) should return a str, but returned {short_repr(got)}.")
        if got == expected:
            continue
        if got.strip() == expected:
            raise CheckFailure(f"first_mention({query!r}) returned {got!r}, with extra spaces around "
                               f"{expected!r}.")
        if got == f"**{query}** ({entry.chinese})":
            raise CheckFailure(
                f"first_mention({query!r}) returned {got!r}: it repeats the term as it was typed; "
                f"the glossary's English name is {entry.term!r}.",
                hint="Use the `.term` of the entry that `lookup` returns, not the argument.",
            )
        if got == f"**{entry.chinese}** ({entry.term})":
            raise CheckFailure(f"first_mention({query!r}) returned {got!r}: English and Chinese are swapped.",
                               hint="The English term comes first, in bold.")
        if got == f"{entry.term} ({entry.chinese})":
            raise CheckFailure(f"first_mention({query!r}) returned {got!r}: the English term should be "
                               "bold, written **like this** in Markdown.")
        raise CheckFailure(f"first_mention({query!r}) returned {got!r}, but should return {expected!r}.")
    return (f"correct on {len(FIRST_MENTION_CASES)} terms, including an abbreviation, "
            "a Chinese name and a term in other capitals.")
