"""A base model that *can* copy, for the SFT study only (the course never uses it).

tiny-base cannot copy a list of words it has just read (``sftlearn.probes``: no induction
heads), and neither can its recipe run four times as long. This module builds a base that can,
to test whether copying is what chapter 09's stuck families (questions about a passage,
sentiment) are missing. Two changes to tiny-base's recipe make copying form within a CPU
budget:

1. **Smeared keys.** Each attention key becomes a learned mix (one gate per head) of the key
   of its own position and of the position before it, so one head can find "the place after
   an earlier copy of the current token" without first growing a previous-token head. Known
   to shorten the plateau before induction heads; the model is otherwise tiny-base's.
2. **Copying drills with a masked loss.** Rows of random one-token words, each run of words
   followed, after a few other words, by the same run again; the loss counts only the
   predictable part of the repeat. In ordinary text the few predictable tokens are drowned by
   the unpredictable ones: with the loss on every token, neither model leaves chance.

The drills come first (short rows of 48 tokens, ``drill_steps`` steps at lr 1e-3), then
tiny-base's own pretraining with a quarter of the blocks drills (128 tokens) so that the
stories do not wipe the skill out again (without them, the probe falls from 99% to 0%).

    python benchmarks/sft_ceiling.py --copying-base --probe --threads 2
"""

from __future__ import annotations

import random
import time

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset

from sftlearn import zoo
from sftlearn.attention import CausalSelfAttention
from sftlearn.data.lexicon import spelling_words
from sftlearn.device import seed_everything
from sftlearn.model import GPT, IGNORE_INDEX
from sftlearn.probes import copying_accuracy, one_token_words
from sftlearn.train import Trainer, TrainConfig


class SmearedKeyAttention(CausalSelfAttention):
    """Causal self-attention whose key at position t is g·k_t + (1-g)·k_{t-1}, g = sigmoid(gate)
    per head (0.5 at the start). The query and value are unchanged."""

    def __init__(self, config, layer_index: int = 0):
        super().__init__(config, layer_index)
        self.gate = torch.nn.Parameter(torch.zeros(config.n_head))

    def forward(self, x, attention_mask=None, kv_cache=None, return_weights=False):
        q, k, v = self.heads(x)  # each (B, H, T, hd)
        B, H, T, hd = k.shape
        past = kv_cache.length if kv_cache is not None else 0
        previous = k.new_zeros(B, H, 1, hd)  # before position 0: nothing
        if past:  # generation: the raw key of the last cached position, kept on the cache
            previous = kv_cache.raw_last_key[self.layer_index]
        if kv_cache is not None:
            if not hasattr(kv_cache, "raw_last_key"):
                kv_cache.raw_last_key = {}
            kv_cache.raw_last_key[self.layer_index] = k[:, :, -1:]
        k_before = torch.cat([previous, k[:, :, :-1]], dim=2)  # (B, H, T, hd)
        if attention_mask is not None:  # a padding position has no key to lend
            before_real = F.pad(attention_mask, (1, 0))[:, past: past + T].to(k.dtype)  # (B, T)
            k_before = k_before * before_real[:, None, :, None]
        g = torch.sigmoid(self.gate).view(1, -1, 1, 1)
        k = g * k + (1 - g) * k_before
        if kv_cache is not None:
            k, v = kv_cache.append(self.layer_index, k, v)
        return self.attend(q, k, v, attention_mask, return_weights)


def smeared_gpt(config) -> GPT:
    """tiny-base's GPT with every attention layer's keys smeared (a fresh, untrained model)."""
    model = GPT(config)
    for i, block in enumerate(model.transformer.h):
        attention = SmearedKeyAttention(config, i)
        attention.load_state_dict(block.attn.state_dict(), strict=False)  # keep GPT's init
        block.attn = attention
    return model


class CopyingDrills(Dataset):
    """``n`` rows of ``length`` tokens: runs of 6-20 random words, each followed by 0-12 other
    words and the same run again. Targets are -100 except inside a repeat (from its second
    word on, the first cannot be known)."""

    def __init__(self, n: int, length: int, word_ids: list[int], seed: int = 7):
        rng = random.Random(seed)
        self.rows = []
        for _ in range(n):
            ids, trained = [], []
            while len(ids) < length + 1:
                run = [rng.choice(word_ids) for _ in range(rng.randint(6, 20))]
                gap = [rng.choice(word_ids) for _ in range(rng.randint(0, 12))]
                ids += run + gap + run
                trained += [False] * (len(run) + len(gap) + 1) + [True] * (len(run) - 1)
            ids = torch.tensor(ids[: length + 1])
            targets = ids[1:].clone()
            targets[~torch.tensor(trained[1: length + 1])] = IGNORE_INDEX
            self.rows.append({"input_ids": ids[:-1], "targets": targets})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def build(drill_steps: int = 1500, drill_share: float = 0.25, progress: bool = False):
    """A copying tiny-base: (model, tokenizer). About 40 s of drills and 60 s of stories on
    two CPU cores. Prints the copying probe after each stage."""
    rec = zoo.recipe("tiny-base")
    tok = rec.make_tokenizer()
    words = one_token_words(tok, spelling_words())
    seed_everything(rec.seed)
    model = smeared_gpt(rec.model_config(tok.vocab_size))

    start = time.perf_counter()
    drills = CopyingDrills(drill_steps * 8, 48, words)
    config = TrainConfig(max_steps=drill_steps, batch_size=8, lr=1e-3, warmup_steps=20,
                         eval_interval=0, progress=progress)
    Trainer(model, drills, None, config).fit()
    print(f"drills, {drill_steps} steps in {time.perf_counter() - start:.0f} s: "
          f"{copying_accuracy(model.eval(), tok, spelling_words())}")

    start = time.perf_counter()
    stories, val = zoo.pretraining_data(rec, tok)
    n_drills = round(len(stories) * drill_share / (1 - drill_share))
    train = ConcatDataset([stories, CopyingDrills(n_drills, stories.block_size, words, seed=8)])
    trainer = Trainer(model.train(), train, val, rec.train_config(progress=progress))
    trainer.fit()
    print(f"stories with {drill_share:.0%} drills, {time.perf_counter() - start:.0f} s: "
          f"{trainer.history.summary()}; {copying_accuracy(model.eval(), tok, spelling_words())}")
    return model.cpu().eval(), tok


if __name__ == "__main__":
    build()
