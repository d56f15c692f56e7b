"""Saving and loading models and training state, safely.

Two rules:

1. **Atomic writes** (``sftlearn.files``). A file is written under a temporary name and then
   renamed over the final name (``os.replace`` is atomic on one file system). A crash
   mid-write leaves the old file intact, never a half-written one. A training checkpoint is a
   folder; the folder is written in full under a temporary name, renamed, and only then does
   ``latest.json`` point at it.
2. **No code on load.** Weights are stored as safetensors (plain tensors, nothing executable);
   the optimizer's state uses ``torch.load(weights_only=True)``, which refuses pickled objects
   that could run code.

Layout of a saved model folder::

    config.json         {"model": GPTConfig fields, "format": "sftlearn-gpt", "weights_digest"},
                        and for a model with a task head (``sftlearn.heads``) also
                        {"head": {kind, num_labels, dropout}}
    model.safetensors   the weights (the tied output matrix is stored once, as the embedding)
    tokenizer.json      optional: the tokenizer the model was trained with

A folder of several files cannot be replaced in one step the way a single file can, so
``save_model`` writes ``config.json`` last and puts in it the digest of the weights it has
just written (the same digest is in the weights file's header). A save interrupted between
the two files leaves a folder whose config and weights disagree, and ``load_model`` says so
instead of loading a mixture. LoRA adapters (``sftlearn.lora``) use the same rule.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import GPTConfig
from .files import atomic_write, atomic_write_dir

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
STATE_FILE = "trainer_state.pt"
LATEST_FILE = "latest.json"
FORMAT = "sftlearn-gpt"
DIGEST_KEY = "sftlearn_digest"  # the name of the digest in a safetensors file's header


# --------------------------------------------------------------------- JSON files
def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}): the file is damaged or was not written by "
            f"sftlearn. Restore it from a good copy, or save the model or checkpoint again."
        ) from None


# --------------------------------------------------------------------- model weights
def _tied_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that share storage with an earlier parameter (e.g. lm_head)."""
    seen, tied = {}, set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel():
            tied.add(name)
        seen.setdefault(key, name)
    return tied


def save_weights(model: torch.nn.Module, path: str | Path) -> str:
    """Write the model's weights as safetensors, storing tied tensors once; returns their
    digest (``tensors_digest``), which is also in the file's header.

    A model with LoRA adapters is saved with them (a training checkpoint), but not while they
    are merged: the base weights would then hold the update as well as the adapter, and a
    model loaded from them would apply it twice."""
    from .lora import lora_layers  # lora imports this module

    if any(layer.merged for layer in lora_layers(model).values()):
        raise ValueError(
            "The model's LoRA adapters are merged into its weights, so saving both would apply "
            "the update twice on loading. Call unload_lora(model) to keep the merged weights "
            "alone (a plain model), unmerge_lora(model) to keep base and adapter apart, or "
            "save_adapter(model, path) to save the adapter by itself."
        )
    tied = _tied_names(model)
    tensors = {
        name: t.detach().cpu().contiguous()
        for name, t in model.state_dict().items()
        if name not in tied
    }
    return write_tensors(tensors, path)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """A fingerprint of named tensors: SHA-256 of their names, dtypes, shapes and bytes (16 hex
    digits). Equal tensors give equal digests on every machine."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        sha.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        sha.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, any dtype (bf16 too)
    return sha.hexdigest()[:16]


def write_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> str:
    """Write ``tensors`` as one safetensors file, atomically, with their digest in its header.
    Returns the digest, for the JSON file written next to it (see the module's docstring)."""
    digest = tensors_digest(tensors)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={DIGEST_KEY: digest}))
    return digest


