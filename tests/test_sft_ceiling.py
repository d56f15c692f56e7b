"""The SFT study's variants (benchmarks/sft_ceiling.py, task_variants.py): the study compares
bases pretrained for longer, on larger batches or with another shape, so each variant must be
the recipe asked for, and a rerun must load the very same weights instead of training new ones;
its explanation of the sentiment family rests on a variant with a single clue, checked here."""

import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sft_ceiling  # noqa: E402  (a benchmark script: an error in it must fail, not skip)

from sftlearn import zoo  # noqa: E402


@pytest.fixture
def own_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(zoo, "RECIPES", dict(zoo.RECIPES))  # the variant is added to a copy


def test_variant_is_the_recipe_asked_for(own_zoo):
    shape = {"n_layer": 1, "n_head": 2, "n_embd": 16}
    model, tok = sft_ceiling.base(4, shape, batch=2, lr=1e-3, device="cpu")
    rec = zoo.recipe("tiny-base-variant")
    tiny = zoo.recipe("tiny-base")
    assert (model.config.n_layer, model.config.n_head, model.config.n_embd) == (1, 2, 16)
    assert model.config.block_size == tiny.model_overrides["block_size"]
    assert rec.train["max_steps"] == 4 and rec.train["batch_size"] == 2 and rec.train["lr"] == 1e-3
    # the other training settings are tiny-base's own
    assert rec.train["warmup_steps"] == tiny.train["warmup_steps"]
    # text in proportion to the blocks read: 4 x 2 blocks against tiny-base's 1,000 x 8
    assert rec.corpus_chars == tiny.corpus_chars * 8 // 8000
    assert zoo.cached_history("tiny-base-variant").steps[-1] == 4
    assert tok.vocab_size == model.config.vocab_size


def test_a_rerun_loads_the_cached_variant(own_zoo, monkeypatch):
    shape = {"n_layer": 1, "n_head": 2, "n_embd": 16}
    first, _ = sft_ceiling.base(3, shape, batch=2, device="cpu")

    def no_training(*args, **kwargs):
        raise AssertionError("the variant was trained again instead of loaded")

    monkeypatch.setattr(zoo, "pretrain", no_training)
    second, _ = sft_ceiling.base(3, shape, batch=2, device="cpu")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    # another setting is another recipe, hence another cache entry: it must be trained
    with pytest.raises(AssertionError, match="trained again"):
        sft_ceiling.base(3, shape, batch=2, lr=1e-3, device="cpu")


def test_the_gpu_runs_command_line_works_end_to_end_at_toy_size(own_zoo, capsys):
    # benchmarks/sft_scale.sh runs this script on a GPU nobody here has: its whole path (a
    # variant base with its own batch and shape, the probe, fine-tuning, both test splits, the
    # per-skill tally) is rehearsed here on the CPU at toy size, so a borrowed GPU hour is not
    # lost to an argument error or a crash after pretraining.
    sft_ceiling.main(["--pretrain-steps", "3", "--pretrain-batch", "2", "--layers", "1",
                      "--heads", "2", "--width", "16", "--steps", "3", "--batch", "4", "--n", "8",
                      "--test", "2", "--probe", "--device", "cpu", "--threads", "1", "--lr", "1e-3"])
    out = capsys.readouterr().out
    assert "copying 32 lists of 24 words" in out
    assert "3 steps x 4, lr 0.001" in out
    assert re.search(r"^overall\s+12\s", out, re.M)  # 2 test conversations x 6 families
    assert "held-out phrasings:" in out and "by skill: " in out
    assert zoo.cached_history("tiny-base-variant").steps[-1] == 3


@pytest.fixture
def own_families(monkeypatch):
    from sftlearn.data import reviews
    from sftlearn.data.tasks import FAMILIES

    monkeypatch.setitem(FAMILIES, "sentiment", FAMILIES["sentiment"])  # restored afterwards
    monkeypatch.setattr(reviews, "make_clause", reviews.make_clause)


def test_the_one_bit_sentiment_variant(own_families):
    """--liked-only --negated-share 0: the answer is the food of the review's positive
    adjective, the single clue left of the exclusive-or the study reports."""
    from sftlearn import data
    from sftlearn.data import reviews
    from sftlearn.data.tasks.sentiment import DISLIKE_QUESTION, LIKE_QUESTION

    clause = re.compile(r"the (\w+) (?:is|are) (?:(?:very|really|so) )?(\w+)", re.IGNORECASE)
    real = [e.messages[0]["content"] for e in
            data.sft_examples("test", n_per_family=60, families=["sentiment"])]
    # the family itself asks both questions (so the variant below changes something)
    assert any(p.endswith(LIKE_QUESTION) for p in real) and any(p.endswith(DISLIKE_QUESTION) for p in real)
    import task_variants
    task_variants.liked_only()
    task_variants.rarer_negation(0.0)
    for split in ("train", "test"):
        for e in data.sft_examples(split, n_per_family=60, families=["sentiment"]):
            prompt = e.messages[0]["content"]
            assert prompt.endswith(LIKE_QUESTION)
            clauses = clause.findall(prompt)  # [(food, first word after the verb)]
            assert len(clauses) == 2 and not any(adj in ("not", "never", "hardly")
                                                 for _, adj in clauses), prompt
            praised = [food for food, adj in clauses if adj in reviews.POSITIVE_WORDS]
            assert praised == [e.answer], prompt  # one praised food, and it is the answer
