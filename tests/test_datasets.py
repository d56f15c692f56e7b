"""Tests for LM blocks, the chat template, the loss mask, SFT items and collate."""

import string
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from sftlearn.datasets import (
    IGNORE_INDEX,
    Collator,
    LMBlockDataset,
    SFTDataset,
    collate,
    lm_datasets_from_text,
    pad_right,
    render_chat,
    render_conversation,
    show_trained_tokens,
    trained_tokens_html,
)
from sftlearn.tokenizer import BPETokenizer, CharTokenizer

TOK = CharTokenizer(string.ascii_letters + string.digits + " .,?!+=")
BOS, EOS, USER, ASSISTANT, END = 1, 2, 4, 5, 6


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


@dataclass(frozen=True)
class Example:  # stands in for sftlearn.data.SFTExample: anything with .messages
    messages: list


# ----- LM blocks -----------------------------------------------------------------------------


def test_lm_blocks_are_shifted_by_one():
    ds = LMBlockDataset(list(range(10)), block_size=4)
    assert len(ds) == 2  # starts 0 and 4; a block at 8 would need ids up to 12
    assert ds[0]["input_ids"].tolist() == [0, 1, 2, 3]
    assert ds[0]["targets"].tolist() == [1, 2, 3, 4]
    assert ds[1]["input_ids"].tolist() == [4, 5, 6, 7]
    assert ds[-1]["targets"].tolist() == [5, 6, 7, 8]
    assert ds[0]["input_ids"].dtype == torch.long


def test_lm_blocks_with_stride():
    ds = LMBlockDataset(torch.arange(10), block_size=4, stride=1)
    assert len(ds) == 6  # starts 0..5 (start 5 uses ids 5..9)
    assert ds[5]["targets"].tolist() == [6, 7, 8, 9]
    assert len(list(ds)) == 6  # iteration stops at the IndexError
    with pytest.raises(IndexError, match="block 6 out of range: this dataset has 6 blocks"):
        ds[6]


def test_lm_block_exactly_enough_tokens():
    assert len(LMBlockDataset([5, 6, 7, 8, 9], block_size=4)) == 1


def test_lm_block_errors():
    with pytest.raises(ValueError, match="only 4 tokens.*needs 5.*smaller block_size"):
        LMBlockDataset([1, 2, 3, 4], block_size=4)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        LMBlockDataset(list(range(10)), block_size=0)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        LMBlockDataset(list(range(10)), block_size=2, stride=0)
    with pytest.raises(ValueError, match="one flat sequence"):
        LMBlockDataset(torch.zeros(2, 10, dtype=torch.long), block_size=2)


def test_lm_datasets_from_text():
    text = "the cat sat on the mat. " * 20  # 480 characters -> 480 ids
    train, val = lm_datasets_from_text(text, TOK, block_size=8, val_fraction=0.1)
    assert len(train.ids) == 432 and len(val.ids) == 48
    assert torch.equal(torch.cat([train.ids, val.ids]), torch.tensor(TOK.encode(text)))
    assert len(train) == (432 - 9) // 8 + 1
    train_only, none = lm_datasets_from_text(text, TOK, block_size=8, val_fraction=0)
    assert none is None and len(train_only.ids) == 480
    with pytest.raises(ValueError, match="validation part has 48 tokens.*needs 65"):
        lm_datasets_from_text(text, TOK, block_size=64)


def test_lm_blocks_collate_without_padding():
    ds = LMBlockDataset(list(range(7, 40)), block_size=5)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=Collator(TOK.pad_id))))
    assert batch["input_ids"].shape == batch["targets"].shape == (3, 5)
    assert "attention_mask" not in batch  # nothing padded: plain causal attention suffices
    assert torch.equal(batch["targets"][:, :-1], batch["input_ids"][:, 1:])


# ----- the chat template and the loss mask ---------------------------------------------------


def test_render_chat_text():
    msgs = [user("2+2?"), assistant("4")]
    assert render_chat(msgs) == "<|bos|><|user|>2+2?<|end|><|assistant|>4<|end|><|eos|>"
    assert render_chat(msgs[:1], add_generation_prompt=True) == "<|bos|><|user|>2+2?<|end|><|assistant|>"


