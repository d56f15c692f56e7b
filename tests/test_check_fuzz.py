"""Every exercise check survives every kind of wrong answer with its own plain message.

The per-chapter tests (``test_check_chNN.py``) feed each check the right answer and the typical
mistakes. This file is the safety net under them: it finds every public ``check_*`` function in
every chapter module ``sftlearn.check.chNN`` by introspection (so a check added later is covered without
editing this file) and hands each one answers no exercise expects: ``None``, a string, tensors
of the wrong shape or full of NaN, and functions that crash, are unfinished, return nothing,
return the wrong kind of thing or take the wrong arguments.

A check may answer in exactly two ways (see ``sftlearn/check/_core.py``):

- raise ``CheckFailure``, which Jupyter shows as ``✗ name: <what is wrong>`` (plus a hint);
- for an unfinished exercise (``NotImplementedError``), print ``… name: not done yet`` and
  return None (or, with ``SFTLEARN_GRADING=1``, raise ``CheckFailure("not done yet")``).

Anything else (a ``TypeError`` from deep inside the checker, an ``IndexError``, a wrong answer
accepted with ``✓``) is a bug this test reports, naming the check and the input.
"""

import importlib
import inspect
import math
from pathlib import Path

import pytest
import torch

import sftlearn.check
from sftlearn.check import CheckFailure

CHECK_DIR = Path(sftlearn.check.__file__).parent
CHAPTERS = sorted(f"sftlearn.check.{p.stem}" for p in CHECK_DIR.glob("ch[0-9][0-9].py"))


def discover_checks():
    """(id, check function) for every public check_* defined in the chapter modules."""
    found = []
    for module_name in CHAPTERS:
        module = importlib.import_module(module_name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and fn.__module__ == module_name:
                found.append((f"{module_name.rsplit('.', 1)[1]}.{name}", fn))
    return found


CHECKS = discover_checks()


def raises_not_implemented(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def raises_zero_division(*args, **kwargs):
    return 1 / 0


def returns_none(*args, **kwargs):
    return None  # the classic: computed the answer, forgot to return it


def returns_a_string(*args, **kwargs):
    return "the answer"


def returns_nan(*args, **kwargs):
    return torch.full((3, 3), math.nan)


def returns_wrong_shape(*args, **kwargs):
    return torch.zeros(2, 3, 5, 7)


def returns_an_object(*args, **kwargs):
    return object()


def takes_no_arguments():
    return 0


# Each entry: (id, the answer handed to the check). Values stand for "passed the result instead
# of the function" or "passed a wrong value to a value check"; functions stand for wrong code.
WRONG_ANSWERS = [
    ("None", None),
    ("a string", "softmax"),
    ("wrong-shape tensor", torch.zeros(2, 3, 5, 7)),
    ("NaN tensor", torch.full((4, 4), math.nan)),
    ("raises NotImplementedError", raises_not_implemented),
    ("raises ZeroDivisionError", raises_zero_division),
    ("returns None", returns_none),
    ("returns a string", returns_a_string),
    ("returns NaN", returns_nan),
    ("returns the wrong shape", returns_wrong_shape),
    ("returns an object", returns_an_object),
    ("takes no arguments", takes_no_arguments),
]


def test_every_chapter_has_checks():
    """The discovery itself works: a typo in CHAPTERS or a renamed module would empty the test."""
    chapters = {check_id.split(".")[0] for check_id, _ in CHECKS}
    assert chapters == {name.rsplit(".", 1)[1] for name in CHAPTERS}
    assert {f"ch{n:02d}" for n in range(9)} <= chapters
    assert len(CHECKS) >= 40


def test_the_harness_reports_a_check_that_crashes(capsys):
    """A check that uses the answer without ``call_student`` must not slip through ``outcome``."""
    from sftlearn.check import checker

    @checker("broken")
    def check_broken(fn):
        return fn(1)[0]  # no call_student: a None answer crashes with TypeError

    with pytest.raises(TypeError):
        outcome(check_broken, None, capsys)


def outcome(check, answer, capsys):
    """Run ``check(answer)``; return ("failure", message) or ("printed", stdout).

    Any other exception propagates, so pytest shows it as the bug it is.
    """
    try:
        result = check(answer)
    except CheckFailure as failure:
        return "failure", str(failure)
    printed = capsys.readouterr().out
    assert result is None, f"a check returns None, got {result!r}"
    return "printed", printed


@pytest.mark.parametrize("answer_id, answer", WRONG_ANSWERS, ids=[a for a, _ in WRONG_ANSWERS])
@pytest.mark.parametrize("check_id, check", CHECKS, ids=[c for c, _ in CHECKS])
def test_check_answers_wrong_input_plainly(check_id, check, answer_id, answer, capsys, monkeypatch):
    monkeypatch.delenv("SFTLEARN_GRADING", raising=False)
    name = check_id.split(".check_", 1)[1]
    kind, text = outcome(check, answer, capsys)
    if answer is raises_not_implemented:
        # An unfinished exercise: a friendly note, never a failure or a traceback. Value checks
        # (which take a number, not a function) may instead say it is not a number.
        if kind == "printed":
            assert "not done yet" in text, text
            return
    assert kind == "failure", f"{check_id} accepted {answer_id}: it printed {text!r}"
    first_line = text.splitlines()[0]
    assert first_line.startswith(f"✗ {name}: "), text  # the plain rendering, named after the check
    assert len(first_line) > len(f"✗ {name}: ") + 10, text  # says something
    assert "Traceback" not in text and len(text) < 700, text  # one or two sentences, not a dump
    if answer is raises_zero_division:
        assert "ZeroDivisionError" in text, text  # the student's own error is named


@pytest.mark.parametrize("answer", [raises_not_implemented, returns_wrong_shape], ids=["stub", "wrong"])
@pytest.mark.parametrize("check_id, check", CHECKS, ids=[c for c, _ in CHECKS])
def test_a_check_leaves_the_notebooks_random_state_alone(check_id, check, answer, capsys, monkeypatch):
    """A check builds its fixed models and inputs from its own seeds; the student's next
    ``torch.rand`` must not depend on whether a check ran before it."""
    monkeypatch.delenv("SFTLEARN_GRADING", raising=False)
    torch.manual_seed(1234)
    expected_next = torch.rand(4)
    torch.manual_seed(1234)
    outcome(check, answer, capsys)
    assert torch.equal(torch.rand(4), expected_next), f"{check_id} reseeded torch's global generator"


@pytest.mark.parametrize("check_id, check", CHECKS, ids=[c for c, _ in CHECKS])
def test_unfinished_exercise_fails_plainly_when_grading(check_id, check, capsys, monkeypatch):
    """Under an autograder (SFTLEARN_GRADING=1) a stub is a failure, still without a traceback."""
    monkeypatch.setenv("SFTLEARN_GRADING", "1")
    kind, text = outcome(check, raises_not_implemented, capsys)
    assert kind == "failure", f"{check_id} printed {text!r} for a stub under grading"
    assert text.startswith(f"✗ {check_id.split('.check_', 1)[1]}: "), text
