"""Tests of the check machinery (sftlearn.check._core) and the example checks of chapter 00."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sftlearn.check import CheckFailure, NotDoneYet, call_student, checker, compare_arrays, expect, run_check
from sftlearn.check import ch00
from conftest import failure_of, stub


SCORES = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [3.0, 1.0, 0.25]])
WEIGHTS = torch.softmax(SCORES, dim=-1)


# --------------------------------------------------------------------- compare_arrays


def test_correct_values_pass_silently():
    assert compare_arrays("w", WEIGHTS.clone(), WEIGHTS, probabilities=True) is None


@pytest.mark.parametrize("got", [WEIGHTS.numpy(), WEIGHTS.tolist(), WEIGHTS.double(), list(WEIGHTS)])
def test_numpy_arrays_lists_and_other_float_dtypes_are_accepted(got):
    compare_arrays("w", got, WEIGHTS)


def test_python_scalars_are_accepted():
    compare_arrays("loss", 0.25, torch.tensor(0.25))
    compare_arrays("count", 3, torch.tensor(3))


def test_none_says_return_is_missing():
    failure = failure_of(compare_arrays, "weights", None, WEIGHTS)
    assert failure.message == "weights is None."
    assert "forget to `return`" in failure.hint


def test_wrong_type_is_named():
    failure = failure_of(compare_arrays, "weights", "0.5", WEIGHTS)
    assert "should be a tensor (or array)" in failure.message
    assert "of type str" in failure.message


def test_ragged_list_is_explained():
    failure = failure_of(compare_arrays, "rows", [[1.0, 2.0], [3.0]], torch.zeros(2, 2))
    assert "cannot be turned into a tensor" in failure.message
    assert "same length" in failure.hint


def test_wrong_shape_reports_both_shapes():
    failure = failure_of(compare_arrays, "out", torch.zeros(2, 5), torch.zeros(2, 4))
    assert "out has shape (2, 5) but should have shape (2, 4)" in failure.message
    assert "Dimension 1 has size 5 instead of 4" in failure.message


def test_transposed_shape_is_recognised():
    failure = failure_of(compare_arrays, "scores", torch.zeros(4, 3), torch.zeros(3, 4))
    assert "looks transposed" in failure.message
    assert "transpose(-2, -1)" in failure.hint


def test_transposed_square_values_are_recognised():
    failure = failure_of(compare_arrays, "scores", SCORES.T, SCORES)
    assert failure.message == "scores is transposed: its rows are the expected columns."


def test_missing_and_extra_dimensions_are_recognised():
    missing = failure_of(compare_arrays, "s", torch.zeros(3), torch.zeros(3, 1))
    assert "Dimension 1 (of size 1) is missing" in missing.message
    assert "keepdim=True" in missing.hint
    extra = failure_of(compare_arrays, "s", torch.zeros(1, 2, 3), torch.zeros(2, 3))
    assert "extra dimension of size 1 at position 0" in extra.message


def test_same_number_of_elements_suggests_reshape():
    failure = failure_of(compare_arrays, "x", torch.zeros(2, 6), torch.zeros(3, 4))
    assert "right number of elements" in failure.message
    assert "reshape" in failure.hint


def test_scaled_by_sqrt_d_is_recognised():
    failure = failure_of(compare_arrays, "scores", SCORES * 4.0, SCORES, d=16)
    assert failure.message == "scores is too large by a factor of √d = √16 ≈ 4."
    assert "before the softmax" in failure.hint


def test_divided_by_sqrt_d_twice_is_recognised():
    failure = failure_of(compare_arrays, "scores", SCORES / 8.0, SCORES, d=64)
    assert "too small by a factor of √d = √64 ≈ 8" in failure.message


def test_divided_by_d_is_recognised():
    failure = failure_of(compare_arrays, "scores", SCORES * 16.0, SCORES, d=16)
    assert "too large by a factor of d = 16" in failure.message


def test_other_constant_factors():
    assert "twice as large" in failure_of(compare_arrays, "x", SCORES * 2, SCORES).message
    assert "half as large" in failure_of(compare_arrays, "x", SCORES / 2, SCORES).message
    assert "1.37 times what it should be" in failure_of(compare_arrays, "x", SCORES * 1.37, SCORES).message


def test_wrong_sign_is_recognised_also_for_a_single_number():
    assert "wrong sign" in failure_of(compare_arrays, "x", -SCORES, SCORES).message
    loss = failure_of(compare_arrays, "loss", -0.105, torch.tensor(0.105))
    assert "wrong sign" in loss.message
    assert "−log p" in loss.hint


def test_a_wrong_single_number_states_both_values():
    failure = failure_of(compare_arrays, "loss", 0.5, torch.tensor(0.75))
    assert failure.message == "loss is 0.5, but should be 0.75."


def test_all_zeros():
    assert failure_of(compare_arrays, "x", torch.zeros(3, 3), SCORES).message == "x is all zeros."


def test_constant_offset():
    failure = failure_of(compare_arrays, "log_probs", SCORES + 0.5, SCORES)
    assert "off by the same amount (+0.5)" in failure.message


def test_nan_is_reported_with_position():
    got = WEIGHTS.clone()
    got[1, 2] = float("nan")
    failure = failure_of(compare_arrays, "weights", got, WEIGHTS, probabilities=True)
    assert failure.message == "weights contains NaN at 1 of 9 positions (the first at index (1, 2))."
    assert "subtract the maximum" in failure.hint


def test_inf_is_reported():
    got = SCORES.clone()
    got[0, 0] = float("inf")
    assert "contains inf at 1 of 9 positions" in failure_of(compare_arrays, "s", got, SCORES).message


def test_expected_minus_inf_must_be_minus_inf():
    masked = SCORES.masked_fill(torch.ones(3, 3).triu(1).bool(), float("-inf"))
    compare_arrays("masked", masked.clone(), masked)
    failure = failure_of(compare_arrays, "masked", masked.nan_to_num(neginf=-1e9), masked)
    assert "should be -inf at 3 positions (the first at index (0, 1))" in failure.message


def test_rows_not_summing_to_one():
    failure = failure_of(compare_arrays, "weights", torch.exp(SCORES), WEIGHTS, probabilities=True)
    assert "should sum to 1 along dimension 1, but e.g. row 0 sums to" in failure.message
    assert "keepdim=True" in failure.hint


def test_normalised_over_the_wrong_dimension():
    wrong = torch.softmax(SCORES, dim=0)
    failure = failure_of(compare_arrays, "weights", wrong, WEIGHTS, probabilities=True)
    assert failure.message == "weights sums to 1 along dimension 0 instead of dimension 1."


def test_negative_probabilities():
    failure = failure_of(compare_arrays, "p", WEIGHTS - 0.5, WEIGHTS, probabilities=True)
    assert "negative entries" in failure.message


def test_generic_difference_names_count_index_and_values():
    got = SCORES.clone()
    got[2, 1] += 0.5
    failure = failure_of(compare_arrays, "scores", got, SCORES, hint="Recompute row 2.")
    assert failure.message == (
        "scores is wrong at 1 of 9 positions. The largest difference is 0.5 at index (2, 1): "
        "got 1.5, expected 1."
    )
    assert failure.hint == "Recompute row 2."


def test_known_mistakes_are_named_in_the_authors_words():
    after = torch.softmax(SCORES, dim=-1) / math.sqrt(3)
    failure = failure_of(
        compare_arrays, "weights", after, WEIGHTS,
        mistakes={"the scaling by √d is applied after the softmax": (after, "Scale the scores.")},
    )
    assert failure.message == "weights is wrong: the scaling by √d is applied after the softmax."
    assert failure.hint == "Scale the scores."


def test_dtype_families():
    floats = failure_of(compare_arrays, "x", torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert "holds integer values (torch.int64) but should hold floating-point numbers" in floats.message
    ids = failure_of(compare_arrays, "ids", torch.tensor([1.0, 2.0]), torch.tensor([1, 2]))
    assert "should hold integers" in ids.message
    mask = failure_of(compare_arrays, "mask", torch.tensor([0.5, 1.0]), torch.tensor([False, True]))
    assert "should be a boolean mask" in mask.message
    compare_arrays("mask", torch.tensor([0, 1]), torch.tensor([False, True]))  # 0/1 ints are fine


def test_plain_python_numbers_convert_only_when_no_value_changes():
    # Lists and numbers carry no dtype, so whole floats pass for integers and 0/1 for a mask,
    # but truncating 1.7 to 1 (or reading 0.5 as True) would accept a wrong answer.
    compare_arrays("ids", [1.0, 2.0], torch.tensor([1, 2]))
    compare_arrays("n", 3, torch.tensor(3.0))
    compare_arrays("mask", [1, 0], torch.tensor([True, False]))
    assert "should hold integers" in failure_of(compare_arrays, "ids", [1.7, 2.2], torch.tensor([1, 2])).message
    assert "should hold integers" in failure_of(compare_arrays, "n", 2.9, torch.tensor(2)).message
    assert "should be a boolean mask" in failure_of(
        compare_arrays, "mask", [0.5, 0.0], torch.tensor([True, False])).message
    assert "should be a boolean mask" in failure_of(
        compare_arrays, "mask", [2, 0], torch.tensor([True, False])).message


def test_a_number_written_as_text_is_not_a_number():
    from sftlearn.check._core import as_number

    assert as_number("loss", 0.105) == 0.105
    failure = failure_of(as_number, "loss", "0.105")
    assert failure.message == "loss should be a number, but it is the text '0.105'."
    assert "not a string made from it" in failure.hint


def test_integer_values_must_match_exactly():
    failure = failure_of(compare_arrays, "ids", torch.tensor([5, 6, 8]), torch.tensor([5, 6, 7]))
    assert failure.message == "ids is wrong at 1 of 3 positions; the first is index 2: got 8, expected 7."


# ----------------------------------------------------------------------- call_student


def test_call_student_returns_the_result():
    assert call_student(lambda a, b=1: a + b, 2, b=3) == 5


def test_call_student_turns_a_stub_into_not_done_yet():
    with pytest.raises(NotDoneYet):
        call_student(stub, 1)


def test_call_student_reports_the_students_exception_with_the_input():
    def softmax(x):
        raise TypeError("unsupported operand")

    failure = failure_of(call_student, softmax, torch.tensor([1.0, 2.0]))
    assert failure.message == (
        "your function `softmax` raised TypeError: unsupported operand (on input tensor([1.0, 2.0]))."
    )
    assert "Call `softmax` on that input" in failure.hint
    assert failure.__suppress_context__  # the checker's own frames stay hidden


def test_call_student_describes_big_inputs_by_shape():
    failure = failure_of(call_student, lambda x: x.foo(), torch.zeros(4, 5))
    assert "on input a tensor of shape (4, 5)" in failure.message
    assert "AttributeError" in failure.message


def test_call_student_rejects_a_result_instead_of_a_function():
    failure = failure_of(call_student, torch.zeros(2), 1)
    assert "expected a function" in failure.message
    assert "not the result of calling it" in failure.hint


def test_a_result_passed_to_a_check_gets_a_hint_naming_that_check():
    @checker("double")
    def check_double(double):
        call_student(double, 2)

    with pytest.raises(CheckFailure) as info:
        check_double(4)
    assert info.value.hint == ("Pass the function itself, `check_double(double)`, not the result "
                               "of calling it, `check_double(double(...))`.")


def test_call_student_protects_the_checkers_inputs():
    x = torch.ones(3)
    arr = np.ones(2)

    def in_place(t, a):
        t.mul_(5)
        a *= 5
        return t

    assert call_student(in_place, x, arr).tolist() == [5.0, 5.0, 5.0]
    assert x.tolist() == [1.0, 1.0, 1.0]
    assert arr.tolist() == [1.0, 1.0]


# ------------------------------------------------------------------ run_check / checker


@checker("double")
def check_double(fn):
    got = call_student(fn, torch.tensor([1.0, -2.0]))
    compare_arrays("double([1, -2])", got, torch.tensor([2.0, -4.0]))
    return "correct on 1 input."


def test_a_correct_answer_prints_a_confirmation(capsys):
    assert check_double(lambda x: 2 * x) is None
    assert capsys.readouterr().out == "✓ double: correct on 1 input.\n"


def test_an_unfinished_exercise_prints_not_done_yet(capsys):
    check_double(stub)
    out = capsys.readouterr().out
    assert out.startswith("… double: not done yet.")
    assert "raise NotImplementedError(...)" in out


def test_grading_mode_turns_not_done_into_a_failure(monkeypatch):
    monkeypatch.setenv("SFTLEARN_GRADING", "1")
    failure = failure_of(check_double, stub)
    assert failure.check == "double"
    assert failure.message == "not done yet."


def test_a_wrong_answer_raises_an_assertion_error_named_after_the_check():
    failure = failure_of(check_double, lambda x: -2 * x)
    assert isinstance(failure, AssertionError)
    assert failure.check == "double"
    assert str(failure).startswith("✗ double: double([1, -2]) has the wrong sign")


def test_a_crashing_answer_is_reported_plainly():
    failure = failure_of(check_double, lambda x: x @ torch.zeros(5))
    assert failure.message.startswith("your function `<lambda>` raised RuntimeError:")
    assert failure.__cause__ is None and failure.__suppress_context__


def test_run_check_without_decorator(capsys):
    run_check("answer", lambda: None)
    assert capsys.readouterr().out == "✓ answer: correct.\n"


def test_expect():
    expect(True, "never shown")
    failure = failure_of(expect, False, "the mask lets token 2 see token 3.", "Use tril, not triu.")
    assert (failure.message, failure.hint) == ("the mask lets token 2 see token 3.", "Use tril, not triu.")


def test_render_traceback_is_short():
    failure = failure_of(check_double, lambda x: x * 3)
    lines = failure._render_traceback_()
    assert lines[0].startswith("✗ double: double([1, -2]) is off by a constant factor")
    assert lines[1].startswith("Hint: ")
    assert len(lines) == 2
    assert all(len(line) < 200 for line in lines)
    no_hint = CheckFailure("x is wrong.", check="x")._render_traceback_()
    assert no_hint == ["✗ x: x is wrong."]


def test_not_done_yet_renders_as_one_line():
    lines = NotDoneYet("`softmax`")._render_traceback_()
    assert len(lines) == 1 and lines[0].startswith("… `softmax` is not done yet.")


# ------------------------------------------------------------------ chapter 00 examples


def test_ch00_count_characters(capsys):
    ch00.check_count_characters(len)
    assert capsys.readouterr().out.startswith("✓ count_characters: correct on 5 strings")
    ch00.check_count_characters(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda s: len(s.encode("utf-8")), "the number of UTF-8 bytes"),
        (lambda s: len(s.split()), "counts words"),
        (lambda s: len(s.replace(" ", "")), "spaces are characters too"),
        (lambda s: None, "returned None"),
        (lambda s: str(len(s)), "should return a whole number"),
        (lambda s: len(s) + 1, "but the text has 5 characters"),
        (lambda s: s[100], "raised IndexError"),
    ],
)
def test_ch00_count_characters_wrong_answers(answer, words):
    assert words in failure_of(ch00.check_count_characters, answer).message


def test_ch00_normalise(capsys):
    ch00.check_normalise(lambda w: w / w.sum(dim=-1, keepdim=True))
    assert capsys.readouterr().out.startswith("✓ normalise: correct on 3 inputs")
    assert "sums to 2" in failure_of(ch00.check_normalise, lambda w: w / w.max()).message
    assert "along dimension 0 instead" in failure_of(ch00.check_normalise, lambda w: w / w.sum(0)).message


def test_ch00_linear_parameter_count(capsys):
    ch00.check_linear_parameter_count(16)
    ch00.check_linear_parameter_count(torch.tensor(16))
    assert capsys.readouterr().out.count("✓ linear_parameter_count") == 2
    assert "weight matrix (3 × 4) only" in failure_of(ch00.check_linear_parameter_count, 12).message
    assert "adds the two sizes" in failure_of(ch00.check_linear_parameter_count, 7).message
    assert "should be a whole number" in failure_of(ch00.check_linear_parameter_count, "16").message


def test_short_repr_shows_small_tensors_without_float32_noise():
    from sftlearn.check._core import short_repr

    assert short_repr(torch.tensor([0.1, -2.5, float("nan")])) == "tensor([0.1, -2.5, nan])"
    assert short_repr(torch.tensor([[1, 2], [3, 4]])) == "tensor([[1, 2], [3, 4]])"
    assert short_repr(torch.zeros(4, 5)) == "a tensor of shape (4, 5)"
    assert short_repr(np.zeros((4, 5))) == "an array of shape (4, 5)"


def test_known_mistakes_are_named_for_integer_and_boolean_values_too():
    expected = torch.tensor([[True, False], [True, True]])
    inverted = ~expected
    with pytest.raises(CheckFailure) as info:
        compare_arrays("mask", inverted, expected, mistakes={"the mask is inverted": inverted})
    assert info.value.message == "mask is wrong: the mask is inverted."
    with pytest.raises(CheckFailure) as info:
        compare_arrays("ids", torch.tensor([1, 2]), torch.tensor([1, 3]), mistakes={"off by one": torch.tensor([0, 2])})
    assert "off by one" not in info.value.message  # an unrelated mistake is not claimed
