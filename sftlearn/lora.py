"""LoRA: fine-tune a big frozen matrix by learning a small low-rank change to it.

A linear layer computes ``y = x Wᵀ + b`` with ``W`` of shape (out, in). Full fine-tuning
learns a new ``W``: out × in numbers per layer. LoRA (Hu et al., 2021) keeps ``W`` frozen and
learns two thin matrices instead,

.. math::  y = x W^\\top + b + \\frac{\\alpha}{r}\\, x A^\\top B^\\top,
           \\qquad A: (r \\times in), \\; B: (out \\times r),

so the layer behaves as if its weight were ``W + (α/r)·B·A``, a change of rank at most ``r``,
learned with only r·(in + out) numbers. Three details make it work:

- ``A`` starts random (Kaiming-uniform, like ``nn.Linear``) and ``B`` starts at zero, so
  ``B·A = 0``: the adapted model starts *exactly* equal to the pretrained one, and training
  moves away from it smoothly.
- The scale ``α/r`` keeps the size of the update about the same when you try another rank, so
  a learning rate tuned at one ``r`` still works at another.
- **Merging**: after training, ``W + (α/r)·B·A`` can be computed once and stored in ``W``.
  The merged layer is an ordinary linear layer again: no extra cost at inference.
  ``unmerge`` subtracts it back out (exact up to float rounding).

Using it on a model (parameter names follow GPT-2, as in ``sftlearn.model``)::

    names = attach_lora(model, LoRAConfig(r=8, alpha=16, target_modules=["c_attn"]))
    print(parameter_report(model))      # only the adapters are trainable now
    ... train ...
    save_adapter(model, "adapter/")     # a few kB: A and B of each layer (and any head trained)
    merge_lora(model)                   # fold the update into W for fast inference

``target_modules`` follows Hugging Face PEFT: a *list* of names matches every module whose
name is one of them or ends with ``"." + name``; a single *string* is a regular expression that
must match the whole module name. The numbers agree with PEFT's LoRA (``tests/test_lora.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import read_format_json, read_tensors, write_json, write_tensors
from .files import output_folder
from .freeze import parameter_report
from .validation import check_int

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_FORMAT = "sftlearn-lora"

__all__ = [
    "LoRAConfig",
    "LoRALinear",
    "attach_lora",
    "lora_layers",
    "merge_lora",
    "unmerge_lora",
    "unload_lora",
    "lora_state_dict",
    "trained_state_dict",
    "save_adapter",
    "load_adapter",
    "parameter_report",
]


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class LoRAConfig:
    """Which layers get an adapter, and its size.

    ``r``: the rank (width of the bottleneck). ``alpha``: the update is scaled by
    ``alpha / r``. ``dropout``: applied to the adapter's input during training only.
    ``target_modules``: a list of module names (or name endings), or one regular expression.
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = ("c_attn",)

    def __post_init__(self) -> None:
        _check_rank(self.r)
        _check_alpha(self.alpha, self.r)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, Real) or not (
            0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}.")
        # A list becomes a tuple so that the config stays hashable and immutable.
        object.__setattr__(self, "target_modules", _check_targets(self.target_modules))

    @property
    def scaling(self) -> float:
        return self.alpha / self.r


def _check_rank(r: object) -> None:
    check_int("LoRA rank r", r, fix="Typical values are 4, 8 or 16.")


def _check_alpha(alpha: object, r: int) -> None:
    # math.inf is refused too: a scale alpha / r of inf turns every output into NaN.
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha < math.inf:
        raise ValueError(
            f"LoRA alpha must be a positive, finite number, got {alpha!r}; a common choice is "
            f"alpha = 2 * r (here {2 * r})."
        )


