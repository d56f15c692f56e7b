"""Checks for chapter 10, lightweight fine-tuning.

- ``check_lora_forward(fn)``: ``fn(x, weight, bias, A, B, alpha)`` is a LoRA layer's output,
  ``x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ`` with ``r = A.shape[0]`` (``bias`` may be None);
- ``check_freeze_last_blocks(fn)``: ``fn(model, k)`` leaves only the last ``k`` Transformer
  blocks of a GPT trainable (``k = 0`` freezes everything);
- ``check_training_memory(fn)``: ``fn(model)`` returns the bytes that training ``model`` with
  AdamW keeps for ``"parameters"``, ``"gradients"`` and ``"optimizer"`` state;
- ``check_lora_init(fn)``: ``fn(r, in_features, out_features)`` returns ``(A, B)`` for a new
  adapter (the "spot the mistake" exercise: a common mistake starts both matrices at zero, and
  then the adapter never learns).

Each check computes what the usual mistakes give on the same inputs, so it can name the
mistake instead of only reporting a difference.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from sftlearn.check._core import (CheckFailure, NotDoneYet, call_student, checker, compare_arrays,
                                  python_number, same_on_every_case, short_repr)
from sftlearn.config import GPTConfig
from sftlearn.device import seeded
from sftlearn.model import GPT

# ----------------------------------------------------------------------------- LoRA forward


def reference_lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """``x Wᵀ + b + (alpha / r) · (x Aᵀ) Bᵀ``: (..., in) -> (..., out)."""
    r = A.shape[0]
    return F.linear(x, weight, bias) + (alpha / r) * ((x @ A.T) @ B.T)


def _lora_forward_mistakes(x, weight, bias, A, B, alpha) -> dict[str, Any]:
    r = A.shape[0]
    base = F.linear(x, weight, bias)
    update = (x @ A.T) @ B.T  # (..., out), before scaling
    mistakes: dict[str, Any] = {
        "the update x·Aᵀ·Bᵀ is not scaled; LoRA multiplies it by alpha / r": (
            base + update, "Multiply the update by `alpha / r`, where r = A.shape[0]."),
        f"the update is scaled by alpha = {alpha:g} instead of alpha / r = {alpha / r:g}": (
            base + alpha * update, "Divide by the rank as well: `alpha / r`."),
        f"the update is scaled by 1 / r instead of alpha / r = {alpha / r:g}": (
            base + update / r, "The scale is `alpha / r`: alpha is missing."),
        f"the update is scaled by alpha · r instead of alpha / r = {alpha / r:g}": (
            base + alpha * r * update, "Divide by r, do not multiply: `alpha / r`."),
        f"the update is scaled by r / alpha instead of alpha / r = {alpha / r:g}": (
            base + (r / alpha) * update, "The fraction is upside down: `alpha / r`."),
        "it returns only the low-rank update; the frozen layer's own output x·Wᵀ + b must be "
        "added to it": (
            (alpha / r) * update, "Start from `F.linear(x, weight, bias)` and add the update."),
        f"the update is scaled by alpha // r = {alpha // r:g} (integer division) instead of "
        f"alpha / r = {alpha / r:g}": (
            base + (alpha // r) * update, "Use `/`, not `//`: the scale need not be a whole number."),
        "the adapter is ignored: this is the frozen layer alone": (
            base, "The low-rank update (alpha / r)·(x·Aᵀ)·Bᵀ is what makes it a LoRA layer."),
    }
    if bias is not None:
        mistakes["the bias is missing"] = (
            base - bias + (alpha / r) * update, "`F.linear(x, weight, bias)` adds it for you.")
    return mistakes


def _lora_forward_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None,
                                        torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(10)

    def layer(n_in: int, n_out: int, r: int, bias: bool = True):
        weight = torch.randn(n_out, n_in, generator=g) / math.sqrt(n_in)
        b = torch.randn(n_out, generator=g) if bias else None
        A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
        B = torch.randn(n_out, r, generator=g)  # trained: no longer zero
        return weight, b, A, B

    cases = []
    w, b, A, B = layer(6, 5, 2)
    cases.append(("x of shape (4, 6), r = 2, alpha = 6", torch.randn(4, 6, generator=g), w, b, A, B, 6.0))
    w, b, A, B = layer(8, 12, 4)
    cases.append(("x of shape (2, 3, 8), r = 4, alpha = 16", torch.randn(2, 3, 8, generator=g),
                  w, b, A, B, 16.0))
    w, b, A, B = layer(5, 3, 1)
    cases.append(("a rank-1 adapter, alpha = 3", torch.randn(7, 5, generator=g), w, b, A, B, 3.0))
    w, b, A, B = layer(6, 6, 3, bias=False)
    cases.append(("a layer without bias (bias=None), r = 3, alpha = 12",
                  torch.randn(2, 4, 6, generator=g), w, b, A, B, 12.0))
    w, b, A, B = layer(8, 4, 4)  # alpha / r = 2.5: integer division would give 2
    cases.append(("r = 4, alpha = 10", torch.randn(3, 8, generator=g), w, b, A, B, 10.0))
    return cases


@checker("lora_forward")
def check_lora_forward(lora_forward: Any) -> str:
    """``lora_forward(x, weight, bias, A, B, alpha)`` must equal x Wᵀ + b + (α/r)·x Aᵀ Bᵀ."""
    cases = _lora_forward_cases()
    for label, x, weight, bias, A, B, alpha in cases:
        name = f"lora_forward on {label}"
        try:
            got = call_student(lora_forward, x, weight, bias, A, B, alpha)
        except CheckFailure as failure:
            if bias is None and "NoneType" in failure.message:
                raise CheckFailure(
                    f"{name}: your function raised an error because bias is None "
                    f"({failure.message.split(': ', 1)[-1].split(' (on input')[0]}).",
                    hint="A layer built with bias=False has no bias: `F.linear(x, weight, bias)` "
                    "accepts bias=None, or add the bias only `if bias is not None`.",
                ) from None
            raise
        compare_arrays(
            name, got, reference_lora_forward(x, weight, bias, A, B, alpha), atol=1e-5, rtol=1e-4,
            mistakes=_lora_forward_mistakes(x, weight, bias, A, B, alpha),
            hint="x·Wᵀ + b, plus (alpha / r) · (x·Aᵀ)·Bᵀ with r = A.shape[0].",
        )
    return (f"correct on {len(cases)} inputs, including a batch of sequences, rank 1, a layer "
            "without bias and a scale alpha / r that is not a whole number.")


# ------------------------------------------------------------------------ freezing by hand

FREEZE_CONFIG = GPTConfig(vocab_size=20, block_size=16, n_layer=3, n_head=2, n_embd=16)


def _fresh_model() -> GPT:
    with seeded(0):
        return GPT(FREEZE_CONFIG)


def _block_names(model: GPT, blocks: range) -> set[str]:
    prefixes = tuple(f"transformer.h.{i}." for i in blocks)
    return {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


def _group(name: str) -> str:
    """``transformer.h.2.attn.c_attn.weight`` -> ``transformer.h.2``; others -> their module."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1] == "h" and parts[2].isdigit():
        return ".".join(parts[:3])
    return ".".join(parts[:-1]) or name


