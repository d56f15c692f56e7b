"""Tests of the chapter 09 checks (sftlearn.check.ch09): right answers and typical wrong ones, and
that the checks' references agree with the package's chat template, SFT dataset and collate,
and with a hand-written scorer. Stubs and answers of the wrong kind are fuzzed for every
chapter's checks in test_check_fuzz.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import CheckFailure, ch09
from sftlearn.data import score
from sftlearn.datasets import SFTDataset, collate, render_conversation
from sftlearn.model import IGNORE_INDEX
from sftlearn.tokenizer import CharTokenizer
from conftest import failure_of

TOK = CharTokenizer.from_world()


def test_failures_name_the_check():
    failure = failure_of(ch09.check_loss_mask, lambda ids, tok: [1] * len(ids))
    assert isinstance(failure, CheckFailure) and str(failure).startswith("✗ loss_mask: ")


# ------------------------------------------------------------------------------ loss mask


def test_the_reference_mask_equals_render_conversation_on_real_data():
    """The checker's own mask (a state machine over the ids) agrees with the package's renderer,
    on the checker's conversations and on examples of every task family."""
    from sftlearn.data import sft_examples

    for _, ids, mask in ch09._rendered():
        assert ch09.reference_loss_mask(ids, TOK) == mask
    for ex in sft_examples("train", n_per_family=3):
        ids, mask = render_conversation(TOK, ex.messages)
        assert ch09.reference_loss_mask(ids, TOK) == mask
        assert sum(mask) == len(ex.answer) + 1  # the reply's characters and its <|end|>


# A right answer: the check's own reference, which the test above holds to render_conversation.
right_mask = ch09.reference_loss_mask


def test_loss_mask_right(capsys):
    ch09.check_loss_mask(right_mask)
    ch09.check_loss_mask(lambda ids, t: torch.tensor(right_mask(ids, t)))  # a tensor is fine
    ch09.check_loss_mask(lambda ids, t: [bool(m) for m in right_mask(ids, t)])  # so are booleans
    ch09.check_loss_mask(lambda ids, t: np.array(right_mask(ids, t)))  # and a NumPy array
    assert capsys.readouterr().out.count("✓ loss_mask: correct on 5 conversations") == 4


def walk_mask(ids, tokenizer, *, closing_end=True, role_token=False, user_end=False, eos=False,
              first_turn_only=False, inverted=False):
    """A loss mask written as a student would, walking the ids and remembering who speaks. Each
    keyword switches on one slip; the defaults give the right mask."""
    t = tokenizer
    mask, speaker, replies = [], None, 0
    for token in ids:
        if token in (t.user_id, t.assistant_id):
            speaker = token
            replies += token == t.assistant_id
            trained = role_token and token == t.assistant_id
        elif token == t.end_id:
            trained = closing_end if speaker == t.assistant_id else user_end
            speaker = None
        elif token == t.eos_id:
            trained = eos
        else:  # text, or <|bos|> before anyone speaks
            trained = speaker == t.assistant_id
        if first_turn_only and replies > 1:
            trained = False
        mask.append(int(trained != inverted))
    return mask


def test_the_walked_mask_is_right(capsys):
    ch09.check_loss_mask(walk_mask)
    assert "✓ loss_mask: correct on 5 conversations" in capsys.readouterr().out


def _everything_after_assistant(ids, t):  # switched on at the first <|assistant|>, never off
    mask, on = [], False
    for token in ids:
        mask.append(int(on and token != t.eos_id))
        on = on or token == t.assistant_id
    return mask


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda ids, t: walk_mask(ids, t, closing_end=False),
         "the <|end|> that closes the reply is not trained, so the model never learns to stop"),
        (lambda ids, t: walk_mask(ids, t, role_token=True), "the <|assistant|> token itself is marked as trained"),
        (lambda ids, t: walk_mask(ids, t, user_end=True), "the user's <|end|> is trained too"),
        (lambda ids, t: walk_mask(ids, t, eos=True), "the <|eos|> at the very end is trained"),
        (lambda ids, t: [0] * len(ids), "it is all zeros: nothing would be trained"),
        (lambda ids, t: [1] * len(ids), "every token is trained: this is no mask at all"),
        (lambda ids, t: walk_mask(ids, t, inverted=True), "it is inverted: the prompt is trained"),
        # the mask of the targets ids[1:] (what the model predicts), padded to the length of ids
        (lambda ids, t: walk_mask(ids[1:], t) + [0], "it is shifted one position to the left"),
        # the mask of the inputs ids[:-1], one 0 put in front
        (lambda ids, t: [0] + walk_mask(ids[:-1], t), "it is shifted one position to the right"),
        (lambda ids, t: walk_mask(ids, t, first_turn_only=True), "only the first assistant turn is trained"),
        (_everything_after_assistant, "everything after the first <|assistant|> is trained"),
    ],
)
def test_loss_mask_mistakes(answer, words):
    assert words in failure_of(ch09.check_loss_mask, answer).message