def read_tensors(path: str | Path, what: str, fix: str,
                 expected_digest: str | None = None, json_file: str | Path = "") -> dict:
    """Read a safetensors file written by ``write_tensors``. ``expected_digest`` is the digest
    recorded in ``json_file`` by the same save (None for a folder saved without one): a file
    from another save is refused, as is a missing or damaged one. ``what`` names the file's
    content and ``fix`` says what to do, for the error messages."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {what} file at {path}. {fix}")
    try:
        with safe_open(str(path), framework="pt") as file:  # one read: the header and the tensors
            found = (file.metadata() or {}).get(DIGEST_KEY)
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as err:  # truncated, or not a safetensors file at all
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}): it is damaged (an interrupted "
            f"copy?) or is some other format. {fix}"
        ) from None
    if expected_digest is not None and found != expected_digest:
        raise ValueError(
            f"{path} and {json_file} come from different saves ({what} digest {found}, the "
            f"JSON expects {expected_digest}): a save was interrupted between the two files, or "
            f"one was copied from elsewhere. {fix}"
        )
    return tensors


def load_weights(model: torch.nn.Module, path: str | Path, expected_digest: str | None = None) -> None:
    """Load safetensors weights into ``model``; names and shapes must match exactly.
    ``expected_digest``: the digest ``config.json`` records (``save_model``), checked first."""
    path = Path(path)
    tensors = read_tensors(
        path, "weights",
        f"Save the model again with sftlearn.checkpoint.save_model (it writes {MODEL_FILE} next "
        f"to {CONFIG_FILE}), load an earlier checkpoint, or check the folder name.",
        expected_digest, path.with_name(CONFIG_FILE))
    tied = _tied_names(model)
    expected = {n: t.shape for n, t in model.state_dict().items() if n not in tied}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        f"{n}: file {tuple(tensors[n].shape)} vs model {tuple(expected[n])}"
        for n in expected
        if n in tensors and tensors[n].shape != expected[n]
    )
    if missing or unexpected or wrong_shape:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                f"different shapes {wrong_shape[:5]}" if wrong_shape else "",
            )
            if part
        )
        hint = ("Build the model from the config saved next to the weights "
                "(sftlearn.checkpoint.load_model).")
        if any(".lora_" in name for name in unexpected):
            hint = ("The file holds LoRA adapters: attach the same adapters first "
                    "(sftlearn.lora.attach_lora with the rank it was trained with), or save "
                    "models for use without them after unload_lora(model).")
        raise ValueError(f"The weights in {path} do not fit this model ({details}). {hint}")
    model.load_state_dict(tensors, strict=False)  # strict=False only for the tied names


# ------------------------------------------------------------------- whole models
def save_model(model, path: str | Path, tokenizer=None) -> Path:
    """Save a GPT (config + weights, and the tokenizer if given) into the folder ``path``.

    A GPT with a task head (``SequenceClassifier``, ``TokenClassifier``) is saved whole: the
    config also names the head, so ``load_model`` rebuilds the same kind of model."""
    from .heads import head_spec

    check_tokenizer_fits(model.config, tokenizer)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    digest = save_weights(model, path / MODEL_FILE)
    store_tokenizer(path / TOKENIZER_FILE, tokenizer)
    config = {"format": FORMAT, "model": model.config.to_dict(), "weights_digest": digest}
    head = head_spec(model)
    if head is not None:
        config["head"] = head
    write_json(path / CONFIG_FILE, config)  # last: it vouches for the weights written before it
    return path


def check_tokenizer_fits(config: GPTConfig, tokenizer) -> None:
    """Refuse a tokenizer with more ids than the model has embeddings (None passes)."""
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{config.vocab_size} embeddings: this is not the tokenizer the model was "
            f"trained with. Pass the model's own tokenizer (or None)."
        )


def store_tokenizer(file: Path, tokenizer) -> None:
    """Write ``tokenizer`` to ``file``; with None, remove a tokenizer an earlier save left
    there, which would otherwise be loaded as this model's."""
    if tokenizer is not None:
        tokenizer.save(file)
    elif file.exists():
        file.unlink()


def read_format_json(path: str | Path, name: str, fmt: str, what: str, how_to_save: str) -> dict:
    """The JSON file ``name`` in folder ``path``, checked to carry ``"format": fmt``.

    ``what`` and ``how_to_save`` finish the error for a folder without it: "this is not a
    saved {what}. Save one with {how_to_save}."
    """
    file = Path(path) / name
    if not file.exists():
        raise FileNotFoundError(
            f"No {name} in {path}: this is not a saved {what}. Save one with {how_to_save}."
        )
    data = read_json(file)
    if data.get("format") != fmt:
        raise ValueError(f"{file} has format {data.get('format')!r}, expected {fmt!r}.")
    return data


