"""The zoo: a recipe builds a model once, caches it, and later calls load the same weights."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sftlearn import zoo

# A recipe small enough to build in a second or two: the micro model, a few steps.
QUICK = replace(zoo.RECIPES["micro-base"], corpus_chars=30_000,
                train={"max_steps": 4, "batch_size": 4, "lr": 3e-3, "eval_interval": 0,
                       "eval_batches": 2, "log_interval": 2})


@pytest.fixture
def quick_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path))
    monkeypatch.setitem(zoo.RECIPES, "quick-base", QUICK)
    return tmp_path


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_first_call_builds_and_caches_then_loads(quick_zoo, capsys, monkeypatch):
    model, tok = zoo.base_model("quick-base", progress=False)
    path = zoo.cached_path("quick-base")
    assert path.parent == quick_zoo and path.is_dir()
    assert zoo.cached_history("quick-base").train_loss, "the training history is cached too"

    def no_training(*args, **kwargs):
        raise AssertionError("the second call trained again instead of loading the cache")

    monkeypatch.setattr(zoo, "pretrain", no_training)
    again, tok2 = zoo.base_model("quick-base", progress=False)
    assert _same_weights(model, again)
    assert tok2.vocab_size == tok.vocab_size and tok2.encode("Sam has a goat.") == tok.encode("Sam has a goat.")
    assert not again.training, "models come back in eval mode"


def test_building_is_deterministic(quick_zoo):
    first, _, _ = zoo.pretrain("quick-base", progress=False)
    second, _, _ = zoo.pretrain("quick-base", progress=False)
    assert _same_weights(first, second)


def test_store_puts_a_model_where_base_model_finds_it(quick_zoo):
    """Chapter 08 trains by the recipe in the lesson, then stores: later chapters load that."""
    model, tok, trainer = zoo.pretrain("quick-base", progress=False)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)  # make it recognisably this model, not a rebuilt one
    zoo.store("quick-base", model, tok, trainer.history)
    loaded, _ = zoo.base_model("quick-base", progress=False)
    assert _same_weights(model, loaded)
    assert not list(quick_zoo.glob(".quick-base*")), "no temporary folder is left behind"


def test_storing_again_replaces_the_model_and_a_failed_store_keeps_the_old_one(quick_zoo, monkeypatch):
    model, tok, trainer = zoo.pretrain("quick-base", progress=False)
    zoo.store("quick-base", model, tok)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    zoo.store("quick-base", model, tok)  # over the existing folder
    assert _same_weights(model, zoo.base_model("quick-base", progress=False)[0])
    assert [p.name for p in quick_zoo.iterdir()] == [zoo.cached_path("quick-base").name]

    def broken_save(model, folder, tokenizer=None):
        (folder / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(zoo, "save_model", broken_save)
    stored = model.lm_head.weight.detach().clone()
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        zoo.store("quick-base", model, tok)
    kept, _ = zoo.base_model("quick-base", progress=False)  # the previous model, whole
    assert torch.equal(kept.lm_head.weight, stored)
    assert [p.name for p in quick_zoo.iterdir()] == [zoo.cached_path("quick-base").name]


def test_a_failed_final_rename_puts_the_previous_model_back(quick_zoo, monkeypatch):
    model, tok, _ = zoo.pretrain("quick-base", progress=False)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)  # not what a rebuild would give
    zoo.store("quick-base", model, tok)
    stored = model.lm_head.weight.detach().clone()
    real_replace = zoo.os.replace

    def replace_failing_into_place(src, dst):
        if Path(dst) == zoo.cached_path("quick-base") and not Path(src).name.endswith(".previous"):
            raise OSError("rename failed")  # the new folder moving to the cache name
        real_replace(src, dst)

    monkeypatch.setattr(zoo.os, "replace", replace_failing_into_place)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    with pytest.raises(OSError, match="rename failed"):
        zoo.store("quick-base", model, tok)
    monkeypatch.setattr(zoo.os, "replace", real_replace)
    assert zoo.cached_path("quick-base").is_dir()
    kept, _ = zoo.base_model("quick-base", progress=False)
    assert torch.equal(kept.lm_head.weight, stored)
    assert [p.name for p in quick_zoo.iterdir()] == [zoo.cached_path("quick-base").name]


def test_a_changed_recipe_never_loads_stale_weights(quick_zoo, monkeypatch):
    zoo.base_model("quick-base", progress=False)
    old = zoo.cached_path("quick-base")
    monkeypatch.setitem(zoo.RECIPES, "quick-base", replace(QUICK, seed=1))
    assert zoo.cached_path("quick-base") != old
    assert zoo.cached_history("quick-base") is None


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match=r"Unknown model 'huge'.*tiny-base"):
        zoo.recipe("huge")


def test_the_course_recipe_fits_the_lesson_budget():
    """Chapter 08 trains tiny-base in the lesson (<= 90 s on 2 CPU cores). At ~20,000 tokens/s
    (the tiny preset at block 128 on an idle 2-core laptop), 50 s are about 1.05 M tokens."""
    rec = zoo.recipe("tiny-base")
    cfg = rec.train_config()
    tokens = cfg.max_steps * cfg.batch_size * cfg.grad_accum_steps * rec.model_config(2048).block_size
    assert tokens <= 1_050_000


def test_recipes_name_their_tokenizer_and_unknown_names_fail_clearly():
    assert zoo.recipe("tiny-base").tokenizer == "world-bpe"
    tok = zoo.recipe("micro-base").make_tokenizer()
    assert tok.vocab_size == 2048 and tok == zoo.recipe("tiny-base").make_tokenizer()
    assert replace(QUICK, tokenizer="world-chars").make_tokenizer().vocab_size == 292
    with pytest.raises(ValueError, match=r"Unknown tokenizer 'words'.*world-bpe.*world-chars"):
        replace(QUICK, tokenizer="words").make_tokenizer()


def test_the_tokenizer_is_part_of_the_cache_key():
    assert replace(QUICK, tokenizer="world-chars").fingerprint() != QUICK.fingerprint()


def test_the_worlds_code_is_part_of_the_cache_key(monkeypatch, tmp_path):
    # An editable install keeps its version number when the data code is edited: the key must
    # still change, or the zoo would hand out a model trained on the old world.
    before = QUICK.fingerprint()
    package = tmp_path / "sftlearn"
    for folder in ("data", "tokenizer"):
        shutil.copytree(Path(zoo.__file__).parent / folder, package / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(zoo, "__file__", str(package / "zoo.py"))
    zoo.world_digest.cache_clear()
    try:
        assert QUICK.fingerprint() == before  # the same code, copied: the same key
        lexicon = package / "data" / "lexicon.py"
        lexicon.write_text(lexicon.read_text() + "\n# one more food\n")
        zoo.world_digest.cache_clear()
        assert QUICK.fingerprint() != before
    finally:
        zoo.world_digest.cache_clear()
