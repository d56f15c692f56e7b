"""The ``sftlearn`` command: help texts, doctor, chat, errors, and an end-to-end demo run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sftlearn import cli, doctor
from sftlearn.checkpoint import save_model
from sftlearn.config import GPTConfig
from sftlearn.model import GPT

COMMANDS = ["doctor", "demo", "pretrain", "sft", "chat", "data", "build-exercises"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sftlearn " + command in capsys.readouterr().out


def test_python_dash_m_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "sftlearn", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert all(c in result.stdout for c in COMMANDS)


def test_doctor_reports_in_plain_words(capsys):
    code = cli.main(["doctor", "--quick"])
    out = capsys.readouterr().out
    assert "✓ Python" in out and "✓ PyTorch" in out and "device:" in out
    assert code == (1 if "✗" in out else 0)


def test_doctor_names_the_fix_for_an_old_torch(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    finding = doctor.check_torch()
    assert finding.ok is False and "older than 2.4" in finding.what
    assert "pip install" in finding.fix


def test_doctor_names_the_fix_for_a_bad_device_setting(monkeypatch):
    monkeypatch.setenv("SFTLEARN_DEVICE", "quantum")
    findings = doctor.check_device()
    assert findings[0].ok is False and "SFTLEARN_DEVICE" in findings[0].fix


@pytest.fixture
def saved_model(tmp_path):
    from sftlearn.tokenizer import CharTokenizer

    tokenizer = CharTokenizer.from_world()
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro", vocab_size=tokenizer.vocab_size))
    return save_model(model, tmp_path / "model", tokenizer)


def test_chat_answers_one_prompt(saved_model, capsys):
    assert cli.main(["chat", str(saved_model), "--prompt", "Where is Mia?",
                     "--max-new-tokens", "5"]) == 0
    answer = capsys.readouterr().out
    # at most 5 tokens; a special token the untrained model writes is shown by its name
    assert answer.endswith("\n") and len(answer) <= 5 * len("<|assistant|>") + 1


def test_chat_interactive_session_ends_on_empty_line(saved_model, monkeypatch, capsys):
    lines = iter(["hello", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert cli.main(["chat", str(saved_model), "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.count("model> ") == 1


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["chat", str(tmp_path / "nowhere"), "--prompt", "hi"]) == 2  # as every bad argument
    assert re.search("error: .* is neither a saved model folder nor a zoo model", capsys.readouterr().err)


def test_folder_without_tokenizer_is_a_clear_error(tmp_path, micro_model, capsys):
    save_model(micro_model, tmp_path / "m")
    assert cli.main(["chat", str(tmp_path / "m"), "--prompt", "hi"]) == 2
    assert "no tokenizer.json" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["chat", "{}", "--prompt", "hi"], ["demo", "--model", "{}"],
                                     ["sft", "--base", "{}", "--out", "unused"]])
def test_a_folder_holding_a_classifier_is_a_clear_error(tmp_path, micro_model, command, capsys):
    from sftlearn.heads import SequenceClassifier
    from sftlearn.tokenizer import CharTokenizer

    save_model(SequenceClassifier(micro_model, num_labels=2), tmp_path / "m", CharTokenizer("abc"))
    assert cli.main([arg.format(tmp_path / "m") for arg in command]) == 2
    assert "holds a SequenceClassifier, a GPT with a task head" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["pretrain", "--model", "micro-base", "--steps", "2"],
                                     ["sft", "--base", "micro-base", "--steps", "2"]])
def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, command, capsys, monkeypatch):
    # It used to fail after training, in save_model, with a FileExistsError traceback.
    from sftlearn import sft, zoo

    monkeypatch.setattr(cli, "_load", lambda *a, **k: pytest.fail("loaded a model"))
    monkeypatch.setattr(zoo, "pretrain", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(sft, "finetune", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "a-file").write_text("mine")
    assert cli.main([*command, "--out", str(tmp_path / "a-file")]) == 2
    assert "a-file is a file, not a folder. Give --out a folder" in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == "mine"


def test_a_run_that_diverges_is_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    from sftlearn import sft
    from sftlearn.tokenizer import CharTokenizer
    from sftlearn.train import NonFiniteLossError

    tokenizer = CharTokenizer.from_world()
    monkeypatch.setattr(cli, "_load", lambda *a, **k: (
        GPT(GPTConfig.preset("micro", vocab_size=tokenizer.vocab_size)), tokenizer))

    def diverge(*a, **k):
        raise NonFiniteLossError("The loss became nan at step 3. Try a 3-10x lower learning rate.")

    monkeypatch.setattr(sft, "finetune", diverge)
    assert cli.main(["sft", "--out", str(tmp_path / "out"), "--lr", "1e6"]) == 2
    assert "error: The loss became nan at step 3. Try a 3-10x lower" in capsys.readouterr().err
    # anything else is a bug: it keeps its traceback
    monkeypatch.setattr(sft, "finetune", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["sft", "--out", str(tmp_path / "out")])


def test_bad_device_is_reported_without_a_traceback(saved_model, capsys):
    code = cli.main(["chat", str(saved_model), "--prompt", "hi", "--device", "tpu"])
    assert code == 2
    assert "Unknown device 'tpu'" in capsys.readouterr().err


def test_data_stats_prints_the_report(capsys):
    assert cli.main(["data", "--stats"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "corpus" in out.lower()


def test_data_without_stats_shows_the_corpus_and_one_instruction_per_family(capsys):
    assert cli.main(["data"]) == 0
    out = capsys.readouterr().out
    assert "stories of the pretraining corpus" in out and "--stats" in out
    for family in ("qa", "sentiment", "entities", "translate", "arithmetic", "strings"):
        assert f"  {family} " in out


def test_pretrain_saves_a_model_that_chat_can_load(tmp_path, monkeypatch, capsys):
    from sftlearn import zoo
    from sftlearn.checkpoint import load_model, load_tokenizer_from

    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path / "cache"))  # the steps override must not reach the zoo
    assert cli.main(["pretrain", "--model", "micro-base", "--steps", "2", "--out", str(tmp_path / "m"),
                     "--quiet"]) == 0
    assert "step 2: train loss" in capsys.readouterr().out
    model, tokenizer = load_model(tmp_path / "m"), load_tokenizer_from(tmp_path / "m")
    assert model.config.vocab_size == tokenizer.vocab_size == 2048
    assert cli.main(["chat", str(tmp_path / "m"), "--prompt", "Who likes tea?", "--max-new-tokens", "3"]) == 0


def test_chat_says_when_it_cannot_answer_and_goes_on(saved_model, monkeypatch, capsys):
    lines = iter(["a snowman \u2603", "hello", ""])  # the character tokenizer has no snowman
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert cli.main(["chat", str(saved_model), "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "(cannot answer that:" in out and out.count("model> ") == 1


def test_build_exercises_writes_and_checks(tmp_path, capsys):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    src.mkdir()
    (src / "00_welcome.ipynb").write_bytes((Path(__file__).parents[1] / "solutions" / "00_welcome.ipynb").read_bytes())
    assert cli.main(["build-exercises", "--src", str(src), "--dst", str(dst)]) == 0
    assert "Wrote 1 exercise notebook(s)" in capsys.readouterr().out
    assert cli.main(["build-exercises", "--check", "--src", str(src), "--dst", str(dst)]) == 0
    (dst / "00_welcome.ipynb").write_text((dst / "00_welcome.ipynb").read_text() + " ")  # edited by hand
    assert cli.main(["build-exercises", "--check", "--src", str(src), "--dst", str(dst)]) == 1
    assert "00_welcome.ipynb" in capsys.readouterr().out
    (tmp_path / "a-file").write_text("mine")
    assert cli.main(["build-exercises", "--src", str(src), "--dst", str(tmp_path / "a-file")]) == 2
    assert "a-file is a file, not a folder" in capsys.readouterr().err


def test_pretrain_with_zero_steps_is_refused_not_run_at_full_length(capsys):
    assert cli.main(["pretrain", "--model", "micro-base", "--steps", "0", "--out", "unused"]) != 0
    assert "max_steps must be a positive int" in capsys.readouterr().err


def test_training_options_reach_the_config():
    config = cli._finetune_config(cli.build_parser().parse_args(["sft", "--out", "x"]))
    assert (config.max_steps, config.batch_size, config.lr, config.length_groups) == (1800, 16, 3e-3, 8)
    args = cli.build_parser().parse_args(["demo", "--length-groups", "0", "--steps", "7"])
    assert (cli._finetune_config(args).length_groups, cli._finetune_config(args).max_steps) == (0, 7)


@pytest.mark.parametrize("command", [["sft", "--out", "unused"], ["demo"]])
def test_bad_length_groups_fail_before_any_model_is_loaded(command, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load", lambda *a: pytest.fail("loaded a model"))
    assert cli.main([*command, "--length-groups", "-1"]) == 2
    assert "length_groups must be an int >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("command, option, message", [
    (["sft", "--out", "unused"], ["--eval-per-family", "0"], "--eval-per-family must be a positive int"),
    (["demo"], ["--train-per-family", "0"], "--train-per-family must be a positive int"),
    (["chat", "unused", "--prompt", "hi"], ["--top-p", "7"], r"top_p must be in \(0, 1\]"),
    (["chat", "unused", "--prompt", "hi"], ["--temperature", "-1"], "temperature must be a finite number >= 0"),
    (["chat", "unused", "--prompt", "hi"], ["--max-new-tokens", "-3"], "--max-new-tokens must be a positive int"),
])
def test_bad_counts_and_sampling_fail_before_any_model_is_loaded(command, option, message, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(cli, "_load", lambda *a, **k: pytest.fail("loaded a model"))
    assert cli.main([*command, *option]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_sft_saves_the_model_before_scoring_it(tmp_path, monkeypatch, capsys):
    # Scoring comes last: if it fails, the minutes of training are already on disk.
    from sftlearn import sft
    from sftlearn.tokenizer import CharTokenizer

    tokenizer = CharTokenizer.from_world()
    model = GPT(GPTConfig.preset("micro", vocab_size=tokenizer.vocab_size))
    monkeypatch.setattr(cli, "_load", lambda *a, **k: (model, tokenizer))

    class FakeTrainer:
        class history:
            @staticmethod
            def summary():
                return "trained"

    monkeypatch.setattr(sft, "finetune", lambda *a, **k: FakeTrainer())

    def failing_scorer(*a, **k):
        raise ValueError("scoring failed")

    monkeypatch.setattr(sft, "evaluate_tasks", failing_scorer)
    assert cli.main(["sft", "--out", str(tmp_path / "out")]) == 2
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert "scoring failed" in capsys.readouterr().err


def test_demo_runs_end_to_end_on_the_micro_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SFTLEARN_CACHE", str(tmp_path / "cache"))
    code = cli.main(["demo", "--model", "micro-base", "--steps", "4", "--train-per-family", "8",
                     "--eval-per-family", "2", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Before fine-tuning" in out and "After fine-tuning" in out
    assert out.count("overall") == 2 and "reference:" in out
    assert list((tmp_path / "cache").glob("micro-base-*/model.safetensors"))  # cached for next time
