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
import io
import json
import pickle
import pickletools
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import GPTConfig
from .files import atomic_write, atomic_write_dir, output_folder
from .validation import check_int

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
    model loaded from them would apply it twice. A GPT whose output layer was untied from the
    token embedding is refused too: a GPT is built with the two tied, so it could not load
    the separate output layer back."""
    _check_savable(model)
    tied = _tied_names(model)
    tensors = {
        name: t.detach().cpu().contiguous()
        for name, t in model.state_dict().items()
        if name not in tied
    }
    return write_tensors(tensors, path)


def _check_savable(model: torch.nn.Module) -> None:
    """Refuse a model whose saved weights would not load back as the same model."""
    _check_unmerged(
        model, "saving both would apply the update twice on loading. Call unload_lora(model) to "
        "keep the merged weights alone (a plain model), unmerge_lora(model) to keep base and "
        "adapter apart, or save_adapter(model, path) to save the adapter by itself.")
    check_tied(model, "saving")


def _check_unmerged(model: torch.nn.Module, consequence: str) -> None:
    """Refuse a model whose LoRA adapters are merged into its weights. ``consequence`` ends
    the message: what would go wrong, and what to call instead."""
    from .lora import lora_layers  # lora imports this module

    if any(layer.merged for layer in lora_layers(model).values()):
        raise ValueError(f"The model's LoRA adapters are merged into its weights, so {consequence}")


def check_tied(model: torch.nn.Module, action: str) -> None:
    """Refuse a GPT (also inside a task head) whose output layer ``lm_head`` no longer shares
    its matrix with the token embedding: sftlearn's GPT, like GPT-2's format, has one matrix
    for both, so the separate output layer cannot be stored. ``action`` names what is
    refused ("saving", "exporting")."""
    from .model import GPT

    for name, gpt in model.named_modules():
        if isinstance(gpt, GPT) and gpt.lm_head.weight is not gpt.transformer.wte.weight:
            at = f"model.{name}." if name else "model."
            raise ValueError(
                f"The output layer (lm_head) is not tied to the token embedding "
                f"(transformer.wte), but sftlearn's GPT, like GPT-2's format, stores one matrix "
                f"for both. Tie them again before {action}: {at}lm_head.weight = "
                f"{at}transformer.wte.weight (the separate lm_head values are then dropped)."
            )


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
    _check_unmerged(
        model, "loading weights now would go wrong: a merged layer skips its adapter, and "
        "unmerge_lora would then subtract an update the loaded weights never held. Call "
        "unmerge_lora(model) before loading (and merge_lora(model) after it, if you want).")
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
    _check_savable(model)  # before the folder is made: a refused save writes nothing
    path = output_folder(path, "Give save_model a folder to save into.")
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
    ``save_model``. The model comes back in evaluation mode (dropout off), as Hugging Face's
    ``from_pretrained`` returns one: ready to generate. The Trainer switches it to training
    mode itself; a training loop of your own calls ``model.train()`` first."""
    from .heads import build_head
    from .model import GPT

    data = _read_model_json(path)
    model = GPT(GPTConfig.from_dict(data["model"]))
    if "head" in data:
        model = build_head(model, data["head"])
    load_weights(model, Path(path) / MODEL_FILE, data.get("weights_digest"))
    return model.to(device).eval()


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
    check_int("keep", keep, fix="It counts the checkpoints kept, the new one included.")
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
    # be another run's (a fresh run in a used folder; fit warns about it) and is left alone,
    # as is a folder whose name is not a step number (a user's "step-0000100-best").
    old = [p for p in directory.glob("step-*") if p.is_dir() and 0 <= _step_of(p) < step]
    # By step, not by name: step 10,000,000 has 8 digits and its name sorts before 9,999,999.
    old.sort(key=_step_of)
    for stale in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _step_of(folder: Path) -> int:
    """The step in a checkpoint folder's name ("step-0000120" -> 120; -1 if it is not one)."""
    digits = folder.name.removeprefix("step-")
    # isascii too: str.isdigit accepts "²" and other digits that int() cannot read
    return int(digits) if digits.isascii() and digits.isdigit() else -1


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
    which is exactly what must not be done with a file of unknown origin. A file that is no
    torch file at all (empty, cut short, text) is reported as damaged: a ValueError.
    """
    file = Path(folder) / STATE_FILE
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except OSError:
        raise  # a missing or unreadable file: the error names it already
    except pickle.UnpicklingError as err:
        # torch raises this for garbage too ("Unsupported operand"), so look at the file itself
        if _pickle_imports_objects(file):
            raise UnsafeCheckpointError(
                f"Refused to load {file}: it contains Python objects that could run code when "
                f"loaded, and sftlearn never writes those. Do not load it with "
                f"weights_only=False unless you made it yourself; delete the checkpoint folder "
                f"and train again, or resume from a checkpoint you trust."
            ) from None
        problem = err
    # Bytes that are no torch file fail wherever reading stops, with whatever error that part
    # of torch raises: RuntimeError (the zip reader), EOFError, KeyError, IndexError, ...
    except Exception as err:  # noqa: BLE001
        problem = err
    raise ValueError(
        f"{file} cannot be read ({type(problem).__name__}): it is damaged, e.g. copied only in "
        f"part, or is not a trainer state at all. Resume from an earlier checkpoint, or delete "
        f"the folder to start over."
    ) from None


# The pickle instructions that import a class or function by name (to build or call it).
IMPORT_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST"}


def _pickle_imports_objects(file: Path) -> bool:
    """Is ``file`` a whole pickle that imports classes or functions? The pickle is the file
    itself or, in torch's zip format, its ``data.pkl``.

    torch cannot tell us: its reader also stops at instructions it does not support, and a
    plain ``pickle.dump`` begins with one (FRAME), before any import. ``pickletools.genops``
    only reads the instructions and runs none. Bytes that are no whole pickle are damaged."""
    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                data = archive.read(names[0]) if names else b""
        else:
            data = file.read_bytes()
        # From bytes in memory, not from the file: a damaged length field would make genops
        # ask a file for that many bytes at once (MemoryError); BytesIO returns what there is.
        ops = {op.name for op, _, _ in pickletools.genops(io.BytesIO(data))}
    except (ValueError, zipfile.BadZipFile):  # genops: an unknown instruction, or no end (STOP)
        return False
    return bool(ops & IMPORT_OPCODES)