def test_loss_mask_wrong_length_values_and_type():
    failure = failure_of(ch09.check_loss_mask, lambda ids, t: right_mask(ids, t)[:-1])
    assert failure.message.startswith("loss_mask on a one-turn conversation has shape (31,) but should "
                                      "have shape (32,).")
    failure = failure_of(ch09.check_loss_mask, lambda ids, t: [2 * m for m in right_mask(ids, t)])
    assert "contains 2; a loss mask holds only 0 and 1" in failure.message
    failure = failure_of(ch09.check_loss_mask, lambda ids, t: [float(m) for m in right_mask(ids, t)])
    assert "holds torch.float32 values but should hold integers" in failure.message


def test_loss_mask_holding_something_else_than_integers_is_named():
    # A NumPy array of Python objects (a forgotten branch left a None) crashed the check.
    def with_a_none(ids, tokenizer):
        return [None if i == tokenizer.end_id else m for i, m in zip(ids, right_mask(ids, tokenizer))]

    for answer in (with_a_none, lambda ids, t: np.array(with_a_none(ids, t))):
        failure = failure_of(ch09.check_loss_mask, answer)
        assert "should be a list of integers" in failure.message
        assert failure.message.endswith(", which holds None.")


def test_loss_mask_gets_a_copy_of_the_ids():
    """A function that changes the list it is given cannot change the checker's ids."""
    def destructive(ids, tokenizer):
        mask = right_mask(ids, tokenizer)
        ids.clear()
        return mask

    ch09.check_loss_mask(destructive)


# -------------------------------------------------------------------------------- collate


def padded_collate(items, pad_id, left=False, id_fill=None, target_fill=IGNORE_INDEX, real=1, padding=0):
    """The right answer (padding on the right), or with a keyword a typical wrong one: padding on
    the left, input_ids padded with ``id_fill``, targets with ``target_fill``, an attention mask
    of ``real`` for the tokens and ``padding`` for the padding."""
    B, T = len(items), max(len(i["input_ids"]) for i in items)
    out = {"input_ids": torch.full((B, T), pad_id if id_fill is None else id_fill),
           "targets": torch.full((B, T), target_fill),
           "attention_mask": torch.full((B, T), padding, dtype=torch.long)}
    for b, item in enumerate(items):
        L = len(item["input_ids"])
        cols = slice(T - L, T) if left else slice(0, L)
        out["input_ids"][b, cols] = item["input_ids"]
        out["targets"][b, cols] = item["targets"]
        out["attention_mask"][b, cols] = real
    return out


def right_collate(items, pad_id):
    return padded_collate(items, pad_id)


def test_the_reference_collate_is_the_package_collate_and_trains_nothing_on_padding():
    """The reference is the package's collate (plus a mask when nothing is padded), and padding
    changes neither the loss nor the real positions' logits of a real model."""
    from sftlearn.config import GPTConfig
    from sftlearn.data import sft_examples
    from sftlearn.model import GPT

    for _, items, pad_id in ch09._collate_cases():
        batch = ch09.reference_collate(items, pad_id)
        package = collate(items, pad_id)
        for key in package:
            assert torch.equal(batch[key], package[key])
        assert torch.equal(batch["input_ids"], right_collate(items, pad_id)["input_ids"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=256, n_layer=1, n_head=2, n_embd=16)).eval()
    data = SFTDataset(sft_examples("train", n_per_family=1, families=["strings", "qa"]), TOK, 256)
    batch = ch09.reference_collate([data[0], data[1]], TOK.pad_id)
    with torch.no_grad():
        _, padded_loss = model(batch["input_ids"], targets=batch["targets"],
                               attention_mask=batch["attention_mask"])
        logits = [model(data[i]["input_ids"][None])[0][0] for i in range(2)]
    targets = torch.cat([data[0]["targets"], data[1]["targets"]])
    alone = F.cross_entropy(torch.cat(logits), targets, ignore_index=IGNORE_INDEX)
    assert torch.allclose(padded_loss, alone, atol=1e-5)


