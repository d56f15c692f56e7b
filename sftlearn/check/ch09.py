"""Checks for chapter 09, supervised fine-tuning.

- ``check_loss_mask(fn)``: ``fn(ids, tokenizer)`` returns the loss mask of a conversation
  rendered with the chat template: 1 exactly on the assistant's tokens and on the ``<|end|>``
  that closes each assistant turn, 0 everywhere else;
- ``check_collate(fn)``: ``fn(items, pad_id)`` pads items of different lengths on the right into
  a batch: ``input_ids`` padded with ``pad_id``, ``targets`` with -100, and an
  ``attention_mask`` of 1 (real token) and 0 (padding);
- ``check_exact_match(fn)``: ``fn(predictions, answers)`` is the fraction of predictions equal
  to their answers after stripping surrounding whitespace, and raises ``ValueError`` for lists
  of different lengths or empty lists;
- ``check_make_item(fn)``: ``fn(ids, mask)`` turns a rendered conversation into a training
  item, ``input_ids = ids[:-1]`` and ``targets[t] = ids[t+1]`` where ``mask[t+1] == 1``, else
  -100 (the fix of the "spot the mistake" exercise: a common mistake forgets to shift the
  targets, and the loss falls towards zero while the model learns nothing useful);
- ``check_copy_scores(fn)``: ``fn(logits, ids)`` scores the repeated-list probe: for ``ids``
  (N, 2L), each row a list written twice, and ``logits`` (N, 2L - 1, V) the model's output for
  ``ids[:, :-1]``, the share of right greedy guesses on the first copy (tokens 1..L-1) and on
  the second (tokens L+1..2L-1), as two numbers.

The references are the package's own code (``sftlearn.datasets.render_conversation``,
``SFTDataset``, ``collate``; ``sftlearn.data.score``; ``sftlearn.probes.copy_scores``), so a student's version is compared with
what the course trains with. Each check also computes what the usual mistakes give on the
same input, so it can name them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from sftlearn.check._core import (
    CheckFailure,
    NotDoneYet,
    as_number,
    call_student,
    checker,
    compare_arrays,
    python_number,
    same_on_every_case,
    short_repr,
)
from sftlearn.data import score
from sftlearn.datasets import collate as package_collate
from sftlearn.datasets import render_conversation
from sftlearn.model import IGNORE_INDEX
from sftlearn.probes import copy_scores as reference_copy_scores
from sftlearn.tokenizer import CharTokenizer


@lru_cache(maxsize=1)
def _tokenizer() -> CharTokenizer:
    return CharTokenizer.from_world()


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _conversations() -> list[tuple[str, list[dict[str, str]], bool]]:
    """(label, messages, add_generation_prompt): the conversations the checks render."""
    return [
        ("a one-turn conversation", [_user("Write Lucy in reverse."), _assistant("ycuL")], False),
        ("a two-turn conversation",
         [_user("What is 2 + 3?"), _assistant("5"), _user("And 5 - 1?"), _assistant("4")], False),
        ("a conversation whose reply is empty", [_user("Say nothing."), _assistant("")], False),
        ("a prompt ending in the generation prompt <|assistant|>",
         [_user("Who likes tea?"), _assistant("Anna"), _user("Who swims?")], True),
        ("a Chinese reply", [_user("In Chinese: Tom is calm."), _assistant("汤姆很平静。")], False),
    ]


def _rendered() -> list[tuple[str, list[int], list[int]]]:
    """(label, ids, loss_mask) of each conversation, rendered by the package."""
    out = []
    for label, messages, prompt in _conversations():
        ids, mask = render_conversation(_tokenizer(), messages, add_generation_prompt=prompt)
        out.append((label, ids, mask))
    return out


def _int_tensor(name: str, value: Any) -> torch.Tensor:
    """A student's list or tensor of integers (or booleans) as a long tensor, or a plain failure."""
    if value is None:
        raise CheckFailure(f"{name} is None.", hint="Did your function forget to `return` its result?")
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
    elif isinstance(value, np.ndarray) and value.dtype != object:  # as good as a list
        tensor = torch.from_numpy(np.array(value))
    elif isinstance(value, (list, tuple, np.ndarray)):
        try:
            tensor = torch.tensor(value.tolist() if isinstance(value, np.ndarray) else value)
        except (TypeError, ValueError, RuntimeError):
            bad = _non_integers(value.tolist() if isinstance(value, np.ndarray) else value)
            raise CheckFailure(f"{name} should be a list of integers, but it is {short_repr(value)}"
                               + (f", which holds {bad[0]!r}." if bad else ".")) from None
    else:
        raise CheckFailure(f"{name} should be a list (or tensor) of integers, but it is {short_repr(value)}.")
    if tensor.is_floating_point() or tensor.is_complex():
        raise CheckFailure(f"{name} holds {tensor.dtype} values but should hold integers.",
                           hint="Use whole numbers: `1` and `0`, or `torch.long` tensors.")
    return tensor.long()