def _read_model_json(path: str | Path) -> dict:
    return read_format_json(path, CONFIG_FILE, FORMAT, "sftlearn model folder",
                            "sftlearn.checkpoint.save_model(model, path)")


def read_config(path: str | Path) -> GPTConfig:
    return GPTConfig.from_dict(_read_model_json(path)["model"])


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a GPT (with its task head, if it was saved with one) from a folder written by
    ``save_model``."""
    from .heads import build_head
    from .model import GPT

    data = _read_model_json(path)
    model = GPT(GPTConfig.from_dict(data["model"]))
    if "head" in data:
        model = build_head(model, data["head"])
    load_weights(model, Path(path) / MODEL_FILE, data.get("weights_digest"))
    return model.to(device)


def load_tokenizer_from(path: str | Path):
    """The tokenizer saved next to a model, or None if there is none."""
    file = Path(path) / TOKENIZER_FILE
    if not file.exists():
        return None
    from .tokenizer import load_tokenizer

    return load_tokenizer(file)


def config_differences(a: GPTConfig, b: GPTConfig) -> list[str]:
    """Human-readable list of fields where two configs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k]]


# --------------------------------------------------------------- training checkpoints
def save_training_checkpoint(
    directory: str | Path, step: int, model, state: dict, keep: int = 2
) -> Path:
    """Write ``directory/step-NNNNNNN/`` (model + trainer state) and point ``latest.json`` at it.

    The folder is complete before ``latest.json`` changes, so an interruption at any moment
    leaves ``latest.json`` pointing at a whole checkpoint. Older checkpoints beyond ``keep``
    are deleted after the new one is in place.
    """
    directory = Path(directory)
    name = f"step-{step:07d}"

    def write(tmp: Path) -> None:
        save_model(model, tmp)
        atomic_write(tmp / STATE_FILE, lambda f: torch.save(state, f))

    # The same step may be saved again (at the end of training, just after a periodic save)
    # while latest.json points at it: atomic_write_dir keeps the old copy until the new one is in.
    final = atomic_write_dir(directory / name, write)
    write_json(directory / LATEST_FILE, {"checkpoint": name, "step": step})
    # Only checkpoints of earlier steps are this run's past; a folder of a later step can only
    # be another run's (a fresh run in a used folder; fit warns about it) and is left alone.
    old = sorted(p for p in directory.glob("step-*") if p.is_dir() and _step_of(p) < step)
    for stale in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _step_of(folder: Path) -> int:
    """The step in a checkpoint folder's name ("step-0000120" -> 120; -1 if it is not one)."""
    digits = folder.name.removeprefix("step-")
    return int(digits) if digits.isdigit() else -1


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The folder ``latest.json`` points at, or None when there is no checkpoint yet."""
    pointer = Path(directory) / LATEST_FILE
    if not pointer.exists():
        return None
    folder = Path(directory) / read_json(pointer)["checkpoint"]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{pointer} points at {folder.name}, which is missing. Delete {pointer} to start "
            f"over, or restore the checkpoint folder."
        )
    return folder


class UnsafeCheckpointError(ValueError, pickle.UnpicklingError):
    """A trainer-state file holds objects other than tensors, numbers and containers."""


def load_training_state(folder: str | Path) -> dict:
    """The trainer state saved with a checkpoint (plain tensors and numbers only).

    ``weights_only=True`` makes torch refuse any pickled object that could run code on load.
    The refusal is reported in our words: torch's own message suggests ``weights_only=False``,
    which is exactly what must not be done with a file of unknown origin.
    """
    file = Path(folder) / STATE_FILE
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeCheckpointError(
            f"Refused to load {file}: it contains Python objects that could run code when "
            f"loaded, and sftlearn never writes those. Do not load it with weights_only=False "
            f"unless you made it yourself; delete the checkpoint folder and train again, or "
            f"resume from a checkpoint you trust."
        ) from None
    except RuntimeError as err:  # torch's report of a truncated or non-torch file
        raise ValueError(
            f"{file} cannot be read ({str(err).split('. ')[0]}): it is damaged, e.g. copied "
            f"only in part. Resume from an earlier checkpoint, or delete the folder to start over."
        ) from None