def test_collate_right(capsys):
    ch09.check_collate(right_collate)
    def bool_mask(items, pad_id):
        out = right_collate(items, pad_id)
        out["attention_mask"] = out["attention_mask"].bool()
        return out
    ch09.check_collate(bool_mask)
    assert capsys.readouterr().out.count("✓ collate: correct on 5 batches") == 2


def left_collate(items, pad_id):
    return padded_collate(items, pad_id, left=True)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda items, pad_id: padded_collate(items, pad_id, target_fill=pad_id),
         "'targets' is wrong: the padded targets are 0 (pad_id, or a plain 0) instead of -100"),
        (lambda items, pad_id: padded_collate(items, pad_id, id_fill=0),
         "with pad_id 3: 'input_ids' is wrong: the padding is 0 instead of pad_id"),
        (lambda items, pad_id: padded_collate(items, pad_id, real=0, padding=1),
         "'attention_mask' is wrong: it is inverted"),
        (lambda items, pad_id: padded_collate(items, pad_id, padding=1),
         "'attention_mask' is wrong: it marks every position as real"),
        (left_collate, "'input_ids' is wrong: it pads on the left"),
    ],
)
def test_collate_mistakes(answer, words):
    assert words in failure_of(ch09.check_collate, answer).message


def test_collate_pads_targets_with_zero_or_with_pad_id():
    # pad_id is 0 in the first batch: there the two slips give the same targets, and the sentence
    # names both (it used to say "pad_id (0)" to a student who had filled with 0)
    zeros = failure_of(ch09.check_collate, lambda items, pad_id: padded_collate(items, pad_id, target_fill=0))
    pads = failure_of(ch09.check_collate, lambda items, pad_id: padded_collate(items, pad_id, target_fill=pad_id))
    for failure in (zeros, pads):
        assert failure.message == (
            "collate on three items of lengths 10, 7 and 13 (pad_id 0): 'targets' is wrong: the padded "
            "targets are 0 (pad_id, or a plain 0) instead of -100, so the loss trains the model to predict "
            "token 0, the padding.")
        assert "-100 (IGNORE_INDEX)" in failure.hint

    def zeros_from_pad_id_3(items, pad_id):  # right while pad_id is 0, then the slip shows alone
        return padded_collate(items, pad_id, target_fill=0 if pad_id == 3 else IGNORE_INDEX)

    failure = failure_of(ch09.check_collate, zeros_from_pad_id_3)
    assert "the padded targets are 0 instead of -100, so the loss trains the model to predict token 0" in failure.message


def test_make_item_mistakes_can_all_be_told_apart():
    # a sentence whose value equals an earlier one's on every conversation could never be shown
    # (the targets "shifted the wrong way" were exactly the targets "not shifted")
    cases = ch09._rendered()
    for key in ("input_ids", "targets"):
        values = [list(ch09._make_item_mistakes(ids, mask)[key].values()) for _, ids, mask in cases]
        for i in range(len(values[0])):
            for j in range(i):
                assert not all(torch.equal(v[i][0], v[j][0]) for v in values), (key, i, j)


def test_collate_wrong_shapes_keys_and_types():
    def to_fixed_length(items, pad_id):
        out = right_collate(items, pad_id)
        return {k: F.pad(v, (0, 20 - v.shape[1]), value=0) for k, v in out.items()}

    failure = failure_of(ch09.check_collate, to_fixed_length)
    assert "'input_ids' has shape (3, 20) but should have shape (3, 13)" in failure.message
    failure = failure_of(ch09.check_collate, lambda items, pad_id: {
        k: v for k, v in right_collate(items, pad_id).items() if k != "attention_mask"})
    assert failure.message == ("collate on three items of lengths 10, 7 and 13 (pad_id 0): the dict has "
                               "no key 'attention_mask' (it has ['input_ids', 'targets']).")
    failure = failure_of(ch09.check_collate, lambda items, pad_id: tuple(right_collate(items, pad_id).values()))
    assert "should return a dict with keys ['input_ids', 'targets', 'attention_mask']" in failure.message
    failure = failure_of(ch09.check_collate, lambda items, pad_id: {
        k: v.float() for k, v in right_collate(items, pad_id).items()})
    assert "'input_ids' holds torch.float32 values but should hold integers" in failure.message
    failure = failure_of(ch09.check_collate, lambda items, pad_id: {
        k: v.tolist() for k, v in right_collate(items, pad_id).items()})
    assert "'input_ids' should be a tensor" in failure.message


