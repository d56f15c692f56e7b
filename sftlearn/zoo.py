"""Named, reproducible pretrained models, built on first use and cached on disk.

Later chapters start from a pretrained base model. Instead of shipping weights, the course
ships the *recipe*: the tokenizer, the corpus, the model shape and the training settings. The
first call to ``base_model("tiny-base")`` trains it (one to two minutes on a 2-core CPU) and saves
it under the cache folder; later calls load it in a moment. Chapter 08 runs the same recipe
step by step, so the model you train there is the one the zoo gives you.

Cache folder: ``$SFTLEARN_CACHE`` if set, else ``~/.cache/sftlearn``. A cached model is keyed
by a hash of its recipe, the package version and the source of the code that writes the corpus
and builds the tokenizers (``sftlearn/data``, ``sftlearn/tokenizer``), so neither a changed
recipe nor a changed world (an instructor adding foods, say) ever loads stale weights.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__, distributed
from .checkpoint import load_model, load_tokenizer_from, save_model, write_json
from .config import GPTConfig
from .files import atomic_write_dir
from .train import TrainConfig, Trainer

ENV_CACHE = "SFTLEARN_CACHE"


@dataclass(frozen=True)
class PretrainRecipe:
    """How to build one base model from nothing."""

    preset: str = "tiny"
    tokenizer: str = "world-bpe"  # a name in TOKENIZERS
    model_overrides: dict = field(default_factory=dict)  # GPTConfig fields changed from the preset
    corpus_chars: int = 1_500_000  # characters of story text to generate
    val_fraction: float = 0.05
    train: dict = field(default_factory=dict)  # TrainConfig fields
    seed: int = 0

    def make_tokenizer(self):
        """The recipe's tokenizer, built from the world (deterministic, a second or less)."""
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"Unknown tokenizer {self.tokenizer!r}. Choose from: {', '.join(TOKENIZERS)}.")
        return TOKENIZERS[self.tokenizer]()

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig.preset(self.preset, vocab_size=vocab_size, **self.model_overrides)

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(**{"seed": self.seed, **self.train, **overrides})

    def fingerprint(self) -> str:
        text = json.dumps({"recipe": asdict(self), "version": __version__, "world": world_digest()},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def world_digest() -> str:
    """A hash of the code behind the corpus and the tokenizers. The version alone is not enough:
    in an editable install, edited data code keeps the version number it had."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for folder in ("data", "tokenizer"):
        for file in sorted((package / folder).rglob("*.py")):
            digest.update(file.relative_to(package).as_posix().encode())
            digest.update(file.read_bytes().replace(b"\r\n", b"\n"))  # the same on every checkout
    return digest.hexdigest()[:16]


def _world_bpe():
    from .tokenizer import BPETokenizer

    return BPETokenizer.from_world(2048)


def _world_chars():
    from .tokenizer import CharTokenizer

    return CharTokenizer.from_world()


# The tokenizers a recipe can name. Byte-pair encoding is the default: with a word per token,
# a story or a conversation is about 3.6 times shorter than in characters, so the same minute
# of CPU trains on 3.6 times more text, and copying a name from a prompt is copying one token.
TOKENIZERS = {"world-bpe": _world_bpe, "world-chars": _world_chars}

RECIPES: dict[str, PretrainRecipe] = {
    # The course's base model: a GPT over the world's BPE tokens, pretrained on the stories.
    "tiny-base": PretrainRecipe(
        preset="tiny",
        # 128 tokens hold about 460 characters: several sentences of a story, and every
        # instruction conversation of the world (the longest is about 50 tokens).
        model_overrides={"block_size": 128},
        corpus_chars=4_000_000,  # ~1.1 M tokens, so training sees (almost) no block twice
        # ~1 M tokens: what an idle 2-core laptop trains in about 50 s, so chapter 08 can run
        # the whole recipe.
        train={"max_steps": 1000, "batch_size": 8, "lr": 3e-3, "warmup_steps": 20,
               "eval_interval": 200, "eval_batches": 16, "log_interval": 25},
    ),
    # The smallest model that still learns something: for tests and quick demos.
    "micro-base": PretrainRecipe(
        preset="micro",
        model_overrides={"block_size": 128},
        corpus_chars=200_000,
        train={"max_steps": 60, "batch_size": 16, "lr": 3e-3, "warmup_steps": 5,
               "eval_interval": 30, "eval_batches": 4, "log_interval": 10},
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "sftlearn")


def recipe(name: str) -> PretrainRecipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown model {name!r}. The zoo has: {', '.join(RECIPES)}.")
    return RECIPES[name]


def pretraining_data(rec: PretrainRecipe, tokenizer):
    """Train and validation next-token blocks for a recipe."""
    from .data import pretraining_text
    from .datasets import LMBlockDataset

    block = rec.model_config(tokenizer.vocab_size).block_size
    text = pretraining_text(rec.corpus_chars, seed=rec.seed)
    ids = tokenizer.encode(text)
    n_val = max(int(len(ids) * rec.val_fraction), block + 1)
    train = LMBlockDataset(ids[:-n_val], block)
    val = LMBlockDataset(ids[-n_val:], block)
    return train, val


def pretrain(name: str = "tiny-base", progress: bool = True, device: str | None = None, **train_overrides):
    """Train a zoo model from scratch; returns (model, tokenizer, trainer). Nothing is cached."""
    from .device import seed_everything
    from .model import GPT

    rec = recipe(name)
    tokenizer = rec.make_tokenizer()
    train, val = pretraining_data(rec, tokenizer)
    seed_everything(rec.seed)
    model = GPT(rec.model_config(tokenizer.vocab_size))
    config = rec.train_config(progress=progress, device=device, **train_overrides)
    trainer = Trainer(model, train, val, config)
    trainer.fit()
    return model.cpu().eval(), tokenizer, trainer


def cached_path(name: str) -> Path:
    return cache_dir() / f"{name}-{recipe(name).fingerprint()}"


def base_model(name: str = "tiny-base", rebuild: bool = False, progress: bool = True,
               device: str | None = None):
    """The pretrained model ``name`` and its tokenizer, trained on first use and then cached."""
    path = cached_path(name)
    if path.exists() and not rebuild:
        return load_model(path, device or "cpu"), load_tokenizer_from(path)
    if progress:
        print(f"Building {name!r} (first use; it is cached in {path.parent} afterwards)...")
    model, tokenizer, trainer = pretrain(name, progress=progress, device=device)
    # Under torchrun every process trained the same model together: one writes the cache, and
    # the others wait until it is complete, so none reads a half-written folder.
    if trainer.is_main:
        store(name, model, tokenizer, trainer.history)
    distributed.barrier()
    # pretrain hands the model back on the CPU; the cached path loads it onto `device`
    return model.to(device or "cpu"), tokenizer


def store(name: str, model, tokenizer, history=None) -> Path:
    """Cache ``model`` as the zoo's ``name``: what chapter 08 does with the model it trains by
    following the recipe, so that later chapters load it instead of training their own."""

    def write(tmp: Path) -> None:
        save_model(model, tmp, tokenizer)
        if history is not None:
            write_json(tmp / "history.json", history.to_dict())

    # Another process (a second notebook) never sees half a model, nor a missing one.
    return atomic_write_dir(cached_path(name), write)


def cached_history(name: str = "tiny-base"):
    """The training history saved with a cached model (None if it is not built yet)."""
    from .checkpoint import read_json
    from .history import History

    file = cached_path(name) / "history.json"
    return History.from_dict(read_json(file)) if file.exists() else None
