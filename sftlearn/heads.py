"""Task heads: put a pretrained GPT to work on classification instead of generation.

The GPT's last hidden states (B, T, C) describe every token in context. A *head* is a small
linear layer that turns them into class scores instead of next-token scores:

- :class:`SequenceClassifier`: one label per text (e.g. sentiment). A causal model's last
  real token is the only one that has read the whole text, so the head reads the hidden state
  there. In a padded batch that is the last position whose ``attention_mask`` is 1, wherever
  the padding sits (left or right); padding never changes the result.
- :class:`TokenClassifier`: one label per token (e.g. entity tags). Words usually span several
  tokens; :func:`encode_tagging` labels the *last* token of each word, the first point at which
  a left-to-right model has read the whole word, and marks the others ``-100`` (not scored).

Both follow the model convention of the package, ``logits, loss = model(input_ids,
targets=..., attention_mask=...)``, so the ``Trainer`` trains them as they are. Sequence
classification needs its own collate (one label per example, :class:`ClassificationCollator`);
token classification uses the usual ``sftlearn.datasets.collate``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import pad_right
from .model import GPT, IGNORE_INDEX, check_targets
from .modes import evaluation_mode
from .validation import check_int

__all__ = [
    "SequenceClassifier",
    "TokenClassifier",
    "last_token_index",
    "collate_classification",
    "ClassificationCollator",
    "encode_classification",
    "encode_tagging",
    "word_tags",
    "head_spec",
    "build_head",
]


class _Head(nn.Module):
    """What both heads share: the GPT body, dropout, and the ``score`` layer."""

    def __init__(self, body: GPT, num_labels: int, dropout: float = 0.0):
        super().__init__()
        if not isinstance(body, GPT):
            raise TypeError(
                f"A task head sits on a sftlearn GPT, got {type(body).__name__}; build one with "
                f"GPT(config) or load a pretrained one with sftlearn.checkpoint.load_model."
            )
        check_int("num_labels", num_labels, minimum=2, fix="It is the number of classes.")
        self.body = body
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        # On the body's device and in its dtype, so a head on a bf16 or GPU body works at once.
        embedding = body.transformer.wte.weight
        self.score = nn.Linear(body.config.n_embd, num_labels, device=embedding.device, dtype=embedding.dtype)
        # Small random scores at the start, like the body's own layers: no class is favoured.
        nn.init.normal_(self.score.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.score.bias)

    @property
    def config(self):
        """The body's ``GPTConfig`` (the Trainer records it in checkpoints)."""
        return self.body.config

    def _check_targets(self, targets: object, shape: tuple[int, ...]) -> torch.Tensor:
        """``targets`` as int64 class ids, checked: integers, ``shape``, labels in range."""
        top = self.num_labels - 1
        return check_targets(
            targets, shape, f"{type(self).__name__} needs {self._targets_hint}", self.num_labels,
            "label", f"Map the labels to 0..{top} or build the head with more classes "
            f"(num_labels={self.num_labels}).", training=self.training)

    @torch.no_grad()
    def predict(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """The highest-scoring class (no gradients, evaluation mode)."""
        with evaluation_mode(self):
            logits, _ = self(input_ids, attention_mask=attention_mask)
        return logits.argmax(dim=-1)


class SequenceClassifier(_Head):
    """A GPT body with a linear head on the hidden state of each text's last real token.

    ``model(input_ids, targets=None, attention_mask=None)`` returns ``(logits, loss)``: logits
    (B, num_labels) and the mean cross-entropy over targets (B,) that are not ``-100``.
    """

    _targets_hint = "one class id per example."

    def forward(self, input_ids, targets=None, attention_mask=None):
        self.body.check_input_ids(input_ids)  # a readable error before any indexing below
        last = last_token_index(input_ids, attention_mask)  # (B,)
        hidden, _ = self.body.hidden_states(input_ids, attention_mask)  # (B, T, C)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, C)
        logits = self.score(self.dropout(pooled))  # (B, K)
        loss = None
        if targets is not None:
            targets = self._check_targets(targets, (input_ids.shape[0],))
            loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
        return logits, loss


class TokenClassifier(_Head):
    """A GPT body with a linear head on every token's hidden state.

    ``model(input_ids, targets=None, attention_mask=None)`` returns ``(logits, loss)``: logits
    (B, T, num_labels) and the mean cross-entropy over targets (B, T) that are not ``-100``.
    Unlike language-model targets these are *not* shifted: ``targets[:, t]`` is the label of
    ``input_ids[:, t]`` itself.
    """

    _targets_hint = "one class id (or -100) per input token, not shifted."

    def forward(self, input_ids, targets=None, attention_mask=None):
        # the body checks the ids and the mask's shape
        hidden, _ = self.body.hidden_states(input_ids, attention_mask)  # (B, T, C)
        logits = self.score(self.dropout(hidden))  # (B, T, K)
        loss = None
        if targets is not None:
            targets = self._check_targets(targets, tuple(input_ids.shape))
            loss = F.cross_entropy(
                logits.reshape(-1, self.num_labels), targets.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return logits, loss


# The heads a saved model folder can name (``checkpoint.save_model`` writes the name).
HEADS: dict[str, type[_Head]] = {"SequenceClassifier": SequenceClassifier, "TokenClassifier": TokenClassifier}


def head_spec(model: nn.Module) -> dict | None:
    """What rebuilds ``model``'s head (kind, classes, dropout), or None for a plain GPT."""
    if not isinstance(model, _Head):
        return None
    return {"kind": type(model).__name__, "num_labels": model.num_labels, "dropout": model.dropout.p}


def build_head(body: GPT, spec: Mapping[str, Any]) -> _Head:
    """Put the head that ``spec`` (from :func:`head_spec`) describes on ``body``."""
    kind = spec.get("kind")
    if kind not in HEADS:
        raise ValueError(f"Unknown task head {kind!r} in the saved config; known: {', '.join(HEADS)}.")
    return HEADS[kind](body, spec["num_labels"], spec.get("dropout", 0.0))


def last_token_index(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Position of each row's last real token, shape (B,).

    Without a mask every token is real, so it is T - 1. With one, it is the largest t with
    ``attention_mask[b, t] == 1``; this is right for right- and left-padded batches alike.
    """
    B, T = input_ids.shape[0], input_ids.shape[-1]
    if attention_mask is None:
        return torch.full((B,), T - 1, dtype=torch.long, device=input_ids.device)
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} must equal input_ids shape "
            f"{tuple(input_ids.shape)} (1 = real token, 0 = padding)."
        )
    real = attention_mask.long()  # (B, T)
    if not torch.compiler.is_compiling() and bool((real.sum(dim=1) == 0).any()):
        raise ValueError(
            "A row of attention_mask is all zeros: that example has no real token to classify. "
            "Drop empty texts before batching."
        )
    positions = torch.arange(T, device=real.device)  # (T,)
    # Padding positions become 0; the largest remaining value is the last real position.
    return (positions * real).argmax(dim=1)  # (B,)


# ------------------------------------------------------------------------------ batches
def collate_classification(
    items: Sequence[Mapping[str, Any]], pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """Batch ``{"input_ids": [...], "label": int}`` items for a :class:`SequenceClassifier`.

    Texts are right-padded with ``pad_id``; ``attention_mask`` marks real tokens with 1 and
    ``targets`` (B,) holds the labels, so the Trainer counts one target per example.
    """
    if len(items) == 0:
        raise ValueError(
            "collate_classification got an empty batch: check the dataset is not empty"
        )
    for k, item in enumerate(items):
        if "input_ids" not in item or "label" not in item:
            raise ValueError(
                f"batch item {k} has keys {sorted(item)}; expected 'input_ids' and 'label' "
                f"(as made by sftlearn.heads.encode_classification)"
            )
        if len(item["input_ids"]) == 0:
            raise ValueError(f"batch item {k} has no tokens; drop empty texts first")
    input_ids, attention_mask = pad_right([item["input_ids"] for item in items], pad_id)  # (B, T)
    targets = torch.as_tensor([int(item["label"]) for item in items], dtype=torch.long)  # (B,)
    return {"input_ids": input_ids, "targets": targets, "attention_mask": attention_mask}


class ClassificationCollator:
    """``collate_classification`` with the pad id fixed, to pass as ``collate_fn``."""

    def __init__(self, pad_id: int = 0) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_classification(items, self.pad_id)

    def __repr__(self) -> str:
        return f"ClassificationCollator(pad_id={self.pad_id})"


# ----------------------------------------------------------------------------- encoding
def encode_classification(tokenizer, pairs: Sequence[tuple[str, int]], max_len: int) -> list[dict]:
    """``[(text, label), ...]`` -> ``[{"input_ids": [...], "label": label}, ...]``.

    A text longer than ``max_len`` tokens is an error rather than silently cut, because the
    part cut off might be the part that decides the label.
    """
    examples = []
    for k, (text, label) in enumerate(pairs):
        ids = tokenizer.encode(text)
        _check_length(k, len(ids), max_len)
        examples.append({"input_ids": ids, "label": int(label)})
    return examples


def encode_tagging(
    tokenizer,
    sentences: Sequence[tuple[Sequence[str], Sequence[str]]],
    labels: Sequence[str],
    max_len: int,
) -> list[dict]:
    """``[(words, tags), ...]`` -> token-level examples for a :class:`TokenClassifier`.

    Words are joined by single spaces. Each example is ``{"input_ids", "targets",
    "word_ends"}``: ``targets`` holds the id (index in ``labels``) of each word's tag at the
    word's last token and ``-100`` elsewhere; ``word_ends`` lists those positions.
    """
    index = {tag: i for i, tag in enumerate(labels)}
    examples = []
    for k, (words, tags) in enumerate(sentences):
        if len(words) != len(tags):
            raise ValueError(
                f"sentence {k} has {len(words)} words but {len(tags)} tags; give one tag per word"
            )
        ids: list[int] = []
        targets: list[int] = []
        word_ends: list[int] = []
        for i, (word, tag) in enumerate(zip(words, tags)):
            if tag not in index:
                raise ValueError(
                    f"sentence {k}: tag {tag!r} is not one of the labels {list(labels)}; "
                    f"pass the full label list (e.g. sftlearn.data.ENTITY_TAGS)"
                )
            piece = tokenizer.encode(word if i == 0 else " " + word)
            if not word or not piece:
                raise ValueError(f"sentence {k}: word {i} is empty; remove empty words first")
            ids += piece
            targets += [IGNORE_INDEX] * (len(piece) - 1) + [index[tag]]
            word_ends.append(len(ids) - 1)
        _check_length(k, len(ids), max_len)
        examples.append({"input_ids": ids, "targets": targets, "word_ends": word_ends})
    return examples


def word_tags(
    predicted: torch.Tensor | Sequence[int], word_ends: Sequence[int], labels: Sequence[str]
) -> list[str]:
    """The predicted tag of each word: the prediction at its last token, as a label name."""
    predicted = torch.as_tensor(predicted)
    if predicted.dim() != 1:
        raise ValueError(
            f"word_tags takes one example's predictions (T,), got shape {tuple(predicted.shape)}; "
            f"index the batch first (predicted[b])"
        )
    return [labels[int(predicted[t])] for t in word_ends]


def _check_length(k: int, n_tokens: int, max_len: int) -> None:
    if n_tokens > max_len:
        raise ValueError(
            f"example {k} is {n_tokens} tokens long, more than max_len={max_len}. Use a model "
            f"with a larger block_size, or drop or shorten the long examples."
        )
