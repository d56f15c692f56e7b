"""Export a GPT to the Hugging Face GPT-2 format, and import one back.

sftlearn's GPT *is* GPT-2's architecture (pre-LayerNorm blocks, learned positions, tanh GELU,
tied input and output embeddings) and uses GPT-2's parameter names, so a model converts to a
folder that ``transformers.GPT2LMHeadModel.from_pretrained`` opens, with no custom code::

    from sftlearn.export import to_transformers, from_transformers
    to_transformers(model, tokenizer, "exported/")
    hf_model = transformers.GPT2LMHeadModel.from_pretrained("exported/")   # same logits
    model_again = from_transformers("exported/")                           # same weights

The folder holds three files:

- ``config.json``: a ``GPT2Config`` (``model_type: "gpt2"``), plus an ``"sftlearn"`` entry with
  our ``GPTConfig`` so that importing restores what GPT-2's format has no field for.
- ``model.safetensors``: the weights, under Hugging Face's names.
- ``sftlearn_tokenizer.json``: our tokenizer. ``transformers`` cannot read it; it is not called
  ``tokenizer.json`` because ``AutoTokenizer`` would try to read a file of that name as its own
  format and fail with an obscure error. Load it with :func:`load_exported_tokenizer`.

How the numbers are stored differently:

1. **Transposed linear weights.** GPT-2's code (and so Hugging Face's) uses a ``Conv1D`` layer
   that computes ``x @ W + b`` with ``W`` of shape (in, out); ``nn.Linear`` computes
   ``x @ W.T + b`` with ``W`` of shape (out, in). The four projections in each block
   (``c_attn``, ``attn.c_proj``, ``c_fc``, ``mlp.c_proj``) are transposed on the way out and back.
2. **The activation.** Both use GELU's tanh approximation. GPT-2's ``"gelu_new"`` writes the
   formula out in Python, which rounds slightly differently from the fused kernel we call;
   ``"gelu_pytorch_tanh"`` calls the very same ``F.gelu(x, approximate="tanh")``, so the export
   names that one and the logits agree to float rounding.
3. **Biases.** GPT-2 always has biases. A model built with ``bias=False`` is exported with
   zero biases, which compute exactly the same thing, and imported back without them.
4. **Positions under left padding.** Our GPT numbers positions from each row's first real
   token; Hugging Face's GPT-2 counts from the first column, padding included. For
   left-padded batches pass ``position_ids=model.position_ids(input_ids, attention_mask)``
   to the exported model, or its logits differ from ours.

What GPT-2's format cannot hold is refused with a ``ValueError`` that says what to change: an
output layer that is not tied to the token embedding, LoRA adapters that are not merged yet, or
any parameter a plain GPT does not have.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .checkpoint import (CONFIG_FILE, MODEL_FILE, check_tied, check_tokenizer_fits, read_json,
                         store_tokenizer, write_json)
from .files import atomic_write, output_folder
from .config import GPTConfig
from .model import GPT

TOKENIZER_FILE = "sftlearn_tokenizer.json"
ACTIVATION = "gelu_pytorch_tanh"  # the HF name for torch's own tanh-GELU kernel
# GPT-2's own name for the same function; imported models that use it differ in the last bits.
SAME_ACTIVATION = (ACTIVATION, "gelu_new")
LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, and GPT-2's
# Weights stored as Conv1D (in, out) by GPT-2, as nn.Linear (out, in) by us.
CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                   "mlp.c_proj.weight")
# Layers that have a bias in GPT-2 (our bias=False models have none).
BIASED_LAYERS = ("ln_1", "ln_2", "ln_f", "c_attn", "c_proj", "c_fc")
# Old Hugging Face checkpoints also stored the causal mask as a buffer; it is not a weight.
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


# ------------------------------------------------------------------------------ export
def to_transformers(model: GPT, tokenizer, path: str | Path) -> Path:
    """Write ``model`` (and ``tokenizer``, unless None) as a Hugging Face GPT-2 folder."""
    _check_is_gpt(model)
    _check_exportable(model)
    check_tokenizer_fits(model.config, tokenizer)
    path = output_folder(path, "Give to_transformers a folder to write into.")
    path.mkdir(parents=True, exist_ok=True)

    tensors = _gpt2_tensors(model)
    dtype = str(model.transformer.wte.weight.dtype).removeprefix("torch.")
    # Hugging Face refuses safetensors files whose metadata does not say they hold torch tensors.
    atomic_write(path / MODEL_FILE, lambda tmp: save_file(tensors, str(tmp), {"format": "pt"}))
    write_json(path / CONFIG_FILE, gpt2_config_dict(model.config, dtype))
    store_tokenizer(path / TOKENIZER_FILE, tokenizer)
    return path


def gpt2_config_dict(config: GPTConfig, dtype: str = "float32") -> dict:
    """The ``config.json`` of a GPT-2 model with ``config``'s shape."""
    special = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fixed in sftlearn
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,  # None = 4 * n_embd, as in our MLP
        "activation_function": ACTIVATION,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "scale_attn_weights": True,  # divide scores by sqrt(head_dim), as we do
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "dtype": dtype,
        **{k: v for k, v in special.items() if v < config.vocab_size},
        "sftlearn": config.to_dict(),
    }