def _non_integers(values: Any) -> list[Any]:
    """The items of a (nested) list that are not ints or bools, in order."""
    found = []
    for v in values:
        if isinstance(v, (list, tuple)):
            found += _non_integers(v)
        elif not isinstance(python_number(v), int):  # bools are ints too
            found.append(v)
    return found


# ------------------------------------------------------------------------------ loss mask


def reference_loss_mask(ids: Sequence[int], tokenizer) -> list[int]:
    """1 on assistant content and the ``<|end|>`` closing an assistant turn, else 0.

    Written from the ids alone (a small state machine over the role tokens), independently of
    ``render_conversation``; the tests check that the two agree.
    """
    mask, role = [], None
    for token in ids:
        if token in (tokenizer.user_id, tokenizer.assistant_id):
            role = token
            mask.append(0)
        elif token == tokenizer.end_id:
            mask.append(1 if role == tokenizer.assistant_id else 0)
            role = None
        elif token in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id):
            mask.append(0)
        else:
            mask.append(1 if role == tokenizer.assistant_id else 0)
    return mask


def _loss_mask_mistakes(ids: list[int], mask: list[int], tokenizer) -> dict[str, Any]:
    n = len(ids)
    assistant_starts = [t for t, i in enumerate(ids) if i == tokenizer.assistant_id]
    closing_end = [1 if (i == tokenizer.end_id and mask[t]) else 0 for t, i in enumerate(ids)]
    mistakes: dict[str, Any] = {
        "the <|end|> that closes the reply is not trained, so the model never learns to stop": (
            [m - e for m, e in zip(mask, closing_end)],
            "The <|end|> right after the assistant's text gets 1 too: it is how the model learns "
            "to end its reply."),
        "the <|assistant|> token itself is marked as trained; it is part of the prompt": (
            [1 if (m or i == tokenizer.assistant_id) else 0 for m, i in zip(mask, ids)],
            "The role token is given to the model (it is the generation prompt); only what comes "
            "after it is written by the model."),
        "the user's <|end|> is trained too": (
            [1 if (m or i == tokenizer.end_id) else 0 for m, i in zip(mask, ids)],
            "Only the <|end|> that closes an *assistant* turn gets 1."),
        "the <|eos|> at the very end is trained": (
            [1 if (m or i == tokenizer.eos_id) else 0 for m, i in zip(mask, ids)],
            "<|eos|> closes the conversation, not the reply: leave it at 0."),
        "it is all zeros: nothing would be trained": (
            [0] * n, "The assistant's reply and its closing <|end|> get 1."),
        "every token is trained: this is no mask at all": (
            [1] * n, "Only the assistant's reply and its closing <|end|> get 1."),
        "it is inverted: the prompt is trained and the reply is not": (
            [1 - m for m in mask], "Swap the 0s and 1s: 1 marks what the model must learn to write."),
        "it is shifted one position to the left (the mask of the targets, not of the tokens)": (
            mask[1:] + [0], "The mask belongs to the tokens themselves: mask[t] says whether ids[t] is trained."),
        "it is shifted one position to the right": (
            [0] + mask[:-1], "mask[t] should describe ids[t] itself, not the token before it."),
    }
    if len(assistant_starts) > 1:
        first_turn = [0] * n
        seen_end = False
        for t in range(n):
            if not seen_end and mask[t]:
                first_turn[t] = 1
                seen_end = ids[t] == tokenizer.end_id
        mistakes["only the first assistant turn is trained; every assistant turn should be"] = (
            first_turn, "Keep track of who is speaking through the whole conversation.")
        after_first = [1 if t > assistant_starts[0] and ids[t] != tokenizer.eos_id else 0
                       for t in range(n)]
        mistakes["everything after the first <|assistant|> is trained, including the user's next "
                 "turn"] = (after_first, "A <|user|> token starts a turn that is not trained again.")
    return mistakes


