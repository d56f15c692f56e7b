"""Tests of the chapter 00 checks (sftlearn.check.ch00).

Each check gets the right answer, a stub that still raises NotImplementedError, and the
typical wrong answers, and the tests assert the words the student would read.
More cases for count_characters, normalise and linear_parameter_count, which also serve
as examples of the machinery, are in tests/test_check_core.py.
"""

from __future__ import annotations

import pytest
import torch

from sftlearn.check import ch00
from sftlearn.glossary import lookup
from conftest import failure_of, stub


# ---------------------------------------------------------------------- count_words


def test_count_words_right_answer(capsys):
    ch00.check_count_words(lambda text: len(text.split()))
    assert capsys.readouterr().out == (
        "✓ count_words: correct on 5 strings, including empty text and repeated spaces.\n"
    )


def test_count_words_stub_is_not_done_yet(capsys):
    ch00.check_count_words(stub)
    assert capsys.readouterr().out.startswith("… count_words: not done yet. Replace the line")


def test_count_words_stub_fails_when_grading(monkeypatch):
    monkeypatch.setenv("SFTLEARN_GRADING", "1")
    assert failure_of(ch00.check_count_words, stub).message == "not done yet."


@pytest.mark.parametrize("answer", [lambda t: t.count(" ") + 1, lambda t: len(t.split(" "))])
def test_count_words_counting_spaces_is_recognised(answer):
    failure = failure_of(ch00.check_count_words, answer)
    assert failure.message == (
        "count_words('') returned 1, but the text has 0 words: counting spaces and adding one "
        "goes wrong for empty text, repeated spaces and line breaks."
    )
    assert failure.hint == "`text.split()` (with no argument) splits on any run of whitespace."
    assert failure.check == "count_words"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda t: len(t.splitlines()), "count_words('the cat sat') returned 1, but the text has 3 words."),
        (lambda t: t.split(), "count_words('the cat sat') should return a whole number (an int), "
                              "but returned a list ['the', 'cat', 'sat']."),
        (lambda t: float(len(t.split())), "count_words('the cat sat') should return a whole number "
                                          "(an int), but returned 3.0."),
        (lambda t: None, "count_words('the cat sat') returned None."),
        (lambda t: t.words(), "your function `<lambda>` raised AttributeError: 'str' object has no "
                              "attribute 'words' (on input 'the cat sat')."),
    ],
)
def test_count_words_other_wrong_answers(answer, message):
    assert failure_of(ch00.check_count_words, answer).message == message


def test_count_words_rendering_has_no_traceback():
    lines = failure_of(ch00.check_count_words, lambda t: t.count(" ") + 1)._render_traceback_()
    assert len(lines) == 2
    assert lines[0].startswith("✗ count_words: count_words('') returned 1")
    assert lines[1].startswith("Hint: ")


# ------------------------------------------------------------------ count_characters


def test_count_characters_right_answer(capsys):
    ch00.check_count_characters(lambda text: len(text))
    assert capsys.readouterr().out == (
        "✓ count_characters: correct on 5 strings, including the empty string and Chinese text.\n"
    )


def test_count_characters_stub(capsys):
    ch00.check_count_characters(stub)
    assert capsys.readouterr().out.startswith("… count_characters: not done yet.")


def test_count_characters_bytes_mistake_names_bytes():
    failure = failure_of(ch00.check_count_characters, lambda s: len(s.encode("utf-8")))
    assert failure.message == (
        "count_characters('你好') returned 6, the number of UTF-8 bytes, not characters."
    )
    assert failure.hint == "'你' is one character but three bytes; `len` of a str counts characters."


def test_count_characters_strip_mistake():
    failure = failure_of(ch00.check_count_characters, lambda s: len(s.strip()))
    assert failure.message == (
        "count_characters('tokens!\\n') returned 7, but the text has 8 characters: "
        "a line break at the end is a character too."
    )
    assert failure.hint == "Do not strip the text before counting."


