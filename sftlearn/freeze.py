"""Freezing: choose which parameters fine-tuning may change.

A parameter with ``requires_grad=False`` gets no gradient, so the optimizer never moves it:
it is *frozen*. Freezing most of a pretrained model is the oldest way to fine-tune cheaply:
fewer gradients to compute and store, fewer optimizer states (AdamW keeps two numbers per
trainable parameter), and less room to forget what pretraining taught.

- :func:`freeze` / :func:`unfreeze`: every parameter of a module;
- :func:`freeze_all_but`: freeze a GPT (or a task head built on one) except its last ``k``
  blocks, its output head and/or its LayerNorms. LoRA adapters always stay trainable;
- :func:`parameter_report`: how many parameters are trainable, in total and per part.

Parameters shared by two layers count once. In the course's GPT the output layer ``lm_head``
*is* the token embedding matrix (weight tying), so training the head trains the embedding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

HEAD_NAMES = ("lm_head", "score")  # output layer of a GPT / of a task head (sftlearn.heads)
_BLOCK_LIST = re.compile(r"(^|.*\.)transformer\.h$")  # GPT-2 layout: transformer.h.0, .1, ...

__all__ = ["ParameterReport", "parameter_report", "freeze", "unfreeze", "freeze_all_but"]


# ------------------------------------------------------------------------------ report
@dataclass
class ParameterReport:
    """Trainable and total parameter counts, overall and per group (block, embedding, ...)."""

    trainable: int
    total: int
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (trainable, total)

    @property
    def fraction(self) -> float:
        """Share of the parameters that are trainable (0 to 1)."""
        return self.trainable / self.total if self.total else 0.0

    def summary(self) -> str:
        return (f"trainable parameters: {self.trainable:,} of {self.total:,} "
                f"({100 * self.fraction:.2f}%)")

    def __str__(self) -> str:
        width = max([len(g) for g in self.groups] + [5])
        lines = [f"{'group':<{width}}  {'trainable':>11}  {'total':>11}"]
        lines += [f"{g:<{width}}  {t:>11,}  {n:>11,}" for g, (t, n) in self.groups.items()]
        return "\n".join(lines + [self.summary()])


def parameter_report(model: nn.Module) -> ParameterReport:
    """Count ``model``'s trainable and total parameters, grouped by where they live.

    The group of a parameter is its module path up to the block number when there is one
    (``transformer.h.3``), else its module (``transformer.wte``, ``score``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"parameter_report needs a torch nn.Module, got {type(model).__name__}.")
    groups: dict[str, list[int]] = {}
    for name, p in model.named_parameters():  # yields each shared tensor once
        counts = groups.setdefault(_group_of(name), [0, 0])
        counts[0] += p.numel() if p.requires_grad else 0
        counts[1] += p.numel()
    trainable = sum(t for t, _ in groups.values())
    total = sum(n for _, n in groups.values())
    return ParameterReport(trainable, total, {g: (t, n) for g, (t, n) in groups.items()})


def _group_of(name: str) -> str:
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or name


# ----------------------------------------------------------------------------- freezing
def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns it."""
    _check_module(module)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=True`` on every parameter of ``module``; returns it."""
    _check_module(module)
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def freeze_all_but(
    model: nn.Module, last_blocks: int = 0, head: bool = False, norms: bool = False
) -> ParameterReport:
    """Freeze everything except the last ``last_blocks`` Transformer blocks, the model's
    output layer (``head=True``: ``lm_head`` of a GPT, ``score`` of a task head) and every
    LayerNorm (``norms=True``).

    LoRA adapters (``sftlearn.lora``) stay trainable, so "LoRA plus a trainable head" is
    ``attach_lora(model, ...)`` followed by ``freeze_all_but(model, head=True)``.
    Works on a ``GPT`` and on the task heads in ``sftlearn.heads``. Returns the new
    ``parameter_report``.
    """
    _check_module(model)
    blocks = _transformer_blocks(model)
    n = len(blocks)
    if isinstance(last_blocks, bool) or not isinstance(last_blocks, int) or not (
        0 <= last_blocks <= n
    ):
        raise ValueError(
            f"last_blocks must be an int from 0 to {n} (this model has {n} blocks), got "
            f"{last_blocks!r}."
        )
    adapters = _adapter_parameters(model)
    if not (last_blocks or head or norms or adapters):
        raise ValueError(
            "Nothing would be left to train: pass last_blocks > 0, head=True or norms=True "
            "(or attach LoRA adapters first)."
        )
    # Only the model's own output layer: a classifier's body also has an lm_head, unused.
    heads = [getattr(model, n) for n in HEAD_NAMES
             if isinstance(getattr(model, n, None), nn.Module)]
    if head and not heads:
        raise ValueError(
            f"head=True, but the model has no output layer called one of {HEAD_NAMES}; "
            f"unfreeze your head module yourself with sftlearn.freeze.unfreeze(model.<head>)."
        )
    freeze(model)
    chosen: list[nn.Module] = list(blocks[n - last_blocks:]) if last_blocks else []
    if head:
        chosen += heads
    if norms:
        chosen += [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    for module in chosen:
        unfreeze(module)
    # Adapters exist only to be trained; freeze(model) above switched them off too.
    for p in adapters:
        p.requires_grad_(True)
    return parameter_report(model)


def _transformer_blocks(model: nn.Module) -> nn.ModuleList:
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and _BLOCK_LIST.match(name):
            return module
    raise ValueError(
        f"freeze_all_but works on the course's GPT layout (blocks in transformer.h), and "
        f"this {type(model).__name__} has no transformer.h. Use freeze()/unfreeze() on the "
        f"parts you want instead."
    )


def _adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    from .lora import LoRALinear  # imported here: sftlearn.lora itself imports this module

    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


def _check_module(module: object) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch nn.Module, got {type(module).__name__}.")
