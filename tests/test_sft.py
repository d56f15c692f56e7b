"""sftlearn.sft end to end, and the "right form" score beside exact match.

What is proved here:
- fine-tuning works: a micro model learns a small instruction set by heart with ``finetune``
  (exact match on its training prompts goes from 0 to >= 90%);
- ``generate_answers`` gives the same greedy replies in a left-padded batch as one prompt at a
  time (the same length budget too, when a long batch-mate fills the context), and drops a trailing reference answer instead of conditioning on it;
- a reply keeps any special token the model writes before ``<|end|>`` (so "L<|unk|>ucy" is not
  "Lucy"), and a reply the token budget cut off before ``<|end|>`` is never exact;
- ``evaluate_tasks`` aggregates exactly (checked with a scripted model) and its response loss
  equals a cross-entropy computed independently with ``torch.nn.functional.cross_entropy``
  over the assistant tokens only;
- ``data.well_formed`` accepts every reference answer the generators make and rejects the
  typical non-answers (a continued story, misspellings, other categories, empty text);
- bad input names its fix: no assistant turn, an over-long conversation, an empty dataset, a
  model whose vocabulary lacks the chat tokens, a prompt longer than the context, one
  conversation where a list of them belongs; an error names the set (training or validation).
"""

import pytest
import torch
import torch.nn.functional as F

from sftlearn import data, sft
from sftlearn.config import GPTConfig
from sftlearn.datasets import SFTDataset, render_conversation
from sftlearn.device import seed_everything
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer
from sftlearn.train import TrainConfig

from conftest import lively

TOK = CharTokenizer.from_world()


def micro(vocab=None, block=128, seed=0):
    seed_everything(seed)
    return GPT(GPTConfig.preset("micro", vocab_size=vocab or TOK.vocab_size, block_size=block))


def chat(user, assistant=None):
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


# ---------------------------------------------------------------- fine-tuning works


def test_finetune_teaches_a_micro_model_its_training_answers():
    # Eight prompts with different one-word answers: learnable by heart in a few seconds, and
    # a constant answer would score 1/8. Before SFT the random model answers none of them.
    pairs = [("Who likes tea?", "Mia"), ("Who has a cat?", "Tom"), ("Where is the mill?", "the farm"),
             ("What colour is it?", "red"), ("2 + 3 =", "5"), ("Spell cat backwards.", "tac"),
             ("How does Leo feel?", "calm"), ("What does Sam eat?", "rice")]
    examples = [chat(q, a) for q, a in pairs]
    model = micro(block=64)
    before = sft.generate_answers(model, TOK, examples, max_new_tokens=12)
    assert sum(p == a for p, (_, a) in zip(before, pairs)) == 0
    config = TrainConfig(max_steps=150, batch_size=8, lr=1e-2, warmup_steps=5, eval_interval=0,
                         progress=False, device="cpu")
    trainer = sft.finetune(model, TOK, examples, config=config)
    losses = trainer.history.train_loss
    assert losses[-1] < 0.2 * losses[0]
    after = sft.generate_answers(model.eval(), TOK, examples, max_new_tokens=12)
    assert sum(p == a for p, (_, a) in zip(after, pairs)) >= 7, after


# ---------------------------------------------------------------- generation


def test_batched_left_padded_generation_equals_one_prompt_at_a_time():
    model = lively(micro()).eval()  # replies that vary with the prompt, not empty ones
    examples = data.sft_examples("val", n_per_family=2)
    batched = sft.generate_answers(model, TOK, examples, max_new_tokens=10, batch_size=12)
    single = [sft.generate_answers(model, TOK, [ex], max_new_tokens=10)[0] for ex in examples]
    assert len(set(single)) >= 6 and all(single), single
    assert batched == single


def test_each_reply_gets_the_budget_it_would_get_alone():
    # A long prompt leaves little room in the context; the short prompt batched with it must
    # still get all of its max_new_tokens, not the long one's remainder.
    model = lively(micro(block=64)).eval()
    short, long = chat("Hi"), chat("Tom has a red kite and a blue ball. Who?")
    alone = [sft.generate_answers(model, TOK, [c], max_new_tokens=40)[0] for c in (short, long)]
    together = sft.generate_answers(model, TOK, [short, long], max_new_tokens=40)
    long_prompt = len(render_conversation(TOK, long, add_generation_prompt=True)[0])
    assert len(alone[0]) > 64 - long_prompt  # the old shared budget would have cut it
    assert together == alone


