"""Properties that must hold for *every* input, checked on random ones with hypothesis.

Other files already test: character and BPE round trips of arbitrary text
(test_tokenizer*.py), the chat template's loss mask for random conversation shapes
(test_datasets.py), and LoRA merge/unmerge (test_lora.py). This file adds what they do not:

- text mixing ordinary characters with special tokens round-trips, specials as ids 0..6, and a
  saved-and-loaded tokenizer encodes every text the same way;
- ``unknown="replace"`` loses exactly the unknown characters and nothing else;
- ``collate`` pads any mix of lengths correctly, and padding never changes the loss or the
  logits of the real tokens;
- causal attention never looks ahead, on both attention paths, with and without padding;
- generation with the KV cache equals generation without it, for any prompt lengths, left
  padding and sampling settings.

Examples per property are kept modest so the file runs in a few seconds on a 2-core CPU.
"""

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftlearn.config import GPTConfig
from sftlearn.data import alphabet, pretraining_text
from sftlearn.datasets import collate
from sftlearn.model import GPT, IGNORE_INDEX
from sftlearn.tokenizer import SPECIAL_TOKENS, BPETokenizer, CharTokenizer, load_tokenizer

VOCAB = 61
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORLD = alphabet()
CHAR = CharTokenizer.from_world()
BPE = BPETokenizer.train(pretraining_text(3000), 300)


def twin_models(**changes):
    """The same micro GPT behind the fused and the math attention path, in eval mode."""
    config = GPTConfig.preset("micro", vocab_size=VOCAB, block_size=48, **changes)
    torch.manual_seed(0)
    fused = GPT(config.with_(attention="fused")).eval()
    math_path = GPT(config.with_(attention="math")).eval()
    math_path.load_state_dict(fused.state_dict())
    return {"fused": fused, "math": math_path}


MODELS = twin_models()
PATHS = st.sampled_from(["fused", "math"])


def token_ids(draw, length, low=0):
    return torch.tensor(draw(st.lists(st.integers(low, VOCAB - 1), min_size=length, max_size=length)))


# ============================================================================ tokenizers
texts_with_specials = st.lists(
    st.one_of(st.text(alphabet=WORLD, max_size=15), st.sampled_from(SPECIAL_TOKENS)), max_size=6
)


@PROPERTY
@given(texts_with_specials, st.sampled_from(["char", "bpe"]))
def test_text_with_special_tokens_round_trips(pieces, kind):
    tok = CHAR if kind == "char" else BPE
    text = "".join(pieces)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    # Each special token in the text is one id, its fixed id, and no other id is below 7.
    specials_in_text = [SPECIAL_TOKENS.index(p) for p in pieces if p in SPECIAL_TOKENS]
    assert [i for i in ids if i < len(SPECIAL_TOKENS)] == specials_in_text
    ordinary = "".join(p for p in pieces if p not in SPECIAL_TOKENS)
    assert tok.decode(ids, skip_special=True) == ordinary


@FEW
@given(st.text(max_size=40), st.sampled_from(["char", "bpe"]))
def test_a_saved_tokenizer_encodes_every_text_alike(tmp_path_factory, text, kind):
    tok = CHAR if kind == "char" else BPE
    text = "".join(c for c in text if kind == "bpe" or c in WORLD)  # char: only known characters
    path = tmp_path_factory.mktemp("tok") / "tok.json"
    loaded = load_tokenizer(tok.save(path))
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.decode(tok.encode(text)) == text


@PROPERTY
@given(st.text(max_size=40))
def test_unknown_replace_loses_exactly_the_unknown_characters(text):
    tok = CharTokenizer("abc xyz", unknown="replace")
    ids = tok.encode(text)
    assert len(ids) == len(text)  # one id per character, known or not
    expected = "".join(c if c in "abc xyz" else "<|unk|>" for c in text)
    assert tok.decode(ids) == expected


# ============================================================ collate and padding masks
@st.composite
def ragged_items(draw):
    """1-5 items of lengths 1-20, each with some targets masked."""
    items = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(1, 20))
        ids = token_ids(draw, n, low=1)
        targets = token_ids(draw, n)
        masked = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        items.append({"input_ids": ids, "targets": targets.masked_fill(masked, IGNORE_INDEX)})
    return items