def _groups(names: set[str]) -> str:
    groups = sorted({_group(n) for n in names})
    described = [g + (" (the token embedding, which lm_head shares)" if g == "transformer.wte" else "")
                 for g in groups]
    return ", ".join(described)


@checker("freeze_last_blocks")
def check_freeze_last_blocks(freeze_last_blocks: Any) -> str:
    """After ``freeze_last_blocks(model, k)`` exactly the last ``k`` blocks are trainable."""
    n = FREEZE_CONFIG.n_layer
    for k in (1, 2, 0, n):
        model = _fresh_model()
        call_student(freeze_last_blocks, model, k)
        got = {name for name, p in model.named_parameters() if p.requires_grad}
        want = _block_names(model, range(n - k, n))
        if got == want:
            continue
        _diagnose_freezing(model, k, got, want)
    return (f"correct on a {n}-block GPT for k = 1, 2, 0 (everything frozen) and {n} (every "
            "block trainable; embeddings and the final norm stay frozen).")


def _diagnose_freezing(model: GPT, k: int, got: set[str], want: set[str]) -> None:
    n = FREEZE_CONFIG.n_layer
    every = {name for name, _ in model.named_parameters()}
    name = f"after freeze_last_blocks(model, {k}) on a {n}-block GPT"
    if got == every:
        raise CheckFailure(
            f"{name}, nothing is frozen: every parameter still has requires_grad=True.",
            hint="`module.requires_grad = False` only sets a new attribute on the module; "
            "freezing is a property of each parameter: `for p in model.parameters(): "
            "p.requires_grad_(False)`.",
        )
    if not got:
        raise CheckFailure(
            f"{name}, every parameter is frozen; the last {k} block(s) should stay trainable.",
            hint="Freeze everything first, then unfreeze `model.transformer.h[n - k:]`.",
        )
    if k > 0 and got == _block_names(model, range(k)):
        raise CheckFailure(
            f"{name}, the FIRST {k} block(s) are trainable instead of the last {k}.",
            hint="The blocks nearest the output are at the end of `model.transformer.h`: "
            "`model.transformer.h[n - k:]`.",
        )
    if k == 0 and got == _block_names(model, range(n)):
        raise CheckFailure(
            f"{name}, every block is trainable, but k = 0 should freeze them all. "
            "`blocks[-k:]` with k = 0 is `blocks[0:]`, the whole list.",
            hint="Slice with `blocks[len(blocks) - k:]`, which is empty for k = 0.",
        )
    extra, missing = got - want, want - got
    if extra and not missing:
        raise CheckFailure(
            f"{name}, these parameters are trainable but should be frozen: {_groups(extra)}.",
            hint="Freeze every parameter first, then unfreeze only the last k blocks.",
        )
    if missing and not extra:
        raise CheckFailure(
            f"{name}, these parameters are frozen but should be trainable: {_groups(missing)}.",
            hint="Every parameter of each of the last k blocks needs requires_grad=True.",
        )
    raise CheckFailure(
        f"{name}, the wrong parameters are trainable: {_groups(extra)} should be frozen and "
        f"{_groups(missing)} trainable.",
        hint="Freeze every parameter, then unfreeze `model.transformer.h[n - k:]`.",
    )


