"""Checks of arguments that many parts of the package share, so one mistake reads the same
everywhere.

Sizes and counts (layers, batch sizes, ranks, steps) must be real ``int``\\ s:

- ``bool`` is refused although Python counts it as an int (``True == 1``): ``True`` passed as
  a size is always a slip, never a choice.
- floats are refused even when whole (``2.0``): a size that arrives as a float usually comes
  from ``/`` where ``//`` was meant, and ``range``, ``torch.zeros`` or ``nn.Linear`` would fail
  later with a message that does not name the argument.
"""

from __future__ import annotations


def check_int(name: str, value: object, minimum: int = 1, fix: str = "") -> int:
    """Return ``value`` if it is an int ≥ ``minimum``; otherwise raise a ValueError naming
    ``name``, what it must be, what it got, and ``fix`` (a sentence on what to pass instead).

    >>> check_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive int, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        # The type helps when the value looks right: "got 2.0 (of type float)".
        got = repr(value) if type(value) is int else f"{value!r} (of type {type(value).__name__})"
        raise ValueError(f"{name} must be {expected}, got {got}." + (f" {fix}" if fix else ""))
    return value
