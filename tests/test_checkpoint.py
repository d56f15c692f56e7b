"""Checkpoints: round trips, atomic writes under failure, refusal of unsafe or mismatched files."""

import copy
import io
import json
import os
import pickle
import random

import pytest
import torch

from sftlearn import checkpoint as ckpt
from sftlearn.config import GPTConfig
from sftlearn.model import GPT

from conftest import VOCAB


def test_save_and_load_model_round_trip(tmp_path, micro_model):
    ckpt.save_model(micro_model, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    loaded = ckpt.load_model(tmp_path / "m")
    assert not any(m.training for m in loaded.modules())  # evaluation mode, as from_pretrained
    assert loaded.config == micro_model.config
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # tie survives the trip
    x = torch.randint(0, VOCAB, (2, 9))
    assert torch.equal(loaded.eval()(x)[0], micro_model.eval()(x)[0])


def test_a_save_without_tokenizer_removes_the_one_an_earlier_save_left(tmp_path, micro_model):
    from sftlearn.tokenizer import CharTokenizer

    tokenizer = CharTokenizer("abcdef")
    assert tokenizer.vocab_size <= VOCAB
    ckpt.save_model(micro_model, tmp_path / "m", tokenizer)
    assert ckpt.load_tokenizer_from(tmp_path / "m").encode("cab") == tokenizer.encode("cab")
    ckpt.save_model(micro_model, tmp_path / "m")  # another model, no tokenizer this time
    assert ckpt.load_tokenizer_from(tmp_path / "m") is None
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]


def test_a_tokenizer_larger_than_the_vocabulary_is_refused_before_anything_is_written(tmp_path, micro_model):
    from sftlearn.tokenizer import CharTokenizer

    too_big = CharTokenizer("".join(chr(0x4E00 + i) for i in range(VOCAB)))
    assert too_big.vocab_size > VOCAB
    with pytest.raises(ValueError, match=rf"The tokenizer has {too_big.vocab_size} tokens but the model only {VOCAB} embeddings"):
        ckpt.save_model(micro_model, tmp_path / "m", too_big)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["SequenceClassifier", "TokenClassifier"])
def test_a_model_with_a_task_head_loads_as_the_same_kind(tmp_path, micro_model, kind):
    from sftlearn import heads

    torch.manual_seed(1)
    model = getattr(heads, kind)(micro_model, num_labels=3, dropout=0.1).eval()
    ckpt.save_model(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["head"] == {"kind": kind, "num_labels": 3, "dropout": 0.1}
    loaded = ckpt.load_model(tmp_path / "m").eval()
    assert type(loaded) is type(model) and loaded.num_labels == 3 and loaded.dropout.p == 0.1
    x = torch.randint(0, VOCAB, (2, 9))
    assert torch.equal(loaded(x)[0], model(x)[0])  # the head's weights came back too
    assert loaded.body.lm_head.weight is loaded.body.transformer.wte.weight


def test_a_plain_gpt_saves_no_head_and_an_unknown_head_is_named(tmp_path, micro_model):
    ckpt.save_model(micro_model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "head" not in config
    config["head"] = {"kind": "Regressor", "num_labels": 1}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="Unknown task head 'Regressor'.*SequenceClassifier"):
        ckpt.load_model(tmp_path / "m")


def test_tied_weights_are_stored_once(tmp_path, micro_model):
    from safetensors.torch import load_file

    ckpt.save_weights(micro_model, tmp_path / "w.safetensors")
    names = load_file(str(tmp_path / "w.safetensors"))
    assert "lm_head.weight" not in names and "transformer.wte.weight" in names


@pytest.mark.parametrize("with_head", [False, True])
def test_an_output_layer_untied_from_the_embedding_is_refused_before_anything_is_written(
        tmp_path, micro_model, with_head):
    # A GPT is built with lm_head tied to wte, so load_model could not take the separate
    # lm_head back (it said "unexpected lm_head.weight"): refuse the save and say how to fix it.
    from torch import nn

    from sftlearn.heads import SequenceClassifier

    micro_model.lm_head.weight = nn.Parameter(micro_model.transformer.wte.weight.detach().clone())
    model = SequenceClassifier(micro_model, num_labels=2) if with_head else micro_model
    at = "model.body." if with_head else "model."
    fix = rf"Tie them again before saving: {at}lm_head.weight = {at}transformer.wte.weight"
    with pytest.raises(ValueError, match=r"\(lm_head\) is not tied to the token embedding.*" + fix):
        ckpt.save_model(model, tmp_path / "m")
    with pytest.raises(ValueError, match=fix):
        ckpt.save_weights(model, tmp_path / "w.safetensors")
    assert list(tmp_path.iterdir()) == []
    micro_model.lm_head.weight = micro_model.transformer.wte.weight  # the fix the message gives
    ckpt.save_model(model, tmp_path / "m")
    assert type(ckpt.load_model(tmp_path / "m")) is type(model)


def test_weights_of_another_shape_are_refused(tmp_path, micro_model):
    ckpt.save_weights(micro_model, tmp_path / "w.safetensors")
    other = GPT(GPTConfig.preset("micro", vocab_size=VOCAB + 1, block_size=64))
    with pytest.raises(ValueError, match="do not fit this model.*transformer.wte.weight"):
        ckpt.load_weights(other, tmp_path / "w.safetensors")


def test_the_digest_depends_on_every_name_dtype_shape_and_value():
    base = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    digest = ckpt.tensors_digest(base)
    assert digest == ckpt.tensors_digest({k: t.clone() for k, t in reversed(base.items())})
    changed = [
        {**base, "a": base["a"] + torch.tensor([[0, 0, 0], [0, 0, 1e-6]])},  # one value
        {**base, "a": base["a"].reshape(3, 2)},                              # same bytes, other shape
        {**base, "a": base["a"].double()},                                   # other dtype
        {"A": base["a"], "b": base["b"]},                                    # other name
        {"a": base["a"]},                                                    # a tensor fewer
    ]
    assert len({digest, *(ckpt.tensors_digest(t) for t in changed)}) == 1 + len(changed)


def test_save_model_records_the_weights_digest_in_the_file_and_the_config(tmp_path, micro_model):
    from safetensors import safe_open

    ckpt.save_model(micro_model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / ckpt.CONFIG_FILE).read_text())
    with safe_open(str(tmp_path / "m" / ckpt.MODEL_FILE), framework="pt") as f:
        assert f.metadata()[ckpt.DIGEST_KEY] == config["weights_digest"]
    stored = {n: t for n, t in micro_model.state_dict().items() if n != "lm_head.weight"}
    assert config["weights_digest"] == ckpt.tensors_digest(stored)