@PROPERTY
@given(ragged_items(), st.integers(0, 3))
def test_collate_pads_any_lengths_correctly(items, pad_id):
    batch = collate(items, pad_id=pad_id)
    lengths = [len(it["input_ids"]) for it in items]
    B, T = len(items), max(lengths)
    assert batch["input_ids"].shape == batch["targets"].shape == (B, T)
    padded = any(n < T for n in lengths)
    assert ("attention_mask" in batch) == padded  # only when something was padded
    mask = batch.get("attention_mask", torch.ones(B, T, dtype=torch.long))
    for b, (item, n) in enumerate(zip(items, lengths)):
        assert mask[b].tolist() == [1] * n + [0] * (T - n)
        assert torch.equal(batch["input_ids"][b, :n], item["input_ids"])
        assert torch.equal(batch["targets"][b, :n], item["targets"])
        assert batch["input_ids"][b, n:].tolist() == [pad_id] * (T - n)
        assert batch["targets"][b, n:].tolist() == [IGNORE_INDEX] * (T - n)  # never trained on


@FEW
@given(ragged_items(), PATHS)
def test_padding_changes_neither_the_loss_nor_the_real_logits(items, path):
    """The batch loss is the mean over every counted target of every item, computed alone."""
    model = MODELS[path]
    batch = collate(items)
    logits, loss = model(batch["input_ids"], targets=batch["targets"],
                         attention_mask=batch.get("attention_mask"))
    total, count = 0.0, 0
    for b, item in enumerate(items):
        alone, _ = model(item["input_ids"][None])  # (1, n, V)
        n = len(item["input_ids"])
        assert torch.allclose(logits[b, :n], alone[0], atol=1e-5)
        total += F.cross_entropy(alone[0], item["targets"], ignore_index=IGNORE_INDEX,
                                 reduction="sum").item()
        count += int((item["targets"] != IGNORE_INDEX).sum())
    if count == 0:
        assert torch.isnan(loss)  # nothing to average: the Trainer refuses such batches
    else:
        assert abs(loss.item() - total / count) < 1e-5


# ====================================================================== causal attention
@st.composite
def sequence_and_cut(draw):
    T = draw(st.integers(2, 48))
    cut = draw(st.integers(1, T - 1))
    B = draw(st.integers(1, 3))
    x = torch.stack([token_ids(draw, T) for _ in range(B)])
    later = torch.stack([token_ids(draw, T - cut) for _ in range(B)])
    return x, cut, later


@PROPERTY
@given(sequence_and_cut(), PATHS, st.booleans())
def test_changing_later_tokens_never_changes_earlier_logits(case, path, with_padding):
    x, cut, later = case
    changed = x.clone()
    changed[:, cut:] = later
    mask = None
    if with_padding:  # right padding: the changed tail is padding in one case, text in the other
        mask = torch.ones_like(x)
        mask[:, cut:] = 0
    model = MODELS[path]
    a, _ = model(x, attention_mask=mask)
    b, _ = model(changed, attention_mask=mask)
    assert torch.equal(a[:, :cut], b[:, :cut])  # exactly: the future is not even rounded in


@FEW
@given(st.integers(1, 48).flatmap(lambda T: st.lists(st.integers(0, VOCAB - 1), min_size=T, max_size=T)))
def test_attention_weights_are_causal_distributions(ids):
    maps = MODELS["math"].attention_maps(torch.tensor([ids]))  # (L, 1, H, T, T)
    T = len(ids)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert maps[..., future].abs().sum() == 0  # no weight at all on later positions
    assert torch.allclose(maps.sum(-1), torch.ones_like(maps.sum(-1)), atol=1e-6)


# ========================================================== generation with a KV cache
@st.composite
def generation_case(draw):
    """Prompts of different lengths, left-padded into one batch, and sampling settings."""
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    T = max(lengths)
    rows, mask = [], []
    for n in lengths:
        rows.append(torch.cat([torch.zeros(T - n, dtype=torch.long), token_ids(draw, n, low=1)]))
        mask.append([0] * (T - n) + [1] * n)
    settings_ = draw(st.fixed_dictionaries({
        "temperature": st.sampled_from([0.0, 0.7, 1.0, 1.5]),
        "top_k": st.one_of(st.none(), st.integers(1, VOCAB)),
        "top_p": st.one_of(st.none(), st.floats(0.05, 1.0)),
    }))
    new = draw(st.integers(0, 48 - T))
    padded = any(n < T for n in lengths)
    return torch.stack(rows), torch.tensor(mask) if padded else None, new, settings_, draw(st.integers(0, 99))


@FEW
@given(generation_case(), PATHS)
def test_generation_with_a_kv_cache_equals_without(case, path):
    prompt, mask, new, sampling, seed = case
    model = MODELS[path]
    runs = [
        model.generate(prompt, new, attention_mask=mask, use_cache=cache,
                       generator=torch.Generator().manual_seed(seed), **sampling)
        for cache in (True, False)
    ]
    assert runs[0].shape == (prompt.shape[0], prompt.shape[1] + new)
    assert torch.equal(runs[0][:, : prompt.shape[1]], prompt)
    assert torch.equal(runs[0], runs[1])
