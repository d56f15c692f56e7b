"""Checks for chapter 00, the welcome chapter: how exercises and checks work.

Three small exercises, one of each kind a chapter uses:

- ``check_count_characters(fn)``: a function returning a number;
- ``check_normalise(fn)``: a function returning a tensor (probabilities);
- ``check_linear_parameter_count(value)``: a single value computed in a cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sftlearn.check._core import CheckFailure, call_student, checker, compare_arrays, short_repr

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
    raise CheckFailure(f"count_characters({text!r}) returned {got}, but the text has {expected} characters.")


NORMALISE_CASES = [
    torch.tensor([1.0, 1.0, 2.0]),
    torch.tensor([[1.0, 3.0], [5.0, 5.0], [0.0, 2.0]]),
    torch.tensor([7.0]),
]


@checker("normalise")
def check_normalise(normalise: Any) -> str:
    """``normalise(w)`` must divide non-negative weights by their sum along the last dimension."""
    for weights in NORMALISE_CASES:
        got = call_student(normalise, weights)
        expected = weights / weights.sum(dim=-1, keepdim=True)
        compare_arrays(f"normalise({short_repr(weights)})", got, expected, probabilities=True)
    return f"correct on {len(NORMALISE_CASES)} inputs, including a batch of rows and a single weight."


LINEAR_IN, LINEAR_OUT = 3, 4


@checker("linear_parameter_count")
def check_linear_parameter_count(value: Any) -> str:
    """``value`` must be the number of parameters of ``torch.nn.Linear(3, 4)``."""
    count = _as_whole_number(value)
    weights, biases = LINEAR_IN * LINEAR_OUT, LINEAR_OUT
    if count == weights + biases:
        return f"nn.Linear({LINEAR_IN}, {LINEAR_OUT}) has {weights} weights and {biases} biases."
    if count == weights:
        raise CheckFailure(f"{count} counts the weight matrix ({LINEAR_IN} × {LINEAR_OUT}) only.",
                           hint="A Linear layer also has a bias: one number per output.")
    if count == LINEAR_IN + LINEAR_OUT:
        raise CheckFailure(f"{count} adds the two sizes; the weight matrix has one number per "
                           "(input, output) pair.")
    raise CheckFailure(f"{count} is not the number of parameters of nn.Linear({LINEAR_IN}, {LINEAR_OUT}).",
                       hint="Count the weight matrix (inputs × outputs) and the bias (one per output); "
                       "`sum(p.numel() for p in layer.parameters())` lets you verify your reasoning.")


def _as_whole_number(value: Any) -> int:
    """Accept an int, a numpy integer or a one-element integer tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise CheckFailure(f"the answer should be a whole number, but it is {short_repr(value)}.")
