"""Tests of sftlearn.metrics: perplexity, classification scores, entity F1, chrF."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sftlearn.metrics import (
    accuracy,
    bio_entities,
    chrf,
    confusion_matrix,
    entity_f1,
    f1_score,
    perplexity,
    perplexity_from_logits,
    precision_recall_f1,
)

# ---------------------------------------------------------------------------- perplexity


def test_perplexity_is_exp_of_the_mean_cross_entropy():
    assert perplexity(0.0) == 1.0
    assert perplexity(1.0) == pytest.approx(math.e)
    assert perplexity(torch.tensor(2.0)) == pytest.approx(math.exp(2.0))
    assert perplexity(torch.tensor([0.5])) == pytest.approx(math.exp(0.5))
    assert perplexity(np.float32(0.25)) == pytest.approx(math.exp(0.25))


def test_perplexity_of_a_uniform_guess_is_the_vocabulary_size():
    for vocab in (2, 292, 50_000):
        assert perplexity(math.log(vocab)) == pytest.approx(vocab)


def test_perplexity_of_an_infinite_or_huge_loss_is_infinite():
    assert perplexity(math.inf) == math.inf
    assert perplexity(1000.0) == math.inf


def test_perplexity_returns_a_python_float_and_keeps_gradients_out():
    loss = torch.tensor(1.5, requires_grad=True)
    value = perplexity(loss * 1)
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (-0.105, ValueError, "never negative"),
        (math.nan, ValueError, "NaN"),
        (torch.tensor([0.1, 0.2]), ValueError, "loss.mean()"),
        (True, TypeError, "bool"),
        ("2.0", TypeError, "got str"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_perplexity_rejects_bad_input_with_a_fix(bad, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        perplexity(bad)


# ----------------------------------------------------------------- perplexity_from_logits


def test_perplexity_from_logits_matches_torch_and_ignores_minus_100():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    targets[0, 3:] = -100
    kept = targets != -100
    expected = math.exp(F.cross_entropy(logits[kept], targets[kept]).item())
    assert perplexity_from_logits(logits, targets) == pytest.approx(expected, rel=1e-6)
    for dtype in (torch.int32, torch.int16, torch.uint8):  # the same ids in narrower integers
        narrow = targets.clamp(min=0).to(dtype)
        assert perplexity_from_logits(logits, narrow) == pytest.approx(
            perplexity_from_logits(logits, targets.clamp(min=0)), rel=1e-6)


def test_perplexity_from_logits_keeps_float64_and_scores_bf16_in_float32():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 9, dtype=torch.float64)
    targets = torch.randint(0, 9, (3, 6))
    exact = math.exp(F.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1)).item())
    assert perplexity_from_logits(logits, targets) == pytest.approx(exact, rel=1e-12)
    low = logits.to(torch.bfloat16)
    in_float32 = math.exp(F.cross_entropy(low.float().reshape(-1, 9), targets.reshape(-1)).item())
    assert perplexity_from_logits(low, targets) == pytest.approx(in_float32, rel=1e-6)


def test_perplexity_from_logits_of_equal_logits_is_the_vocabulary_size():
    logits = torch.zeros(3, 4, 11)
    targets = torch.randint(0, 11, (3, 4), generator=torch.Generator().manual_seed(1))
    assert perplexity_from_logits(logits, targets) == pytest.approx(11.0, rel=1e-6)


def test_perplexity_from_logits_of_a_certain_and_right_model_is_one():
    logits = torch.full((4, 3), -1e4)
    targets = torch.tensor([0, 2, 1, 1])
    logits[torch.arange(4), targets] = 1e4
    assert perplexity_from_logits(logits, targets) == pytest.approx(1.0)


def test_perplexity_from_logits_bad_input():
    with pytest.raises(ValueError, match="nothing to score"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([-100, -100]))
    with pytest.raises(ValueError, match="do not match"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer token ids"):
        perplexity_from_logits(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="two tensors"):
        perplexity_from_logits([[0.0, 0.0]], torch.tensor([0]))


# ------------------------------------------------------------------------ classification
# Hand-worked example used below: 6 examples, 3 classes.
#   true 0 0 1 1 2 2
#   pred 0 1 1 1 0 2
# class 0: TP 1, FP 1 (the 2 called 0), FN 1 -> P 1/2, R 1/2, F1 1/2
# class 1: TP 2, FP 1 (the 0 called 1), FN 0 -> P 2/3, R 1,   F1 4/5
# class 2: TP 1, FP 0,                  FN 1 -> P 1,   R 1/2, F1 2/3
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 0, 2]


def test_accuracy_and_confusion_matrix_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # num_classes adds a class nobody used: an empty row and column
    assert confusion_matrix(Y_TRUE, Y_PRED, num_classes=4)[3].tolist() == [0, 0, 0, 0]
    # tensors and arrays work as well as lists
    assert accuracy(torch.tensor(Y_TRUE), np.array(Y_PRED)) == pytest.approx(4 / 6)


def test_per_class_scores_and_averages_by_hand():
    scores = precision_recall_f1(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(scores.precision, [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(scores.recall, [1 / 2, 1.0, 1 / 2])
    np.testing.assert_allclose(scores.f1, [1 / 2, 4 / 5, 2 / 3])
    assert scores.support.tolist() == [2, 2, 2]
    assert f1_score(Y_TRUE, Y_PRED, "macro") == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert f1_score(Y_TRUE, Y_PRED, "micro") == pytest.approx(4 / 6)  # = accuracy
    assert f1_score(Y_TRUE, Y_PRED, "weighted") == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    table = scores.table(["neg", "pos", "mixed"]).splitlines()
    assert table[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert table[2].split() == ["pos", "0.667", "1.000", "0.800", "2"]


def test_a_class_never_predicted_scores_zero_not_nan():
    scores = precision_recall_f1([0, 1, 1], [0, 0, 0])
    assert scores.precision.tolist() == [pytest.approx(1 / 3), 0.0]
    assert scores.f1[1] == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_scikit_learn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    K = 5
    y = rng.integers(0, K, 60)
    p = np.where(rng.random(60) < 0.6, y, rng.integers(0, K - 1, 60))  # class 4 rarely predicted
    assert accuracy(y, p) == pytest.approx(sk.accuracy_score(y, p))
    np.testing.assert_array_equal(confusion_matrix(y, p, K), sk.confusion_matrix(y, p, labels=range(K)))
    ours = precision_recall_f1(y, p, K)
    theirs = sk.precision_recall_fscore_support(y, p, labels=range(K), zero_division=0)
    for mine, reference in zip((ours.precision, ours.recall, ours.f1, ours.support), theirs):
        np.testing.assert_allclose(mine, reference, rtol=1e-12)
    for average in ("macro", "micro", "weighted"):
        assert f1_score(y, p, average) == pytest.approx(
            sk.f1_score(y, p, average=average, zero_division=0), rel=1e-12)
    # a class absent from both labels and predictions is left out of the macro average
    y2, p2 = np.where(y == 3, 0, y), np.where(p == 3, 0, p)
    assert f1_score(y2, p2, "macro", num_classes=K) == pytest.approx(
        sk.f1_score(y2, p2, average="macro", zero_division=0), rel=1e-12)


@pytest.mark.parametrize(
    ("labels", "predictions", "kwargs", "error", "words"),
    [
        ([0, 1, 1], [0, 1], {}, ValueError, "3 labels but 2 predictions"),
        ([], [], {}, ValueError, "nothing to score"),
        ([0, 3], [0, 1], {"num_classes": 3}, ValueError,
         r"labels contain class 3, outside the class range 0\.\.2.*num_classes=4"),
        ([0, 1], [0, 5], {"num_classes": 2}, ValueError, r"predictions contain class 5"),
        ([0, -1], [0, 1], {}, ValueError, "class -1, outside"),
        ([0.2, 0.8], [0, 1], {}, TypeError, "integer class ids.*argmax"),
        ([True, False], [1, 0], {}, TypeError, "integer class ids"),
        ([[0, 1]], [[0, 1]], {}, ValueError, "one flat sequence"),
        ("01", [0, 1], {}, TypeError, "one string"),
        ([0, 1], [0, 1], {"num_classes": 0}, ValueError, "num_classes must be a positive int"),
    ],
)
def test_classification_bad_input(labels, predictions, kwargs, error, words):
    with pytest.raises(error, match=words):
        confusion_matrix(labels, predictions, **kwargs)


def test_unknown_average_is_refused():
    with pytest.raises(ValueError, match=r"average must be one of \('macro', 'micro', 'weighted'\)"):
        f1_score([0, 1], [0, 1], average="binary")
    with pytest.raises(ValueError, match="one per class"):
        precision_recall_f1([0, 1], [0, 1]).table(["only one"])


# ------------------------------------------------------------------------------- entities
def test_bio_entities_by_hand():
    assert bio_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert bio_entities(["O", "O"]) == []
    assert bio_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]
    # An I- that continues nothing starts an entity (as the CoNLL script reads it) ...
    assert bio_entities(["I-LOC", "I-LOC", "O", "I-PER"]) == [("LOC", 0, 2), ("PER", 3, 4)]
    # ... and a change of type inside a span splits it.
    assert bio_entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]


def test_entity_f1_by_hand():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "I-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "I-LOC", "I-LOC"]]
    # true: PER(0,0-2), LOC(0,3-4), LOC(1,0-3); predicted: PER(0,0-1) (too short: wrong),
    # LOC(0,3-4), LOC(1,0-3). Correct 2 of 3 predicted, 2 of 3 true.
    scores = entity_f1(true, pred)
    assert (scores.correct, scores.predicted_entities, scores.true_entities) == (2, 3, 3)
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert scores.per_type["PER"] == (0.0, 0.0, 0.0, 1)
    assert scores.per_type["LOC"] == (1.0, 1.0, 1.0, 2)
    # 7 of 8 tags are right, but only 2 of 3 names: tag accuracy flatters the tagger.
    assert str(scores).splitlines()[-1].split() == ["all", "0.667", "0.667", "0.667", "3"]


def test_entity_f1_single_sentence_and_no_entities():
    assert entity_f1(["B-PER", "O"], ["B-PER", "O"]).f1 == 1.0
    nothing = entity_f1([["O", "O"]], [["B-LOC", "O"]])
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_entity_f1_matches_seqeval(seed):
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = np.random.default_rng(seed)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    true = [[tags[i] for i in rng.integers(0, 5, rng.integers(1, 9))] for _ in range(30)]
    # each tag is replaced by a random one with probability 1/2
    pred = [[tags[rng.integers(0, 5)] if rng.random() < 0.5 else t for t in s] for s in true]
    ours = entity_f1(true, pred)
    assert ours.f1 == pytest.approx(seqeval.f1_score(true, pred, zero_division=0))
    assert ours.precision == pytest.approx(seqeval.precision_score(true, pred, zero_division=0))
    assert ours.recall == pytest.approx(seqeval.recall_score(true, pred, zero_division=0))


def test_entity_f1_bad_input():
    with pytest.raises(ValueError, match="2 true sentences but 1 predicted"):
        entity_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0 has 2 true tags but 1 predicted"):
        entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match=r"predicted_tags\[0\]\[1\] = 'PER' is not a BIO tag"):
        entity_f1([["O", "B-PER"]], [["O", "PER"]])
    with pytest.raises(ValueError, match=r"tags\[0\] = 'B-' is not a BIO tag"):
        bio_entities(["B-"])
    with pytest.raises(ValueError, match="not a BIO tag.*Map label ids"):
        bio_entities([1, 0])
    with pytest.raises(TypeError, match="list of sentences"):
        entity_f1("B-PER O", "B-PER O")
    with pytest.raises(TypeError, match="not a mix"):
        entity_f1([["O"], "O"], [["O"], ["O"]])
    with pytest.raises(ValueError, match="nothing to score"):
        entity_f1([], [])


# ------------------------------------------------------------------------------------ chrF
def test_chrf_by_hand():
    assert chrf("the cat", "the cat") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0
    # max_order 2, hypothesis "ab", reference "abc":
    #   1-grams: 2 of 2 hypothesis grams match (P 1), 2 of 3 reference grams found (R 2/3)
    #   2-grams: "ab" matches (P 1), 1 of "ab","bc" found (R 1/2)
    #   P = 1, R = 7/12, F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11
    assert chrf("ab", "abc", max_order=2) == pytest.approx(100 * 7 / 11)
    # Chinese, no spaces needed. 我爱猫 vs 我爱狗: 1-grams 2/3, 2-grams 1/2, 3-grams 0/1
    # (orders 4-6 too long for both): P = R = (2/3 + 1/2 + 0) / 3 = 7/18.
    assert chrf("我爱猫", "我爱狗") == pytest.approx(100 * 7 / 18)


def test_chrf_ignores_spaces_and_clips_repeated_ngrams():
    assert chrf("a b c", "abc") == pytest.approx(100.0)
    # "aa" vs "a": the reference has one "a", so only one of the two hypothesis "a"s matches:
    # P 1/2, R 1, and the reference is too short for 2-grams. F2 = 5*(1/2)/(2+1) = 5/6.
    assert chrf("aa", "a") == pytest.approx(100 * 5 / 6)


def test_chrf_of_a_corpus_pools_the_counts():
    # Sentence 1: "ab" vs "ab" (1-grams 2/2, 2-grams 1/1). Sentence 2: "c" vs "d" (0/1; the
    # reference has no 2-grams). Pooled: 1-grams 2/3 both ways, 2-grams 1/1 -> P = R = 5/6.
    assert chrf(["ab", "c"], ["ab", "d"], max_order=2) == pytest.approx(100 * 5 / 6)
    mean_of_sentences = (chrf("ab", "ab", max_order=2) + chrf("c", "d", max_order=2)) / 2
    assert mean_of_sentences == pytest.approx(50.0)  # a different number: pooling matters


def test_chrf_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = np.random.default_rng(0)
    chars = list("abcd 的猫狗")
    hyps = ["".join(rng.choice(chars, rng.integers(0, 14))) for _ in range(40)]
    refs = ["".join(rng.choice(chars, rng.integers(1, 14))) for _ in range(40)]
    assert chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-9)


@pytest.mark.parametrize(
    ("hyps", "refs", "kwargs", "error", "words"),
    [
        (["a", "b"], ["a"], {}, ValueError, "2 hypotheses but 1 references"),
        ([], [], {}, ValueError, "nothing to score"),
        ("a", ["a"], {}, TypeError, "same form"),
        ([[1, 2]], ["a"], {}, TypeError, r"hypotheses\[0\] is a list.*tokenizer.decode"),
        (["a"], ["a"], {"max_order": 0}, ValueError, "max_order must be a positive int"),
        (["a"], ["a"], {"beta": 0}, ValueError, "beta must be a positive"),
    ],
)
def test_chrf_bad_input(hyps, refs, kwargs, error, words):
    with pytest.raises(error, match=words):
        chrf(hyps, refs, **kwargs)
