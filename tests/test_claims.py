"""sftlearn.claims: a lesson's claims raise under the tests and are reported to students."""

import pytest

from sftlearn.claims import ALL_HOLD, ENV_STRICT, Claims, ClaimsNotMet


def claims_with(*results):
    claims = Claims()
    for k, holds in enumerate(results):
        claims.check(holds, f"claim {k}")
    return claims


@pytest.mark.parametrize("strict", ["0", "1"])
def test_all_claims_holding_print_the_same_line_in_both_modes(monkeypatch, capsys, strict):
    monkeypatch.setenv(ENV_STRICT, strict)
    claims_with(True, 1, [0]).report()  # anything truthy holds
    assert capsys.readouterr().out == ALL_HOLD + "\n"


def test_a_student_sees_which_claims_fail_and_why_that_can_happen(monkeypatch, capsys):
    monkeypatch.delenv(ENV_STRICT, raising=False)
    claims_with(True, False, True, 0).report()
    out = capsys.readouterr().out
    assert out.startswith("2 of the 4 claims of the text do not hold in this run:\n"
                          "  - claim 1\n  - claim 3\n")
    assert "from one processor to another" in out and ALL_HOLD not in out


def test_one_failing_claim_is_reported_in_the_singular(monkeypatch, capsys):
    monkeypatch.delenv(ENV_STRICT, raising=False)
    claims_with(True, 0, True).report()
    assert capsys.readouterr().out.startswith("1 of the 3 claims of the text does not hold in this run:\n"
                                              "  - claim 1\n")


def test_under_the_tests_a_failing_claim_raises_with_every_failure(monkeypatch, capsys):
    monkeypatch.setenv(ENV_STRICT, "1")
    with pytest.raises(ClaimsNotMet) as info:
        claims_with(False, True, False).report()
    assert str(info.value).startswith("2 of the 3 claims of the text do not hold in this run:\n"
                                      "  - claim 0\n  - claim 2\nUpdate the text")
    assert isinstance(info.value, AssertionError)  # nbval and plain asserts treat it alike
    assert capsys.readouterr().out == ""


def test_the_tests_run_lessons_strictly():
    import os
    assert os.environ.get(ENV_STRICT) == "1"  # tests/conftest.py sets it for every kernel


def test_bad_use_names_the_fix():
    with pytest.raises(ValueError, match="before claims.report"):
        Claims().report()
    with pytest.raises(ValueError, match="sentence of the text"):
        Claims().check(True, "")
    # a function is always truthy: it would make any claim hold
    accuracy = 0.3
    with pytest.raises(TypeError, match=r"not a function: write check\(acc > 0.5, ...\)"):
        Claims().check(lambda: accuracy > 0.5, "The accuracy is above one half.")