def test_a_model_folder_mixing_two_saves_is_refused(tmp_path, micro_model):
    # A save interrupted after the weights and before config.json: the same architecture, so
    # the shapes fit, but the config vouches for other weights.
    ckpt.save_model(micro_model, tmp_path / "m")
    trained = copy.deepcopy(micro_model)
    with torch.no_grad():
        trained.transformer.wte.weight.add_(0.01)
    ckpt.save_weights(trained, tmp_path / "m" / ckpt.MODEL_FILE)
    with pytest.raises(ValueError, match="come from different saves.*interrupted.*Save the model again"):
        ckpt.load_model(tmp_path / "m")
    ckpt.save_model(trained, tmp_path / "m")
    assert torch.equal(ckpt.load_model(tmp_path / "m").transformer.wte.weight, trained.transformer.wte.weight)


def test_a_model_saved_without_a_digest_still_loads(tmp_path, micro_model):
    ckpt.save_model(micro_model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / ckpt.CONFIG_FILE).read_text())
    del config["weights_digest"]
    (tmp_path / "m" / ckpt.CONFIG_FILE).write_text(json.dumps(config))
    loaded = ckpt.load_model(tmp_path / "m")
    assert torch.equal(loaded.transformer.wte.weight, micro_model.transformer.wte.weight)


def test_missing_or_foreign_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved sftlearn model folder"):
        ckpt.load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other", "model": {}}))
    with pytest.raises(ValueError, match="expected 'sftlearn-gpt'"):
        ckpt.load_model(tmp_path)


def test_failed_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "state.json"
    ckpt.write_json(target, {"step": 1})

    def crash_half_way(tmp):
        tmp.write_text('{"step": 2, "trunc')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write(target, crash_half_way)
    assert ckpt.read_json(target) == {"step": 1}
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind


def test_interrupted_training_checkpoint_keeps_the_previous_one(tmp_path, micro_model, monkeypatch):
    ckpt.save_training_checkpoint(tmp_path, 5, micro_model, {"step": 5})
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        raise KeyboardInterrupt  # the user presses stop in the middle of writing

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_training_checkpoint(tmp_path, 10, micro_model, {"step": 10})
    monkeypatch.setattr(torch, "save", real_save)
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest.name == "step-0000005"
    assert ckpt.load_training_state(latest) == {"step": 5}
    assert ckpt.load_model(latest).config == micro_model.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-0000005"]


