"""From token ids to training batches.

Two kinds of training data, one batch format.

*Pretraining* (next-token prediction on plain text): the corpus is one long list of ids, cut
into blocks of ``block_size``. For a block starting at ``s`` the model reads
``ids[s : s+T]`` and must predict ``ids[s+1 : s+T+1]`` -- the same text shifted by one.

*Supervised fine-tuning* (SFT): each example is a conversation. It is rendered with the chat
template

    <|bos|><|user|>{user text}<|end|><|assistant|>{assistant text}<|end|> ... <|eos|>

and the model is trained only to produce the assistant's words (and the ``<|end|>`` that closes
each assistant turn, so it learns when to stop). Every other target is set to -100, the
"ignore" value of ``torch.nn.functional.cross_entropy``.

The batch format both produce (see ``collate``): a dict of LongTensors

    input_ids       (B, T)  what the model reads
    targets         (B, T)  targets[:, t] is the id that should follow input_ids[:, t];
                            -100 = ignored (no loss)
    attention_mask  (B, T)  1 = real token, 0 = padding (only when something was padded)
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from sftlearn.tokenizer import SPECIAL_TOKENS, Tokenizer

from sftlearn.model import IGNORE_INDEX  # targets with this value add nothing to the loss
from sftlearn.validation import check_int

ROLES = ("user", "assistant")

# ----- pretraining: packed blocks of one long token stream ---------------------------------


class LMBlockDataset(Dataset):
    """Next-token blocks cut from one long sequence of token ids.

    Item ``i`` starts at ``s = i * stride`` and is
    ``{"input_ids": ids[s : s+T], "targets": ids[s+1 : s+T+1]}`` with ``T = block_size``.
    ``stride`` defaults to ``block_size`` (blocks side by side, no overlap); a smaller stride
    gives overlapping blocks, i.e. more (but correlated) training examples.
    """

    def __init__(
        self, ids: torch.Tensor | Sequence[int], block_size: int, *, stride: int | None = None
    ) -> None:
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() != 1:
            raise ValueError(
                f"ids must be one flat sequence of token ids, got shape {tuple(ids.shape)}: "
                "concatenate your documents into one list first"
            )
        stride = block_size if stride is None else stride
        check_int("block_size", block_size)
        check_int("stride", stride)
        if len(ids) < block_size + 1:
            raise ValueError(
                f"only {len(ids)} tokens, but one block of block_size={block_size} needs "
                f"{block_size + 1} (the inputs plus one more for the last target): "
                "use more text or a smaller block_size"
            )
        self.ids = ids  # (N,)
        self.block_size = block_size
        self.stride = stride
        # Start positions s = 0, stride, 2*stride, ... with s + block_size + 1 <= N.
        self._len = (len(ids) - block_size - 1) // stride + 1

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            # IndexError (not ValueError) is what ends a Python for-loop over the dataset.
            raise IndexError(f"block {i} out of range: this dataset has {self._len} blocks")
        s = i * self.stride
        T = self.block_size
        return {
            "input_ids": self.ids[s : s + T],  # (T,)
            "targets": self.ids[s + 1 : s + T + 1],  # (T,) the same tokens, one step later
        }

    def __repr__(self) -> str:
        return (f"LMBlockDataset(tokens={len(self.ids)}, block_size={self.block_size}, "
                f"stride={self.stride}, blocks={self._len})")


def lm_datasets_from_text(
    text: str,
    tokenizer: Tokenizer,
    block_size: int,
    val_fraction: float = 0.1,
    *,
    stride: int | None = None,
) -> tuple[LMBlockDataset, LMBlockDataset | None]:
    """Encode ``text`` and split it into a training and a validation ``LMBlockDataset``.

    The last ``val_fraction`` of the tokens is held out (a contiguous tail, so no validation
    block overlaps a training block). ``val_fraction=0`` returns ``(train, None)``.
    ``stride`` applies to the training blocks only: validation blocks never overlap, so each
    held-out token is scored once.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)  # (N,)
    n_val = int(len(ids) * val_fraction)
    if val_fraction == 0:
        return LMBlockDataset(ids, block_size, stride=stride), None
    if n_val < block_size + 1:
        raise ValueError(
            f"the validation part has {n_val} tokens ({val_fraction:.0%} of {len(ids)}), but one "
            f"block of block_size={block_size} needs {block_size + 1}: use more text, a larger "
            "val_fraction or a smaller block_size"
        )
    train = LMBlockDataset(ids[: len(ids) - n_val], block_size, stride=stride)
    val = LMBlockDataset(ids[len(ids) - n_val :], block_size)
    return train, val


# ----- SFT: the chat template and the loss mask --------------------------------------------