@checker("loss_mask")
def check_loss_mask(loss_mask: Any) -> str:
    """``loss_mask(ids, tokenizer)`` marks exactly the assistant's tokens and closing ``<|end|>``."""
    tokenizer = _tokenizer()
    cases = _rendered()
    for label, ids, mask in cases:
        got = call_student(loss_mask, list(ids), tokenizer)
        name = f"loss_mask on {label}"
        got = _int_tensor(name, got)
        if got.dim() == 1 and len(got) == len(ids):
            bad = sorted(set(got.tolist()) - {0, 1})
            if bad:
                raise CheckFailure(f"{name} contains {bad[0]}; a loss mask holds only 0 and 1.")
        compare_arrays(
            name, got, torch.tensor(mask),
            mistakes=_loss_mask_mistakes(list(ids), mask, tokenizer),
            hint="1 for every token the assistant writes (and the <|end|> closing its turn), 0 "
                 "for <|bos|>, the role tokens, the user's text and <|end|>, and <|eos|>.",
        )
    return (f"correct on {len(cases)} conversations, including two assistant turns, an empty "
            "reply and a generation prompt.")


# -------------------------------------------------------------------------------- collate

COLLATE_KEYS = ("input_ids", "targets", "attention_mask")


def reference_collate(items: Sequence[Mapping[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """The package's ``collate``, with the attention mask always present."""
    batch = package_collate(items, pad_id)
    if "attention_mask" not in batch:  # nothing was padded
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    return batch


def _collate_cases() -> list[tuple[str, list[dict[str, torch.Tensor]], int]]:
    def item(ids: list[int], trained_from: int) -> dict[str, torch.Tensor]:
        ids_t = torch.tensor(ids)
        targets = ids_t[1:].clone()
        targets[: trained_from - 1] = IGNORE_INDEX  # the prompt's targets are ignored
        return {"input_ids": ids_t[:-1], "targets": targets}

    a = item([1, 4, 20, 21, 22, 6, 5, 30, 31, 6, 2], 7)  # 10 inputs
    b = item([1, 4, 23, 6, 5, 32, 6, 2], 5)  # 7 inputs
    c = item([1, 4, 24, 25, 26, 27, 28, 6, 5, 33, 34, 35, 6, 2], 9)  # 13 inputs
    return [
        ("three items of lengths 10, 7 and 13 (pad_id 0)", [a, b, c], 0),
        ("the same items with pad_id 3", [a, b, c], 3),
        # a real token that happens to equal the pad id: the mask must come from the lengths
        ("items holding a real token equal to pad_id 3", [item([1, 4, 3, 3, 6, 5, 36, 6, 2], 6), b], 3),
        ("two items, the longer one first (pad_id 0)", [c, b], 0),
        ("one item alone (nothing to pad)", [b], 0),
    ]


def _collate_mistakes(items, pad_id: int) -> dict[str, dict[str, Any]]:
    """For each key: {sentence: (value, hint)} of what a known mistake gives."""
    right = reference_collate(items, pad_id)
    real = right["attention_mask"].bool()
    B, T = right["input_ids"].shape

    def left_padded(key: str, fill: int) -> torch.Tensor:
        out = torch.full((B, T), fill, dtype=torch.long)
        for b, item in enumerate(items):
            values = item[key] if key != "attention_mask" else torch.ones(len(item["input_ids"]), dtype=torch.long)
            out[b, T - len(values):] = values
        return out

    left = ("it pads on the left; pad on the right, after the real tokens",
            "Copy each item into the start of its row: `row[:len(item)] = item`.")
    return {
        "input_ids": {
            "the padding is 0 instead of pad_id": (
                torch.where(real, right["input_ids"], torch.zeros_like(right["input_ids"])),
                "Fill with the `pad_id` argument; <|pad|> is 0 in the course's tokenizers, but a "
                "collate function should not assume it."),
            left[0]: (left_padded("input_ids", pad_id), left[1]),
        },
        "targets": {
            # With pad_id 0 the two slips give the same targets: one sentence names both.
            (f"the padded targets are pad_id ({pad_id}) instead of -100, so the loss trains the "
             "model to predict padding" if pad_id != 0 else
             "the padded targets are 0 (pad_id, or a plain 0) instead of -100, so the loss trains "
             "the model to predict token 0, the padding"): (
                torch.where(real, right["targets"], torch.full_like(right["targets"], pad_id)),
                "Fill the targets with -100 (IGNORE_INDEX): cross-entropy skips those positions."),
            "the padded targets are 0 instead of -100, so the loss trains the model to predict "
            "token 0": (
                torch.where(real, right["targets"], torch.zeros_like(right["targets"])),
                "Fill the targets with -100 (IGNORE_INDEX): cross-entropy skips those positions."),
            left[0]: (left_padded("targets", IGNORE_INDEX), left[1]),
        },
        "attention_mask": {
            "it is inverted: 1 should mark the real tokens and 0 the padding": (
                1 - right["attention_mask"], "Real tokens get 1, padding gets 0."),
            "it marks every position as real, padding included": (
                torch.ones_like(right["attention_mask"]), "Set 0 where you padded."),
            "it is computed as input_ids != pad_id, so a real token that equals pad_id is "
            "marked as padding": (
                (right["input_ids"] != pad_id).long(),
                "Build the mask from each item's length (1 for its tokens, 0 for what you added), "
                "not from the token values."),
            left[0]: (left_padded("attention_mask", 0), left[1]),
        },
    }


@checker("collate")
def check_collate(collate: Any) -> str:
    """``collate(items, pad_id)`` pads on the right: pad_id, -100 and an attention mask."""
    cases = _collate_cases()
    for label, items, pad_id in cases:
        got = call_student(collate, [dict(item) for item in items], pad_id)
        name = f"collate on {label}"
        if not isinstance(got, Mapping):
            raise CheckFailure(
                f"{name} should return a dict with keys {list(COLLATE_KEYS)}, but returned {short_repr(got)}.",
                hint='`return {"input_ids": ..., "targets": ..., "attention_mask": ...}`.')
        missing = [k for k in COLLATE_KEYS if k not in got]
        if missing:
            raise CheckFailure(f"{name}: the dict has no key {missing[0]!r} (it has {sorted(map(str, got))}).",
                               hint="Return all three tensors, even when nothing was padded.")
        right = reference_collate(items, pad_id)
        mistakes = _collate_mistakes(items, pad_id)
        for key in COLLATE_KEYS:
            value = got[key]
            if not isinstance(value, torch.Tensor):
                raise CheckFailure(f"{name}: {key!r} should be a tensor, but it is {short_repr(value)}.",
                                   hint="Build each with `torch.full((B, T), fill)` and copy the items in.")
            if key == "attention_mask" and value.dtype == torch.bool:
                value = value.long()  # True/False works as a mask just as well as 1/0
            if value.is_floating_point():
                raise CheckFailure(f"{name}: {key!r} holds {value.dtype} values but should hold integers.",
                                   hint="Token ids index an embedding table: use `dtype=torch.long`.")
            compare_arrays(f"{name}: {key!r}", value, right[key], mistakes=mistakes[key],
                           hint=f"Shape (batch, longest item); copy each item into the start of its "
                                f"row and fill the rest with {'pad_id' if key == 'input_ids' else '-100' if key == 'targets' else '0'}.")
    return (f"correct on {len(cases)} batches, including pad_id 3, the longest item first and a "
            "batch with nothing to pad.")


# ---------------------------------------------------------------------------- exact match


def reference_exact_match(predictions: Sequence[str], answers: Sequence[str]) -> float:
    """The fraction of predictions equal to their answer after stripping surrounding whitespace."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    if not predictions:
        raise ValueError("no predictions to score")
    return sum(score("qa", p, a) for p, a in zip(predictions, answers)) / len(answers)


EXACT_MATCH_CASES: list[tuple[str, list[str], list[str]]] = [
    ("names", ["Lucy", "Tom", "Anna", "Lily"], ["Lucy", "Max", "Anna", "Lucy"]),
    ("replies with spaces and new lines around them", [" Lucy", " Tom", "Anna\n", "Max"],
     ["Lucy", "Tom", "Anna", "Sam"]),
    ("case, plurals and longer replies", ["tea", "Tea", "Lucy likes tea", "the cake", "pear", "Tomato"],
     ["tea", "tea", "Lucy", "cake", "pears", "Tom"]),
    ("Chinese with and without its full stop", ["汤姆很平静。", "汤姆很平静", "安娜给艾薇一个杯子。"],
     ["汤姆很平静。", "汤姆很平静。", "安娜给艾薇一个杯子。"]),
    ("spaces inside an answer", ["Tom (person), the farm (place)", "Tom (person),the farm (place)"],
     ["Tom (person), the farm (place)", "Tom (person), the farm (place)"]),
    ("numbers", ["12", "012", "7", "1"], ["12", "12", "7", "3"]),
    ("answers with spaces, tabs and new lines around them", ["\tLucy", "Tom", "Anna ", "Max"],
     [" Lucy", "Tom\n", "\tAnna", "Sam "]),
]


def _exact_match_mistakes(predictions: list[str], answers: list[str]) -> list[tuple[float, str, str]]:
    """(value, sentence, hint) for the usual mistakes on one case."""
    n = len(answers)
    pairs = list(zip(predictions, answers))
    fraction = lambda hits: sum(hits) / n  # noqa: E731
    right = fraction(p.strip() == a.strip() for p, a in pairs)
    return [
        (fraction(p == a for p, a in pairs),
         "surrounding whitespace is not stripped, so ' Lucy' does not count as 'Lucy'",
         "Compare `prediction.strip()` with `answer.strip()`."),
        (fraction(p.strip().lower() == a.strip().lower() for p, a in pairs),
         "it ignores case, so 'Tea' counts as 'tea'; exact match is case-sensitive",
         "Do not call `.lower()`: only surrounding whitespace is forgiven."),
        (fraction(a.strip() in p for p, a in pairs),
         "a reply that merely contains the answer counts ('Lucy likes tea' for 'Lucy')",
         "Use `==`, not `in`: the whole reply must be the answer."),
        (fraction(p.strip().startswith(a.strip()) for p, a in pairs),
         "a reply that merely starts with the answer counts",
         "Use `==`: the whole reply must be the answer."),
        (fraction("".join(p.split()) == "".join(a.split()) for p, a in pairs),
         "it removes the spaces inside answers too; only the surrounding whitespace may go",
         "`str.strip()` removes whitespace at both ends and nowhere else."),
        (fraction(p.strip().rstrip("。.") == a.strip().rstrip("。.") for p, a in pairs),
         "it ignores a final full stop; punctuation is part of the answer",
         "Only surrounding whitespace is forgiven."),
        (fraction(p.strip(" ") == a.strip(" ") for p, a in pairs),
         "it strips spaces only (`strip(' ')`), so a new line or a tab around a reply still counts",
         "`str.strip()` with no argument removes every kind of whitespace."),
        (fraction(p.lstrip() == a.lstrip() for p, a in pairs),
         "it strips whitespace on the left only",
         "`str.strip()` removes it at both ends."),
        (fraction(p.rstrip() == a.rstrip() for p, a in pairs),
         "it strips whitespace on the right only",
         "`str.strip()` removes it at both ends."),
        (float(sum(p.strip() == a.strip() for p, a in pairs)),
         "it returns the number of matches, not the fraction",
         "Divide by the number of answers."),
        (100 * right, "it returns a percentage; return a fraction between 0 and 1",
         "Do not multiply by 100."),
    ]


def _expect_value_error(fn: Any, args: tuple, situation: str, name: str) -> None:
    """``fn(*args)`` must raise ValueError with a message."""
    try:
        result = fn(*[list(a) for a in args])
    except NotImplementedError:
        raise NotDoneYet("`exact_match`") from None
    except ValueError as err:
        if not str(err).strip():
            raise CheckFailure(f"{name} on {situation} raises ValueError, but with no message. Say "
                               "what is wrong.", hint='e.g. `raise ValueError("3 predictions but 2 '
                               'answers")`.') from None
        return
    except Exception as err:  # noqa: BLE001 - any other kind of error is the student's to fix
        raise CheckFailure(f"{name} on {situation} raised {type(err).__name__}; it should raise "
                           "ValueError with a message that says what is wrong.",
                           hint="Check the lengths first and `raise ValueError(...)`.") from None
    raise CheckFailure(
        f"{name} on {situation} returned {short_repr(result)} instead of raising ValueError. "
        "`zip` silently stops at the shorter list, and a score of an empty list means nothing.",
        hint="Check `len(predictions) != len(answers)` and an empty list first, and raise ValueError.")


@checker("exact_match")
def check_exact_match(exact_match: Any) -> str:
    """``exact_match(predictions, answers)``: the fraction equal after stripping whitespace."""
    for label, predictions, answers in EXACT_MATCH_CASES:
        name = f"exact_match on {label}"
        got = as_number(name, call_student(exact_match, list(predictions), list(answers)))
        want = reference_exact_match(predictions, answers)
        if abs(got - want) < 1e-6:  # float32 tensors are fine
            continue
        for index, (value, sentence, hint) in enumerate(_exact_match_mistakes(predictions, answers)):
            if abs(got - value) < 1e-6 and abs(value - want) > 1e-6 and same_on_every_case(
                    EXACT_MATCH_CASES,
                    lambda c: as_number(name, call_student(exact_match, list(c[1]), list(c[2]))),
                    lambda c, i=index: _exact_match_mistakes(c[1], c[2])[i][0]):
                raise CheckFailure(f"{name} is {got:g}, but should be {want:g}: {sentence}.", hint)
        raise CheckFailure(f"{name} is {got:g}, but should be {want:g}.",
                           hint="Count the predictions whose `.strip()` equals the answer's `.strip()`, "
                                "and divide by the number of answers.")
    _expect_value_error(exact_match, (["Lucy", "Tom"], ["Lucy"]), "2 predictions and 1 answer", "exact_match")
    _expect_value_error(exact_match, ([], []), "empty lists", "exact_match")
    return (f"correct on {len(EXACT_MATCH_CASES)} sets of replies (whitespace, case, punctuation, "
            "Chinese, numbers); raises ValueError for lists of different lengths and empty lists.")


# ------------------------------------------------------------------------------ make_item


def reference_make_item(ids: Sequence[int], mask: Sequence[int]) -> dict[str, torch.Tensor]:
    """``input_ids = ids[:-1]``; ``targets[t] = ids[t+1]`` if ``mask[t+1]`` else -100."""
    ids_t = torch.tensor(list(ids), dtype=torch.long)  # (L,)
    mask_t = torch.tensor(list(mask), dtype=torch.bool)  # (L,)
    targets = torch.where(mask_t[1:], ids_t[1:], torch.full_like(ids_t[1:], IGNORE_INDEX))  # (L-1,)
    return {"input_ids": ids_t[:-1], "targets": targets}


def _make_item_mistakes(ids: list[int], mask: list[int]) -> dict[str, dict[str, Any]]:
    ids_t = torch.tensor(ids)
    mask_t = torch.tensor(mask, dtype=torch.bool)
    ignore = torch.full_like(ids_t, IGNORE_INDEX)
    masked = torch.where(mask_t, ids_t, ignore)  # (L,) each trained token at its own position
    not_shifted = ("the targets are not shifted: targets[t] is the token at position t, the one the "
                   "model is reading, so it learns to copy its input and the loss falls towards zero "
                   "while it learns nothing about answering",
                   "The target at position t is the NEXT token, ids[t+1]: use ids[1:] (and mask[1:]).")
    return {
        "input_ids": {
            "it is shifted the wrong way: the inputs should be ids[:-1] and the targets ids[1:]": (
                ids_t[1:], "The model reads ids[:-1] and predicts ids[1:]."),
        },
        "targets": {
            not_shifted[0]: (masked[:-1], not_shifted[1]),
            "the mask is read at the input position t instead of at the target position t+1, so "
            "the first character of the reply is not trained and <|eos|> is": (
                torch.where(mask_t[:-1], ids_t[1:], ignore[1:]),
                "Whether target t is trained depends on the token it names, ids[t+1]: use mask[t+1]."),
            "every target is trained: the prompt is not masked": (
                ids_t[1:], "Set the targets to -100 where mask[t+1] is 0."),
            "the ignored targets are 0 instead of -100, so the model is trained to predict <|pad|> "
            "everywhere in the prompt": (
                torch.where(mask_t[1:], ids_t[1:], torch.zeros_like(ids_t[1:])),
                "Use -100 (IGNORE_INDEX), the value cross-entropy skips."),
            "the mask is inverted: the prompt is trained and the reply is ignored": (
                torch.where(~mask_t[1:], ids_t[1:], ignore[1:]),
                "Keep ids[t+1] where mask[t+1] is 1 and use -100 where it is 0."),
        },
    }


@checker("make_item")
def check_make_item(make_item: Any) -> str:
    """``make_item(ids, mask)`` -> {"input_ids": ids[:-1], "targets": shifted and masked}."""
    cases = _rendered()
    for label, ids, mask in cases:
        got = call_student(make_item, list(ids), list(mask))
        name = f"make_item on {label}"
        if not isinstance(got, Mapping):
            raise CheckFailure(f"{name} should return a dict with keys 'input_ids' and 'targets', but "
                               f"returned {short_repr(got)}.",
                               hint='`return {"input_ids": ..., "targets": ...}`.')
        for key in ("input_ids", "targets"):
            if key not in got:
                raise CheckFailure(f"{name}: the dict has no key {key!r} (it has {sorted(map(str, got))}).")
        right = reference_make_item(ids, mask)
        mistakes = _make_item_mistakes(ids, mask)
        for key in ("input_ids", "targets"):
            value = _int_tensor(f"{name}: {key!r}", got[key])
            if value.dim() == 1 and len(value) == len(ids):
                raise CheckFailure(
                    f"{name}: {key!r} has {len(ids)} entries, as many as the conversation; it should "
                    f"have {len(ids) - 1}. The last token has no next token to predict, and the first "
                    "is never a target.",
                    hint="input_ids = ids[:-1]; targets come from ids[1:].")
            compare_arrays(f"{name}: {key!r}", value, right[key], mistakes=mistakes[key],
                           hint="input_ids = ids[:-1]; targets[t] = ids[t+1] if mask[t+1] == 1 else -100.")
    return (f"correct on {len(cases)} conversations, including two assistant turns, an empty reply "
            "and a generation prompt (nothing to train).")


# ------------------------------------------------------------------------------ copy_scores


def _copy_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(label, logits, ids): doubled lists of distinct tokens, and guesses of several kinds."""
    gen = torch.Generator().manual_seed(9)
    cases = []
    for label, n, length, vocab, copier in (("random guesses", 4, 6, 8, False),
                                            ("a model that copies half the time", 5, 5, 12, True),
                                            ("random guesses over a larger vocabulary", 3, 8, 20, False)):
        rows = torch.stack([torch.randperm(vocab, generator=gen)[:length] for _ in range(n)])  # (N, L)
        ids = torch.cat([rows, rows], dim=1)  # (N, 2L)
        logits = torch.randn(n, 2 * length - 1, vocab, generator=gen)  # (N, 2L - 1, V)
        if copier:  # on the second copy, boost the right token at every other position
            for t in range(length, 2 * length - 1, 2):
                logits[torch.arange(n), t, ids[:, t + 1]] += 100.0
        cases.append((label, logits, ids))
    return cases


def _copy_mistakes(logits: torch.Tensor, ids: torch.Tensor) -> list[tuple[tuple[float, float], str, str]]:
    """((first, second), sentence, hint) for the usual mistakes on one case."""
    length = ids.shape[1] // 2
    right = (logits.argmax(-1) == ids[:, 1:]).float()  # (N, 2L - 1)
    unshifted = (logits.argmax(-1) == ids[:, :-1]).float()  # guess at t compared with token t
    first, second = right[:, : length - 1].mean().item(), right[:, length:].mean().item()
    return [
        ((unshifted[:, : length - 1].mean().item(), unshifted[:, length:].mean().item()),
         "it compares the guess at position t with token t, the token the model is reading; "
         "position t predicts token t + 1",
         "`logits.argmax(-1)` against `ids[:, 1:]`."),
        ((first, right[:, length - 1:].mean().item()),
         "the second copy's score includes the guess for its first word, which nothing before it "
         "predicts",
         "The second copy is scored on tokens L+1..2L-1: `right[:, L:]`."),
        ((right[:, :length].mean().item(), second),
         "the first copy's score includes the guess for the second copy's first word",
         "The first copy is scored on tokens 1..L-1: `right[:, :L-1]`."),
        ((second, first), "the two numbers are swapped", "Return (first, second)."),
        ((right[:, : length - 1].sum().item(), right[:, length:].sum().item()),
         "it returns counts, not fractions", "Take the mean."),
        ((100 * first, 100 * second), "it returns percentages; return fractions between 0 and 1",
         "Do not multiply by 100."),
    ]


def _pair(name: str, got: Any) -> tuple[float, float]:
    if isinstance(got, (torch.Tensor, np.ndarray)) and got.reshape(-1).shape[0] == 2:
        got = tuple(got.reshape(-1))  # the two numbers stacked into one tensor are two numbers
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"{name} should return two numbers, (first, second), but returned "
                           f"{short_repr(got)}.", hint="`return first, second`.")
    return as_number(f"{name}'s first number", got[0]), as_number(f"{name}'s second number", got[1])


@checker("copy_scores")
def check_copy_scores(copy_scores: Any) -> str:
    """``copy_scores(logits, ids)`` -> (accuracy on the first copy, on the second)."""
    cases = _copy_cases()

    def student(case):
        label, logits, ids = case
        return _pair(f"copy_scores on {label}", call_student(copy_scores, logits, ids))

    for case in cases:
        label, logits, ids = case
        name = f"copy_scores on {label}"
        got, want = student(case), reference_copy_scores(logits, ids)
        if all(abs(g - w) < 1e-6 for g, w in zip(got, want)):
            continue
        for index, (value, sentence, hint) in enumerate(_copy_mistakes(logits, ids)):
            if all(abs(g - v) < 1e-6 for g, v in zip(got, value)) and all(
                    same_on_every_case(cases, lambda c, k=k: student(c)[k],
                                       lambda c, k=k, i=index: _copy_mistakes(c[1], c[2])[i][0][k])
                    for k in (0, 1)):
                raise CheckFailure(f"{name} is ({got[0]:g}, {got[1]:g}), but should be "
                                   f"({want[0]:g}, {want[1]:g}): {sentence}.", hint)
        raise CheckFailure(f"{name} is ({got[0]:g}, {got[1]:g}), but should be ({want[0]:g}, {want[1]:g}).",
                           hint="right = (logits.argmax(-1) == ids[:, 1:]); the first copy is right[:, :L-1], "
                                "the second right[:, L:].")
    return (f"correct on {len(cases)} sets of doubled lists (random guesses, and a model that copies half "
            "of the second copy).")