# --------------------------------------------------------------------------- memory budget

MEMORY_KEYS = ("parameters", "gradients", "optimizer")


def reference_training_memory(model: torch.nn.Module) -> dict[str, int]:
    """Bytes of the parameters, of their gradients and of AdamW's state (two tensors, the
    moving averages m and v, per trainable parameter). Shared (tied) tensors count once."""
    params = list(model.parameters())  # each shared tensor once
    total = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return {"parameters": total, "gradients": trainable, "optimizer": 2 * trainable}


def _memory_models() -> list[tuple[str, torch.nn.Module]]:
    from sftlearn.freeze import freeze_all_but
    from sftlearn.lora import attach_lora

    config = GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16)
    with seeded(0):
        full = GPT(config)
        last = GPT(config)
        freeze_all_but(last, last_blocks=1)
        lora = GPT(config)
        attach_lora(lora, r=2, alpha=4, target_modules=["c_attn"])
        wide = GPT(config).double()  # 8-byte numbers: the bytes per number must come from the model
        attach_lora(wide, r=1, alpha=2, target_modules=["c_fc"])
    return [("a fully trainable GPT", full), ("a GPT with only its last block trainable", last),
            ("a GPT with LoRA (r = 2) on c_attn", lora),
            ("a float64 GPT with LoRA (r = 1) on c_fc", wide)]


def _memory_mistakes(model: torch.nn.Module) -> dict[str, list[tuple[float, str, str]]]:
    """For each key: (value a known mistake gives, sentence, hint)."""
    params = list(model.parameters())
    counted_twice = sum(p.numel() * p.element_size() for _, p in model.named_parameters(remove_duplicate=False))
    all_bytes = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    n_all = sum(p.numel() for p in params)
    n_trainable = sum(p.numel() for p in params if p.requires_grad)
    tied = ("the output layer lm_head shares its weight with the token embedding (weight tying), "
            "and this counts that matrix twice")
    return {
        "parameters": [
            (counted_twice, tied, "`model.parameters()` yields each shared tensor once; "
             "`named_parameters(remove_duplicate=False)` and `state_dict()` do not."),
            (n_all, "this is the number of parameters, not their size in bytes",
             "Multiply each tensor's `numel()` by its `element_size()` (bytes per number)."),
            (4 * n_all, "it assumes 4 bytes per number, but this model's numbers take "
             f"{params[0].element_size()} bytes", "Use `p.element_size()` instead of 4."),
        ],
        "gradients": [
            (all_bytes, "it counts a gradient for every parameter, but frozen parameters "
             "(requires_grad=False) get none", "Sum only over parameters with `p.requires_grad`."),
            (n_trainable, "this is the number of gradient values, not their size in bytes",
             "Multiply by `element_size()`."),
            (4 * n_trainable, "it assumes 4 bytes per number, but this model's numbers take "
             f"{params[0].element_size()} bytes", "Use `p.element_size()` instead of 4."),
        ],
        "optimizer": [
            (trainable, "it keeps one number per trainable parameter, but AdamW keeps two: the "
             "moving averages of the gradient (m) and of its square (v)", "Two tensors per parameter."),
            (2 * all_bytes, "it counts optimizer state for frozen parameters too; the optimizer "
             "only holds the trainable ones", "Sum only over parameters with `p.requires_grad`."),
            (all_bytes, "it counts one number per parameter, frozen ones included; AdamW keeps two "
             "numbers for each trainable parameter and none for frozen ones",
             "2 × the bytes of the trainable parameters."),
            (2 * n_trainable, "this is the number of optimizer values, not their size in bytes",
             "Multiply by `element_size()`."),
            (8 * n_trainable, "it assumes 4 bytes per number, but this model's numbers take "
             f"{params[0].element_size()} bytes", "Use `p.element_size()` instead of 4."),
        ],
    }