def test_reference_answer_is_dropped_not_used_as_context():
    model = micro().eval()
    with_answer = sft.generate_answers(model, TOK, [chat("Who likes tea?", "Mia")], max_new_tokens=8)
    without = sft.generate_answers(model, TOK, [chat("Who likes tea?")], max_new_tokens=8)
    assert with_answer == without


def test_a_conversation_may_be_a_dict_holding_its_messages():
    # SFTDataset and render_conversation accept {"messages": [...]}; so must generation
    model = micro().eval()
    as_list = sft.generate_answers(model, TOK, [chat("Who likes tea?")], max_new_tokens=8)
    as_dict = sft.generate_answers(model, TOK, [{"messages": chat("Who likes tea?")}], max_new_tokens=8)
    assert as_dict == as_list


@pytest.mark.parametrize(("option", "message"), [
    ({"max_new_tokens": -1}, "max_new_tokens must be an int >= 0"),
    ({"max_new_tokens": 2.5}, "max_new_tokens must be an int >= 0"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
])
def test_bad_budget_or_batch_size_is_refused(option, message):
    with pytest.raises(ValueError, match=message):
        sft.generate_answers(micro().eval(), TOK, [chat("Who likes tea?")], **option)


def test_prompt_longer_than_the_context_is_refused():
    model = micro(block=32).eval()
    with pytest.raises(ValueError, match=r"A prompt is \d+ tokens long; the model's context is 32\. Shorten it"):
        sft.generate_answers(model, TOK, [chat("x" * 40)])


# ---------------------------------------------------------------- evaluation


class Scripted:
    """Stands in for generate_answers: replies from a function of the example."""

    def __init__(self, reply):
        self.reply = reply

    def __call__(self, model, tokenizer, examples, max_new_tokens, return_finished=False):
        replies = [self.reply(ex) for ex in examples]
        return [(r, True) for r in replies] if return_finished else replies


class Writes(GPT):
    """A micro GPT whose generate writes the same fixed tokens after every prompt (as far as
    the budget allows): a reply known exactly, special tokens included."""

    def __init__(self, reply_ids):
        super().__init__(GPTConfig.preset("micro", vocab_size=TOK.vocab_size, block_size=128))
        self.reply_ids = reply_ids

    def generate(self, ids, max_new_tokens, **settings):
        new = torch.tensor(self.reply_ids[:max_new_tokens], dtype=torch.long)  # (N,)
        return torch.cat([ids, new.expand(ids.shape[0], -1)], dim=1)  # (B, T + N)


def qa_item():
    return next(ex for ex in data.sft_examples("test", n_per_family=1) if ex.family == "qa")


def test_a_special_token_inside_a_reply_is_kept_and_fails_exact_match():
    ex = qa_item()
    answer = TOK.encode(ex.answer)
    # The model writes the answer with <|unk|> after its first letter, or <|eos|> after it;
    # dropping the special tokens would turn both into the answer.
    for reply, shown in (([answer[0], TOK.unk_id, *answer[1:]], f"{ex.answer[0]}<|unk|>{ex.answer[1:]}"),
                         ([*answer, TOK.eos_id], f"{ex.answer}<|eos|>")):
        model = Writes([*reply, TOK.end_id])
        assert sft.generate_answers(model, TOK, [ex]) == [shown]
        report = sft.evaluate_tasks(model, TOK, [ex], with_loss=False)
        assert report.rows[0]["prediction"] == shown and not report.rows[0]["correct"]
    # the reference reply itself, ended properly, is right
    report = sft.evaluate_tasks(Writes([*answer, TOK.end_id]), TOK, [ex], with_loss=False)
    assert report.rows[0]["correct"] and report.rows[0]["finished"]


def test_a_reply_cut_off_by_the_budget_is_not_an_answer():
    ex = qa_item()
    answer = TOK.encode(ex.answer)
    model = Writes([*answer, *TOK.encode(" likes tea."), TOK.end_id])
    # With a budget of exactly the answer's length, the text reads like the answer, but the
    # model never ended its reply there.
    assert sft.generate_answers(model, TOK, [ex], max_new_tokens=len(answer), return_finished=True) \
        == [(ex.answer, False)]
    report = sft.evaluate_tasks(model, TOK, [ex], max_new_tokens=len(answer), with_loss=False)
    assert report.rows[0]["prediction"] == ex.answer
    assert not report.rows[0]["finished"] and not report.rows[0]["correct"] and report.overall == 0.0
    # given room, the same model's reply is complete (and wrong: it goes on after the name)
    full = sft.generate_answers(model, TOK, [ex], max_new_tokens=40, return_finished=True)
    assert full == [(f"{ex.answer} likes tea.", True)]


def test_evaluate_tasks_scores_exactly(monkeypatch):
    examples = data.sft_examples("test", n_per_family=10)
    model = micro()
    # Perfect answers: every family 100%, every reply well formed.
    monkeypatch.setattr(sft, "generate_answers", Scripted(lambda ex: f" {ex.answer} "))
    report = sft.evaluate_tasks(model, TOK, examples, with_loss=False)
    assert report.overall == 1.0 and report.form_overall == 1.0
    assert report.per_family == {f: 1.0 for f in data.TASK_FAMILIES}
    assert report.counts == {f: 10 for f in data.TASK_FAMILIES}
    assert report.response_loss is None and report.mistakes() == []
    # "1" to everything: right only where the answer is 1, well formed only where a number fits.
    monkeypatch.setattr(sft, "generate_answers", Scripted(lambda ex: "1"))
    report = sft.evaluate_tasks(model, TOK, examples, with_loss=False)
    for family in data.TASK_FAMILIES:
        rows = [ex for ex in examples if ex.family == family]
        assert report.per_family[family] == sum(ex.answer == "1" for ex in rows) / 10
        assert report.form[family] == sum(data.well_formed(family, "1", ex.answer) for ex in rows) / 10
    assert report.form["arithmetic"] == 1.0 and report.form["translate"] == 0.0
    assert report.overall == pytest.approx(sum(ex.answer == "1" for ex in examples) / 60)
    wrong = report.mistakes("qa", limit=3)
    assert len(wrong) == 3 and all(r["family"] == "qa" and not r["correct"] for r in wrong)
    assert "right form" in report.table() and "overall" in report.table()


def test_a_row_shows_the_question_the_reply_answers(monkeypatch):
    # In a conversation of several turns, the row's prompt is the last user turn, not the first.
    first = qa_item()
    follow_up = data.SFTExample(family="qa", messages=[
        *first.messages, {"role": "user", "content": "And who drinks tea?"},
        {"role": "assistant", "content": "Mia"}], answer="Mia", template=first.template)
    monkeypatch.setattr(sft, "generate_answers", Scripted(lambda ex: ex.answer))
    report = sft.evaluate_tasks(micro(), TOK, [first, follow_up], with_loss=False)
    assert [r["prompt"] for r in report.rows] == [first.messages[0]["content"], "And who drinks tea?"]
    assert report.overall == 1.0


def test_response_loss_is_cross_entropy_on_assistant_tokens_only():
    examples = data.sft_examples("val", n_per_family=3)
    model = micro().eval()
    report = sft.evaluate_tasks(model, TOK, examples, max_new_tokens=4)
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            ids, mask = render_conversation(TOK, ex.messages)
            ids, mask = torch.tensor(ids), torch.tensor(mask)
            logits, _ = model(ids[None, :-1])  # (1, T-1, V): predictions for tokens 1..T-1
            trained = mask[1:].bool()  # the loss mask belongs to the predicted token
            losses = F.cross_entropy(logits[0], ids[1:], reduction="none")
            total += float(losses[trained].sum())
            count += int(trained.sum())
    assert report.response_loss == pytest.approx(total / count, rel=1e-4)


def test_evaluate_tasks_errors():
    with pytest.raises(ValueError, match="got no examples"):
        sft.evaluate_tasks(micro(), TOK, [])
    with pytest.raises(ValueError, match="split"):
        sft.evaluate_tasks(micro(), TOK, "tset")


# ---------------------------------------------------------------- right form


def test_every_reference_answer_is_well_formed():
    for split in data.SFT_SPLITS:
        for ex in data.sft_examples(split, n_per_family=100):
            assert data.well_formed(ex.family, ex.answer, ex.answer), (split, ex.family, ex.answer)


@pytest.mark.parametrize(
    "family, prediction, answer, expected",
    [
        ("qa", "Lucy", "Mia", True),  # wrong person, but a person
        ("qa", " Lucy\n", "Mia", True),  # surrounding whitespace is ignored, as in score
        ("qa", "Lucyy", "Mia", False),  # not a name the world has
        ("qa", "Lucy likes to swim. She", "Mia", False),  # a continued story
        ("qa", "the farm", "the forest", True),
        ("qa", "farm", "the forest", False),  # places keep "the"
        ("qa", "milk", "red", False),  # a food where a colour was asked for
        ("qa", "", "Mia", False),
        ("sentiment", "cake", "pears", True),
        ("sentiment", "appples", "pears", False),
        ("entities", "Tom (person), the park (place)", "Mia (person)", True),
        ("entities", "Tom (place)", "Mia (person)", False),  # a person labelled a place
        ("entities", "Oma (person)", "Mia (person)", False),
        ("entities", "Mia (person) the park (place)", "Mia (person)", False),
        ("translate", "米娅有一只猫。", "汤姆很平静。", True),
        ("translate", "米娅有一只猫", "汤姆很平静。", False),  # no full stop
        ("translate", "Mia 有一只猫。", "汤姆很平静。", False),
        ("translate", "。", "汤姆很平静。", False),  # punctuation alone
        ("translate", "，，。", "汤姆很平静。", False),
        ("arithmetic", "12", "8", True),
        ("arithmetic", "08", "8", False),
        ("arithmetic", "eight", "8", False),
        ("strings", "abcde", "cnstz", True),  # reversed: letters of the same length
        ("strings", "abcd", "cnstz", False),
        ("strings", "RED HAT", "BIG CUP", True),
        ("strings", "red hat", "BIG CUP", False),
        ("strings", "3", "5", True),
    ],
)
def test_well_formed_examples(family, prediction, answer, expected):
    assert data.well_formed(family, prediction, answer) is expected


def test_well_formed_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown task family 'q'; use one of qa"):
        data.well_formed("q", "Mia", "Mia")
    with pytest.raises(TypeError, match="prediction must be a str .*pass the decoded text"):
        data.well_formed("qa", 3, "Mia")


# ---------------------------------------------------------------- bad input


def test_conversation_without_an_assistant_turn():
    with pytest.raises(ValueError, match="example 1: .*no assistant message, so there is nothing to train on"):
        sft.finetune(micro(), TOK, [chat("a", "b"), chat("no answer here")],
                     config=TrainConfig(max_steps=1, progress=False))


def test_over_long_conversation():
    with pytest.raises(ValueError, match=r"^training set, example 0: the conversation is \d+ tokens long but max_len is 65: shorten"):  # block 64 + 1
        sft.finetune(micro(block=64), TOK, [chat("x" * 80, "y")], config=TrainConfig(max_steps=1, progress=False))
    # a bad validation conversation is named as one, not as a training example
    with pytest.raises(ValueError, match=r"^validation set, example 1: the conversation is \d+ tokens long"):
        sft.finetune(micro(block=64), TOK, [chat("a", "b")], [chat("a", "b"), chat("x" * 80, "y")],
                     config=TrainConfig(max_steps=1, progress=False))


def test_one_conversation_where_a_list_of_them_belongs():
    # A single conversation is itself a list (of messages), so the mistake is easy to make.
    one = chat("Who likes tea?", "Mia")
    fix = r"wrap a single conversation in a list: \[conversation\]"
    with pytest.raises(TypeError, match=fix):
        SFTDataset(one, TOK, 64)
    with pytest.raises(TypeError, match=fix):
        sft.generate_answers(micro(), TOK, one)
    with pytest.raises(TypeError, match=fix):
        sft.finetune(micro(), TOK, one, config=TrainConfig(max_steps=1, progress=False))
    assert len(SFTDataset([one], TOK, 64)) == 1  # wrapped, it is fine


def test_empty_dataset():
    with pytest.raises(ValueError, match="got no examples.*pass a non-empty list"):
        sft.finetune(micro(), TOK, [], config=TrainConfig(max_steps=1, progress=False))


def test_a_tokenizer_without_the_chat_tokens_is_named_before_training():
    class Plain:  # a tokenizer of another library: ids, but no chat tokens
        vocab_size = TOK.vocab_size

        def encode(self, text):
            return [ord(c) % 50 for c in text]

    message = r"Plain has no bos_id, eos_id, user_id, assistant_id, end_id, pad_id: the chat template needs"
    with pytest.raises(ValueError, match=message):
        sft.finetune(micro(), Plain(), [chat("a", "b")], config=TrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match=message):
        sft.generate_answers(micro(), Plain(), [chat("a")])


def test_a_tokenizer_without_a_pad_token_is_named_before_training():
    # it passed the check, then crashed in the collate with an AttributeError (or in torch.full)
    class NoPad:  # the course's tokenizer, but without <|pad|> (not a subclass: those register)
        pad_id = None

        def __getattr__(self, name):
            return getattr(TOK, name)

    tokenizer = NoPad()
    with pytest.raises(ValueError, match=r"NoPad has no pad_id: .*batches need <\|pad\|>"):
        sft.finetune(micro(), tokenizer, [chat("a", "b")], config=TrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="NoPad has no pad_id"):
        sft.generate_answers(micro(), tokenizer, [chat("a")])


def test_a_model_vocabulary_larger_than_the_tokenizer_is_refused():
    # GPTConfig's presets have 512 ids: the model could write an id with no text, and decoding
    # its reply crashed after all the generation ("were these ids made by another tokenizer?").
    model = micro(vocab=512)
    with pytest.raises(ValueError, match=r"model's vocabulary has 512 ids but the tokenizer only 292: "
                                         r".*vocab_size=tokenizer\.vocab_size"):
        sft.generate_answers(model, TOK, [chat("a")])
    with pytest.raises(ValueError, match="the model could write ids that are no text"):
        sft.finetune(model, TOK, [chat("a", "b")], config=TrainConfig(max_steps=1, progress=False))


def test_a_conversation_that_fills_the_context_exactly_is_trained_on():
    # The model reads every token but the last (which is only a target): a conversation of
    # block_size + 1 tokens fits. It was refused by one token.
    model = micro(block=32)
    overhead = len(render_conversation(TOK, chat("", ""))[0])  # the template's tokens
    fits = chat("x" * (33 - overhead - 1), "y")
    assert len(render_conversation(TOK, fits)[0]) == 33
    trainer = sft.finetune(model, TOK, [fits], config=TrainConfig(max_steps=1, progress=False))
    assert trainer.history.steps == [1]
    with pytest.raises(ValueError, match="the conversation is 34 tokens long but max_len is 33"):
        sft.finetune(model, TOK, [chat("x" * (34 - overhead - 1), "y")],
                     config=TrainConfig(max_steps=1, progress=False))


def test_arguments_of_the_wrong_kind_are_named():
    model, train = micro(), [chat("a", "b")]
    with pytest.raises(TypeError, match=r"config must be a TrainConfig, got dict\. .*TrainConfig\(\*\*settings\)"):
        sft.finetune(model, TOK, train, config={"max_steps": 1})
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        sft.finetune(model, TOK, train, config={})  # it trained the default 500 steps
    with pytest.raises(TypeError, match=r"TrainConfig was passed as the validation examples.*config=config"):
        sft.finetune(model, TOK, train, TrainConfig(max_steps=1, progress=False))
    with pytest.raises(TypeError, match=r"callbacks must be a list .*callbacks=\[watcher\]"):
        sft.finetune(model, TOK, train, config=TrainConfig(max_steps=1, progress=False),
                     callbacks=object())


def test_one_example_where_a_list_of_them_belongs():
    # An SFT example or a {"messages": ...} dict iterates as its fields: the error came late.
    example = data.sft_examples("test", n_per_family=1)[0]
    for one in (example, {"messages": example.messages}):
        with pytest.raises(TypeError, match=r"got one conversation where a list .*\[conversation\]"):
            SFTDataset(one, TOK, 512)
        with pytest.raises(TypeError, match="got one conversation where a list"):
            sft.generate_answers(micro(), TOK, one)
        with pytest.raises(TypeError, match="got one conversation where a list"):
            sft.evaluate_tasks(micro(), TOK, one)


def test_evaluate_tasks_names_plain_conversations_before_generating(monkeypatch):
    monkeypatch.setattr(sft, "generate_answers", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(TypeError, match=r"scores SFT examples .*example 0 is a list\. .*use generate_answers"):
        sft.evaluate_tasks(micro(), TOK, [chat("Who likes tea?", "Mia")])


@pytest.mark.parametrize("conversation", [
    [{"role": "assistant", "content": "Mia"}],
    chat("Who likes tea?", "Mia") + [{"role": "assistant", "content": "Tom"}],
])
def test_a_conversation_without_a_question_is_named_as_given(conversation):
    # It was described after its answer was dropped: "messages is empty", or "drop the final
    # assistant message" when the caller had given exactly one answer.
    roles = [m["role"] for m in conversation]
    with pytest.raises(ValueError, match=rf"conversation 0 does not end with a user message .*{roles}"):
        sft.generate_answers(micro(), TOK, [conversation])


def test_model_vocabulary_without_the_chat_tokens():
    model = micro(vocab=TOK.vocab_size - 3)
    with pytest.raises(ValueError, match=r"model's vocabulary has only \d+, so chat tokens would be out of "
                                         r"range\. Build the model with vocab_size=tokenizer\.vocab_size"):
        sft.finetune(model, TOK, [chat("a", "b")], config=TrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="chat tokens would be out of range"):
        sft.generate_answers(model, TOK, [chat("a")])