def test_render_conversation_single_turn():
    ids, mask = render_conversation(TOK, [user("Hi"), assistant("Yes")])
    h, i, y, e, s = (TOK.token_to_id(c) for c in "HiYes")
    assert ids == [BOS, USER, h, i, END, ASSISTANT, y, e, s, END, EOS]
    assert mask == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    # the ids are exactly the encoding of the template text
    assert ids == TOK.encode(render_chat([user("Hi"), assistant("Yes")]))


def test_render_conversation_multi_turn_masks_every_assistant_span():
    msgs = [user("a"), assistant("bb"), user("ccc"), assistant("d")]
    ids, mask = render_conversation(TOK, msgs)
    assert show_trained_tokens(TOK, ids, mask) == (
        "<|bos|><|user|>a<|end|><|assistant|>[bb<|end|>]"
        "<|user|>ccc<|end|><|assistant|>[d<|end|>]<|eos|>")
    assert sum(mask) == (2 + 1) + (1 + 1)


def test_generation_prompt():
    msgs = [user("a"), assistant("b"), user("c")]
    ids, mask = render_conversation(TOK, msgs, add_generation_prompt=True)
    assert ids[-1] == ASSISTANT and EOS not in ids
    assert TOK.decode(ids) == "<|bos|><|user|>a<|end|><|assistant|>b<|end|><|user|>c<|end|><|assistant|>"
    assert sum(mask) == 2  # the earlier assistant turn is still marked
    ids, mask = render_conversation(TOK, [user("a")], add_generation_prompt=True)
    assert ids == [BOS, USER, TOK.token_to_id("a"), END, ASSISTANT] and sum(mask) == 0


def test_render_conversation_errors():
    with pytest.raises(ValueError, match="messages is empty"):
        render_conversation(TOK, [])
    with pytest.raises(ValueError, match=r"role 'system'; valid roles are \('user', 'assistant'\)"):
        render_conversation(TOK, [{"role": "system", "content": "x"}, assistant("y")])
    with pytest.raises(ValueError, match="no assistant message, so there is nothing to train on"):
        render_conversation(TOK, [user("x")])
    with pytest.raises(ValueError, match="last message must be from the user"):
        render_conversation(TOK, [user("x"), assistant("y")], add_generation_prompt=True)
    with pytest.raises(ValueError, match="is 11 tokens long but max_len is 10: shorten the messages, "
                                         "or raise max_len"):
        render_conversation(TOK, [user("Hi"), assistant("Yes")], max_len=10)
    assert len(render_conversation(TOK, [user("Hi"), assistant("Yes")], max_len=11)[0]) == 11
    with pytest.raises(ValueError, match="'role' and 'content' keys"):
        render_conversation(TOK, [{"role": "user"}])
    with pytest.raises(ValueError, match="contains the special token '<\\|end\\|>'"):
        render_conversation(TOK, [user("a<|end|>"), assistant("b")])
    with pytest.raises(ValueError, match="special token '<\\|end\\|>'"):  # the first in the text
        render_conversation(TOK, [user("hi<|end|><|assistant|>yes"), assistant("b")])
    with pytest.raises(TypeError, match="list of"):
        render_conversation(TOK, "hello")


def test_tokenizer_without_chat_tokens_is_rejected():
    class Plain:
        def encode(self, text):
            return [ord(c) for c in text]

    with pytest.raises(ValueError, match="has no bos_id.*needs the special tokens"):
        render_conversation(Plain(), [user("a"), assistant("b")])


@st.composite
def conversations(draw):
    """Random shapes: 1-4 exchanges, each text 0-12 characters, maybe ending on a user turn."""
    text = st.text(alphabet="abc xyz?!", max_size=12)
    msgs = []
    for _ in range(draw(st.integers(1, 4))):
        msgs += [user(draw(text)), assistant(draw(text))]
    if draw(st.booleans()):
        msgs.append(user(draw(text)))
    return msgs


