"""The machinery shared by every chapter's checks.

A check takes the student's function (or value), tries it, and says in one or two
plain sentences what is right or wrong. Three outcomes:

- correct: it prints ``✓ softmax: correct on 5 inputs (...)`` and returns ``None``;
- unfinished (the student's code still raises ``NotImplementedError``): it prints
  ``… softmax: not done yet ...`` and returns ``None``; no exception, no traceback;
- wrong: it raises :class:`CheckFailure`, an ``AssertionError`` whose Jupyter
  rendering is just ``✗ softmax: <what is wrong>`` and ``Hint: <hint>``.

Wrong answers raise rather than print so that ``pytest``, ``nbval`` and autograders
see a failure; the short rendering keeps the student's screen free of tracebacks.

Environment variable ``SFTLEARN_GRADING=1``: unfinished exercises raise
:class:`CheckFailure` instead of printing, so an autograder counts them as failed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

GRADING_ENV_VAR = "SFTLEARN_GRADING"


# --------------------------------------------------------------------------- outcomes


class CheckFailure(AssertionError):
    """A wrong answer, explained in plain words.

    ``message`` says what is wrong; ``hint`` (optional) says where to look.
    ``check`` is the name of the check that failed; :func:`run_check` fills it in.
    """

    def __init__(self, message: str, hint: str | None = None, check: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.check = check

    def __str__(self) -> str:
        lines = self._lines()
        return "\n".join(lines)

    def _lines(self) -> list[str]:
        prefix = f"{self.check}: " if self.check else ""
        lines = [f"✗ {prefix}{self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return lines

    def _render_traceback_(self) -> list[str]:
        """What IPython/Jupyter shows instead of a traceback (the student's screen)."""
        return self._lines()


class NotDoneYet(Exception):
    """Raised by :func:`call_student` when the student's code is still a stub.

    :func:`run_check` turns it into a friendly printed note; it only escapes when a
    helper is used outside a check, and then it still renders as one short line.
    """

    def __init__(self, what: str = "this exercise"):
        super().__init__(f"{what} is not done yet")
        self.what = what

    def _render_traceback_(self) -> list[str]:
        return [f"… {self}. {NOT_DONE_ADVICE}"]


NOT_DONE_ADVICE = (
    "Replace the line `raise NotImplementedError(...)` in the exercise cell with your "
    "code, run that cell, then run this check again."
)


def grading_mode() -> bool:
    """True when ``SFTLEARN_GRADING`` asks for unfinished work to count as failed."""
    return os.environ.get(GRADING_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


# The name of the check now running, so that call_student's hints can name it.
_CURRENT_CHECK: contextvars.ContextVar[str | None] = contextvars.ContextVar("check", default=None)


def run_check(name: str, body: Callable[..., str | None], *args: Any, **kwargs: Any) -> None:
    """Run a check ``body(*args, **kwargs)`` and report its outcome to the student.

    ``body`` returns a short summary of what was verified (``"correct on 5 inputs"``)
    or ``None``; it raises :class:`CheckFailure` for a wrong answer. A
    ``NotImplementedError`` from the student's code means "not done yet".
    """
    __tracebackhide__ = True  # pytest: show the failure, not this frame
    token = _CURRENT_CHECK.set(name)
    try:
        summary = body(*args, **kwargs)
    except (NotDoneYet, NotImplementedError):
        _report_not_done(name)
        return
    except CheckFailure as failure:
        failure.check = failure.check or name
        # The student needs the message, not the checker's internals.
        raise failure.with_traceback(None) from None
    finally:
        _CURRENT_CHECK.reset(token)
    print(f"✓ {name}: {summary or 'correct.'}")


def _report_not_done(name: str) -> None:
    if grading_mode():
        raise CheckFailure("not done yet.", hint=NOT_DONE_ADVICE, check=name) from None
    print(f"… {name}: not done yet. {NOT_DONE_ADVICE}")


def checker(name: str) -> Callable[[Callable[..., str | None]], Callable[..., None]]:
    """Decorator form of :func:`run_check`, the usual way to write a check::

        @checker("softmax")
        def check_softmax(softmax):
            got = call_student(softmax, torch.tensor([1.0, 2.0]))
            compare_arrays("softmax([1, 2])", got, torch.tensor([0.2689, 0.7311]), atol=1e-4)
            return "correct on 1 input."
    """

    def decorate(body: Callable[..., str | None]) -> Callable[..., None]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True
            run_check(name, body, *args, **kwargs)

        return wrapper

    return decorate


def expect(condition: bool, message: str, hint: str | None = None) -> None:
    """Raise :class:`CheckFailure` with ``message`` (and ``hint``) unless ``condition``."""
    __tracebackhide__ = True
    if not condition:
        raise CheckFailure(message, hint)


# --------------------------------------------------------------------- calling the student


def call_student(fn: Any, *args: Any, inputs_unchanged: bool = False, **kwargs: Any) -> Any:
    """Call the student's ``fn(*args, **kwargs)`` and classify what goes wrong.

    - ``fn`` is not callable (a result was passed instead of the function) -> CheckFailure;
    - ``fn`` raises ``NotImplementedError`` (still the stub) -> :class:`NotDoneYet`;
    - ``fn`` raises anything else -> CheckFailure naming the error and the input.

    Tensor and array arguments are copied first, so a function that changes its input
    in place cannot spoil the checker's own copy of it. With ``inputs_unchanged=True`` (for an
    exercise that asks for a *new* result) such a change is itself a failure.
    """
    __tracebackhide__ = True
    fn_name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        name = _CURRENT_CHECK.get()
        hint = (f"Pass the function itself, `check_{name}({name})`, not the result of calling it, "
                f"`check_{name}({name}(...))`." if name else
                "Pass the function itself, not the result of calling it.")
        raise CheckFailure(f"expected a function, but got {short_repr(fn)}.", hint=hint)
    call_args = _copy_inputs(args)
    call_kwargs = _copy_inputs(kwargs)
    try:
        result = fn(*call_args, **call_kwargs)
        if inputs_unchanged and result is not None:  # None has a message of its own
            for given, after in zip(args, call_args):
                if not _same_inputs(given, after):
                    raise CheckFailure(
                        f"your function `{fn_name}` changed its input {short_repr(given)} in "
                        f"place (to {short_repr(after)}); the exercise asks for a new result "
                        f"and the input left as it was.",
                        hint="Build the result in a new list (`out = []`, then `out.append(...)`).")
        return result
    except NotImplementedError:
        raise NotDoneYet(f"`{fn_name}`") from None
    except CheckFailure:
        raise
    except Exception as err:  # the student's bug: report it plainly
        inputs = ", ".join([short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()])
        raise CheckFailure(
            f"your function `{fn_name}` raised {type(err).__name__}: {_first_line(str(err))} "
            f"(on input {inputs}).",
            hint=f"Call `{fn_name}` on that input in a new cell to see the full error.",
        ) from None


def _same_inputs(a: Any, b: Any) -> bool:
    """Is ``b`` (a copy the student's function received) still equal to the original ``a``?"""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        a, b = a.detach(), b.detach()
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():  # equal, with NaN where NaN was
            return bool(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))
        return bool(torch.equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_inputs(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # values that do not compare plainly: do not judge
        return True


def _first_line(text: str, limit: int = 200) -> str:
    """The first line of an error message, shortened: torch's can run to many lines."""
    line = text.strip().split("\n")[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextlib.contextmanager
def counting_calls(module: torch.nn.Module):
    """Yield a list that gets one item per call of ``module``'s forward, however it is called:
    ``module(x)`` and ``module.forward(x)`` alike (a forward hook misses the second). For
    exercises that compute what a module computes from its parts: calling it is no answer."""
    calls: list[int] = []
    original = module.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    module.forward = counted  # an instance attribute: nn.Module.__call__ finds it first
    try:
        yield calls
    finally:
        del module.forward


def _copy_inputs(value: Any) -> Any:
    """Copy tensors/arrays (inside lists, tuples and dicts too); leave other objects alone."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        copied = [_copy_inputs(v) for v in value]
        return type(value)(copied) if not hasattr(value, "_fields") else type(value)(*copied)
    if isinstance(value, dict):
        return {k: _copy_inputs(v) for k, v in value.items()}
    return value


def _tidy_floats(values: Any) -> Any:
    """Round floats to 6 significant digits: float32's 0.1 prints as 0.1, not 0.10000000149011612."""
    if isinstance(values, list):
        return [_tidy_floats(v) for v in values]
    if isinstance(values, float) and math.isfinite(values):
        return float(f"{values:.6g}")
    return values


def same_on_every_case(cases: Sequence[Any], got: Callable[[Any], float],
                       slip: Callable[[Any], float], tolerance: float = 1e-6) -> bool:
    """Does the student's answer (``got(case)``) equal what one known slip gives (``slip(case)``)
    on every case? A check names a slip only then: on one case alone, two other slips can
    happen to give the same number."""
    return all(abs(got(case) - slip(case)) < tolerance for case in cases)


def seeded_randn(*shape: int, seed: int) -> torch.Tensor:
    """A fixed random input of ``shape``, drawn from its own generator (the student's random
    state is not touched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def close_to(got: Any, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    """True when ``got`` is a tensor of ``expected``'s shape and equal to it within tolerance
    (compared in float64): a quick test, before ``compare_arrays`` explains a difference or
    to recognise a known mistake."""
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape
            and bool(torch.allclose(got.detach().double(), expected.double(), atol=atol, rtol=1e-4)))


def python_number(value: Any) -> Any:
    """A NumPy scalar or one-element tensor as the Python int or float it holds (a count
    computed with NumPy is still a count); any other value comes back unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def is_collection(value: Any) -> bool:
    """Does ``value`` hold items one can count and walk through (a list, tuple, array or tensor
    of one or more dimensions)? Strings and 0-d tensors (one number) do not count."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return False
    return not (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0)


def short_repr(value: Any, limit: int = 60) -> str:
    """A short description of ``value`` for messages: values when small, shape when big."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        numel = value.numel() if isinstance(value, torch.Tensor) else value.size
        if 0 < numel <= 6:
            values = value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else value.tolist()
            return f"{kind}({_tidy_floats(values)})"
        return f"{'a tensor' if kind == 'tensor' else 'an array'} of shape {tuple(value.shape)}"
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return f"a {type(value).__name__}"  # their reprs run over many lines
    if callable(value) and hasattr(value, "__name__"):
        return f"the function `{value.__name__}`"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if value is None or isinstance(value, (str, int, float, bool)):
        return text
    return f"a {type(value).__name__} {text}"


# ------------------------------------------------------------------- comparing arrays


def as_number(name: str, got: Any) -> float:
    """A student's single-number answer as a float, or a plain failure naming what it is instead."""
    if got is None:
        raise CheckFailure(f"{name} is None.", hint="Did your function forget to `return` its result?")
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise CheckFailure(f"{name} should be a single number, but it is a tensor of shape "
                               f"{tuple(got.shape)}.")
        return float(got.detach().reshape(()).item())
    if isinstance(got, bool):
        raise CheckFailure(f"{name} should be a number, but it is {got!r}.")
    if isinstance(got, (str, bytes)):  # float("0.105") would pass a formatted printout
        raise CheckFailure(f"{name} should be a number, but it is the text {short_repr(got)}.",
                           hint="Return the number itself, not a string made from it "
                                "(f\"{x:.3f}\" or str(x) are for printing).")
    try:  # ints, floats, numpy numbers and the like
        return float(got)
    except (TypeError, ValueError):
        raise CheckFailure(f"{name} should be a number, but it is {short_repr(got)}.") from None


def compare_arrays(
    name: str,
    got: Any,
    expected: Any,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    probabilities: bool = False,
    dim: int = -1,
    d: int | None = None,
    hint: str | None = None,
    mistakes: Mapping[str, Any] | None = None,
) -> None:
    """Check that ``got`` equals ``expected`` (up to tolerance); if not, say why in words.

    ``got`` may be a torch tensor, a numpy array, a Python number or a (nested) list.
    ``name`` is how the value is called in messages, e.g. ``"softmax(x)"``.
    ``probabilities=True`` says the values are probabilities along ``dim``.
    ``d`` (e.g. the key dimension) lets the check recognise factors of √d and d.
    ``hint`` is shown when no more specific diagnosis applies.
    ``mistakes`` maps a sentence describing a known mistake to the value that mistake
    produces (or to a ``(value, hint)`` pair), e.g.
    ``{"the scaling by √d is applied after the softmax": wrong_weights}``; when ``got``
    matches one, that sentence is the message.

    Diagnoses, in order: not an array / None, wrong dtype family, wrong shape (also:
    transposed, a missing or extra dimension), NaN or inf, negative probabilities or
    rows not summing to one (or summing to one along the wrong dimension), a wrong
    sign, a constant factor (√d, 1/√d, d, 2, 1/2, ...), all zeros, transposed, a
    constant offset, and otherwise how many entries are wrong and the largest error.
    Raises :class:`CheckFailure`; returns ``None`` when the values match.
    """
    __tracebackhide__ = True
    got_t = _as_tensor(name, got)
    expected_t = _as_tensor("the expected value", expected)
    got_t = _match_dtype_family(name, got_t, expected_t, strict=isinstance(got, (torch.Tensor, np.ndarray)))
    if got_t.shape != expected_t.shape:
        message, shape_hint = _shape_diagnosis(name, tuple(got_t.shape), tuple(expected_t.shape))
        raise CheckFailure(message, shape_hint)
    if not expected_t.is_floating_point():
        if not torch.equal(got_t, expected_t):  # known mistakes first: their sentence is better
            _check_known_mistakes(name, got_t.double(), mistakes or {}, rtol=0.0, atol=0.0)
        _compare_exact(name, got_t, expected_t, hint)
        return
    got_f, expected_f = got_t.double(), expected_t.double()
    if bool(torch.isclose(got_f, expected_f, rtol=rtol, atol=atol, equal_nan=True).all()):
        return
    _check_known_mistakes(name, got_f, mistakes or {}, rtol, atol)
    _check_non_finite(name, got_f, expected_f)
    finite = torch.isfinite(expected_f)
    close = torch.isclose(got_f, expected_f, rtol=rtol, atol=atol) | ~finite
    if bool(close.all()):
        return
    diagnosis = (
        (_probability_diagnosis(name, got_f, dim, atol) if probabilities else None)
        or _factor_diagnosis(name, got_f, expected_f, finite, rtol, atol, d)
        or _transposed_diagnosis(name, got_f, expected_f, rtol, atol)
        or _offset_diagnosis(name, got_f, expected_f, finite, rtol, atol)
    )
    if diagnosis is not None:
        raise CheckFailure(*diagnosis)
    raise CheckFailure(_largest_difference(name, got_f, expected_f, close), hint)


def _check_known_mistakes(
    name: str, got: torch.Tensor, mistakes: Mapping[str, Any], rtol: float, atol: float
) -> None:
    """Fail with the author's own sentence when ``got`` is what a known mistake gives."""
    for description, produced in mistakes.items():
        with_hint = isinstance(produced, tuple) and len(produced) == 2 and isinstance(produced[1], str)
        value, mistake_hint = produced if with_hint else (produced, None)
        wrong = _as_tensor("a known mistake", value).double()
        if wrong.shape == got.shape and bool(torch.isclose(got, wrong, rtol=rtol, atol=atol, equal_nan=True).all()):
            raise CheckFailure(f"{name} is wrong: {description}.", mistake_hint)


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    """Turn the many things a student may return into a CPU tensor, or explain why not."""
    if value is None:
        raise CheckFailure(
            f"{name} is None.",
            hint="Did your function forget to `return` its result?",
        )
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype == object:
            raise CheckFailure(f"{name} is a numpy array of Python objects, not of numbers.")
        return torch.from_numpy(array.copy())
    if isinstance(value, (bool, int, float)):
        return torch.tensor(value)
    if isinstance(value, (list, tuple)):
        return _sequence_as_tensor(name, value)
    raise CheckFailure(
        f"{name} should be a tensor (or array), but it is {short_repr(value)} "
        f"of type {type(value).__name__}."
    )


def _sequence_as_tensor(name: str, value: Sequence[Any]) -> torch.Tensor:
    try:
        return torch.tensor(value)
    except (TypeError, ValueError, RuntimeError):
        pass
    try:  # a list of tensors
        return torch.stack([_as_tensor(name, v) for v in value])
    except (CheckFailure, TypeError, ValueError, RuntimeError):
        raise CheckFailure(
            f"{name} is a {type(value).__name__} that cannot be turned into a tensor.",
            hint="Return a tensor; if you build a list, check that every row has the same length.",
        ) from None


def _family(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "bool"
    if t.is_floating_point() or t.is_complex():
        return "float"
    return "integer"


def _match_dtype_family(name: str, got: torch.Tensor, expected: torch.Tensor, strict: bool) -> torch.Tensor:
    """Return ``got`` in ``expected``'s dtype, or fail if the kinds of number differ.

    Python numbers and lists (``strict=False``) are converted silently when no value
    changes (``[1.0, 2.0]`` for integers, ``3`` for a float); tensors and arrays must hold
    the right kind: floats where floats are expected, integers where integers (token ids,
    counts) are expected. 0/1 integers pass for a boolean mask.
    """
    got_family, want_family = _family(got), _family(expected)
    if got_family == want_family:
        return got.to(expected.dtype)
    if not strict:
        converted = got.to(expected.dtype)
        # 1.7 would become the integer 1 and 0.5 the boolean True: a wrong answer made right
        if torch.equal(converted.to(torch.float64), got.to(torch.float64)):
            return converted
    if {got_family, want_family} == {"bool", "integer"} and bool(((got == 0) | (got == 1)).all()):
        return got.to(expected.dtype)
    if want_family == "float":
        raise CheckFailure(
            f"{name} holds {got_family} values ({got.dtype}) but should hold floating-point numbers.",
            hint="Integer tensors drop fractions: use `.float()`, or write numbers with a decimal point (`1.0`).",
        )
    if want_family == "integer":
        raise CheckFailure(
            f"{name} holds {got_family} values ({got.dtype}) but should hold integers "
            "(ids, indices or counts).",
            hint="Use `.long()`, or integer operations such as `//`.",
        )
    raise CheckFailure(
        f"{name} should be a boolean mask (True/False), but it holds {got.dtype} values.",
        hint="Comparisons such as `a > b` or `torch.ones(n, n).tril() == 1` give boolean tensors.",
    )


def format_shape(shape: tuple[int, ...]) -> str:
    """``(3, 4)``; a 0-dimensional shape is written ``() (a single number)``."""
    return "() (a single number)" if len(shape) == 0 else str(tuple(shape))


def _shape_diagnosis(name: str, got: tuple[int, ...], want: tuple[int, ...]) -> tuple[str, str | None]:
    """Explain a shape mismatch, recognising the usual causes."""
    message = f"{name} has shape {format_shape(got)} but should have shape {format_shape(want)}."
    if len(got) == len(want) >= 2 and got[:-2] == want[:-2] and got[-2:] == want[-2:][::-1]:
        return (
            message + " It looks transposed: the last two dimensions are swapped.",
            "Check the order of a matrix product (`A @ B` or `B @ A`) and any `.T` / `.transpose(-2, -1)`.",
        )
    if len(got) == len(want) - 1:
        for i in range(len(want)):
            if want[:i] + want[i + 1 :] == got:
                return (
                    message + f" Dimension {i} (of size {want[i]}) is missing.",
                    "Did you sum, average or index over it? `keepdim=True` keeps a reduced dimension.",
                )
    if len(got) == len(want) + 1:
        for i in range(len(got)):
            if got[i] == 1 and got[:i] + got[i + 1 :] == want:
                return (
                    message + f" It has an extra dimension of size 1 at position {i}.",
                    f"`.squeeze({i})` removes it; or drop `keepdim=True`/`unsqueeze` where it is not needed.",
                )
    if len(got) == len(want):
        differing = [i for i in range(len(got)) if got[i] != want[i]]
        if len(differing) == 1:
            i = differing[0]
            return message + f" Dimension {i} has size {got[i]} instead of {want[i]}.", None
    if math.prod(got) == math.prod(want):
        return (
            message + " It has the right number of elements.",
            "A `reshape`/`view` probably puts them in the wrong arrangement.",
        )
    return message, None


def _check_non_finite(name: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    """Fail on NaN/inf where none belong, and on finite values where ±inf belongs."""
    for label, bad in (("NaN", torch.isnan(got) & ~torch.isnan(expected)),
                       ("inf", torch.isinf(got) & ~torch.isinf(expected))):
        if bool(bad.any()):
            raise CheckFailure(
                f"{name} contains {label} at {int(bad.sum())} of {got.numel()} positions"
                f"{_first_index_text(bad)}.",
                hint="NaN and inf come from exp() of large numbers, log of 0, or dividing by 0. "
                "For a softmax, subtract the maximum score before exp().",
            )
    want_inf = torch.isinf(expected) & (got != expected)
    if bool(want_inf.any()):
        index = _first_index(want_inf)
        raise CheckFailure(
            f"{name} should be {expected[index].item()} at {int(want_inf.sum())} positions"
            f"{_first_index_text(want_inf)}, but there it is {got[index].item():.4g}.",
            hint="Use `float('-inf')` rather than a large negative number where a value must be impossible.",
        )


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


def format_index(index: tuple[int, ...]) -> str:
    """``(1, 2)`` for a multi-dimensional index, ``3`` for a one-dimensional one."""
    return str(index[0]) if len(index) == 1 else str(index)


def _first_index_text(mask: torch.Tensor) -> str:
    return "" if mask.dim() == 0 else f" (the first at index {format_index(_first_index(mask))})"


def _probability_diagnosis(name: str, got: torch.Tensor, dim: int, atol: float) -> tuple[str, str] | None:
    """Negative entries, or not summing to one along ``dim`` (perhaps along another dim)."""
    if bool((got < -atol).any()):
        return (
            f"{name} has negative entries (the smallest is {got.min().item():.4g}), "
            "but probabilities are never negative.",
            "Probabilities come from exp() (always positive) divided by a sum of exp() values.",
        )
    if got.dim() == 0:
        return None
    sums = got.sum(dim=dim)
    sums_ok = torch.isclose(sums, torch.ones_like(sums), atol=1e-3)
    if bool(sums_ok.all()):
        return None
    dim_index = dim % got.dim()
    for other in range(got.dim()):
        if other != dim_index and bool(torch.isclose(got.sum(dim=other), torch.tensor(1.0, dtype=got.dtype), atol=1e-3).all()):
            return (
                f"{name} sums to 1 along dimension {other} instead of dimension {dim_index}.",
                f"Normalise over dimension {dim_index} (`.sum(dim={dim}, keepdim=True)`).",
            )
    if got.dim() == 1:
        where = f"it sums to {sums.item():.4g}"
    else:
        bad = _first_index(~sums_ok)
        where = f"e.g. row {format_index(bad)} sums to {sums[bad].item():.4g}"
    return (
        f"{name} should sum to 1 along dimension {dim_index}, but {where}.",
        f"Divide by the sum over that dimension (`.sum(dim={dim}, keepdim=True)`).",
    )


def _fits_factor(got: torch.Tensor, expected: torch.Tensor, finite: torch.Tensor, rtol: float, atol: float) -> float | None:
    """The constant c with got ≈ c·expected (least squares), or None if there is none."""
    g, e = got[finite], expected[finite]
    denominator = float((e * e).sum())
    if g.numel() == 0 or denominator == 0.0:
        return None
    c = float((g * e).sum()) / denominator
    scale = float(e.abs().max())
    if not bool(torch.allclose(g, c * e, rtol=max(rtol, 1e-3), atol=max(atol, 1e-4 * scale) * max(1.0, abs(c)))):
        return None
    return c


def _near(value: float, target: float, tolerance: float = 1e-2) -> bool:
    return abs(value - target) <= tolerance * abs(target)


def _factor_diagnosis(
    name: str, got: torch.Tensor, expected: torch.Tensor, finite: torch.Tensor,
    rtol: float, atol: float, d: int | None,
) -> tuple[str, str | None] | None:
    """Recognise got = c·expected: a wrong sign, √d, d, 2, ½, zeros or any other factor."""
    c = _fits_factor(got, expected, finite, rtol, atol)
    if c is None or (got.numel() == 1 and not _near(c, -1.0)) or _near(c, 1.0, 1e-4):
        # a single number is always "some factor" of another; and a factor of 1 means the
        # values are right and the difference lies elsewhere (rounding, dtype, a few entries)
        return None
    if abs(c) < 1e-6:
        return (f"{name} is all zeros.",
                "Did you create a tensor (e.g. `torch.zeros`) and forget to fill it in or return the result?")
    if _near(c, -1.0):
        return (f"{name} has the wrong sign: every value is the negative of what it should be.",
                "Look for a missing or extra minus sign (a loss, for example, is −log p, which is ≥ 0).")
    if d is not None and d > 1:
        root = math.sqrt(d)
        named = {
            root: (f"too large by a factor of √d = √{d} ≈ {root:.4g}",
                   "Divide the scores by √d (`math.sqrt(d)`) before the softmax."),
            1 / root: (f"too small by a factor of √d = √{d} ≈ {root:.4g}",
                       "Divide by √d once, not twice, and by √d rather than by d."),
            float(d): (f"too large by a factor of d = {d}", "Is a division by d (or √d) missing?"),
            1 / d: (f"too small by a factor of d = {d}", "Divide by √d, not by d (and only once)."),
        }
        for factor, (words, factor_hint) in named.items():
            if _near(c, factor):
                return f"{name} is {words}.", factor_hint
    if _near(c, 2.0):
        return f"{name} is twice as large as it should be.", "Look for a value counted or added twice."
    if _near(c, 0.5):
        return f"{name} is half as large as it should be.", "Look for an extra division by 2 or a missing term."
    return (f"{name} is off by a constant factor: every value is {c:.4g} times what it should be.",
            "Look for a missing or extra scaling: a division by a count, a length, or √d.")


def _transposed_diagnosis(
    name: str, got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float
) -> tuple[str, str] | None:
    if got.dim() < 2 or got.shape[-1] != got.shape[-2]:
        return None
    if bool(torch.allclose(got.transpose(-2, -1), expected, rtol=rtol, atol=atol, equal_nan=True)):
        return (
            f"{name} is transposed: its rows are the expected columns.",
            "Check the order of a matrix product (`A @ B` or `B @ A`) and any `.T` / `.transpose(-2, -1)`.",
        )
    return None


def _offset_diagnosis(
    name: str, got: torch.Tensor, expected: torch.Tensor, finite: torch.Tensor, rtol: float, atol: float
) -> tuple[str, str] | None:
    """Recognise got = expected + constant (e.g. a missing normaliser in a log-probability)."""
    difference = (got - expected)[finite]
    if difference.numel() < 2:
        return None
    offset = difference.mean()
    if bool(torch.allclose(difference, offset.expand_as(difference), rtol=rtol, atol=atol)):
        return (
            f"every value of {name} is off by the same amount ({offset.item():+.4g}).",
            "Something added or subtracted everywhere is wrong: a constant, a bias, "
            "or a normaliser such as log Σ exp.",
        )
    return None


def _largest_difference(name: str, got: torch.Tensor, expected: torch.Tensor, close: torch.Tensor) -> str:
    """The fallback message: how many values are wrong, and the worst one."""
    if got.dim() == 0:
        return f"{name} is {got.item():.6g}, but should be {expected.item():.6g}."
    errors = torch.where(close, torch.zeros_like(got), (got - expected).abs().nan_to_num(nan=math.inf))
    worst = tuple(int(i) for i in np.unravel_index(int(errors.argmax()), tuple(got.shape)))
    n_wrong = int((~close).sum())
    return (
        f"{name} is wrong at {n_wrong} of {got.numel()} positions. The largest difference is "
        f"{errors[worst].item():.4g} at index {format_index(worst)}: got {got[worst].item():.6g}, "
        f"expected {expected[worst].item():.6g}."
    )


def _compare_exact(name: str, got: torch.Tensor, expected: torch.Tensor, hint: str | None) -> None:
    """Integers and booleans must match exactly."""
    equal = got == expected
    if bool(equal.all()):
        return
    if got.dim() >= 2 and got.shape[-1] == got.shape[-2] and bool((got.transpose(-2, -1) == expected).all()):
        raise CheckFailure(
            f"{name} is transposed: its rows are the expected columns.",
            "Check which dimension is which (rows = queries, columns = keys, for example).",
        )
    if got.dim() == 0:
        raise CheckFailure(f"{name} is {got.item()}, but should be {expected.item()}.", hint)
    worst = _first_index(~equal)
    raise CheckFailure(
        f"{name} is wrong at {int((~equal).sum())} of {got.numel()} positions; the first is "
        f"index {format_index(worst)}: got {got[worst].item()}, expected {expected[worst].item()}.",
        hint,
    )
