"""Checking that a lesson's run still says what its text says.

Each training chapter ends with a cell of *claims*: the statements of its text that depend on
the run (this method beats that one, this score lies in that range), each written as a check.
They serve two readers:

- The course's tests run every lesson with ``SFTLEARN_STRICT_CLAIMS=1`` (``tests/conftest.py``
  sets it). There a claim that fails raises ``ClaimsNotMet``, so a change to the package, the
  data or the base model that makes the text false fails the tests until the text is updated.
- In a student's notebook a failed claim is reported, not raised. Numbers move a little from
  one processor to another (chapter 09 explains why), and a run that lands outside a range is
  not a mistake in the student's work; the report says which sentences this run does not bear
  out.
"""

from __future__ import annotations

import os

ENV_STRICT = "SFTLEARN_STRICT_CLAIMS"
ALL_HOLD = "the results still say what the text says"


class ClaimsNotMet(AssertionError):
    """Raised by ``Claims.report`` under the tests when a claim of a lesson's text fails."""


def strict() -> bool:
    """True when failed claims must raise: ``SFTLEARN_STRICT_CLAIMS=1`` (the tests set it)."""
    return os.environ.get(ENV_STRICT, "") == "1"


class Claims:
    """Collect a lesson's claims with ``check``, then ``report`` once at the end.

    >>> claims = Claims()
    >>> claims.check(0.58 > 0.5, "fine-tuning answers more than half of the test questions")
    >>> claims.report()
    the results still say what the text says
    """

    def __init__(self) -> None:
        self.checked = 0
        self.failed: list[str] = []

    def check(self, holds: bool, claim: str) -> None:
        """Record one claim: ``claim`` is the sentence of the text, ``holds`` whether this run
        bears it out."""
        if not isinstance(claim, str) or not claim:
            raise ValueError("A claim needs the sentence of the text it checks, as a non-empty str.")
        if callable(holds):
            # a function is always truthy: the claim would hold whatever the run showed
            raise TypeError("check takes whether the claim holds, not a function: write "
                            "check(acc > 0.5, ...) rather than check(lambda: acc > 0.5, ...).")
        self.checked += 1
        if not bool(holds):
            self.failed.append(claim)

    def report(self) -> None:
        """Print that every claim holds, or list those that do not (raising under the tests)."""
        if self.checked == 0:
            raise ValueError("No claim was checked: call claims.check(...) before claims.report().")
        if not self.failed:
            print(ALL_HOLD)
            return
        listed = "\n".join(f"  - {claim}" for claim in self.failed)
        verb = "does" if len(self.failed) == 1 else "do"
        summary = (f"{len(self.failed)} of the {self.checked} claims of the text {verb} not hold "
                   f"in this run:\n{listed}")
        if strict():
            raise ClaimsNotMet(f"{summary}\nUpdate the text, or these checks, to what the "
                               f"lesson shows now.")
        print(f"{summary}\nNumbers move a little from one processor to another (chapter 09 "
              f"explains why), so a run can land outside a range the text gives; the text "
              f"describes the run printed in the course's copy of this notebook.")