def check_conversation_list(conversations: Any) -> None:
    """Refuse one conversation (an SFT example, or a dict with "messages") where a list of
    them belongs: iterating over it would give its fields, and a puzzling error later."""
    if hasattr(conversations, "messages") or (
        isinstance(conversations, Mapping) and "messages" in conversations
    ):
        raise TypeError(
            "got one conversation where a list of conversations belongs (SFTDataset, finetune, "
            "generate_answers and evaluate_tasks take several); wrap it in a list: [conversation]"
        )


def _message_list(messages: Any) -> list[Mapping[str, str]]:
    """Accept a list of {"role", "content"} dicts, or an object/dict holding one as .messages."""
    if hasattr(messages, "messages"):
        messages = messages.messages
    elif isinstance(messages, Mapping) and "messages" in messages:
        messages = messages["messages"]
    if isinstance(messages, Mapping) and "role" in messages:
        raise TypeError(
            "got one message ({'role': ..., 'content': ...}) where a whole conversation (a list "
            "of messages) belongs: functions that take several conversations (SFTDataset, "
            "finetune, generate_answers) need a list of them; wrap a single conversation in a "
            "list: [conversation]"
        )
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    if len(messages) == 0:
        raise ValueError("messages is empty: a conversation needs at least one message")
    for k, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"message {k} is {m!r}: each message must be a dict with "
                             "'role' and 'content' keys")
        if m["role"] not in ROLES:
            raise ValueError(f"message {k} has role {m['role']!r}; valid roles are {ROLES}")
        if not isinstance(m["content"], str):
            raise TypeError(f"message {k} content must be a str, got {type(m['content']).__name__}")
        found = [s for s in SPECIAL_TOKENS if s in m["content"]]
        if found:
            first = min(found, key=m["content"].index)  # name the one the reader sees first
            raise ValueError(
                f"message {k} content contains the special token {first!r}; it would be "
                "read as a real control token. Remove it from the text."
            )
    return list(messages)


def render_chat(messages: Any, *, add_generation_prompt: bool = False) -> str:
    """The chat template as text, e.g. to look at it (``render_conversation`` gives the ids).

    >>> render_chat([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    '<|bos|><|user|>Hi<|end|><|assistant|>Hello<|end|><|eos|>'
    """
    msgs = _message_list(messages)
    _check_shape(msgs, add_generation_prompt)
    parts = ["<|bos|>"]
    for m in msgs:
        parts.append(f"<|{m['role']}|>{m['content']}<|end|>")
    parts.append("<|assistant|>" if add_generation_prompt else "<|eos|>")
    return "".join(parts)


def _check_shape(msgs: list[Mapping[str, str]], add_generation_prompt: bool) -> None:
    if add_generation_prompt:
        if msgs[-1]["role"] != "user":
            raise ValueError(
                "add_generation_prompt=True asks the model to answer, so the last message must "
                f"be from the user, not {msgs[-1]['role']!r}: drop the final assistant message"
            )
    elif not any(m["role"] == "assistant" for m in msgs):
        raise ValueError(
            "the conversation has no assistant message, so there is nothing to train on: add "
            "the assistant's reply, or pass add_generation_prompt=True to build a prompt"
        )


def check_chat_tokens(tokenizer: Tokenizer) -> None:
    """Raise a ValueError naming the chat template's special tokens that ``tokenizer`` lacks."""
    needed = ("bos_id", "eos_id", "user_id", "assistant_id", "end_id", "pad_id")
    missing = [name for name in needed if getattr(tokenizer, name, None) is None]
    if missing:
        raise ValueError(
            f"{type(tokenizer).__name__} has no {', '.join(missing)}: the chat template needs "
            "the special tokens <|bos|>, <|eos|>, <|user|>, <|assistant|>, <|end|>, and batches "
            "need <|pad|>; use a tokenizer from sftlearn.tokenizer"
        )


