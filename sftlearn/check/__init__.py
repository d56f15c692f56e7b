"""Exercise checks: instant, specific feedback on the student's answers.

In a notebook::

    from sftlearn.check import ch03
    ch03.check_softmax(softmax)      # pass the function itself, not softmax(x)

prints ``✓ softmax: correct on 5 inputs (...)`` when it is right, ``… softmax: not done
yet ...`` while the exercise still raises ``NotImplementedError``, and otherwise fails
with one or two sentences saying what is wrong (``✗ softmax: softmax(x) should sum to 1
along dimension 1, but e.g. row (0,) sums to 2.5.``) and a hint, without a traceback.

Conventions for the chapter modules ``check/ch00.py``, ``check/ch01.py``, ...:

- one module per chapter, named after its number; each check is a function
  ``check_<thing>(fn_or_value)`` decorated with ``@checker("<thing>")``;
- call the student's function only through :func:`call_student` (it turns a stub's
  ``NotImplementedError`` into "not done yet" and any other exception into a plain
  :class:`CheckFailure` naming the error and the input);
- compare tensors with :func:`compare_arrays` (shape, dtype, NaN, √d factors, wrong sign,
  transposes, rows not summing to one, known mistakes ...); state other conditions with
  :func:`expect` or ``raise CheckFailure(message, hint)``;
- a message names the value (``"attention weights"``), says what is wrong and, where it
  helps, what it should be; a hint says where to look, not the answer;
- the check returns a one-line summary of what it verified, which is printed after
  ``✓ name:`` (``"correct on 4 inputs, including a padded row."``);
- test every check in ``tests/test_check_<chapter>.py`` with the right answer and the
  typical wrong ones, asserting on the words of the messages;
- checks are deterministic and fast (well under a second), and need no network.

Set ``SFTLEARN_GRADING=1`` to make unfinished exercises fail instead of printing
"not done yet" (for autograding).
"""

from sftlearn.check._core import (
    CheckFailure,
    NotDoneYet,
    call_student,
    checker,
    compare_arrays,
    expect,
    grading_mode,
    run_check,
    short_repr,
)

__all__ = [
    "CheckFailure",
    "NotDoneYet",
    "call_student",
    "checker",
    "compare_arrays",
    "expect",
    "grading_mode",
    "run_check",
    "short_repr",
]