def _gpt2_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """``model``'s weights under GPT-2's names and layout (``_check_exportable`` has passed)."""
    expected = _plain_gpt_names(model.config)
    ours = model.state_dict()
    tensors = {}
    for name in expected:
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight: stored once, like Hugging Face does
        tensor = ours[name].detach().cpu()
        if name.endswith(CONV1D_SUFFIXES):
            tensor = tensor.t()  # (out, in) -> Conv1D's (in, out)
        tensors[name] = tensor.contiguous()
        bias_name = name.removesuffix(".weight") + ".bias"
        if _has_gpt2_bias(name) and bias_name not in expected:
            # bias=False: a zero bias adds nothing, so the function is exactly the same.
            out_features = ours[name].shape[0]  # LayerNorm: C; Linear (out, in): out
            tensors[bias_name] = torch.zeros(out_features, dtype=tensor.dtype)
    return tensors


def _has_gpt2_bias(weight_name: str) -> bool:
    parts = weight_name.split(".")
    return len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in BIASED_LAYERS


def _plain_gpt_names(config: GPTConfig) -> dict[str, torch.Size]:
    """Parameter names and shapes of a plain GPT with ``config`` (built on the meta device:
    shapes only, no memory, no time)."""
    with torch.device("meta"):
        reference = GPT(config)
    return {name: t.shape for name, t in reference.state_dict().items()}


# Objects that hold a GPT under an attribute: torch.compile, DistributedDataParallel, task heads.
WRAPPER_ATTRIBUTES = ("_orig_mod", "module", "body")


def _check_is_gpt(model) -> None:
    if isinstance(model, GPT):
        return
    for attribute in WRAPPER_ATTRIBUTES:
        if isinstance(getattr(model, attribute, None), GPT):
            raise TypeError(
                f"to_transformers exports a sftlearn GPT, got a {type(model).__name__} wrapped "
                f"around one. Export the GPT inside it: to_transformers(model.{attribute}, ...) "
                f"(a classification head has no GPT-2 equivalent and is left out)."
            )
    raise TypeError(
        f"to_transformers exports a sftlearn GPT, got {type(model).__name__}. Build one with "
        f"GPT(config) or load it with sftlearn.checkpoint.load_model."
    )


def _check_exportable(model: GPT) -> None:
    """Raise a ValueError for anything in ``model`` that GPT-2's format cannot express."""
    check_tied(model, "exporting")
    from .lora import lora_layers  # here, not at the top: lora imports this package's modules

    unmerged = sorted(name for name, layer in lora_layers(model).items() if not layer.merged)
    if unmerged:
        raise ValueError(
            f"LoRA adapters on {unmerged[:3]}{' ...' if len(unmerged) > 3 else ''} are not "
            f"merged, and GPT-2's format has no place for them. Fold them into the weights "
            f"first with sftlearn.lora.merge_lora(model) (or unload_lora(model) to turn them "
            f"back into plain layers), then export."
        )
    expected = _plain_gpt_names(model.config)
    ours = model.state_dict()
    merged_lora = {f"{name}.{part}" for name in lora_layers(model) for part in ("lora_A", "lora_B")}
    extra = sorted(set(ours) - set(expected) - merged_lora)
    missing = sorted(set(expected) - set(ours))
    wrong = sorted(n for n in expected if n in ours and ours[n].shape != expected[n])
    if extra or missing or wrong:
        problems = "; ".join(part for part in (
            f"parameters a GPT does not have: {extra[:4]}" if extra else "",
            f"missing parameters: {missing[:4]}" if missing else "",
            f"shapes that do not match model.config: {wrong[:4]}" if wrong else "",
        ) if part)
        raise ValueError(
            f"This model is not a plain GPT of its config, so GPT-2's format cannot express it "
            f"({problems}). Export the plain GPT (merge or remove added layers), or rebuild it "
            f"with a GPTConfig that matches its weights."
        )


# ------------------------------------------------------------------------------ import
def from_transformers(path: str | Path, device: str | torch.device = "cpu") -> GPT:
    """Load a GPT-2 folder (written by ``to_transformers`` or by ``save_pretrained``), in
    evaluation mode like ``load_model`` (and like ``from_pretrained``)."""
    path = Path(path)
    config_file, weights_file = path / CONFIG_FILE, path / MODEL_FILE
    for file in (config_file, weights_file):
        if not file.is_file():
            raise FileNotFoundError(
                f"No {file.name} in {path}. from_transformers reads a folder written by "
                f"to_transformers or by a Hugging Face model's save_pretrained "
                f"(safe_serialization, one weights file)."
            )
    hf = read_json(config_file)
    tensors = {_strip_prefix(n): t for n, t in load_file(str(weights_file)).items()
               if not n.endswith(IGNORED_SUFFIXES)}
    config = config_from_gpt2(hf, tensors)
    state = _our_state_dict(tensors, config)
    model = GPT(config)
    model.load_state_dict(state, strict=False)  # strict=False only for the tied lm_head
    return model.to(device).eval()