def _check_targets(targets: object) -> str | tuple[str, ...]:
    if isinstance(targets, str):
        try:
            re.compile(targets)
        except re.error as err:
            raise ValueError(
                f"target_modules {targets!r} is a string, so it is read as a regular expression, "
                f"but it is not a valid one ({err}). Pass a list of names, e.g. ['c_attn']."
            ) from None
        return targets
    if isinstance(targets, (list, tuple)) and targets and all(
        isinstance(t, str) and t for t in targets
    ):
        return tuple(targets)
    raise TypeError(
        f"target_modules must be a non-empty list of module names (e.g. ['c_attn', 'c_proj']) "
        f"or one regular expression string, got {targets!r}."
    )


def matches_target(name: str, targets: str | tuple[str, ...]) -> bool:
    """Does the module called ``name`` match ``targets`` (PEFT's rule, see the module doc)?"""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


# ------------------------------------------------------------------------------ layer
class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) · B · A``.

    The layer keeps the original ``weight`` and ``bias`` parameters (the same tensors, not
    copies), so their names in the state dict do not change; the adapter adds ``lora_A``
    (r, in) and ``lora_B`` (out, r).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(
                f"LoRALinear wraps an nn.Linear, got {type(base).__name__}. LoRA here adapts "
                f"linear layers only; pick targets such as 'c_attn', 'c_proj' or 'c_fc'."
            )
        _check_rank(r)
        _check_alpha(alpha, r)
        largest = min(base.in_features, base.out_features)
        if r > largest:
            raise ValueError(
                f"LoRA rank r={r} is larger than this layer allows: a {base.out_features}x"
                f"{base.in_features} matrix has rank at most {largest}, so B·A could never use "
                f"the extra width. Choose r <= {largest} (LoRA ranks are usually much smaller)."
            )
        self.in_features, self.out_features = base.in_features, base.out_features
        self.r, self.alpha = r, float(alpha)
        self.scaling = self.alpha / r
        # Registering the base layer's own Parameters keeps weight tying and names intact.
        self.weight = base.weight
        self.register_parameter("bias", base.bias)
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        factory = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, **factory))
        # a=sqrt(5) is nn.Linear's own default init: uniform in ±1/sqrt(in_features).
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update this adapter adds to ``weight``: (alpha / r) · B · A, shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        out = F.linear(x, self.weight, self.bias)  # (..., out)
        if self.merged:  # the update already lives inside weight
            return out
        down = self.lora_dropout(x) @ self.lora_A.T  # (..., r): the narrow bottleneck
        return out + self.scaling * (down @ self.lora_B.T)  # (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into ``weight``; the layer then costs what a plain linear layer does."""
        if self.merged:
            raise ValueError(
                "This LoRA layer is already merged; merging again would add the update twice. "
                "Call unmerge() first if you want to merge a changed adapter."
            )
        self.weight += self.delta_weight()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from ``weight`` again, restoring the separate adapter."""
        if not self.merged:
            raise ValueError("This LoRA layer is not merged, so there is nothing to unmerge.")
        self.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"alpha={self.alpha:g}, merged={self.merged}")


# ------------------------------------------------------------------------- attaching
def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRA layer in ``model``, by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def attach_lora(model: nn.Module, config: LoRAConfig | None = None, **overrides) -> list[str]:
    """Wrap every linear layer that ``config.target_modules`` names in a ``LoRALinear``.

    Afterwards only the adapters are trainable: every other parameter gets
    ``requires_grad=False`` (use ``sftlearn.freeze`` to train a head as well).
    Keyword overrides build the config in place: ``attach_lora(model, r=4, alpha=8)``.
    Returns the names of the wrapped modules. The model is changed in place.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"attach_lora needs a torch nn.Module, got {type(model).__name__}.")
    if config is None:
        config = LoRAConfig(**overrides)
    elif overrides:
        raise TypeError(
            f"Pass either a LoRAConfig or keyword settings {sorted(overrides)}, not both; "
            f"e.g. attach_lora(model, LoRAConfig(r=4, alpha=8))."
        )
    if not isinstance(config, LoRAConfig):
        raise TypeError(f"config must be a LoRAConfig, got {type(config).__name__}.")
    names = [n for n, _ in model.named_modules() if n and matches_target(n, config.target_modules)]
    if not names:
        raise ValueError(
            f"target_modules={config.target_modules!r} matches no module of this model. "
            f"Its linear layers are called {_linear_suffixes(model)}; a list matches names or "
            f"name endings (['c_attn']), a string must match a whole name as a regex "
            f"(r'.*\\.h\\.[01]\\.attn\\.c_attn')."
        )
    for name in names:  # every check before the first change: a refused call changes nothing
        _check_wrappable(model, name, config.r)
    for p in model.parameters():
        p.requires_grad_(False)
    _wrap(model, {name: (config.r, config.alpha, config.dropout) for name in names})
    for layer in lora_layers(model).values():  # adapters attached earlier stay trainable too
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    return names


