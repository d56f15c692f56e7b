"""Checks of arguments that many parts of the package share, so one mistake reads the same
everywhere.

Sizes and counts (layers, batch sizes, ranks, steps) must be real ``int``\\ s:

- ``bool`` is refused although Python counts it as an int (``True == 1``): ``True`` passed as
  a size is always a slip, never a choice.
- floats are refused even when whole (``2.0``): a size that arrives as a float usually comes
  from ``/`` where ``//`` was meant, and ``range``, ``torch.zeros`` or ``nn.Linear`` would fail
  later with a message that does not name the argument.

Seeds are checked by ``check_seed``: any int, negative too, and a TypeError for anything else
(``seed=None`` or ``seed="0"`` is a wrong type, not a wrong value).
"""

from __future__ import annotations

import numbers


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


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is an int (not a bool); otherwise raise a TypeError.

    Seeds are plain ints so that they print, compare and hash the same everywhere.

    >>> check_seed(1.0)
    Traceback (most recent call last):
    ...
    TypeError: seed must be an int (got float); pass e.g. seed=0
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int (got {type(seed).__name__}); pass e.g. seed=0")
    return seed


def check_betas(name: str, betas: object, example: str) -> tuple[float, float]:
    """Return Adam's ``betas`` as two plain floats if they are two real numbers in [0, 1);
    otherwise raise a ValueError naming ``name`` and showing ``example``, e.g. "(0.9, 0.95)"."""
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1
                       for b in betas)):
        raise ValueError(f"{name} must be two numbers in [0, 1), Adam's decay rates for the "
                         f"gradient's mean and square, e.g. {example}; got {betas!r}.")
    return float(betas[0]), float(betas[1])
