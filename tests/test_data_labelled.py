"""Tests for the labelled sets (sentiment, BIO entity tags, translation pairs) and the stats."""

import re
from collections import Counter

import pytest

from sftlearn import data
from sftlearn.data.reviews import NEGATIVE_WORDS, POSITIVE_WORDS, review_label


# ----- sentiment classification ----------------------------------------------------------------


def test_sentiment_is_balanced_and_follows_the_rule():
    items = data.sentiment_classification("train")
    assert len(items) == 2000
    assert Counter(label for _, label in items) == {0: 1000, 1: 1000}
    assert Counter(label for _, label in data.sentiment_classification("val", n=7)) in (
        {0: 3, 1: 4},
        {0: 4, 1: 3},
    )
    for text, label in items:
        assert review_label(text) == label, text
        assert text[0].isupper() and text.endswith(".")


def test_sentiment_is_not_a_keyword_lookup():
    items = data.sentiment_classification("train")
    # a negative word appears in positive reviews and a positive word in negative ones
    for word, wrong_label in (("bad", 1), ("fresh", 0)):
        labels = [label for text, label in items if re.search(rf"\b{word}\b", text)]
        assert labels.count(wrong_label) > 0.2 * len(labels), word
    negated = [text for text, _ in items if re.search(r"\b(not|never|hardly)\b", text)]
    mixed = [text for text, _ in items if re.search(r"\b(but|yet|while|Although)\b", text)]
    assert len(negated) > 600 and len(mixed) > 600
    # no single polarity word predicts the label well
    for word in POSITIVE_WORDS + NEGATIVE_WORDS:
        labels = [label for text, label in items if re.search(rf"\b{word}\b", text)]
        assert 0.2 < sum(labels) / len(labels) < 0.8, word


def test_review_rule_examples():
    assert review_label("The soup is not bad, but the tea is cold.") == 0
    assert review_label("Although the cake is stale, the tea is lovely.") == 1
    assert review_label("The noodles are hardly warm.") == 0
    assert review_label("The rice is never dry and the eggs are great.") == 1


def test_sentiment_splits_are_disjoint_and_deterministic():
    train = {t for t, _ in data.sentiment_classification("train")}
    val = {t for t, _ in data.sentiment_classification("val")}
    test = {t for t, _ in data.sentiment_classification("test")}
    assert not train & val and not train & test and not val & test
    assert data.sentiment_classification("val", n=20, seed=1) == data.sentiment_classification("val", n=20, seed=1)
    assert data.sentiment_classification("val", n=20, seed=1) != data.sentiment_classification("val", n=20, seed=2)


# ----- entity tagging --------------------------------------------------------------------------


def test_entity_tags_are_valid_bio():
    items = data.entity_tagging("train")
    assert len(items) == 2000
    assert data.ENTITY_TAGS[0] == "O"
    counts = Counter()
    for words, tags in items:
        assert len(words) == len(tags) and words
        previous = "O"
        for tag in tags:
            assert tag in data.ENTITY_TAGS
            if tag.startswith("I-"):
                assert previous in (f"B-{tag[2:]}", tag), (words, tags)  # I-X only after B-X / I-X
            previous = tag
        counts.update(tags)
    assert set(counts) == set(data.ENTITY_TAGS)  # multi-word entities give I- tags
    with_entities = sum(any(t != "O" for t in tags) for _, tags in items)
    assert with_entities > 0.9 * len(items)


def test_entity_tagging_examples():
    for words, tags in data.entity_tagging("train", n=500):
        text = " ".join(words)
        for name in ("Li Na", "Zhang Wei"):
            if name in text:
                i = words.index(name.split()[0])
                assert tags[i : i + 2] == ["B-PER", "I-PER"]
        if "the old mill" in text:
            i = text.split().index("old") - 1
            assert tags[i : i + 3] == ["B-LOC", "I-LOC", "I-LOC"]
        if words[0] in ("She", "He"):
            assert tags[0] == "O"


def test_entity_splits_are_disjoint():
    train = {" ".join(w) for w, _ in data.entity_tagging("train")}
    test = {" ".join(w) for w, _ in data.entity_tagging("test")}
    assert not train & test


# ----- translation pairs -----------------------------------------------------------------------


def test_translation_pairs():
    pairs = data.translation_pairs("train")
    assert len(pairs) == 2000 and len({en for en, _ in pairs}) == 2000
    for en, zh in pairs:
        # 3-8 words, counting a two-word name ("Li Na") or place ("the old mill") as one
        assert 3 <= len(en.split()) <= 10 and len(en) <= 50, en
        assert zh.endswith("。") and not re.search(r"[A-Za-z0-9.,]", zh)
    test = data.translation_pairs("test")
    assert not {en for en, _ in pairs} & {en for en, _ in test}
    assert data.translation_pairs("val", n=10) == data.translation_pairs("val", n=10)


# ----- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [data.sentiment_classification, data.entity_tagging, data.translation_pairs]
)
def test_labelled_bad_input(fn):
    with pytest.raises(ValueError, match="train, val, test"):
        fn("test_heldout")
    with pytest.raises(ValueError, match=">= 0"):
        fn("train", n=-3)
    with pytest.raises(TypeError, match="int"):
        fn("train", n="5")
    assert fn("val", n=0) == []


# ----- stats -----------------------------------------------------------------------------------


def test_corpus_stats_and_report():
    stats = data.corpus_stats(n_chars=100_000)
    assert stats["corpus_chars"] == 100_000
    assert 300 < stats["corpus_stories"] < 600
    assert 0.09 < stats["corpus_bilingual_blocks"] / stats["corpus_stories"] < 0.17
    assert stats["alphabet_size"] == len(data.alphabet())
    assert stats["sft_examples"]["qa"] == data.DEFAULT_SIZES
    assert set(stats["sft_examples"]) == set(data.TASK_FAMILIES)
    assert all(rate < 0.2 for rate in stats["sft_majority_answer_rate"].values())
    assert stats["sft_max_chars"] <= 200
    assert stats["labelled"]["entity_tagging"] == {"train": 2000, "val": 200, "test": 200}
    for key in ("corpus_seconds", "sft_seconds", "labelled_seconds"):
        assert 0 < stats[key] < 30
    report = data.format_stats(stats)
    assert "100,000 chars" in report and "test_heldout" in report
    for family in data.TASK_FAMILIES:
        assert family in report