# ---------------------------------------------------------------------------- exact match


def right_exact_match(predictions, answers):
    if len(predictions) != len(answers) or not answers:
        raise ValueError("one prediction per answer, and at least one")
    return sum(p.strip() == a.strip() for p, a in zip(predictions, answers)) / len(answers)


def test_the_reference_scorer_is_data_score_and_an_independent_count():
    for _, predictions, answers in ch09.EXACT_MATCH_CASES:
        want = ch09.reference_exact_match(predictions, answers)
        assert want == right_exact_match(predictions, answers)
        assert want == sum(score("strings", p, a) for p, a in zip(predictions, answers)) / len(answers)
    with pytest.raises(ValueError):
        ch09.reference_exact_match(["a"], [])


def test_exact_match_right(capsys):
    ch09.check_exact_match(right_exact_match)
    ch09.check_exact_match(lambda p, a: torch.tensor(right_exact_match(p, a)))  # a 0-d tensor is fine
    assert capsys.readouterr().out.count("✓ exact_match: correct on 7 sets of replies") == 2


def _scorer(equal, checked=True):
    """A scorer with a different comparison (and the length checks, unless checked=False)."""
    def answer(predictions, answers):
        if checked and (len(predictions) != len(answers) or not answers):
            raise ValueError("lengths differ or nothing to score")
        return sum(equal(p, a) for p, a in zip(predictions, answers)) / len(answers)
    return answer


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_scorer(lambda p, a: p == a), "surrounding whitespace is not stripped"),
        (_scorer(lambda p, a: p.strip().lower() == a.strip().lower()), "it ignores case"),
        (_scorer(lambda p, a: a.strip() in p), "a reply that merely contains the answer counts"),
        (_scorer(lambda p, a: p.strip().startswith(a.strip())), "a reply that merely starts with the answer counts"),
        (_scorer(lambda p, a: "".join(p.split()) == "".join(a.split())), "it removes the spaces inside answers too"),
        (_scorer(lambda p, a: p.strip().rstrip("。.") == a.strip().rstrip("。.")), "it ignores a final full stop"),
        (_scorer(lambda p, a: p.lstrip() == a.lstrip()), "it strips whitespace on the left only"),
        (_scorer(lambda p, a: p.rstrip() == a.rstrip()), "it strips whitespace on the right only"),
        (lambda p, a: sum(x.strip() == y.strip() for x, y in zip(p, a)), "it returns the number of matches"),
        (lambda p, a: 100 * right_exact_match(p, a), "it returns a percentage"),
    ],
)
def test_exact_match_mistakes(answer, words):
    assert words in failure_of(ch09.check_exact_match, answer).message


def test_exact_match_must_refuse_lists_of_different_lengths_and_empty_lists():
    failure = failure_of(ch09.check_exact_match, _scorer(lambda p, a: p.strip() == a.strip(), checked=False))
    assert failure.message.startswith("exact_match on 2 predictions and 1 answer returned 1.0 instead of "
                                      "raising ValueError.")

    def only_lengths(predictions, answers):
        if len(predictions) != len(answers):
            raise ValueError("lengths differ")
        return right_exact_match(predictions, answers) if answers else 0.0

    assert failure_of(ch09.check_exact_match, only_lengths).message.startswith(
        "exact_match on empty lists returned 0.0 instead of raising ValueError.")

    def silent(predictions, answers):
        if len(predictions) != len(answers) or not answers:
            raise ValueError
        return right_exact_match(predictions, answers)

    assert "raises ValueError, but with no message" in failure_of(ch09.check_exact_match, silent).message

    def divides_by_zero(predictions, answers):
        if len(predictions) != len(answers):
            raise ValueError("lengths differ")
        return sum(p.strip() == a.strip() for p, a in zip(predictions, answers)) / len(answers)

    failure = failure_of(ch09.check_exact_match, divides_by_zero)
    assert failure.message.startswith("exact_match on empty lists raised ZeroDivisionError; it should "
                                      "raise ValueError")


def test_exact_match_other_wrong_number():
    failure = failure_of(ch09.check_exact_match, lambda p, a: 0.3)
    assert failure.message == "exact_match on names is 0.3, but should be 0.5."


