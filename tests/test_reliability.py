"""Reliability: bad input, non-finite losses, interrupted saves, unsafe files, exact resume.

The course promises (DESIGN.md, "Failure behaviour") that bad input gets an error naming the
problem *and* the fix, that a non-finite loss stops training and keeps the last good
checkpoint, that checkpoints are written atomically, that resume continues exactly, and that
nothing loaded from disk can run code. Each section below injects one kind of fault.
"""

import hashlib
import json
import math
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from sftlearn import checkpoint as ckpt
from sftlearn.config import GPTConfig
from sftlearn.datasets import LMBlockDataset, SFTDataset, collate
from sftlearn.device import get_device
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer, load_tokenizer
from sftlearn.train import NonFiniteLossError, TrainConfig, Trainer

from conftest import VOCAB, cyclic_blocks, stack_collate

PACKAGE = Path(__file__).resolve().parent.parent / "sftlearn"


def micro(seed=0, **changes):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", **{"vocab_size": VOCAB, "block_size": 64, **changes}))


def trainer(model, data=None, callbacks=(), val=None, **config):
    config.setdefault("progress", False)
    data = cyclic_blocks(24) if data is None else data
    return Trainer(model, data, val, TrainConfig(**config), collate_fn=stack_collate,
                   callbacks=list(callbacks))


def chat(user, assistant=None):
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


def saved_model_folder(tmp_path) -> Path:
    return ckpt.save_model(micro(), tmp_path / "model")


def damage(file: Path, keep_fraction: float = 0.5) -> None:
    """Cut a file short, as an interrupted copy would."""
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep_fraction)])


def checkpoint_with_state(tmp_path) -> Path:
    return ckpt.save_training_checkpoint(tmp_path / "ck", 1, micro(), {"step": 1})


# ============================================================================ bad input
@dataclass
class BadInput:
    """One bad input: what to call, the error it must raise, and the words it must use."""

    id: str
    call: Callable  # call(tmp_path) must raise
    error: type
    problem: str  # regex: the message names what is wrong ...
    fix: str  # ... and what to do about it


def _resume(tmp_path, first: dict, second: dict, first_model=None, second_model=None):
    """Train 2 steps with a checkpoint, then resume with a changed model or config."""
    trainer(first_model or micro(), max_steps=2, batch_size=4, checkpoint_dir=str(tmp_path), **first).fit()
    trainer(second_model or micro(), max_steps=4, batch_size=4, checkpoint_dir=str(tmp_path),
            **second).fit(resume=True)


def _cuda_unavailable():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so 'cuda' is not an unavailable device here")


def _env_device(tmp_path):
    _cuda_unavailable()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SFTLEARN_DEVICE", "cuda")
        return get_device()


def _every_target_masked(tmp_path):
    data = cyclic_blocks(8)
    for item in data:
        item["targets"] = torch.full_like(item["targets"], -100)
    trainer(micro(), data, max_steps=1, batch_size=4).fit()


def _write_config(tmp_path, text):
    folder = saved_model_folder(tmp_path)
    (folder / ckpt.CONFIG_FILE).write_text(text)
    return ckpt.load_model(folder)


def _damaged_weights(tmp_path):
    folder = saved_model_folder(tmp_path)
    damage(folder / ckpt.MODEL_FILE)
    return ckpt.load_model(folder)


def _missing_weights(tmp_path):
    folder = saved_model_folder(tmp_path)
    (folder / ckpt.MODEL_FILE).unlink()
    return ckpt.load_model(folder)


def _damaged_state(tmp_path):
    folder = checkpoint_with_state(tmp_path)
    damage(folder / ckpt.STATE_FILE, 0.1)
    return ckpt.load_training_state(folder)


def _damaged_pointer(tmp_path):
    checkpoint_with_state(tmp_path)
    (tmp_path / "ck" / ckpt.LATEST_FILE).write_text('{"checkpoint": "step-00')
    return ckpt.latest_checkpoint(tmp_path / "ck")


def _dangling_pointer(tmp_path):
    ckpt.write_json(tmp_path / ckpt.LATEST_FILE, {"checkpoint": "step-0000009", "step": 9})
    return ckpt.latest_checkpoint(tmp_path)