def config_from_gpt2(hf: dict, tensors: dict[str, torch.Tensor] | None = None) -> GPTConfig:
    """The ``GPTConfig`` matching a GPT-2 ``config.json`` (refusing options we do not have)."""
    if hf.get("model_type") != "gpt2":
        raise ValueError(
            f"config.json has model_type {hf.get('model_type')!r}; from_transformers reads "
            f"GPT-2 models only (model_type 'gpt2')."
        )
    shape_keys = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
    absent = [k for k in shape_keys if k not in hf]
    if absent:
        raise ValueError(
            f"config.json lacks {absent}, which fix the model's shape. Write the folder with "
            f"to_transformers or with a Hugging Face model's save_pretrained."
        )
    unsupported = []
    if hf.get("activation_function", "gelu_new") not in SAME_ACTIVATION:
        unsupported.append(f"activation_function={hf['activation_function']!r} "
                           f"(we use tanh GELU: {' or '.join(SAME_ACTIVATION)})")
    n_inner = hf.get("n_inner")
    if n_inner not in (None, 4 * hf["n_embd"]):
        unsupported.append(f"n_inner={n_inner} (we use 4 * n_embd = {4 * hf['n_embd']})")
    if abs(hf.get("layer_norm_epsilon", LAYER_NORM_EPS) - LAYER_NORM_EPS) > 1e-12:
        unsupported.append(f"layer_norm_epsilon={hf['layer_norm_epsilon']} (we use 1e-5)")
    if not hf.get("scale_attn_weights", True):
        unsupported.append("scale_attn_weights=false (we always divide by sqrt(head_dim))")
    if hf.get("scale_attn_by_inverse_layer_idx", False):
        unsupported.append("scale_attn_by_inverse_layer_idx=true")
    if hf.get("add_cross_attention", False):
        unsupported.append("add_cross_attention=true (ours is a decoder-only model)")
    dropouts = {hf.get(k, 0.1) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len(dropouts) > 1:
        unsupported.append(f"different dropout rates {sorted(dropouts)} (we use one rate)")
    if unsupported:
        raise ValueError(
            f"This GPT-2 variant has settings sftlearn's GPT cannot reproduce: "
            f"{'; '.join(unsupported)}. Only standard GPT-2 models can be imported."
        )
    hint = hf.get("sftlearn") or {}
    # bias=False survives the trip only while every bias is still zero (nothing trained them).
    biases = [t for n, t in (tensors or {}).items() if n.endswith(".bias")]
    no_bias = hint.get("bias") is False and all(not t.any() for t in biases)
    return GPTConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["n_positions"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        dropout=float(dropouts.pop()),
        bias=not no_bias,
        attention=hint.get("attention", "fused"),
    )


def _strip_prefix(name: str) -> str:
    # save_pretrained of GPT2LMHeadModel writes "transformer.h.0..."; OpenAI's original GPT-2
    # weights on the Hub were saved from the bare GPT2Model and lack the prefix.
    if name.startswith("transformer.") or name == "lm_head.weight":
        return name
    return "transformer." + name


def _our_state_dict(tensors: dict[str, torch.Tensor], config: GPTConfig) -> dict:
    expected = _plain_gpt_names(config)
    if "lm_head.weight" in tensors:
        if not torch.equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"]):
            raise ValueError(
                "This model's output layer (lm_head) differs from its token embedding "
                "(tie_word_embeddings is off), but sftlearn's GPT ties the two. Only models "
                "with tied embeddings can be imported."
            )
        del tensors["lm_head.weight"]
    state = {}
    for name, tensor in tensors.items():
        if name.endswith(".bias") and name not in expected and not config.bias:
            continue  # the zero biases of a bias=False model
        state[name] = tensor.t() if name.endswith(CONV1D_SUFFIXES) else tensor  # -> (out, in)
    wanted = set(expected) - {"lm_head.weight"}
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - wanted)
    wrong = sorted(f"{n}: {tuple(state[n].shape)} vs {tuple(expected[n])}"
                   for n in wanted & set(state) if state[n].shape != expected[n])
    if missing or unexpected or wrong:
        raise ValueError(
            f"The weights do not match the GPT-2 config next to them (missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}, shapes {wrong[:4]}). Re-export the model, or check "
            f"that config.json and model.safetensors come from the same model."
        )
    return state


def load_exported_tokenizer(path: str | Path):
    """The sftlearn tokenizer saved next to an exported model, or None if there is none."""
    file = Path(path) / TOKENIZER_FILE
    if not file.exists():
        return None
    from .tokenizer import load_tokenizer

    return load_tokenizer(file)