def test_count_characters_passing_a_result_instead_of_the_function():
    failure = failure_of(ch00.check_count_characters, 5)
    assert failure.message == "expected a function, but got 5."
    assert "Pass the function itself" in failure.hint


# ------------------------------------------------------------------------- normalise


def test_normalise_right_answer(capsys):
    ch00.check_normalise(lambda w: w / w.sum(dim=-1, keepdim=True))
    assert capsys.readouterr().out == (
        "✓ normalise: correct on 3 inputs, including a batch of rows and a single weight.\n"
    )


def test_normalise_stub(capsys):
    ch00.check_normalise(stub)
    assert capsys.readouterr().out.startswith("… normalise: not done yet.")


def test_normalise_leaving_the_own_weight_out_is_recognised():
    failure = failure_of(ch00.check_normalise, lambda w: w / (w.sum(dim=-1, keepdim=True) - w))
    assert failure.message == (
        "normalise(tensor([1.0, 1.0, 2.0])) is wrong: each weight is divided by the sum of the "
        "other weights, leaving its own weight out of the denominator."
    )
    assert "[e, e, e] becomes 1/3 each, not 0.5" in failure.hint


def test_normalise_softmax_is_recognised():
    failure = failure_of(ch00.check_normalise, lambda w: torch.softmax(w, dim=-1))
    assert failure.message == (
        "normalise(tensor([1.0, 1.0, 2.0])) is wrong: it is the softmax of the weights, "
        "which exponentiates them first."
    )
    assert "already non-negative" in failure.hint


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda w: None, "normalise(tensor([1.0, 1.0, 2.0])) is None."),
        (lambda w: w / w.max(), "normalise(tensor([1.0, 1.0, 2.0])) should sum to 1 along "
                                "dimension 0, but it sums to 2."),
        (lambda w: w / w.sum(0), "normalise(tensor([[1.0, 3.0], [5.0, 5.0], [0.0, 2.0]])) sums to 1 "
                                 "along dimension 0 instead of dimension 1."),
        (lambda w: w / w.sum(), "normalise(tensor([[1.0, 3.0], [5.0, 5.0], [0.0, 2.0]])) should sum "
                                "to 1 along dimension 1, but e.g. row 0 sums to 0.25."),
        (lambda w: (w / w.sum(-1, keepdim=True)).long(), "normalise(tensor([1.0, 1.0, 2.0])) holds "
                                                          "integer values (torch.int64) but should hold "
                                                          "floating-point numbers."),
    ],
)
def test_normalise_wrong_answers(answer, message):
    assert failure_of(ch00.check_normalise, answer).message == message


def test_normalise_does_not_see_in_place_changes_of_its_input():
    def in_place(w):
        w /= w.sum(dim=-1, keepdim=True)
        return w

    ch00.check_normalise(in_place)  # the check copies its inputs, so this is correct


# ------------------------------------------------------------ linear_parameter_count


def test_linear_parameter_count_right_function(capsys):
    ch00.check_linear_parameter_count(lambda n_in, n_out: n_in * n_out + n_out)
    assert capsys.readouterr().out == (
        "✓ linear_parameter_count: correct for 5 layer sizes; e.g. nn.Linear(3, 4) has "
        "12 weights and 4 biases.\n"
    )


def test_linear_parameter_count_stub(capsys):
    ch00.check_linear_parameter_count(stub)
    assert capsys.readouterr().out.startswith("… linear_parameter_count: not done yet.")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda i, o: i * o, "linear_parameter_count(3, 4) returned 12, which counts the weight "
                             "matrix (3 × 4) only."),
        (lambda i, o: i * o + i, "linear_parameter_count(3, 4) returned 15, which gives the bias one "
                                 "entry per input; it has one per output (4), since b is added to the "
                                 "4 outputs of Wx."),
        (lambda i, o: i + o, "linear_parameter_count(3, 4) returned 7, which adds the two sizes; the "
                             "weight matrix has one number per (input, output) pair."),
        (lambda i, o: (i + 1) * (o + 1), "linear_parameter_count(3, 4) returned 20, which is not the "
                                         "number of parameters of nn.Linear(3, 4)."),
        (lambda i, o: 16, "linear_parameter_count(2, 3) returned 16, the same as for nn.Linear(3, 4): "
                          "the count must depend on the layer's sizes."),
        (lambda i, o: None, "linear_parameter_count(3, 4) returned None."),
        (lambda i, o: str(i * o + o), "linear_parameter_count(3, 4) should return a whole number, but "
                                      "returned '16'."),
        (lambda i, o: i * o + o + 0.5, "linear_parameter_count(3, 4) should return a whole number, "
                                       "but returned 16.5."),
    ],
)
def test_linear_parameter_count_wrong_functions(answer, message):
    assert failure_of(ch00.check_linear_parameter_count, answer).message == message