# ------------------------------------------------------------------------------ make_item


def test_the_reference_item_is_what_sft_dataset_trains_on():
    from sftlearn.data import sft_examples

    examples = sft_examples("train", n_per_family=2)
    dataset = SFTDataset(examples, TOK, 256)
    for k, ex in enumerate(examples):
        ids, mask = render_conversation(TOK, ex.messages)
        item = ch09.reference_make_item(ids, mask)
        assert torch.equal(item["input_ids"], dataset[k]["input_ids"])
        assert torch.equal(item["targets"], dataset[k]["targets"])


def right_item(ids, mask):
    targets = [ids[t + 1] if mask[t + 1] else -100 for t in range(len(ids) - 1)]
    return {"input_ids": torch.tensor(ids[:-1]), "targets": torch.tensor(targets)}


def test_make_item_right(capsys):
    ch09.check_make_item(right_item)
    ch09.check_make_item(lambda ids, mask: {k: v.tolist() for k, v in right_item(ids, mask).items()})
    assert capsys.readouterr().out.count("✓ make_item: correct on 5 conversations") == 2


def _item(inputs, targets):
    return lambda ids, mask: {"input_ids": torch.tensor(inputs(ids, mask)), "targets": torch.tensor(targets(ids, mask))}


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_item(lambda i, m: i[:-1], lambda i, m: [x if k else -100 for x, k in zip(i, m)][:-1]),
         "'targets' is wrong: the targets are not shifted"),
        (_item(lambda i, m: i[:-1], lambda i, m: [i[t + 1] if m[t] else -100 for t in range(len(i) - 1)]),
         "the mask is read at the input position t instead of at the target position t+1"),
        (_item(lambda i, m: i[:-1], lambda i, m: i[1:]), "every target is trained: the prompt is not masked"),
        (_item(lambda i, m: i[:-1], lambda i, m: [i[t + 1] if m[t + 1] else 0 for t in range(len(i) - 1)]),
         "the ignored targets are 0 instead of -100"),
        (_item(lambda i, m: i[:-1], lambda i, m: [-100 if m[t + 1] else i[t + 1] for t in range(len(i) - 1)]),
         "the mask is inverted"),
        (_item(lambda i, m: i[1:], lambda i, m: [i[t + 1] if m[t + 1] else -100 for t in range(len(i) - 1)]),
         "'input_ids' is wrong: it is shifted the wrong way"),
    ],
)
def test_make_item_mistakes(answer, words):
    assert words in failure_of(ch09.check_make_item, answer).message


def test_make_item_without_slicing_off_the_last_token():
    unsliced = _item(lambda i, m: i, lambda i, m: [x if k else -100 for x, k in zip(i, m)])
    failure = failure_of(ch09.check_make_item, unsliced)
    assert failure.message.startswith("make_item on a one-turn conversation: 'input_ids' has 32 entries, "
                                      "as many as the conversation; it should have 31.")


def test_make_item_wrong_container():
    failure = failure_of(ch09.check_make_item, lambda ids, mask: (ids[:-1], ids[1:]))
    assert "should return a dict with keys 'input_ids' and 'targets'" in failure.message
    failure = failure_of(ch09.check_make_item, lambda ids, mask: {"inputs": ids[:-1], "labels": ids[1:]})
    assert failure.message == ("make_item on a one-turn conversation: the dict has no key 'input_ids' "
                               "(it has ['inputs', 'labels']).")


def test_collate_mask_from_token_values_is_caught():
    def by_value(items, pad_id):  # right padding, but the mask reads the token values
        T = max(len(i["input_ids"]) for i in items)
        ids = torch.full((len(items), T), pad_id)
        targets = torch.full((len(items), T), -100)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n], targets[row, :n] = item["input_ids"], item["targets"]
        return {"input_ids": ids, "targets": targets, "attention_mask": (ids != pad_id).long()}

    failure = failure_of(ch09.check_collate, by_value)
    assert "computed as input_ids != pad_id" in failure.message


def test_exact_match_that_strips_only_the_predictions_is_caught():
    failure = failure_of(ch09.check_exact_match,
                         lambda p, a: sum(x.strip() == y for x, y in zip(p, a)) / len(a))
    assert "answers with spaces, tabs and new lines around them" in failure.message