def _check_wrappable(model: nn.Module, name: str, r: int) -> None:
    module = model.get_submodule(name)
    if isinstance(module, LoRALinear):
        raise ValueError(
            f"{name} already has a LoRA adapter. Remove it first with unload_lora(model) or "
            f"choose target_modules that leave it out."
        )
    if not isinstance(module, nn.Linear):
        raise TypeError(
            f"target {name!r} is a {type(module).__name__}, not a linear layer; LoRA here adapts "
            f"nn.Linear only. Name the linear layers inside it instead, e.g. "
            f"{_linear_suffixes(module) or _linear_suffixes(model)}."
        )
    largest = min(module.in_features, module.out_features)
    if r > largest:
        raise ValueError(
            f"LoRA rank r={r} is too large for {name} ({module.out_features}x"
            f"{module.in_features}, rank at most {largest}). Choose r <= {largest}."
        )


def _wrap(model: nn.Module, settings: dict[str, tuple[int, float, float]]) -> None:
    """Replace each named linear layer by a LoRALinear with the given (r, alpha, dropout)."""
    for name, (r, alpha, dropout) in settings.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = getattr(parent, child)
        # the new layer takes the mode of the one it replaces: a model in eval mode keeps its
        # dropout off (a fresh nn.Module would start in training mode)
        setattr(parent, child, LoRALinear(old, r, alpha, dropout).train(old.training))


def _linear_suffixes(model: nn.Module) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                   if n and isinstance(m, (nn.Linear, LoRALinear))})


def _require_lora(model: nn.Module, action: str) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"The model has no LoRA layers to {action}; call attach_lora first.")
    return layers


# ---------------------------------------------------------------------------- merging
def merge_lora(model: nn.Module) -> None:
    """Merge every adapter into its weight (see ``LoRALinear.merge``)."""
    layers = _require_lora(model, "merge")
    already = [name for name, layer in layers.items() if layer.merged]
    if already:
        raise ValueError(
            f"LoRA layers {already[:3]} are already merged; merging twice would add the update "
            f"twice. Call unmerge_lora(model) first."
        )
    _check_untied(model, layers)
    for layer in layers.values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every merged adapter back out of its weight."""
    layers = _require_lora(model, "unmerge")
    not_merged = [name for name, layer in layers.items() if not layer.merged]
    if not_merged:
        raise ValueError(
            f"LoRA layers {not_merged[:3]} are not merged, so there is nothing to unmerge."
        )
    for layer in layers.values():
        layer.unmerge()


def _check_untied(model: nn.Module, layers: dict[str, LoRALinear]) -> None:
    """Refuse to merge into a weight that another layer shares (weight tying): the update
    would leak into that layer too, e.g. from ``lm_head`` into the token embedding."""
    owners: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        owners.setdefault(id(tensor), []).append(name)
    for name, layer in layers.items():
        others = [n for n in owners[id(layer.weight)] if n != f"{name}.weight"]
        if others:
            raise ValueError(
                f"Cannot merge {name}: its weight is shared with {others[0]} (weight tying), so "
                f"merging would change that layer too. Keep this adapter unmerged, or leave the "
                f"tied layer out of target_modules."
            )


def unload_lora(model: nn.Module, merge: bool = True) -> None:
    """Turn every LoRA layer back into a plain ``nn.Linear``.

    ``merge=True`` keeps what the adapter learned (the update is merged in first, unless it
    already is); ``merge=False`` throws the adapter away and restores the original weight.
    Parameters stay frozen as they were: unfreeze them if you want to train on.
    """
    layers = _require_lora(model, "unload")
    if merge:
        pending = {name: layer for name, layer in layers.items() if not layer.merged}
        _check_untied(model, pending)
        for layer in pending.values():
            layer.merge()
    else:
        for layer in layers.values():
            if layer.merged:
                layer.unmerge()
    for name, layer in layers.items():
        linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                           device="meta")  # no memory: its tensors are replaced just below
        linear.weight = layer.weight
        linear.bias = layer.bias
        linear.train(layer.training)  # a fresh module is in training mode; keep the layer's mode
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, linear)


# ------------------------------------------------------------------------ save / load
def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors: ``{"<module>.lora_A": (r, in), "<module>.lora_B": (out, r)}``."""
    tensors = {}
    for name, layer in _require_lora(model, "save").items():
        tensors[f"{name}.lora_A"] = layer.lora_A.detach().cpu().contiguous()
        tensors[f"{name}.lora_B"] = layer.lora_B.detach().cpu().contiguous()
    return tensors