def _small_vocab_finetune(tmp_path):
    from sftlearn.sft import finetune

    model = GPT(GPTConfig.preset("micro", vocab_size=8, block_size=64))
    finetune(model, CharTokenizer("abcdefgh"), [chat("a", "b")])


def _garbage_tokenizer(tmp_path):
    (tmp_path / "tok.json").write_text("not json at all")
    return load_tokenizer(tmp_path / "tok.json")


TOK = CharTokenizer("abc ")

BAD_INPUTS = [
    # --- the list in DESIGN.md "Failure behaviour" ---
    BadInput("unknown character", lambda p: TOK.encode("abz"), ValueError,
             r"cannot encode 'z'", r"build the tokenizer from text that contains it|unknown='replace'"),
    BadInput("sequence longer than the context", lambda p: micro()(torch.zeros(1, 65, dtype=torch.long)),
             ValueError, r"65 tokens is longer than the model's context \(block_size=64\)",
             r"Shorten or crop the input"),
    BadInput("generation past the context", lambda p: micro().generate(torch.zeros(1, 60, dtype=torch.long), 10),
             ValueError, r"exceeds the model's context of 64", r"Ask for at most 4 new tokens"),
    BadInput("conversation longer than max_len", lambda p: SFTDataset([chat("ab" * 20, "a")], TOK, 10),
             ValueError, r"example 0: the conversation is 47 tokens long but max_len is 10",
             r"shorten the messages, or raise max_len"),
    BadInput("empty training set", lambda p: trainer(micro(), []), ValueError,
             r"training set is empty", r"Check the data generation or filtering"),
    BadInput("empty validation set", lambda p: Trainer(micro(), cyclic_blocks(4), [], TrainConfig(progress=False)),
             ValueError, r"validation set is empty", r"pass val_data=None to skip validation"),
    BadInput("empty SFT dataset", lambda p: SFTDataset([], TOK, 32), ValueError,
             r"got no examples", r"pass a non-empty list"),
    BadInput("text too short for one block", lambda p: LMBlockDataset([1, 2, 3], 8), ValueError,
             r"only 3 tokens.*needs 9", r"use more text or a smaller block_size"),
    BadInput("empty batch", lambda p: collate([]), ValueError, r"empty batch", r"check the dataset"),
    BadInput("example whose every target is masked", lambda p: SFTDataset([chat("ab")], TOK, 32),
             ValueError, r"example 0: .*no assistant message, so there is nothing to train on",
             r"add the assistant's reply"),
    BadInput("batch whose every target is masked", _every_target_masked, ValueError,
             r"Every target in the batches for step 1 is masked", r"Check the loss mask"),
    BadInput("weights of another model", lambda p: ckpt.load_weights(
        micro(vocab_size=VOCAB + 1), saved_model_folder(p) / ckpt.MODEL_FILE),
        ValueError, r"do not fit this model.*transformer\.wte\.weight", r"Build the model from the config"),
    BadInput("resume into a different model", lambda p: _resume(p, {}, {}, second_model=micro(n_layer=3)),
             ValueError, r"different model \(n_layer: 2 vs 3", r"Build the model with the checkpoint's config"),
    BadInput("resume with other accumulation", lambda p: _resume(p, {"grad_accum_steps": 1}, {"grad_accum_steps": 2}),
             ValueError, r"Cannot resume exactly: the checkpoint used grad_accum_steps=1", r"Use the same value"),
    BadInput("unavailable device (argument)", lambda p: (_cuda_unavailable(), get_device("cuda")), ValueError,
             r"'cuda' was requested \(by the argument\) but is not available", r"Ask for one of those"),
    BadInput("unavailable device (SFTLEARN_DEVICE)", _env_device, ValueError,
             r"requested \(by the environment variable SFTLEARN_DEVICE\)", r"unset SFTLEARN_DEVICE"),
    BadInput("unknown device name", lambda p: get_device("gpu0"), ValueError,
             r"Unknown device 'gpu0'", r"Use one of cpu, cuda, mps"),
    # --- files on disk: missing, damaged or foreign ---
    BadInput("not a model folder", lambda p: ckpt.load_model(p / "nothing"), FileNotFoundError,
             r"not a saved sftlearn model folder", r"Save one with sftlearn\.checkpoint\.save_model"),
    BadInput("config.json that is not JSON", lambda p: _write_config(p, "{not json"), ValueError,
             r"config\.json is not valid JSON", r"save the model or checkpoint again"),
    BadInput("config.json with an unknown field", lambda p: _write_config(
        p, json.dumps({"format": "sftlearn-gpt", "model": {"vocab_size": 61, "colour": "red"}})),
        ValueError, r"Unknown GPTConfig field\(s\) \['colour'\]", r"valid fields are"),
    BadInput("weights file cut short", _damaged_weights, ValueError,
             r"model\.safetensors is not a readable safetensors file", r"Save the model again"),
    BadInput("weights file missing", _missing_weights, FileNotFoundError,
             r"No weights file at .*model\.safetensors", r"Save the model again with sftlearn\.checkpoint\.save_model"),
    BadInput("trainer state cut short", _damaged_state, ValueError,
             r"trainer_state\.pt cannot be read", r"Resume from an earlier checkpoint"),
    BadInput("latest.json cut short", _damaged_pointer, ValueError,
             r"latest\.json is not valid JSON", r"Restore it from a good copy"),
    BadInput("latest.json pointing at nothing", _dangling_pointer, FileNotFoundError,
             r"points at step-0000009, which is missing", r"Delete .*latest\.json to start over"),
    BadInput("tokenizer file that is not JSON", _garbage_tokenizer, ValueError,
             r"tok\.json is not valid JSON", r"written by Tokenizer\.save"),
    # --- other inputs a reader is likely to get wrong ---
    BadInput("token id outside the vocabulary", lambda p: micro()(torch.tensor([[3, VOCAB]])), ValueError,
             rf"Token id {VOCAB} is outside the vocabulary", r"Encode with the tokenizer the model was built for"),
    BadInput("a list instead of a tensor", lambda p: micro()([[1, 2]]), TypeError,
             r"must be a torch\.Tensor of token ids, got list", r"wrap a list with torch\.tensor"),
    BadInput("one sequence without a batch dimension", lambda p: micro()(torch.tensor([1, 2])), ValueError,
             r"must have shape \(batch, time\), got \(2,\)", r"ids\[None, :\]"),
    BadInput("float token ids", lambda p: micro()(torch.zeros(1, 3)), TypeError,
             r"must hold integer ids, got dtype torch\.float32", r"input_ids\.long\(\)"),
    BadInput("special token inside a message", lambda p: SFTDataset([chat("a<|end|>", "b")], TOK, 32),
             ValueError, r"contains the special token '<\|end\|>'", r"Remove it from the text"),
    BadInput("tokenizer larger than the model's vocabulary", _small_vocab_finetune, ValueError,
             r"tokenizer has 15 tokens but the model's vocabulary has only 8",
             r"Build the model with vocab_size=tokenizer\.vocab_size"),
    BadInput("n_embd not divisible by n_head", lambda p: GPTConfig(n_embd=10, n_head=4), ValueError,
             r"n_embd \(10\) must be divisible by n_head \(4\)", r"Pick n_embd as a multiple of n_head"),
    BadInput("unknown preset", lambda p: GPTConfig.preset("huge"), ValueError,
             r"Unknown preset 'huge'", r"Available presets: micro, tiny"),
    BadInput("unknown zoo model", lambda p: __import__("sftlearn.zoo").zoo.base_model("huge-base"),
             ValueError, r"Unknown model 'huge-base'", r"The zoo has: .*tiny-base"),
    BadInput("negative gradient clip", lambda p: TrainConfig(grad_clip=-1.0), ValueError,
             r"grad_clip must be a positive max gradient norm", r"or None for no clipping"),
    BadInput("right-padded prompts", lambda p: micro().generate(
        torch.tensor([[5, 6, 0]]), 2, attention_mask=torch.tensor([[1, 1, 0]])), ValueError,
        r"Prompts must be left-padded", r"Put the pad ids before each prompt"),
    BadInput("attention mask of the wrong shape", lambda p: micro()(
        torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4)), ValueError,
        r"attention_mask has shape \(2, 4\), but input_ids \(2, 5\) need \(2, 5\)",
        r"1 for real tokens and 0 for padding"),
    BadInput("negative weight decay in SGD", lambda p: __import__("sftlearn.optim").optim.sgd_step(
        torch.ones(3), torch.zeros(3), 0.1, weight_decay=-1), ValueError,
        r"weight_decay must be ≥ 0, got -1", r"0\.01 to 0\.1 is usual"),
    BadInput("a validation fraction too small for one token", lambda p: __import__(
        "sftlearn.datasets").datasets.lm_datasets_from_text("abcdefgh" * 20, CharTokenizer.from_world(),
        block_size=8, val_fraction=0.001), ValueError, r"the validation part has 0 tokens",
        r"use more text, a larger val_fraction"),
    BadInput("a lone surrogate in the text", lambda p: TOK.encode("a\ud83db"), ValueError,
             r"lone surrogate '\\ud83d' at position 1", r"text\.encode\('utf-8', 'replace'\)"),
    BadInput("space-joined BIO tags", lambda p: __import__("sftlearn.metrics").metrics.entity_f1(
        ["B-PER I-PER O"], ["B-PER I-PER O"]), ValueError, r"strings with spaces",
        r"\[s\.split\(\) for s in"),
    BadInput("boolean targets for perplexity", lambda p: __import__("sftlearn.metrics").metrics
             .perplexity_from_logits(torch.zeros(2, 3), torch.tensor([True, False])), TypeError,
             r"targets must hold integer token ids, got torch\.bool", r"use targets\.long\(\)"),
    BadInput("no targets for perplexity", lambda p: __import__("sftlearn.metrics").metrics
             .perplexity_from_logits(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), ValueError,
             r"targets is empty", r"pass at least one token id"),
    BadInput("a string for bias", lambda p: GPTConfig(bias="no"), ValueError,
             r"bias must be True or False, got 'no'", r"True or False"),
    BadInput("a string for dropout", lambda p: GPTConfig(dropout="0.1"), ValueError,
             r"dropout must be a number in \[0, 1\), got '0.1'", r"a number"),
    BadInput("a ReLU RNN for the tanh cell", lambda p: __import__("sftlearn.recurrent").recurrent
             .cell_weights(torch.nn.RNN(3, 4, nonlinearity="relu")), ValueError,
             r"nonlinearity='relu', but rnn_cell computes the tanh RNN", r"nonlinearity='tanh'"),
    BadInput("checking exercises against a missing solutions folder", lambda p: __import__(
        "sftlearn.course").course.check_exercises_in_sync(p / "nope", p / "nope2"),
        FileNotFoundError, r"solutions folder .* does not exist", r"run from the course's root"),
    BadInput("class names that do not fit the confusion matrix", lambda p: __import__(
        "sftlearn.plots").plots.plot_confusion_matrix(torch.eye(2).numpy(), class_names=["a", "b", "c"]),
        ValueError, r"class_names has 3 labels but the matrix has 2 classes", r"one label per class\."),
    BadInput("no validation batches", lambda p: TrainConfig(eval_batches=0), ValueError,
             r"eval_batches must be a positive int", r"Or None for every validation batch"),
    BadInput("min_lr above lr", lambda p: TrainConfig(lr=1e-3, min_lr=1.0), ValueError,
             r"min_lr must lie between 0 and lr", r"None means lr / 10"),
    BadInput("a string for min_lr", lambda p: TrainConfig(min_lr="0"), ValueError,
             r"min_lr must lie between 0 and lr \(0\.003\), got '0'", r"None means lr / 10"),
    BadInput("a string for lr", lambda p: TrainConfig(lr="3e-3"), ValueError,
             r"TrainConfig\.lr must be positive, got '3e-3'", r"pass a number such as 3e-4"),
    BadInput("True for lr", lambda p: TrainConfig(lr=True), ValueError,
             r"TrainConfig\.lr must be positive, got True", r"pass a number"),
    BadInput("an infinite lr", lambda p: TrainConfig(lr=math.inf), ValueError,
             r"TrainConfig\.lr must be positive, got inf", r"pass a number"),
    BadInput("a string for grad_clip", lambda p: TrainConfig(grad_clip="1.0"), ValueError,
             r"grad_clip must be a positive max gradient norm", r"got '1\.0'"),
    BadInput("negative warm-up", lambda p: TrainConfig(warmup_steps=-1), ValueError,
             r"warmup_steps must be an int >= 0", r"Or None for 5% of max_steps"),
    BadInput("evaluating zero batches", lambda p: __import__("sftlearn.train").train.evaluate_loss(
        micro(), [], max_batches=0), ValueError, r"max_batches must be a positive int",
        r"Or None for every batch"),
    BadInput("a batch without targets", lambda p: __import__("sftlearn.train").train.count_targets(
        {"x": torch.zeros(2)}), ValueError, r"needs 'targets'.*gave only \['x'\]",
        r"a custom loss_fn still needs them"),
    BadInput("resume without a checkpoint folder", lambda p: trainer(micro(), max_steps=1).fit(resume=True),
             ValueError, r"resume=True needs TrainConfig\.checkpoint_dir", r"to be set"),
    BadInput("frozen model", lambda p: trainer(micro().requires_grad_(False), max_steps=1), ValueError,
             r"no trainable parameters", r"Unfreeze some parameters"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input_names_the_problem_and_the_fix(case, tmp_path, monkeypatch):
    monkeypatch.delenv("SFTLEARN_DEVICE", raising=False)
    with pytest.raises(Exception) as info:
        case.call(tmp_path)
    err = info.value
    assert isinstance(err, case.error), f"{type(err).__name__}: {err}"
    message = str(err)
    assert re.search(case.problem, message), f"the problem is not named: {message}"
    assert re.search(case.fix, message), f"no fix is named: {message}"
    assert "Traceback" not in message and len(message) < 600


# ======================================================================= non-finite loss
def folder_digest(folder: Path) -> str:
    """One hash over every file in a checkpoint folder (names and bytes)."""
    h = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            h.update(file.relative_to(folder).as_posix().encode() + file.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_loss_stops_at_once_and_leaves_the_last_checkpoint_untouched(tmp_path, bad):
    model = micro()
    run = trainer(model, max_steps=20, batch_size=4, log_interval=2, checkpoint_dir=str(tmp_path),
                  checkpoint_interval=3)
    calls = {"n": 0}

    def poisoned(m, batch):  # step 5 produces a non-finite loss
        calls["n"] += 1
        _, loss = m(batch["input_ids"], targets=batch["targets"])
        return loss * bad if calls["n"] == 5 else loss

    run.loss_fn = poisoned
    with pytest.raises(NonFiniteLossError) as info:
        run.fit()
    message = str(info.value)
    assert re.search(r"The loss became (nan|inf|-inf) at step 5", message), message
    last_logged = run.history.train_loss[-1]
    assert f"last good logged loss: {last_logged:.4f}" in message  # the step-4 log
    assert "learning rate that is too high" in message  # likely causes
    assert run.step == 4 and calls["n"] == 5  # stopped at the first bad step, nothing after
    good = ckpt.latest_checkpoint(tmp_path)
    assert good.name == "step-0000003"
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad update never applied
    assert all(torch.isfinite(p).all() for p in ckpt.load_model(good).parameters())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-0000003"]


def test_nan_at_the_first_step_writes_no_checkpoint(tmp_path):
    run = trainer(micro(), max_steps=5, batch_size=4, checkpoint_dir=str(tmp_path), checkpoint_interval=1)
    run.loss_fn = lambda m, batch: m(batch["input_ids"], targets=batch["targets"])[1] * float("nan")
    with pytest.raises(NonFiniteLossError, match="step 1 .*last good logged loss: none logged yet"):
        run.fit()
    assert ckpt.latest_checkpoint(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_weights_with_nan_never_overwrite_a_good_checkpoint(tmp_path):
    model = micro()
    run = trainer(model, max_steps=2, batch_size=4, checkpoint_dir=str(tmp_path))
    run.fit()
    good = ckpt.latest_checkpoint(tmp_path)
    before = folder_digest(tmp_path)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")  # e.g. a bad manual edit
    with pytest.raises(NonFiniteLossError, match="refusing to overwrite.*lower learning rate"):
        run.save_checkpoint()
    assert folder_digest(tmp_path) == before  # not one byte changed
    assert ckpt.latest_checkpoint(tmp_path) == good


# ================================================================== atomic checkpoints
class WriterFailure(OSError):
    """What the injected writer raises (a full disk, a lost network drive...)."""


def half_written_safetensors(tensors, filename, *args, **kwargs):
    """Stand-in for safetensors' writer that dies half way through the file."""
    with open(filename, "wb") as f:
        f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"trunc")
    raise WriterFailure("disk full while writing weights")


def assert_intact(directory: Path, step: int, model) -> None:
    """latest.json points at ``step``, whose weights load and equal ``model``'s."""
    folder = ckpt.latest_checkpoint(directory)
    assert folder.name == f"step-{step:07d}"
    loaded = ckpt.load_model(folder)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert ckpt.load_training_state(folder)["step"] == step
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_a_weights_writer_dying_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = micro()
    ckpt.save_training_checkpoint(tmp_path, 5, model, {"step": 5})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.transformer.wte.weight.add_(1.0)  # the next checkpoint would hold other weights
    monkeypatch.setattr(ckpt, "save_file", half_written_safetensors)
    with pytest.raises(WriterFailure):
        ckpt.save_training_checkpoint(tmp_path, 10, model, {"step": 10})
    model.load_state_dict(saved)
    assert_intact(tmp_path, 5, model)


def test_a_failure_while_updating_latest_json_keeps_the_old_pointer(tmp_path, monkeypatch):
    model = micro()
    ckpt.save_training_checkpoint(tmp_path, 5, model, {"step": 5})
    real_write_json = ckpt.write_json

    def failing_pointer(path, data):
        if Path(path).name == ckpt.LATEST_FILE:
            return ckpt.atomic_write(path, lambda tmp: (tmp.write_text('{"checkp'), _raise()))
        return real_write_json(path, data)

    def _raise():
        raise WriterFailure("disk full while writing latest.json")

    monkeypatch.setattr(ckpt, "write_json", failing_pointer)
    with pytest.raises(WriterFailure):
        ckpt.save_training_checkpoint(tmp_path, 10, model, {"step": 10})
    monkeypatch.setattr(ckpt, "write_json", real_write_json)
    assert_intact(tmp_path, 5, model)
    ckpt.save_training_checkpoint(tmp_path, 10, model, {"step": 10})  # and the next save works
    assert_intact(tmp_path, 10, model)


def test_saving_the_same_step_again_and_failing_keeps_the_first_copy(tmp_path, monkeypatch):
    """End of training right after a periodic save writes the same step twice; if the second
    write fails at its final rename, latest.json must still point at a whole checkpoint."""
    model = micro()
    ckpt.save_training_checkpoint(tmp_path, 10, model, {"step": 10})
    real_replace = os.replace
    renames_into_place = {"n": 0}

    def failing_rename(src, dst):
        if Path(dst).name == "step-0000010":
            renames_into_place["n"] += 1
            if renames_into_place["n"] == 1:  # the new copy's rename; putting the old back works
                raise WriterFailure("interrupted while renaming the new checkpoint into place")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_rename)
    with pytest.raises(WriterFailure):
        ckpt.save_training_checkpoint(tmp_path, 10, model, {"step": 10})
    monkeypatch.setattr(os, "replace", real_replace)
    assert_intact(tmp_path, 10, model)


# ================================================================== security on load
class RunsCode:
    """A pickle payload that creates a file when it is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted file's, not ours
def test_a_crafted_trainer_state_is_refused_by_resume(tmp_path):
    marker = tmp_path / "code-ran"
    run = trainer(micro(), max_steps=2, batch_size=4, checkpoint_dir=str(tmp_path / "ck"))
    run.fit()
    folder = ckpt.latest_checkpoint(tmp_path / "ck")
    with open(folder / ckpt.STATE_FILE, "wb") as f:
        pickle.dump({"step": 2, "payload": RunsCode(marker)}, f)
    resumed = trainer(micro(), max_steps=4, batch_size=4, checkpoint_dir=str(tmp_path / "ck"))
    with pytest.raises(ckpt.UnsafeCheckpointError) as info:
        resumed.fit(resume=True)
    assert isinstance(info.value, ValueError)
    assert "could run code" in str(info.value) and "Do not load it with weights_only=False" in str(info.value)
    assert not marker.exists()  # refused before anything ran
    assert resumed.step == 0  # and nothing was half-restored


def test_a_pickle_disguised_as_weights_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    folder = saved_model_folder(tmp_path)
    with open(folder / ckpt.MODEL_FILE, "wb") as f:
        pickle.dump({"transformer.wte.weight": RunsCode(marker)}, f)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load_model(folder)
    assert not marker.exists()


def test_the_package_never_unpickles_without_weights_only():
    """Every torch.load in sftlearn passes weights_only=True; nothing calls pickle.load(s)."""
    offenders = []
    for file in sorted(PACKAGE.rglob("*.py")):
        text = file.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\((?:[^()]|\([^()]*\))*\)", text):
            if "weights_only=True" not in match.group(0):
                offenders.append(f"{file.name}: {match.group(0)}")
        offenders += [f"{file.name}: pickle load" for _ in re.finditer(r"pickle\.loads?\(", text)]
    assert offenders == []
    assert "weights_only=True" in (PACKAGE / "checkpoint.py").read_text()  # the scan sees it


# ======================================================================== exact resume
def weights_of(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_ctrl_c_in_the_middle_of_a_step_resumes_bit_identically(tmp_path):
    """Stopping a notebook cell raises KeyboardInterrupt wherever the code is, often inside a
    step after its batches were drawn. The checkpoint written on the way out must describe the
    last *finished* step, so the resumed run sees the same batches and dropout masks."""
    data = cyclic_blocks(40)
    common = dict(max_steps=10, batch_size=6, lr=3e-3, log_interval=1, seed=3, grad_accum_steps=2)
    full_model = micro(dropout=0.1)
    full = trainer(full_model, data, **common).fit()

    forward_calls = {"n": 0}

    def interrupted_loss(m, batch):
        forward_calls["n"] += 1
        if forward_calls["n"] == 12:  # the second micro-batch of step 6
            raise KeyboardInterrupt
        return m(batch["input_ids"], targets=batch["targets"])[1]

    first = trainer(micro(dropout=0.1), data, checkpoint_dir=str(tmp_path), **common)
    first.loss_fn = interrupted_loss
    first.fit()  # a KeyboardInterrupt ends fit quietly, with a checkpoint
    assert first.history.stop_reason == "interrupted at step 5"
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000005"

    torch.manual_seed(777)  # the new session's RNG is elsewhere; resume must restore it
    resumed_model = micro(dropout=0.1, seed=99)
    resumed = trainer(resumed_model, data, checkpoint_dir=str(tmp_path), **common).fit(resume=True)
    assert resumed.train_loss == full.train_loss  # exact, step for step
    for name, value in weights_of(full_model).items():
        assert torch.equal(resumed_model.state_dict()[name], value), name


def test_ctrl_c_just_after_the_update_resumes_bit_identically(tmp_path):
    """The weights of a step change in optimizer.step(); nothing slow may follow it before the
    step is counted. Clearing the gradients (a loop over the parameters in Python) used to, and
    a stop pressed there rewound the data position of a step whose update had happened. Now it
    opens the next step, where an interruption simply undoes that step."""
    data = cyclic_blocks(40)
    common = dict(max_steps=10, batch_size=6, lr=3e-3, log_interval=1, seed=3)
    full_model = micro(dropout=0.1)
    full = trainer(full_model, data, **common).fit()

    first = trainer(micro(dropout=0.1), data, checkpoint_dir=str(tmp_path), **common)
    zero_grad, calls = first.optimizer.zero_grad, {"n": 0}

    def stopped_in_zero_grad(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # each step opens with one; call 6 comes right after step 5's update
            raise KeyboardInterrupt
        return zero_grad(*args, **kwargs)

    first.optimizer.zero_grad = stopped_in_zero_grad
    first.fit()
    assert first.history.stop_reason == "interrupted at step 5"
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000005"
    assert first.history.train_loss == full.train_loss[:5]  # step 5 counted, and logged
    resumed_model = micro(dropout=0.1, seed=99)
    resumed = trainer(resumed_model, data, checkpoint_dir=str(tmp_path), **common).fit(resume=True)
    assert resumed.train_loss == full.train_loss
    for name, value in weights_of(full_model).items():
        assert torch.equal(resumed_model.state_dict()[name], value), name
    # the gradients of the last step are not kept after fit, interrupted or not
    assert all(p.grad is None for p in resumed_model.parameters())
    assert all(p.grad is None for p in first.model.parameters())


def test_fit_again_after_ctrl_c_continues_from_the_latest_weights():
    """restore_best reloads the best weights at the end of a run, but an interrupted run is
    not over: its latest weights stay, so running the cell again continues the same run."""
    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=20, batch_size=4, lr=3e-3, log_interval=1, eval_interval=5, seed=3)
    full = trainer(micro(), train, val=val, **common).fit()
    assert full.best_step < 15  # so the best weights are older than the interruption below

    calls = {"n": 0}

    def interrupted_in_step_16(m, batch):
        if m.training:
            calls["n"] += 1
            if calls["n"] == 16:
                raise KeyboardInterrupt
        return m(batch["input_ids"], targets=batch["targets"])[1]

    run = trainer(micro(), train, val=val, **common)
    run.loss_fn = interrupted_in_step_16
    run.fit()
    assert run.history.stop_reason == "interrupted at step 15"
    history = run.fit()  # the cell is run again
    assert history.steps == full.steps and history.train_loss == full.train_loss


def test_a_resume_refused_by_the_optimizer_leaves_the_weights_alone(tmp_path):
    # Other parameters frozen than in the run that wrote the checkpoint: the optimizer's state
    # does not fit, and the model must keep its own weights rather than half-resume.
    trainer(micro(), max_steps=2, checkpoint_dir=str(tmp_path)).fit()
    model = micro(seed=5)
    model.lm_head.weight.requires_grad_(False)  # tied: the token embeddings are frozen too
    before = weights_of(model)
    with pytest.raises(ValueError, match="parameter group"):
        trainer(model, max_steps=4, checkpoint_dir=str(tmp_path)).fit(resume=True)
    for name, value in before.items():
        assert torch.equal(model.state_dict()[name], value), name


def test_a_large_seed_trains():
    # time.time_ns() as a seed: the per-epoch seed seed * 100_003 + epoch exceeds 64 bits
    seed = 1_790_000_000_000_000_000
    history = trainer(micro(), cyclic_blocks(12), max_steps=4, batch_size=4, log_interval=1,
                      seed=seed).fit()
    assert len(history.train_loss) == 4 and all(math.isfinite(v) for v in history.train_loss)


def test_a_save_that_fails_during_training_resumes_from_the_previous_checkpoint(tmp_path, monkeypatch):
    data = cyclic_blocks(30)
    common = dict(max_steps=9, batch_size=5, lr=3e-3, log_interval=1, seed=1)
    full = trainer(micro(dropout=0.1), data, **common).fit()

    real_save_file = ckpt.save_file
    saves = {"n": 0}

    def second_save_dies(tensors, filename, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 2:  # the checkpoint of step 6
            return half_written_safetensors(tensors, filename)
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", second_save_dies)
    with pytest.raises(WriterFailure):
        trainer(micro(dropout=0.1), data, checkpoint_dir=str(tmp_path), checkpoint_interval=3, **common).fit()
    monkeypatch.setattr(ckpt, "save_file", real_save_file)
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000003"
    resumed = trainer(micro(dropout=0.1, seed=5), data, checkpoint_dir=str(tmp_path), **common).fit(resume=True)
    assert resumed.train_loss == full.train_loss
