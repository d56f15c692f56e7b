"""Supervised fine-tuning: teach a pretrained model to answer instead of continuing text.

The pieces, in the order a fine-tuning run uses them:

1. **Chat template** (``sftlearn.datasets.render_conversation``): a conversation becomes
   ``<|bos|><|user|>question<|end|><|assistant|>answer<|end|><|eos|>``. The special tokens tell
   the model who is speaking and where a turn ends.
2. **Loss mask**: only the assistant's tokens (and its closing ``<|end|>``) are trained on;
   the user's text is context, not something to imitate.
3. ``finetune()``: the Trainer on an ``SFTDataset``, one call.
4. ``generate_answers()``: render each prompt up to ``<|assistant|>`` and let the model write
   until it emits ``<|end|>``; prompts are left-padded into batches.
5. ``evaluate_tasks()``: exact-match accuracy per task family on a split of the synthetic
   world, the share of replies that have an answer's form at all (``data.well_formed``), and
   the loss on the reference responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .datasets import (Collator, SFTDataset, _message_list, check_chat_tokens,
                       check_conversation_list, render_conversation)
from .train import TrainConfig, Trainer, evaluate_loss, targets_only_loss
from .validation import check_int

# The special tokens of the chat template, for reference (the tokenizer owns their ids).
CHAT_TOKENS = {
    "<|bos|>": "start of a conversation",
    "<|user|>": "a user turn begins",
    "<|assistant|>": "an assistant turn begins",
    "<|end|>": "the current turn ends (the model emits it to stop answering)",
    "<|eos|>": "end of the conversation",
    "<|pad|>": "padding; never attended to, never trained on",
}


def _check_chat_vocabulary(model, tokenizer) -> None:
    """The tokenizer must have the chat tokens, and the model must be able to read and write
    every id the tokenizer produces."""
    check_chat_tokens(tokenizer)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the model's vocabulary has "
            f"only {model.config.vocab_size}, so chat tokens would be out of range. Build the "
            f"model with vocab_size=tokenizer.vocab_size (or the tokenizer it was trained with)."
        )
    if tokenizer.vocab_size < model.config.vocab_size:
        # the model could write an id with no text, and decoding its reply would fail
        raise ValueError(
            f"The model's vocabulary has {model.config.vocab_size} ids but the tokenizer only "
            f"{tokenizer.vocab_size}: the model could write ids that are no text. Build the model "
            f"with vocab_size=tokenizer.vocab_size (GPTConfig's presets have 512 unless told), or "
            f"pass the tokenizer it was trained with."
        )


def max_conversation(model) -> int:
    """The longest conversation (in tokens) ``model`` can be trained on: one more than its
    context, because the inputs leave out the last token (it is only a target)."""
    return model.config.block_size + 1


def sft_datasets(train_examples, val_examples, tokenizer, max_len: int):
    """Render train (and optional validation) conversations into ``SFTDataset``s."""
    if isinstance(val_examples, TrainConfig):  # finetune(model, tok, train, config): one slot off
        raise TypeError("a TrainConfig was passed as the validation examples; pass it by name: "
                        "finetune(model, tokenizer, train, config=config).")
    train = _named_dataset("training", train_examples, tokenizer, max_len)
    val = _named_dataset("validation", val_examples, tokenizer, max_len) if val_examples else None
    return train, val


def _named_dataset(name: str, examples, tokenizer, max_len: int) -> SFTDataset:
    # An error names the set as well as the example: "validation set, example 3: ..."
    try:
        return SFTDataset(examples, tokenizer, max_len)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{name} set, {e}") from None


def finetune(
    model,
    tokenizer,
    train_examples: Sequence,
    val_examples: Sequence | None = None,
    config: TrainConfig | None = None,
    callbacks=(),
):
    """Fine-tune ``model`` on conversations; returns the Trainer (its ``.history`` has the
    curves). The model is updated in place, and torch's global generator is seeded with the
    config's seed, as ``Trainer.fit`` does."""
    _check_chat_vocabulary(model, tokenizer)
    train, val = sft_datasets(train_examples, val_examples, tokenizer, max_conversation(model))
    trainer = Trainer(
        model, train, val, config, collate_fn=Collator(tokenizer.pad_id),
        loss_fn=targets_only_loss,  # replies are a few tokens: score only those positions
        callbacks=callbacks,
    )
    trainer.fit()
    return trainer


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    conversations: Sequence,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    return_finished: bool = False,
    **sampling,
) -> list[str] | list[tuple[str, bool]]:
    """The model's reply to each conversation (greedy unless sampling options are given).

    Each conversation is a message list (or an object or dict with ``messages``); a trailing
    assistant message, if present, is dropped: it is the reference answer, not the prompt.
    A reply is cut at the model's first ``<|end|>``; any other special token it writes stays
    in the text (as ``<|eos|>`` etc.), so such a reply never passes for a clean answer. With
    ``return_finished=True`` each reply comes as ``(text, finished)``: ``finished`` is False
    when the model had not written ``<|end|>`` when the token budget (``max_new_tokens``, or
    the room left in the context) ran out, so the text may be a cut-off piece of a longer reply.
    """
    _check_chat_vocabulary(model, tokenizer)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_int("batch_size", batch_size)
    check_conversation_list(conversations)
    device = next(model.parameters()).device
    prompts = []
    for k, conv in enumerate(conversations):
        messages = list(_message_list(conv))
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # the reference answer
        if not messages or messages[-1]["role"] != "user":
            # said of the conversation as given, not of what is left once its answer is dropped
            raise ValueError(
                f"conversation {k} does not end with a user message (and its reference answer, "
                f"if any): there is no question for the model to answer. Its roles are "
                f"{[m['role'] for m in _message_list(conv)]}."
            )
        ids, _ = render_conversation(tokenizer, messages, add_generation_prompt=True)
        prompts.append(ids)
    if not sampling:
        sampling = {"greedy": True}
    block = model.config.block_size
    for p in prompts:
        if len(p) >= block:
            raise ValueError(
                f"A prompt is {len(p)} tokens long; the model's context is {block}. Shorten it."
            )
    answers: list[tuple[str, bool]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        # Every row gets the budget it would get alone: min(max_new_tokens, room left in its
        # own context). Left padding makes a batch as long as its longest prompt, so rows whose
        # budget the context cuts are generated one by one, the rest together.
        fits = [len(p) + max_new_tokens <= block for p in chunk]
        replies: dict[int, tuple[str, bool]] = {}
        together = [i for i, ok in enumerate(fits) if ok]
        for i, reply in zip(together, _replies(model, tokenizer, [chunk[i] for i in together],
                                                max_new_tokens, sampling, device)):
            replies[i] = reply
        for i in (i for i, ok in enumerate(fits) if not ok):
            replies[i] = _replies(model, tokenizer, [chunk[i]], block - len(chunk[i]), sampling,
                                  device)[0]
        answers += [replies[i] for i in range(len(chunk))]
    return answers if return_finished else [text for text, _ in answers]


def _replies(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, sampling: dict,
             device) -> list[tuple[str, bool]]:
    """Generate for a batch of prompts that all fit ``max_new_tokens`` more tokens. For each,
    the decoded reply cut at its first end token, and whether it reached one. Other special
    tokens are decoded as their names: skipping them would turn "L<|unk|>ucy" into "Lucy"."""
    if not prompts:
        return []
    T = max(len(p) for p in prompts)
    # left padding: every prompt ends at the same column, so new tokens line up
    ids = torch.full((len(prompts), T), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, T - len(p) :] = torch.tensor(p)
        mask[row, T - len(p) :] = 1
    out = model.generate(
        ids.to(device), max_new_tokens, attention_mask=mask.to(device),
        stop_token=tokenizer.end_id, **sampling,
    )
    replies = []
    for row in out[:, T:].tolist():
        finished = tokenizer.end_id in row
        if finished:
            row = row[: row.index(tokenizer.end_id)]
        replies.append((tokenizer.decode(row), finished))
    return replies


@dataclass
class TaskReport:
    """Exact-match scores of one evaluation, and how often the replies had an answer's form."""

    per_family: dict[str, float]  # fraction correct per task family
    counts: dict[str, int]  # examples per family
    overall: float  # fraction correct over all examples
    response_loss: float | None  # mean loss on the reference conversations' assistant tokens
    rows: list[dict] = field(default_factory=list)  # family, prompt, answer, prediction, finished, correct, well_formed
    form: dict[str, float] = field(default_factory=dict)  # fraction of well-formed replies per family
    form_overall: float = 0.0  # fraction of well-formed replies over all examples

    def table(self) -> str:
        lines = [f"{'family':<12}{'n':>6}{'exact match':>14}{'right form':>13}"]
        for family, score in self.per_family.items():
            lines.append(f"{family:<12}{self.counts[family]:>6}{score:>14.1%}{self.form.get(family, 0.0):>13.1%}")
        total = sum(self.counts.values())
        lines.append(f"{'overall':<12}{total:>6}{self.overall:>14.1%}{self.form_overall:>13.1%}")
        if self.response_loss is not None:
            lines.append(f"response loss: {self.response_loss:.3f}")
        return "\n".join(lines)

    def mistakes(self, family: str | None = None, limit: int = 5) -> list[dict]:
        wrong = [r for r in self.rows if not r["correct"] and (family in (None, r["family"]))]
        return wrong[:limit]


def evaluate_tasks(
    model,
    tokenizer,
    examples: Sequence | str = "test",
    n_per_family: int | None = 50,
    seed: int = 0,
    max_new_tokens: int = 96,
    with_loss: bool = True,
) -> TaskReport:
    """Greedy answers to each example, scored exactly per task family.

    ``examples`` is a list of SFT examples, or the name of a split of the synthetic world
    ("train", "val", "test", "test_heldout"), of which ``n_per_family`` per family are used.
    ``max_new_tokens`` must leave room for the longest answer (entity lists run to ~65
    characters); generation stops as soon as every answer has ended, so a high cap is cheap.
    A reply counts as correct only if the model also ended it (wrote ``<|end|>``) within the
    budget: text cut off by the cap is not an answer, even where it reads like one.
    """
    from . import data

    if isinstance(examples, str):
        examples = data.sft_examples(examples, n_per_family=n_per_family, seed=seed)
    check_conversation_list(examples)
    examples = list(examples)
    if not examples:
        raise ValueError("evaluate_tasks got no examples to score.")
    plain = [k for k, ex in enumerate(examples) if not all(
        hasattr(ex, name) for name in ("family", "answer", "messages"))]
    if plain:  # before generating: scoring needs each example's family and reference answer
        raise TypeError(
            f"evaluate_tasks scores SFT examples (with .family, .answer and .messages, as "
            f"data.sft_examples makes them); example {plain[0]} is a "
            f"{type(examples[plain[0]]).__name__}. For replies to plain conversations, use "
            f"generate_answers.")
    predictions = generate_answers(model, tokenizer, examples, max_new_tokens, return_finished=True)
    rows, per_family, formed, counts = [], {}, {}, {}
    for ex, (pred, finished) in zip(examples, predictions):
        correct = finished and data.score(ex.family, pred, ex.answer)
        well_formed = data.well_formed(ex.family, pred, ex.answer)
        question = [m["content"] for m in ex.messages if m["role"] == "user"][-1]  # the last asked
        rows.append({"family": ex.family, "prompt": question, "answer": ex.answer,
                     "prediction": pred, "finished": finished, "correct": correct,
                     "well_formed": well_formed})
        per_family[ex.family] = per_family.get(ex.family, 0) + int(correct)
        formed[ex.family] = formed.get(ex.family, 0) + int(well_formed)
        counts[ex.family] = counts.get(ex.family, 0) + 1
    scores = {f: per_family[f] / counts[f] for f in counts}
    form = {f: formed[f] / counts[f] for f in counts}
    overall = sum(per_family.values()) / len(rows)
    form_overall = sum(formed.values()) / len(rows)
    loss = None
    if with_loss:
        dataset = SFTDataset(examples, tokenizer, max_conversation(model))
        loss = evaluate_loss(model, dataset, Collator(tokenizer.pad_id), loss_fn=targets_only_loss)
    return TaskReport(scores, counts, overall, loss, rows, form, form_overall)