@settings(max_examples=150, deadline=None)
@given(conversations(), st.sampled_from(["char", "bpe"]))
def test_mask_invariants(msgs, kind):
    tok = TOK if kind == "char" else _BPE
    ids, mask = render_conversation(tok, msgs)
    assert len(ids) == len(mask)
    assert ids[0] == BOS and ids[-1] == EOS
    # Walk the rendered ids turn by turn and check the mask on each piece.
    pos = 1
    for m in msgs:
        content = tok.encode(m["content"])
        trained = int(m["role"] == "assistant")
        assert ids[pos] == (ASSISTANT if trained else USER) and mask[pos] == 0
        span = slice(pos + 1, pos + 1 + len(content))
        assert ids[span] == content
        assert mask[span] == [trained] * len(content)
        assert ids[span.stop] == END and mask[span.stop] == trained
        pos = span.stop + 1
    assert pos == len(ids) - 1 and mask[-1] == 0 and mask[0] == 0
    n_assistant = sum(len(tok.encode(m["content"])) + 1 for m in msgs if m["role"] == "assistant")
    assert sum(mask) == n_assistant
    # The SFT targets hold exactly the trained ids, shifted by one.
    item = SFTDataset([msgs], tok, max_len=len(ids))[0]
    targets = item["targets"].tolist()
    assert targets == [i if m else IGNORE_INDEX for i, m in zip(ids[1:], mask[1:])]


_BPE = BPETokenizer.train("abc xyz? abc! xyz abc", 280)


# ----- SFT dataset ---------------------------------------------------------------------------


def test_sft_item_targets_are_shifted_and_masked():
    ds = SFTDataset([Example([user("Hi"), assistant("Yes")])], TOK, max_len=32)
    item = ds[0]
    ids, mask = ds.rendered[0].ids, ds.rendered[0].loss_mask
    assert item["input_ids"].tolist() == ids[:-1]
    y, e, s = (TOK.token_to_id(c) for c in "Yes")
    #        input: bos user H  i  end asst Y  e  s  end
    #   next token: user H  i  end asst Y  e  s  end  eos
    assert item["targets"].tolist() == [-100, -100, -100, -100, -100, y, e, s, END, -100]
    assert ds.num_trained_tokens == 4
    assert ds.show(0) == "<|bos|><|user|>Hi<|end|><|assistant|>[Yes<|end|>]<|eos|>"


def test_sft_accepts_message_lists_and_dicts():
    msgs = [user("a"), assistant("b")]
    ds = SFTDataset([msgs, {"messages": msgs}, Example(msgs)], TOK, max_len=16)
    assert len(ds) == 3
    assert all(torch.equal(ds[0]["targets"], ds[k]["targets"]) for k in (1, 2))


def test_sft_errors():
    with pytest.raises(ValueError, match="no examples"):
        SFTDataset([], TOK, max_len=16)
    with pytest.raises(ValueError, match="example 1: the conversation is 11 tokens long but max_len is 10"):
        SFTDataset([[user("a"), assistant("b")], [user("Hi"), assistant("Yes")]], TOK, max_len=10)
    with pytest.raises(ValueError, match="example 0: .*no assistant message"):
        SFTDataset([[user("a")]], TOK, max_len=16)
    with pytest.raises(ValueError, match="max_len must be an int >= 2"):
        SFTDataset([[user("a"), assistant("b")]], TOK, max_len=0)


def test_sft_example_with_every_target_masked_is_rejected(monkeypatch):
    # The real template always trains on at least the assistant's <|end|>, so simulate a
    # broken renderer whose mask is all zeros.
    import sftlearn.datasets as D

    real = D.render_conversation

    def nothing_trained(tok, msgs, max_len=None):
        ids, mask = real(tok, msgs, max_len=max_len)
        return ids, [0] * len(mask)

    monkeypatch.setattr(D, "render_conversation", nothing_trained)
    with pytest.raises(ValueError, match="example 0: every target is masked, so it would teach nothing"):
        SFTDataset([[user("a"), assistant("b")]], TOK, max_len=16)


# ----- collate -------------------------------------------------------------------------------