def test_only_the_newest_checkpoints_are_kept(tmp_path, micro_model):
    for step in (1, 2, 3, 4):
        ckpt.save_training_checkpoint(tmp_path, step, micro_model, {"step": step}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-0000003", "step-0000004"]
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000004"


def test_pruning_keeps_this_runs_previous_checkpoint_not_another_runs_later_one(tmp_path, micro_model):
    # A fresh run in a folder that holds another run's step 100: the new run's own previous
    # checkpoint must survive its next save (sorting names alone deleted it and kept step 100).
    ckpt.save_training_checkpoint(tmp_path, 100, micro_model, {"step": 100}, keep=2)
    for step in (10, 20, 30):
        ckpt.save_training_checkpoint(tmp_path, step, micro_model, {"step": step}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-0000020", "step-0000030", "step-0000100"]
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000030"


def test_pruning_leaves_folders_that_are_not_checkpoints_alone(tmp_path, micro_model):
    # A user's copy "step-0000100-best" is no checkpoint (its name is no step number): it was
    # deleted, and took the place of a real checkpoint among those kept.
    ckpt.save_training_checkpoint(tmp_path, 100, micro_model, {"step": 100})
    best = tmp_path / "step-0000100-best"
    best.mkdir()
    (best / "notes.txt").write_text("my best model")
    for step in (200, 300):
        ckpt.save_training_checkpoint(tmp_path, step, micro_model, {"step": step}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == [
        "step-0000100-best", "step-0000200", "step-0000300"]
    assert (best / "notes.txt").read_text() == "my best model"


def test_pruning_orders_checkpoints_by_step_not_by_name(tmp_path, micro_model):
    # Past step 9,999,999 the names get an 8th digit and sort before the 7-digit ones: sorted
    # by name, the newest previous checkpoint was the one deleted.
    for step in (9_999_998, 9_999_999, 10_000_000, 10_000_001):
        ckpt.save_training_checkpoint(tmp_path, step, micro_model, {"step": step}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-10000000", "step-10000001"]


@pytest.mark.parametrize("keep", [0, -1, 2.0, True, None])
def test_keep_must_be_a_positive_int_and_is_checked_before_anything_is_written(tmp_path, micro_model, keep):
    with pytest.raises(ValueError, match=r"keep must be a positive int.*the new one included"):
        ckpt.save_training_checkpoint(tmp_path, 1, micro_model, {"step": 1}, keep=keep)
    assert list(tmp_path.iterdir()) == []


def test_no_checkpoint_yet_and_dangling_pointer(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    ckpt.write_json(tmp_path / "latest.json", {"checkpoint": "step-0000009", "step": 9})
    with pytest.raises(FileNotFoundError, match="missing"):
        ckpt.latest_checkpoint(tmp_path)


class _RunsCode:
    """A pickle payload that would run a shell command when unpickled."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/sftlearn-pwned",))


@pytest.mark.parametrize("write", [
    lambda obj, f: pickle.dump(obj, f),  # starts with an instruction torch does not support
    lambda obj, f: pickle.dump(obj, f, protocol=2),
    torch.save,  # torch's own zip format
], ids=["pickle", "pickle-protocol-2", "torch.save"])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted file's, not ours
def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path, micro_model, write):
    folder = ckpt.save_training_checkpoint(tmp_path, 1, micro_model, {"step": 1})
    with open(folder / ckpt.STATE_FILE, "wb") as f:
        write({"step": _RunsCode()}, f)
    if os.path.exists("/tmp/sftlearn-pwned"):
        os.remove("/tmp/sftlearn-pwned")
    with pytest.raises(ckpt.UnsafeCheckpointError, match="could run code"):
        ckpt.load_training_state(folder)
    assert not os.path.exists("/tmp/sftlearn-pwned")


def _torch_file_cut_short() -> bytes:
    buffer = io.BytesIO()
    torch.save({"step": 1, "weights": torch.ones(50)}, buffer)
    return buffer.getvalue()[:300]


@pytest.mark.parametrize(("what", "content"), [
    ("an empty file", lambda: b""),
    ("random bytes", lambda: bytes(random.Random(0).randrange(256) for _ in range(200))),
    ("a text file", lambda: b"hello world\n"),
    ("a JSON file", lambda: b'{"step": 3}\n'),
    ("a torch file cut short", _torch_file_cut_short),
])
def test_a_trainer_state_that_is_no_torch_file_is_called_damaged(tmp_path, micro_model, what, content):
    # Such files raised a bare EOFError or KeyError, or were refused as holding "Python
    # objects that could run code", which sends the user looking for an attack.
    folder = ckpt.save_training_checkpoint(tmp_path, 1, micro_model, {"step": 1})
    (folder / ckpt.STATE_FILE).write_bytes(content())
    with pytest.raises(ValueError, match=r"trainer_state\.pt cannot be read.*damaged") as info:
        ckpt.load_training_state(folder)
    assert not isinstance(info.value, ckpt.UnsafeCheckpointError), what
