"""The worked answers of benchmarks/worked_answers.py: the study's claim that a worked answer
makes sentiment learnable rests on the worked replies being right. Each food's verdict is
checked against the reviews' own rule, read back from the text (adjective polarity, flipped by
a negation), which the generator of the worked replies never looks at; each sum is evaluated."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import worked_answers as wa  # noqa: E402  (a benchmark script: an error in it must fail, not skip)

from sftlearn import data  # noqa: E402
from sftlearn.data.reviews import review_label  # noqa: E402

EXAMPLES = data.sft_examples("train")


def clause_verdict(review: str, food: str) -> str:
    # the food's own clause ("soup is never cold"), labelled by the reviews' rule
    clause = re.split(r"[,.\n]", review[review.index(food):])[0]
    return "good" if review_label(clause) else "bad"


def test_worked_sentiment_states_each_clause_verdict_and_the_answer():
    sentiment = [e for e in EXAMPLES if e.family == "sentiment"]
    assert len(sentiment) == 1500
    for example in sentiment:
        reply = wa.worked_sentiment(example)
        pad, answer = reply.split(" -> ")
        assert answer == example.answer
        review = example.messages[0]["content"].rsplit("Which food", 1)[0]
        pairs = [part.split() for part in pad.split(", ")]
        assert len(pairs) == 2 and review.index(pairs[0][1]) < review.index(pairs[1][1])
        for verdict, food in pairs:
            assert verdict == clause_verdict(review, food), (review, reply)


def test_worked_arithmetic_is_a_true_equation_with_the_prompts_numbers():
    for example in (e for e in EXAMPLES if e.family == "arithmetic"):
        reply = wa.worked_arithmetic(example)
        a, op, b, equals, result = reply.split()
        assert equals == "=" and result == example.answer
        assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(result)
        assert re.findall(r"\b\d+\b", example.messages[0]["content"]) == [a, b]


def test_only_the_chosen_families_change_and_the_answer_is_read_after_the_last_step():
    chosen = {"sentiment"}
    for example in EXAMPLES[:60]:
        changed = wa.with_worked_answer(example, chosen)
        if example.family in chosen:
            assert changed.messages[1]["content"].endswith(f"-> {example.answer}")
            assert wa.final_answer(example.family, changed.messages[1]["content"], chosen) == example.answer
        else:
            assert changed is example
    assert wa.final_answer("sentiment", "bad tea, good soup -> soup", chosen) == "soup"
    assert wa.final_answer("sentiment", "bad tea, good soup", chosen) == "bad tea, good soup"
    assert wa.final_answer("qa", " Lucy ", chosen) == "Lucy"


def test_a_review_that_does_not_name_two_foods_is_refused():
    example = next(e for e in EXAMPLES if e.family == "sentiment")
    broken = type(example)(family="sentiment", template=example.template, answer="tea", messages=[
        {"role": "user", "content": "The tea is good. Which food did they like?"},
        {"role": "assistant", "content": "tea"}])
    with pytest.raises(ValueError, match="expected a review of two foods"):
        wa.worked_sentiment(broken)