def render_conversation(
    tokenizer: Tokenizer,
    messages: Any,
    *,
    max_len: int | None = None,
    add_generation_prompt: bool = False,
) -> tuple[list[int], list[int]]:
    """Render a conversation with the chat template; return ``(ids, loss_mask)``.

    ``loss_mask[t]`` is 1 exactly where ``ids[t]`` is an assistant content token or the
    ``<|end|>`` closing an assistant turn, else 0. Each message's text is encoded on its own,
    so no token ever straddles a template boundary.

    ``add_generation_prompt=True`` stops after the final ``<|assistant|>`` (no ``<|eos|>``):
    the prompt to give the model, which then writes the reply until it emits ``<|end|>``. The
    last message must then be from the user.

    ``max_len`` limits ``len(ids)``. A longer conversation is an error, never silently cut:
    truncation could cut away the answer and leave an example with nothing to learn.
    """
    msgs = _message_list(messages)
    _check_shape(msgs, add_generation_prompt)
    check_chat_tokens(tokenizer)
    role_ids = {"user": tokenizer.user_id, "assistant": tokenizer.assistant_id}

    ids: list[int] = [tokenizer.bos_id]
    mask: list[int] = [0]
    for m in msgs:
        content = tokenizer.encode(m["content"])
        trained = 1 if m["role"] == "assistant" else 0
        ids += [role_ids[m["role"]], *content, tokenizer.end_id]
        mask += [0, *[trained] * len(content), trained]  # the closing <|end|> counts as content
    if add_generation_prompt:
        ids.append(tokenizer.assistant_id)
    else:
        ids.append(tokenizer.eos_id)
    mask.append(0)

    if max_len is not None and len(ids) > max_len:
        raise ValueError(
            f"the conversation is {len(ids)} tokens long but max_len is {max_len}: shorten the "
            "messages, or raise max_len (and the model's block size with it)"
        )
    return ids, mask


# ----- SFT dataset --------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedExample:
    """One conversation after rendering: its ids and which of them are trained on."""

    ids: list[int]
    loss_mask: list[int]


class SFTDataset(Dataset):
    """Conversations rendered once, up front, into next-token training pairs.

    Item ``i`` is ``{"input_ids": ids[:-1], "targets": t}`` where ``t[k] = ids[k+1]`` if
    ``ids[k+1]`` is trained on (``loss_mask[k+1] == 1``) and -100 otherwise. Lengths differ
    between items; ``collate`` pads them into a batch.

    ``examples``: SFT examples (anything with ``.messages``) or plain message lists.
    ``max_len``: the longest rendered conversation allowed (``len(ids)``); a longer one is an
    error naming the example. For a model, pass its block size + 1 (``sft.max_conversation``):
    the inputs leave out the last token, so they are one token shorter than the conversation.
    """

    def __init__(self, examples: Iterable[Any], tokenizer: Tokenizer, max_len: int) -> None:
        check_conversation_list(examples)
        examples = list(examples)
        if not examples:
            raise ValueError("SFTDataset got no examples: pass a non-empty list of conversations")
        check_int("max_len", max_len, minimum=2)
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.examples = examples
        self.rendered: list[RenderedExample] = []
        self.items: list[dict[str, torch.Tensor]] = []
        for k, example in enumerate(examples):
            try:
                ids, mask = render_conversation(tokenizer, example, max_len=max_len)
            except (ValueError, TypeError) as e:
                raise type(e)(f"example {k}: {e}") from None
            targets = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)]
            if all(t == IGNORE_INDEX for t in targets):
                raise ValueError(
                    f"example {k}: every target is masked, so it would teach nothing; "
                    "give it an assistant reply"
                )
            self.rendered.append(RenderedExample(ids, mask))
            self.items.append({
                "input_ids": torch.tensor(ids[:-1], dtype=torch.long),  # (L-1,)
                "targets": torch.tensor(targets, dtype=torch.long),  # (L-1,)
            })

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]

    @property
    def num_trained_tokens(self) -> int:
        """How many targets count in the loss, over the whole dataset."""
        return sum(sum(r.loss_mask) for r in self.rendered)

    def show(self, i: int) -> str:
        """Example ``i`` as text with the trained tokens in [brackets]."""
        r = self.rendered[i]
        return show_trained_tokens(self.tokenizer, r.ids, r.loss_mask)

    def __repr__(self) -> str:
        return f"SFTDataset(examples={len(self)}, max_len={self.max_len})"


# ----- batching -----------------------------------------------------------------------------