@pytest.mark.parametrize("strip, words", [
    (lambda s: s.strip(" "), "it strips spaces only"),
    (lambda s: s.lstrip(), "it strips whitespace on the left only"),
])
def test_exact_match_slips_that_agree_on_one_case_are_told_apart(strip, words):
    def exact_match(predictions, answers):
        if len(predictions) != len(answers) or not answers:
            raise ValueError("lists of different lengths or empty")
        return sum(strip(p) == strip(a) for p, a in zip(predictions, answers)) / len(answers)

    assert words in failure_of(ch09.check_exact_match, exact_match).message


# ------------------------------------------------------------------------------ copy_scores


def _scores(right_of):
    """A copy_scores built from a function of (right, L): right[n, t] is 1 when the guess at
    position t is token t + 1."""
    def copy_scores(logits, ids):
        length = ids.shape[1] // 2
        return right_of((logits.argmax(-1) == ids[:, 1:]).float(), length)
    return copy_scores


def test_the_reference_copy_scores_is_the_probe_the_package_runs():
    from sftlearn import probes

    assert ch09.reference_copy_scores is probes.copy_scores
    for _, logits, ids in ch09._copy_cases():
        length = ids.shape[1] // 2
        hits = [[int(logits[n, t].argmax()) == int(ids[n, t + 1]) for t in range(2 * length - 1)]
                for n in range(len(ids))]  # by hand, position by position
        first = sum(row[t] for row in hits for t in range(length - 1)) / (len(ids) * (length - 1))
        second = sum(row[t] for row in hits for t in range(length, 2 * length - 1)) / (len(ids) * (length - 1))
        assert probes.copy_scores(logits, ids) == pytest.approx((first, second), abs=1e-6)  # float32 means


def test_copy_scores_cases_tell_the_windows_apart():
    # Every known slip gives another answer than the right one on at least one case, or the
    # check could not name it.
    for index in range(len(ch09._copy_mistakes(*ch09._copy_cases()[0][1:]))):
        assert any(ch09._copy_mistakes(logits, ids)[index][0] != pytest.approx(ch09.reference_copy_scores(logits, ids))
                   for _, logits, ids in ch09._copy_cases())


def test_copy_scores_right(capsys):
    ch09.check_copy_scores(_scores(lambda right, L: (right[:, :L - 1].mean(), right[:, L:].mean())))  # tensors are fine
    # the two numbers stacked into one tensor or array are two numbers too
    ch09.check_copy_scores(_scores(lambda right, L: torch.stack([right[:, :L - 1].mean(), right[:, L:].mean()])))
    ch09.check_copy_scores(_scores(lambda right, L: np.array([right[:, :L - 1].mean(), right[:, L:].mean()])))
    assert capsys.readouterr().out.count("✓ copy_scores") == 3
    failure = failure_of(ch09.check_copy_scores, _scores(lambda right, L: right.mean(dim=1)))
    assert "should return two numbers, (first, second)" in failure.message


@pytest.mark.parametrize("answer, words", [
    (lambda logits, ids: (lambda r, L: (r[:, :L - 1].mean().item(), r[:, L:].mean().item()))(
        (logits.argmax(-1) == ids[:, :-1]).float(), ids.shape[1] // 2), "the token the model is reading"),
    (_scores(lambda r, L: (r[:, :L - 1].mean().item(), r[:, L - 1:].mean().item())), "includes the guess for its first word"),
    (_scores(lambda r, L: (r[:, :L].mean().item(), r[:, L:].mean().item())), "the second copy's first word"),
    (_scores(lambda r, L: (r[:, L:].mean().item(), r[:, :L - 1].mean().item())), "swapped"),
    (_scores(lambda r, L: (r[:, :L - 1].sum().item(), r[:, L:].sum().item())), "counts, not fractions"),
    (_scores(lambda r, L: (100 * r[:, :L - 1].mean().item(), 100 * r[:, L:].mean().item())), "percentages"),
])
def test_copy_scores_mistakes(answer, words):
    assert words in failure_of(ch09.check_copy_scores, answer).message


def test_copy_scores_whole_sequence_gets_the_plain_message():
    failure = failure_of(ch09.check_copy_scores, _scores(lambda r, L: (r.mean().item(), r.mean().item())))
    assert "but should be" in failure.message and "right[:, L:]" in failure.hint


def test_copy_scores_wrong_container():
    failure = failure_of(ch09.check_copy_scores, lambda logits, ids: 0.5)
    assert "two numbers" in failure.message
