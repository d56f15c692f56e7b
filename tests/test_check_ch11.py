"""Tests of the chapter 11 checks (sftlearn.check.ch11): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with scikit-learn, seqeval and
sacreBLEU."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sacrebleu.metrics import CHRF
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from conftest import failure_of, stub
from sftlearn.check import ch11
from sftlearn.heads import collate_classification, encode_classification
from sftlearn.metrics import accuracy
from sftlearn.tokenizer import BPETokenizer

TOKENIZER = BPETokenizer.from_world()  # the course's tokenizer, as in the exercises


# ------------------------------------------------------------------ the references themselves


def test_f1_reference_agrees_with_scikit_learn():
    y, p = ch11._labels_from_matrix(ch11.COMPLAINT_MATRIX)
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, labels=[1], zero_division=0)
    want = ch11.reference_f1_by_hand()
    assert want["accuracy"] == pytest.approx(accuracy_score(y, p)) == pytest.approx(65 / 80)
    assert want["precision"] == pytest.approx(precision[0]) == pytest.approx(15 / 25)
    assert want["recall"] == pytest.approx(recall[0]) == pytest.approx(15 / 20)
    assert want["f1"] == pytest.approx(f1[0]) == pytest.approx(2 / 3)
    assert want["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))


def test_f1_mistakes_are_all_different_from_the_answers():
    want = ch11.reference_f1_by_hand()
    for key, mistakes in ch11._f1_by_hand_mistakes().items():
        for value, _, _ in mistakes:
            assert abs(value - want[key]) > ch11.F1_TOLERANCE, (key, value)


def test_bio_reference_agrees_with_seqeval():
    for _, tags in ch11.BIO_CASES:
        # seqeval gives (type, first, last) with `last` inclusive
        theirs = sorted((kind, start, end + 1) for kind, start, end in get_entities(list(tags)))
        assert sorted(ch11.bio_entities(tags)) == theirs, tags


def test_last_token_reference_picks_the_last_real_position():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    assert ch11.reference_last_token_states(hidden, mask).flatten().tolist() == [1.0, 7.0]


def test_chrf_reference_agrees_with_sacrebleu():
    scorer = CHRF()
    for _, hyp, ref in ch11.CHRF_CASES:
        assert ch11.chrf(hyp, ref) == pytest.approx(scorer.sentence_score(hyp, [ref]).score, abs=1e-9)
        assert ch11._chrf_variant(hyp, ref) == pytest.approx(ch11.chrf(hyp, ref), abs=1e-9)


def test_the_padding_sensitive_classifier_is_hurt_by_a_missing_mask():
    model = ch11.PaddingSensitiveClassifier(TOKENIZER)
    right = ch11.reference_heldout_accuracy(model, TOKENIZER, ch11.HELDOUT_PAIRS)
    wrong = ch11._heldout_no_mask(model, TOKENIZER, ch11.HELDOUT_PAIRS)
    assert right == pytest.approx(0.6) and wrong == pytest.approx(0.5)
    # one review at a time needs no padding, so no mask: the same answer as the reference
    one_by_one = np.mean([int(model.predict(torch.tensor([TOKENIZER.encode(t)]))[0]) == y
                          for t, y in ch11.HELDOUT_PAIRS])
    assert one_by_one == pytest.approx(right)


# --------------------------------------------------------------------------- f1_by_hand


def right_f1_by_hand():
    tn, fp, fn, tp = 50, 10, 5, 15
    p, r = tp / (tp + fp), tp / (tp + fn)
    p0, r0 = tn / (tn + fn), tn / (tn + fp)
    f1, f1_0 = 2 * p * r / (p + r), 2 * p0 * r0 / (p0 + r0)
    return {"accuracy": 65 / 80, "precision": p, "recall": r, "f1": f1, "macro_f1": (f1 + f1_0) / 2}


def with_changes(**changes):
    return lambda: {**right_f1_by_hand(), **changes}


def test_f1_by_hand_right(capsys):
    ch11.check_f1_by_hand(right_f1_by_hand)
    ch11.check_f1_by_hand(lambda: {"accuracy": 0.812, "precision": 0.6, "recall": 0.75, "f1": 0.667,
                                   "macro_f1": 0.768})  # three decimals are enough
    out = capsys.readouterr().out
    assert out.count("✓ f1_by_hand: all five numbers are right: accuracy 0.812") == 2


def test_f1_by_hand_stub(capsys):
    ch11.check_f1_by_hand(stub)
    assert "f1_by_hand: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (with_changes(precision=0.75), "that is the recall"),
        (with_changes(recall=0.6), "that is the precision"),
        (with_changes(f1=0.675), "arithmetic mean"),
        (with_changes(f1=100 / 115), "F1 of the other class"),
        (with_changes(macro_f1=0.8188405797), "*weighted* average"),
        (with_changes(macro_f1=0.8125), "it equals the *micro* F1"),
        (with_changes(macro_f1=0.7726548), "harmonic mean of the macro precision"),
        (with_changes(macro_f1=2 / 3), "complaint class alone"),
        (with_changes(accuracy=15 / 80), "counts only the complaints found"),
        (with_changes(accuracy=15 / (15 + 10 + 5)), "leaves out the true negatives"),
        (with_changes(precision=50 / (50 + 5)), "the precision of the other class"),
        (with_changes(recall=50 / (50 + 10)), "the recall of the other class"),
        (with_changes(accuracy=81.25), "looks like a percentage"),
        (with_changes(recall=0.5), "is not right"),
        (lambda: {"accuracy": 0.8125}, "has no 'precision', 'recall', 'f1', 'macro_f1'"),
        (lambda: [0.8125, 0.6, 0.75, 0.667, 0.768], "should return a dict"),
        (with_changes(f1=None), "is None"),
    ],
)
def test_f1_by_hand_wrong(answer, words):
    assert words in str(failure_of(ch11.check_f1_by_hand, answer))


# --------------------------------------------------------------------------- bio_entities


def read_entities(tags, *, b_continues=False, untyped=False, drop_stray_i=False, flush=True,
                  inclusive_end=False):
    """BIO tags read as a student would, one tag at a time; each keyword switches on one slip
    (the defaults read them right)."""
    entities, open_entity = [], None  # open_entity: [type, start, end]
    for i, tag in enumerate(tags):
        if tag == "O":
            if open_entity:
                entities.append(tuple(open_entity))
            open_entity = None
            continue
        prefix, kind = tag.split("-", 1)
        continues = open_entity is not None and (
            (prefix == "I" and (untyped or open_entity[0] == kind))
            or (prefix == "B" and b_continues and open_entity[0] == kind))
        if continues:
            open_entity[2] = i + 1
            continue
        if open_entity:
            entities.append(tuple(open_entity))
        open_entity = None if (prefix == "I" and drop_stray_i) else [kind, i, i + 1]
    if open_entity and flush:
        entities.append(tuple(open_entity))
    return [(k, s, e - 1) for k, s, e in entities] if inclusive_end else entities


def right_bio_entities(tags):
    return read_entities(tags)


def inclusive_end(tags):
    return read_entities(tags, inclusive_end=True)


def no_flush(tags):
    return read_entities(tags, flush=False)


def merges_neighbours(tags):
    return read_entities(tags, b_continues=True)


def strict(tags):
    return read_entities(tags, drop_stray_i=True)


def untyped(tags):
    return read_entities(tags, untyped=True)


def test_bio_entities_right(capsys):
    ch11.check_bio_entities(right_bio_entities)
    ch11.check_bio_entities(lambda tags: [list(e) for e in reversed(right_bio_entities(tags))])
    out = capsys.readouterr().out
    assert out.count("✓ bio_entities: correct on 8 sentences") == 2


def test_bio_entities_stub(capsys):
    ch11.check_bio_entities(stub)
    assert "bio_entities: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (inclusive_end, "one *past* the last word"),
        (no_flush, "runs to the end of the sentence is missing"),
        (merges_neighbours, "are merged into one"),
        (strict, "an I- tag that follows O (or another type) is dropped"),
        (untyped, "I-LOC can only continue a LOC entity"),
        (lambda tags: [(t, i, i + 1) for i, t in enumerate(tags) if t != "O"], "without its B-/I- prefix"),
        (lambda tags: [], "returned [], expected [('PER', 0, 2), ('LOC', 4, 6)]"),
        (lambda tags: None, "is None"),
        (lambda tags: "PER", "should be a list of (type, start, end) tuples"),
        (lambda tags: [("PER", 0)], "each entity should be a tuple (type, start, end)"),
        (lambda tags: tags[10], "raised IndexError"),
    ],
)
def test_bio_entities_wrong(answer, words):
    assert words in str(failure_of(ch11.check_bio_entities, answer))


# ---------------------------------------------------------------------- last_token_states


def right_last_token_states(hidden, attention_mask):
    positions = torch.arange(hidden.shape[1])
    last = (positions * attention_mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0]), last]


def by_count(hidden, attention_mask):
    last = attention_mask.long().sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0]), last]


def test_last_token_states_right(capsys):
    ch11.check_last_token_states(right_last_token_states)
    # a loop over the rows is just as right
    ch11.check_last_token_states(lambda h, m: torch.stack(
        [h[b, int(m[b].nonzero().max())] for b in range(h.shape[0])]))
    # so is a float64 result (the check crashed on it, comparing float64 with float32)
    ch11.check_last_token_states(lambda h, m: right_last_token_states(h, m).double())
    out = capsys.readouterr().out
    assert out.count("✓ last_token_states: correct on 4 batches") == 3


def test_last_token_states_stub(capsys):
    ch11.check_last_token_states(stub)
    assert "last_token_states: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda h, m: h[:, -1], "the last position of every row, which is padding"),
        (lambda h, m: h[:, 0], "takes the first token"),
        (lambda h, m: h.mean(dim=1), "averages over every position, padding included"),
        (lambda h, m: (h * m[..., None]).sum(1) / m.sum(1, keepdim=True), "averages over the real tokens"),
        (by_count, "only when the padding is on the right"),
        (lambda h, m: h[:, -1:], "extra dimension of size 1"),
        (lambda h, m: h[:, -1].T, "shape"),
        (lambda h, m: h[torch.arange(h.shape[0]), m.sum(1)], "raised IndexError"),
    ],
)
def test_last_token_states_wrong(answer, words):
    assert words in str(failure_of(ch11.check_last_token_states, answer))


# ---------------------------------------------------------------------------- chrf_sentence


def scratch_chrf(hypothesis, reference, *, beta=2.0, orders=6, strip=str.split, clip=True,
                 average_f=False, scale=100):
    """chrF written out independently of the package, as a student would; each keyword switches
    on one slip (the defaults give the real chrF)."""
    hyp, ref = "".join(strip(hypothesis)), "".join(strip(reference))
    precisions, recalls, f_scores = [], [], []
    for n in range(1, orders + 1):
        h = Counter(hyp[i:i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i:i + n] for i in range(len(ref) - n + 1))
        if h and r:
            match = sum(min(c, r[g]) if clip else (c if g in r else 0) for g, c in h.items())
            p_n, r_n = match / sum(h.values()), match / sum(r.values())
            precisions.append(p_n)
            recalls.append(r_n)
            f_scores.append(0.0 if p_n + r_n == 0 else (1 + beta**2) * p_n * r_n / (beta**2 * p_n + r_n))
    if not precisions:
        return 0.0
    if average_f:
        return scale * np.mean(f_scores)
    p, r = np.mean(precisions), np.mean(recalls)
    return 0.0 if p + r == 0 else scale * (1 + beta**2) * p * r / (beta**2 * p + r)


def right_chrf(hyp, ref):
    return scratch_chrf(hyp, ref)


def test_chrf_sentence_right(capsys):
    ch11.check_chrf_sentence(lambda h, r: ch11.chrf(h, r))
    ch11.check_chrf_sentence(scratch_chrf)
    out = capsys.readouterr().out
    assert out.count("✓ chrf_sentence: correct on 8 sentence pairs") == 2


def test_chrf_sentence_stub(capsys):
    ch11.check_chrf_sentence(stub)
    assert "chrf_sentence: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda h, r: scratch_chrf(h, r, scale=1), "0-1 scale"),
        (lambda h, r: scratch_chrf(h, r, beta=1.0), "it uses β = 1"),
        (lambda h, r: scratch_chrf(h, r, beta=0.5), "weighs precision more than recall"),
        (lambda h, r: scratch_chrf(h, r, clip=False), "counted as matching every time"),
        (lambda h, r: scratch_chrf(h, r, strip=list), "the spaces are kept"),
        (lambda h, r: scratch_chrf(h, r, average_f=True), "averages an F-score per order"),
        (lambda h, r: scratch_chrf(h, r, orders=4), "stops at 4-grams"),
        (lambda h, r: scratch_chrf(h, r, strip=lambda text: text.split(" ")), "only the spaces are removed"),
        (lambda h, r: 50.0, "but chrF is"),
        (lambda h, r: None, "is None"),
        (lambda h, r: h.split()[5], "raised IndexError"),
    ],
)
def test_chrf_sentence_wrong(answer, words):
    assert words in str(failure_of(ch11.check_chrf_sentence, answer))


# ------------------------------------------------------------------------ heldout_accuracy


def right_heldout(model, tokenizer, pairs):
    batch = collate_classification(encode_classification(tokenizer, pairs, 128), tokenizer.pad_id)
    return accuracy(batch["targets"], model.predict(batch["input_ids"], batch["attention_mask"]))


def one_at_a_time(model, tokenizer, pairs):
    hits = [int(model(torch.tensor([tokenizer.encode(t)]))[0].argmax()) == y for t, y in pairs]
    return sum(hits) / len(hits)


def without_mask(model, tokenizer, pairs):
    batch = collate_classification(encode_classification(tokenizer, pairs, 128), tokenizer.pad_id)
    return accuracy(batch["targets"], model.predict(batch["input_ids"]))


def with_models_context(model, tokenizer, pairs):
    # As the exercise's snippet does: the longest input the model takes, from its config.
    max_len = model.config.block_size
    batch = collate_classification(encode_classification(tokenizer, pairs, max_len), tokenizer.pad_id)
    return accuracy(batch["targets"], model.predict(batch["input_ids"], batch["attention_mask"]))


def test_heldout_accuracy_right(capsys):
    ch11.check_heldout_accuracy(right_heldout)
    ch11.check_heldout_accuracy(one_at_a_time)  # no padding at all is right too
    ch11.check_heldout_accuracy(with_models_context)  # the stand-in has a config, as a real head does
    out = capsys.readouterr().out
    assert out.count("✓ heldout_accuracy: correct") == 3


def test_heldout_accuracy_stub(capsys):
    ch11.check_heldout_accuracy(stub)
    assert "heldout_accuracy: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (without_mask, "scored without its attention mask"),
        (lambda m, t, p: 100 * right_heldout(m, t, p), "looks like a percentage"),
        (lambda m, t, p: 1 - right_heldout(m, t, p), "is the error rate"),
        (lambda m, t, p: 1.0, "but it should be 0.6"),
        (lambda m, t, p: m.predict(p), "raised"),
    ],
)
def test_heldout_accuracy_wrong(answer, words):
    assert words in str(failure_of(ch11.check_heldout_accuracy, answer))


def test_f1_by_hand_rounded_to_two_decimals_is_told_so():
    rounded = {key: round(value, 2) for key, value in ch11.reference_f1_by_hand().items()}
    failure = failure_of(ch11.check_f1_by_hand, lambda: rounded)
    assert "rounded to two decimals" in failure.message


def test_chrf_removing_only_spaces_is_named():
    def spaces_only(hypothesis, reference):
        return scratch_chrf(hypothesis.replace(" ", ""), reference.replace(" ", ""), strip=list)

    assert "only the spaces are removed" in failure_of(ch11.check_chrf_sentence, spaces_only).message