def test_linear_parameter_count_accepts_whole_numbers_of_other_types(capsys):
    ch00.check_linear_parameter_count(lambda i, o: float(i * o + o))
    ch00.check_linear_parameter_count(lambda i, o: torch.tensor(i * o + o))
    assert capsys.readouterr().out.count("✓ linear_parameter_count: correct for 5 layer sizes") == 2


@pytest.mark.parametrize("value", [16, 4 * 3 + 4, torch.tensor(16), 16.0])
def test_linear_parameter_count_right_value(value, capsys):
    ch00.check_linear_parameter_count(value)
    assert capsys.readouterr().out == (
        "✓ linear_parameter_count: nn.Linear(3, 4) has 12 weights and 4 biases.\n"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (12, "12 counts the weight matrix (3 × 4) only."),
        (15, "15 gives the bias one entry per input; it has one per output (4), since b is added "
             "to the 4 outputs of Wx."),
        (7, "7 adds the two sizes; the weight matrix has one number per (input, output) pair."),
        (20, "20 is not the number of parameters of nn.Linear(3, 4)."),
        ("16", "the answer should be a whole number, but it is '16'."),
        (16.5, "the answer should be a whole number, but it is 16.5."),
        (True, "the answer should be a whole number, but it is True."),
    ],
)
def test_linear_parameter_count_wrong_values(value, message):
    assert failure_of(ch00.check_linear_parameter_count, value).message == message


# ---------------------------------------------------------------------- first_mention


def right_first_mention(term):
    entry = lookup(term)
    return f"**{entry.term}** ({entry.chinese})"


def test_first_mention_right_answer(capsys):
    ch00.check_first_mention(right_first_mention)
    assert capsys.readouterr().out == (
        "✓ first_mention: correct on 5 terms, including an abbreviation, a Chinese name and "
        "a term in other capitals.\n"
    )


def test_first_mention_stub(capsys):
    ch00.check_first_mention(stub)
    assert capsys.readouterr().out.startswith("… first_mention: not done yet.")


def test_first_mention_repeating_the_query_is_recognised():
    failure = failure_of(ch00.check_first_mention, lambda t: f"**{t}** ({lookup(t).chinese})")
    assert failure.message == (
        "first_mention('Perplexity') returned '**Perplexity** (困惑度)': it repeats the term as it "
        "was typed; the glossary's English name is 'perplexity'."
    )
    assert ".term" in failure.hint


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda t: None, "first_mention('token') returned None."),
        (lambda t: 42, "first_mention('token') should return a str, but returned 42."),
        (lambda t: right_first_mention(t) + " ", "with extra spaces around '**token** (词元)'"),
        (lambda t: right_first_mention(t).replace("**", ""), "the English term should be bold"),
        (lambda t: f"**{lookup(t).chinese}** ({lookup(t).term})", "English and Chinese are swapped"),
        (lambda t: "**token** (词元)",
         "first_mention('Perplexity') returned '**token** (词元)', but should return '**perplexity** (困惑度)'."),
        (lambda t: lookup(t), "first_mention('token') should return a str, but returned a Term"),
    ],
)
def test_first_mention_wrong_answers(answer, words):
    assert words in failure_of(ch00.check_first_mention, answer).message