def _student_bytes(training_memory: Any, model: torch.nn.Module, key: str) -> float:
    """What the student's function gives for ``key`` on ``model`` (NaN when it gives no number)."""
    try:
        value = python_number(call_student(training_memory, model)[key])
    except (CheckFailure, NotDoneYet, TypeError, KeyError, IndexError):
        return math.nan
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@checker("training_memory")
def check_training_memory(training_memory: Any) -> str:
    """``training_memory(model)`` -> {"parameters", "gradients", "optimizer"} in bytes."""
    models = _memory_models()
    for label, model in models:
        got = call_student(training_memory, model)
        name = f"training_memory on {label}"
        if not isinstance(got, dict):
            raise CheckFailure(
                f"{name} should return a dict with keys {list(MEMORY_KEYS)}, but returned "
                f"{short_repr(got)}.",
                hint='`return {"parameters": ..., "gradients": ..., "optimizer": ...}`.',
            )
        missing = [k for k in MEMORY_KEYS if k not in got]
        if missing:
            raise CheckFailure(f"{name}: the dict has no key {missing[0]!r} (it has {sorted(map(str, got))}).",
                               hint=f"Use exactly the keys {list(MEMORY_KEYS)}.")
        want = reference_training_memory(model)
        mistakes = _memory_mistakes(model)
        for key in MEMORY_KEYS:
            value = python_number(got[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CheckFailure(f'{name}: "{key}" should be a number of bytes, but it is '
                                   f"{short_repr(value)}.")
            if abs(value - want[key]) < 0.5:
                continue
            for index, (wrong, sentence, hint) in enumerate(mistakes[key]):
                # On one model two slips can give the same number (on a fully trainable float32
                # model, "one number per parameter" is "one number per trainable parameter", and
                # 8 bytes per trainable parameter is right): the slip named must fit every model.
                if abs(value - wrong) < 0.5 and wrong != want[key] and same_on_every_case(
                        [m for _, m in models], lambda m, k=key: _student_bytes(training_memory, m, k),
                        lambda m, k=key, i=index: _memory_mistakes(m)[k][i][0], tolerance=0.5):
                    raise CheckFailure(f'{name}: "{key}" is {value:,.0f} bytes, which is wrong: '
                                       f"{sentence}.", hint)
            raise CheckFailure(
                f'{name}: "{key}" is {value:,.0f} bytes but should be {want[key]:,} bytes.',
                hint="parameters: every parameter once; gradients: trainable ones; optimizer: "
                "AdamW's two numbers per trainable parameter. Bytes = numel() × element_size().",
            )
    return (f"correct on {len(models)} models: full, last block only, LoRA, and a float64 model "
            "(8 bytes per number).")


# ----------------------------------------------------------------------- LoRA initialisation

INIT_CASES = [(1, 8, 8), (4, 16, 48), (8, 32, 32)]


def _train_a_little(A: torch.Tensor, B: torch.Tensor, steps: int = 3) -> torch.Tensor:
    """Take a few SGD steps on a random regression through the adapter; return B·A after."""
    g = torch.Generator().manual_seed(5)
    A = A.detach().clone().double().requires_grad_(True)
    B = B.detach().clone().double().requires_grad_(True)
    x = torch.randn(16, A.shape[1], generator=g, dtype=torch.float64)
    target = torch.randn(16, B.shape[0], generator=g, dtype=torch.float64)
    for _ in range(steps):
        loss = ((x @ A.T @ B.T - target) ** 2).mean()
        grad_A, grad_B = torch.autograd.grad(loss, (A, B))
        with torch.no_grad():
            A -= 0.1 * grad_A
            B -= 0.1 * grad_B
    return (B @ A).detach()


@checker("lora_init")
def check_lora_init(lora_init: Any) -> str:
    """``lora_init(r, in_features, out_features)`` -> ``(A, B)``: B·A = 0 at the start, the
    adapter can learn, and A's r rows are independent."""
    for r, n_in, n_out in INIT_CASES:
        name = f"lora_init({r}, {n_in}, {n_out})"
        got = call_student(lora_init, r, n_in, n_out)
        if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(
            isinstance(t, torch.Tensor) for t in got
        ):
            raise CheckFailure(f"{name} should return a pair of tensors (A, B), but returned "
                               f"{short_repr(got)}.", hint="`return A, B`.")
        A, B = got
        if tuple(A.shape) != (r, n_in) or tuple(B.shape) != (n_out, r):
            raise CheckFailure(
                f"{name} returned A of shape {tuple(A.shape)} and B of shape {tuple(B.shape)}; "
                f"A should be (r, in_features) = {(r, n_in)} and B (out_features, r) = {(n_out, r)}.",
                hint="A maps the input down to r numbers, B maps them up to the output.",
            )
        if not (A.is_floating_point() and B.is_floating_point()):
            raise CheckFailure(f"{name}: A and B must hold floating-point numbers, not {A.dtype} "
                               f"and {B.dtype}.", hint="Create them with torch.randn / torch.zeros.")
        if not (torch.isfinite(A).all() and torch.isfinite(B).all()):
            raise CheckFailure(f"{name}: A or B contains NaN or inf.")
        product = B.double() @ A.double()  # (out, in): the update the adapter adds to W
        if not bool((product == 0).all()):
            raise CheckFailure(
                f"{name}: B·A is not zero, so the adapted layer does not start as the pretrained "
                f"one: it adds a random matrix (largest entry {float(product.abs().max()):.3g}) "
                f"to the weight before any training, and the model's output changes at once.",
                hint="Start one of the two matrices at zero (LoRA zeroes B) so that B·A = 0.",
            )
        after = _train_a_little(A, B)
        if not bool((after != 0).any()):
            if not bool(A.any()) and not bool(B.any()):
                raise CheckFailure(
                    f"{name}: both A and B start at zero, so the adapter can never learn: the "
                    f"gradient of A is proportional to B and the gradient of B to A, both zero, "
                    f"and training leaves B·A at zero forever.",
                    hint="Only one of them may start at zero: LoRA draws A at random and sets "
                    "B = 0; then B gets a gradient at the first step, and A at the next.",
                )
            raise CheckFailure(f"{name}: a few training steps leave B·A at zero: the adapter "
                               f"does not learn.", hint="LoRA draws A at random and sets B = 0.")
        if bool(B.any()):
            raise CheckFailure(
                f"{name}: A is zero and B is random. B·A = 0 and the adapter can still learn, "
                f"but LoRA does it the other way round: A random, B = 0.",
                hint="Draw A at random and start B at zero (with B = 0 the first step only "
                "trains B, whose gradient is proportional to A: so A must not be zero).",
            )
        # The factor that starts random must have full rank r, or part of the adapter is dead.
        random_name, random_factor = "A", A
        rank = int(torch.linalg.matrix_rank(random_factor.double()))
        if rank < r:
            raise CheckFailure(
                f"{name}: {random_name} has rank {rank}, less than r = {r}: its rows or columns "
                f"are not independent, so the update B·A can never have rank above {rank} and "
                f"the rest of the adapter is wasted.",
                hint="Draw A at random (e.g. `torch.randn(r, in_features) / math.sqrt(in_features)` "
                "or nn.init.kaiming_uniform_); a constant matrix has rank 1.",
            )
    return (f"correct on {len(INIT_CASES)} layer sizes: B·A = 0 at the start, a few training "
            "steps change it, and A has full rank r.")


__all__ = [
    "check_lora_forward",
    "check_freeze_last_blocks",
    "check_training_memory",
    "check_lora_init",
    "reference_lora_forward",
    "reference_training_memory",
]