def trained_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters that are not adapters: a task head, embeddings trained beside
    the adapters (``freeze_all_but(model, head=True)``). Hugging Face PEFT calls the modules
    they belong to ``modules_to_save``. Tied weights appear once, under their first name."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters()
            if p.requires_grad and not name.endswith((".lora_A", ".lora_B"))}


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Save what training changed into the folder ``path``: a safetensors file of the A and B
    matrices, plus every other parameter left trainable (a task head, trained embeddings),
    and a small JSON with each layer's rank, alpha and shape. The frozen base is not saved:
    ``load_adapter`` puts the adapter back on a copy of the same base model."""
    path = output_folder(path, "Give save_adapter a folder to save into.")
    tensors = lora_state_dict(model)
    trained = trained_state_dict(model)
    layers = lora_layers(model)
    merged = [n for n, l in layers.items() if l.merged and l.weight.requires_grad]
    if merged:
        # such a weight holds the adapter's update as well: loading would apply it twice
        raise ValueError(f"{merged[0]} is merged and its weight is trainable, so its saved "
                         f"weight would hold the update twice. Call unmerge_lora(model) first.")
    meta = {
        "format": ADAPTER_FORMAT,
        "target_modules": sorted(layers),
        "layers": {
            name: {"r": l.r, "alpha": l.alpha, "dropout": _dropout_p(l),
                   "in_features": l.in_features, "out_features": l.out_features}
            for name, l in layers.items()
        },
        "trained": {name: list(t.shape) for name, t in trained.items()},
    }
    meta["weights_digest"] = write_tensors({**tensors, **trained}, path / ADAPTER_FILE)
    write_json(path / ADAPTER_CONFIG_FILE, meta)  # last, vouching for the tensors (see checkpoint)
    return path


def load_adapter(model: nn.Module, path: str | Path) -> list[str]:
    """Load an adapter saved by ``save_adapter`` into ``model``.

    A model without LoRA layers gets them attached first (only the saved layers, with the
    saved rank and alpha), and the parameters trained beside them (a head, embeddings) are
    trainable again, as they were when saved. A model that already has LoRA layers must have
    exactly the saved ones, with the same ranks. Shapes must match. Returns the adapted
    module names.
    """
    path = Path(path)
    meta = _read_adapter_config(path)
    saved = meta["layers"]
    trained = meta.get("trained", {})  # adapters saved before trained parameters were kept
    _check_adapter_fits(model, saved, trained, path)
    # Read and check the tensors before touching the model: a refused load changes nothing.
    tensors = read_tensors(path / ADAPTER_FILE, "adapter",
                           "Save the adapter again with sftlearn.lora.save_adapter.",
                           meta.get("weights_digest"), path / ADAPTER_CONFIG_FILE)
    expected = {f"{n}.lora_{ab}" for n in saved for ab in "AB"} | set(trained)
    if set(tensors) != expected:
        raise ValueError(
            f"{path / ADAPTER_FILE} does not hold the tensors its {ADAPTER_CONFIG_FILE} lists "
            f"(missing {sorted(expected - set(tensors))[:3]}, unexpected "
            f"{sorted(set(tensors) - expected)[:3]}). Save the adapter again with save_adapter."
        )
    wrong = [f"{n}.lora_{ab}" for n, s in saved.items() for ab, shape in
             (("A", (s["r"], s["in_features"])), ("B", (s["out_features"], s["r"])))
             if tuple(tensors[f"{n}.lora_{ab}"].shape) != shape]
    wrong += [n for n, shape in trained.items() if list(tensors[n].shape) != shape]
    if wrong:
        raise ValueError(f"{path / ADAPTER_FILE} has tensors whose shapes disagree with its "
                         f"{ADAPTER_CONFIG_FILE} ({wrong[:3]}). Save the adapter again.")
    if not lora_layers(model):
        for p in model.parameters():
            p.requires_grad_(False)
        _wrap(model, {n: (s["r"], s["alpha"], s["dropout"]) for n, s in saved.items()})
        for name in trained:
            model.get_parameter(name).requires_grad_(True)
    layers = lora_layers(model)
    with torch.no_grad():
        for name, layer in layers.items():
            layer.lora_A.copy_(tensors[f"{name}.lora_A"])
            layer.lora_B.copy_(tensors[f"{name}.lora_B"])
        for name in trained:
            model.get_parameter(name).copy_(tensors[name])
    return sorted(layers)


def _read_adapter_config(path: Path) -> dict:
    return read_format_json(path, ADAPTER_CONFIG_FILE, ADAPTER_FORMAT, "adapter",
                            "sftlearn.lora.save_adapter(model, path)")


def _check_adapter_fits(model: nn.Module, saved: dict, trained: dict, path: Path) -> None:
    """Raise one readable error listing every way the saved adapter does not fit ``model``."""
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    current = lora_layers(model)
    problems = []
    if current and set(current) != set(saved):
        problems.append(
            f"the model has LoRA on {sorted(set(current) - set(saved))[:3]} and the adapter on "
            f"{sorted(set(saved) - set(current))[:3]}"
        )
    for name, s in saved.items():
        module = modules.get(name)
        if module is None:
            problems.append(f"the adapter targets {name}, which this model does not have")
        elif not isinstance(module, (nn.Linear, LoRALinear)):
            problems.append(f"{name} is a {type(module).__name__} here, not a linear layer")
        elif (module.out_features, module.in_features) != (s["out_features"], s["in_features"]):
            problems.append(
                f"{name} is {module.out_features}x{module.in_features} here but "
                f"{s['out_features']}x{s['in_features']} in the adapter"
            )
        elif isinstance(module, LoRALinear) and module.r != s["r"]:
            problems.append(f"{name} has rank {module.r} here but {s['r']} in the adapter")
        elif isinstance(module, LoRALinear) and module.alpha != s["alpha"]:
            # the update is scaled by alpha / r: another alpha would give other outputs
            problems.append(f"{name} has alpha {module.alpha} here but {s['alpha']} in the "
                            f"adapter")
        elif isinstance(module, LoRALinear) and module.merged:
            problems.append(f"{name} is merged; call unmerge_lora(model) before loading")
    for name, shape in trained.items():
        if name not in parameters:
            problems.append(f"the adapter holds a trained {name}, which this model does not "
                            f"have")
        elif list(parameters[name].shape) != shape:
            problems.append(f"{name} is {list(parameters[name].shape)} here but {shape} in the "
                            f"adapter")
    if problems:
        raise ValueError(
            f"The adapter in {path} does not fit this model: {'; '.join(problems[:4])}. Load it "
            f"into the same base model it was trained on (same config), without other adapters."
        )


def _dropout_p(layer: LoRALinear) -> float:
    return layer.lora_dropout.p if isinstance(layer.lora_dropout, nn.Dropout) else 0.0
