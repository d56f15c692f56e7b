"""The study's copying base (benchmarks/copying_base.py): smeared-key attention and the drills.

The SFT study's conclusions about copying rest on these two pieces, so they are checked against
the package's own attention and against hand-built rows.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import copying_base  # noqa: E402  (a benchmark script: an error in it must fail, not skip)

from sftlearn.attention import CausalSelfAttention  # noqa: E402
from sftlearn.config import GPTConfig  # noqa: E402
from sftlearn.kv_cache import KVCache  # noqa: E402
from sftlearn.model import IGNORE_INDEX  # noqa: E402

CONFIG = GPTConfig.preset("micro", vocab_size=50, block_size=32)


def smeared_and_plain(gate: float):
    torch.manual_seed(0)
    plain = CausalSelfAttention(CONFIG).eval()
    smeared = copying_base.SmearedKeyAttention(CONFIG).eval()
    smeared.load_state_dict(plain.state_dict(), strict=False)
    smeared.gate.data.fill_(gate)
    return smeared, plain


def test_gate_fully_open_is_plain_attention():
    smeared, plain = smeared_and_plain(gate=50.0)  # sigmoid(50) = 1: keys unchanged
    x = torch.randn(2, 9, CONFIG.n_embd)
    torch.testing.assert_close(smeared(x)[0], plain(x)[0], atol=1e-6, rtol=1e-5)


def test_gate_closed_uses_the_previous_key():
    smeared, _ = smeared_and_plain(gate=-50.0)  # sigmoid(-50) = 0: each key is the one before
    x = torch.randn(1, 7, CONFIG.n_embd)
    _, weights = smeared(x, return_weights=True)  # (1, H, T, T)
    C, H, hd = CONFIG.n_embd, CONFIG.n_head, CONFIG.head_dim
    q, k, _ = smeared.c_attn(x).split(C, dim=2)
    q = q.view(1, 7, H, hd).transpose(1, 2)
    k = k.view(1, 7, H, hd).transpose(1, 2)
    k_before = torch.cat([torch.zeros_like(k[:, :, :1]), k[:, :, :-1]], dim=2)
    scores = (q @ k_before.transpose(-2, -1)) / hd ** 0.5
    scores = scores.masked_fill(torch.ones(7, 7).triu(1).bool(), float("-inf"))
    torch.testing.assert_close(weights, torch.softmax(scores, dim=-1), atol=1e-6, rtol=1e-5)


def test_smeared_gpt_gives_the_same_logits_with_a_cache_and_with_left_padding():
    torch.manual_seed(1)
    model = copying_base.smeared_gpt(CONFIG).eval()
    for block in model.transformer.h:
        block.attn.gate.data.normal_()
    ids = torch.randint(1, 50, (1, 9))
    with torch.no_grad():
        full, _ = model(ids)  # (1, 9, V)
        # prompt of 6, then one token at a time through the cache (as generation does)
        cache = KVCache(CONFIG.n_layer, 1, CONFIG.n_head, CONFIG.head_dim, 9, ids.device)
        steps = [model(ids[:, :6], kv_cache=cache)[0]]
        steps += [model(ids[:, t:t + 1], kv_cache=cache)[0] for t in range(6, 9)]
        torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
        # three padding tokens in front change nothing for the real ones
        padded = torch.cat([torch.full((1, 3), 7), ids], dim=1)
        mask = torch.tensor([[0, 0, 0] + [1] * 9])
        torch.testing.assert_close(model(padded, attention_mask=mask)[0][:, 3:], full,
                                   atol=1e-5, rtol=1e-4)
    assert all(isinstance(b.attn, copying_base.SmearedKeyAttention) for b in model.transformer.h)


def test_drills_train_only_the_predictable_part_of_each_repeat():
    drills = copying_base.CopyingDrills(20, 48, word_ids=list(range(100, 140)), seed=3)
    assert len(drills) == 20
    for row in drills:
        ids, targets = row["input_ids"], row["targets"]
        assert ids.shape == targets.shape == (48,)
        trained = targets != IGNORE_INDEX
        assert trained.any()
        for t in torch.nonzero(trained).flatten().tolist():
            # A trained target is the next word, and the word before it occurred earlier
            # followed by that same word: only copying can predict it.
            assert targets[t] == (ids[t + 1] if t + 1 < 48 else targets[t])
            earlier = [j for j in range(t) if ids[j] == ids[t] and ids[j + 1] == targets[t]]
            assert earlier, f"target at {t} cannot be copied from earlier in the row"