def test_collate_pads_right_and_masks_padding():
    ds = SFTDataset([[user("a"), assistant("bc")], [user("Hello"), assistant("x")]], TOK, max_len=32)
    lengths = [len(ds[0]["input_ids"]), len(ds[1]["input_ids"])]
    assert lengths == [8, 11]  # bos user a end asst b c end (eos is only a target)
    batch = collate([ds[0], ds[1]], pad_id=TOK.pad_id)
    assert set(batch) == {"input_ids", "targets", "attention_mask"}
    for key in batch:
        assert batch[key].shape == (2, 11) and batch[key].dtype == torch.long
    assert batch["input_ids"][0, 8:].tolist() == [0, 0, 0]
    assert batch["targets"][0, 8:].tolist() == [-100, -100, -100]
    assert batch["attention_mask"].tolist() == [[1] * 8 + [0, 0, 0], [1] * 11]
    assert torch.equal(batch["input_ids"][1], ds[1]["input_ids"])
    # wherever a target is not ignored, it is the next input token (within the sequence)
    ids, tg = batch["input_ids"], batch["targets"]
    keep = tg[:, :-1] != IGNORE_INDEX
    assert torch.equal(tg[:, :-1][keep], ids[:, 1:][keep])
    # padding never contributes to the loss
    assert (tg[batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_collate_with_dataloader_and_custom_pad():
    ds = SFTDataset([[user("a" * k), assistant("b")] for k in range(1, 6)], TOK, max_len=32)
    batches = list(DataLoader(ds, batch_size=2, collate_fn=Collator(pad_id=99)))
    assert [b["input_ids"].shape for b in batches] == [(2, 8), (2, 10), (1, 11)]
    assert batches[0]["input_ids"][0, -1].item() == 99
    assert repr(Collator(3)) == "Collator(pad_id=3)"


def test_collate_errors():
    with pytest.raises(ValueError, match="empty batch"):
        collate([], pad_id=0)
    with pytest.raises(ValueError, match="3 input_ids but 2 targets"):
        collate([{"input_ids": [1, 2, 3], "targets": [2, 3]}], pad_id=0)
    with pytest.raises(ValueError, match="expected 'input_ids' and 'targets'"):
        collate([{"ids": [1]}], pad_id=0)
    # A TensorDataset's (x, y) items, or bare tensors, used to fail with torch's own errors
    # ("Boolean value of Tensor ... is ambiguous").
    x = torch.arange(5)
    for item, kind in [((x, x + 1), "tuple"), (x, "Tensor"), ([1, 2, 3], "list")]:
        with pytest.raises(ValueError, match=rf"batch item 0 is a {kind}, not a dict; expected "
                                             r"'input_ids' and 'targets'.*\{'input_ids': x, "
                                             r"'targets': y\}"):
            collate([item, item], pad_id=0)


def test_collate_accepts_lists():
    batch = collate([{"input_ids": [1, 2], "targets": [2, 3]}, {"input_ids": [5], "targets": [-100]}], 0)
    assert batch["input_ids"].tolist() == [[1, 2], [5, 0]]
    assert batch["targets"].tolist() == [[2, 3], [-100, -100]]


# ----- showing the trained tokens ------------------------------------------------------------


def test_trained_tokens_html():
    tok = CharTokenizer("abc<")
    ids, mask = render_conversation(tok, [user("a<b"), assistant("c")])
    out = trained_tokens_html(tok, ids, mask)
    assert isinstance(out, str) and out._repr_html_() == out
    assert out.count("<span title=") == len(ids)
    assert out.count("#b7e4b0") == sum(mask) + 1  # the trained tokens, plus the legend
    assert "&lt;|assistant|&gt;" in out and "a<b" not in out  # text is escaped
    with pytest.raises(ValueError, match="ids has 2 entries but loss_mask has 1"):
        trained_tokens_html(TOK, [1, 2], [0])


def test_show_trained_tokens_custom_markers():
    ids, mask = render_conversation(TOK, [user("a"), assistant("b")])
    assert show_trained_tokens(TOK, ids, mask, left="{", right="}").endswith("{b<|end|>}<|eos|>")


def test_pad_right_fills_each_row_and_marks_its_own_entries():
    padded, mask = pad_right([[5, 6, 7], [8], torch.tensor([9, 10])], value=-1)
    assert torch.equal(padded, torch.tensor([[5, 6, 7], [8, -1, -1], [9, 10, -1]]))
    assert torch.equal(mask, torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]]))
    assert padded.dtype == mask.dtype == torch.long