def pad_right(rows: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths as one (B, T) tensor of ids, filled on the right with
    ``value``, and its attention mask (B, T): 1 for the rows' own entries, 0 for the filling."""
    lengths = torch.tensor([len(row) for row in rows])  # (B,)
    T = int(lengths.max())
    padded = torch.full((len(rows), T), value, dtype=torch.long)  # (B, T)
    for b, row in enumerate(rows):
        padded[b, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    return padded, mask


def collate(batch: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack items of different lengths into one batch, padding on the right.

    ``input_ids`` are padded with ``pad_id``, ``targets`` with -100 (padding is never trained
    on), and ``attention_mask`` marks real tokens with 1 and padding with 0. Items of equal
    length (LM blocks) need no padding and come out without an ``attention_mask``.
    """
    if len(batch) == 0:
        raise ValueError("collate got an empty batch: check the dataset is not empty")
    for k, item in enumerate(batch):
        # Checked first: on a tuple (a TensorDataset's (x, y)) or a bare tensor, the key test
        # below fails with a torch error that does not say what is wrong.
        if not isinstance(item, Mapping):
            raise ValueError(f"batch item {k} is a {type(item).__name__}, not a dict; expected "
                             "'input_ids' and 'targets' (as made by LMBlockDataset or "
                             "SFTDataset). For (x, y) pairs, make each item "
                             "{'input_ids': x, 'targets': y}.")
        if "input_ids" not in item or "targets" not in item:
            raise ValueError(f"batch item {k} has keys {sorted(item)}; expected 'input_ids' "
                             "and 'targets' (as made by LMBlockDataset or SFTDataset)")
        if len(item["input_ids"]) != len(item["targets"]):
            raise ValueError(
                f"batch item {k} has {len(item['input_ids'])} input_ids but "
                f"{len(item['targets'])} targets: targets must already be shifted to match"
            )
    input_ids, attention_mask = pad_right([item["input_ids"] for item in batch], pad_id)  # (B, T)
    targets, _ = pad_right([item["targets"] for item in batch], IGNORE_INDEX)  # (B, T)
    if bool(attention_mask.all()):
        # Nothing was padded (e.g. LM blocks): leave the mask out, so attention can use its
        # plain causal kernel (flash attention on GPUs) instead of an explicit mask.
        return {"input_ids": input_ids, "targets": targets}
    return {"input_ids": input_ids, "targets": targets, "attention_mask": attention_mask}


class Collator:
    """``collate`` with the pad id fixed, for ``DataLoader(..., collate_fn=Collator(pad_id))``."""

    def __init__(self, pad_id: int = 0) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        return collate(batch, self.pad_id)

    def __repr__(self) -> str:
        return f"Collator(pad_id={self.pad_id})"


# ----- seeing what is trained on ------------------------------------------------------------


def _mask_runs(ids: Sequence[int], loss_mask: Sequence[int]) -> list[tuple[list[int], int]]:
    """Group consecutive ids with the same mask value: [(ids, 0 or 1), ...]."""
    if len(ids) != len(loss_mask):
        raise ValueError(f"ids has {len(ids)} entries but loss_mask has {len(loss_mask)}; "
                         "pass the pair returned by render_conversation")
    runs: list[tuple[list[int], int]] = []
    for i, m in zip(ids, loss_mask):
        m = 1 if m else 0
        if runs and runs[-1][1] == m:
            runs[-1][0].append(i)
        else:
            runs.append(([i], m))
    return runs


def show_trained_tokens(
    tokenizer: Tokenizer,
    ids: Sequence[int],
    loss_mask: Sequence[int],
    *,
    left: str = "[",
    right: str = "]",
) -> str:
    """The rendered text with every trained stretch wrapped in ``[`` ... ``]``.

    Pick other markers with ``left``/``right`` if the text itself contains brackets.

    >>> from sftlearn.tokenizer import CharTokenizer
    >>> tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz ?")
    >>> ids, mask = render_conversation(tok, [{"role": "user", "content": "hi"},
    ...                                       {"role": "assistant", "content": "hello"}])
    >>> print(show_trained_tokens(tok, ids, mask))
    <|bos|><|user|>hi<|end|><|assistant|>[hello<|end|>]<|eos|>
    """
    return "".join(
        f"{left}{tokenizer.decode(run)}{right}" if trained else tokenizer.decode(run)
        for run, trained in _mask_runs(ids, loss_mask)
    )


class HTMLText(str):
    """A string of HTML that Jupyter shows rendered (via ``_repr_html_``), without needing
    IPython here; ``IPython.display.HTML(x)`` also accepts it."""

    def _repr_html_(self) -> str:
        return str(self)


def trained_tokens_html(
    tokenizer: Tokenizer, ids: Sequence[int], loss_mask: Sequence[int]
) -> HTMLText:
    """One box per token, green where the token is trained on (for notebooks).

    Hover over a token to see its id. Newlines show as ↵.
    """
    _mask_runs(ids, loss_mask)  # the same length check as the text version
    spans = []
    for i, m in zip(ids, loss_mask):
        text = html.escape(tokenizer.id_to_token(i).replace("\n", "↵"))
        colour = "#b7e4b0" if m else "#eeeeee"
        spans.append(
            f'<span title="id {i}" style="background:{colour};border:1px solid #ccc;'
            f'border-radius:3px;margin:1px;padding:0 2px;white-space:pre">{text}</span>'
        )
    legend = ('<div style="font-size:smaller;margin-top:4px">'
              '<span style="background:#b7e4b0">green</span>: trained (loss counts); '
              '<span style="background:#eeeeee">grey</span>: context only</div>')
    return HTMLText('<div style="line-height:1.9;font-family:monospace">' + "".join(spans)
                    + "</div>" + legend)
