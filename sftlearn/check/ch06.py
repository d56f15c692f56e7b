"""Checks for chapter 06, before Transformers.

- ``check_rnn_forward(fn)``: a plain RNN run along a whole sequence;
- ``check_lstm_step(fn)``: one LSTM step (the "spot the mistake" exercise: a common mistake
  squashes the candidate with a sigmoid and the output with a ReLU, where both are tanh);
- ``check_gru_step(fn)``: one GRU step in PyTorch's form;
- ``check_causal_conv1d(fn)``: a 1-D convolution over time that never sees the future;
- ``check_receptive_field(fn)``: how far back a stack of causal convolutions reaches.

Weights use PyTorch's layout (see ``sftlearn.recurrent``): ``weight_ih`` (G·H, I),
``weight_hh`` (G·H, H), biases (G·H,), LSTM gates in the order i, f, g, o and GRU gates in
the order r, z, n. The references are the functions of ``sftlearn.recurrent``, which
``tests/test_recurrent.py`` compares with ``torch.nn.RNN``/``LSTM``/``GRU``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sftlearn.check._core import (CheckFailure, call_student, checker, close_to, compare_arrays, python_number,
                                  seeded_randn, short_repr)
from sftlearn.recurrent import causal_conv1d, gru_cell, lstm_cell, receptive_field, rnn_cell, unroll

GATES_HINT = ("Gates (input, forget, output, update, reset) use a sigmoid, because they are "
              "fractions in (0, 1); the values written into the state use tanh.")


def _weights(seed: int, blocks: int, n_in: int, hidden: int, scale: float = 0.8) -> dict[str, torch.Tensor]:
    """Random weights in PyTorch's layout, large enough that every mistake shows."""
    g = torch.Generator().manual_seed(seed)
    return {
        "weight_ih": torch.randn(blocks * hidden, n_in, generator=g) * scale,
        "weight_hh": torch.randn(blocks * hidden, hidden, generator=g) * scale,
        "bias_ih": torch.randn(blocks * hidden, generator=g) * scale,
        "bias_hh": torch.randn(blocks * hidden, generator=g) * scale,
    }


def _as_pair(name: str, got: Any, first: str, second: str) -> tuple[Any, Any]:
    """The student's function must return two things; say so plainly if it does not."""
    if got is None:
        raise CheckFailure(f"{name} returned None.", hint=f"End with `return {first}, {second}`.")
    if isinstance(got, torch.Tensor) or not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(
            f"{name} should return a pair ({first}, {second}), but returned {short_repr(got)}.",
            hint=f"End with `return {first}, {second}`.",
        )
    return got[0], got[1]


# ----------------------------------------------------------------------------- RNN


def _rnn_with(activation: Callable[[torch.Tensor], torch.Tensor], carry: bool = True,
              use_bias_ih: bool = True, use_bias_hh: bool = True) -> Callable[..., tuple]:
    """An RNN run with one thing changed: the typical wrong answers."""

    def run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        h, outputs = h0, []
        for t in range(x.shape[1]):
            pre = x[:, t] @ weight_ih.T + (h if carry else h0) @ weight_hh.T
            pre = pre + (bias_ih if use_bias_ih else 0) + (bias_hh if use_bias_hh else 0)
            h = activation(pre)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h

    return run


RNN_CASES = [  # (seed, batch, time, inputs, hidden, zero initial state)
    (0, 2, 5, 3, 4, False),
    (1, 3, 1, 2, 3, False),
    (2, 1, 6, 4, 2, True),
]


@checker("rnn_forward")
def check_rnn_forward(rnn_forward: Any) -> str:
    """``rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh) -> (outputs, h_last)``."""
    for seed, B, T, I, H, zero in RNN_CASES:
        w = _weights(seed, 1, I, H)
        x = seeded_randn(B, T, I, seed=seed + 100)
        h0 = torch.zeros(B, H) if zero else seeded_randn(B, H, seed=seed + 200)
        args = (x, h0, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
        name = f"rnn_forward on x of shape {(B, T, I)}"
        outputs, last = _as_pair(name, call_student(rnn_forward, *args), "outputs", "h_last")
        expected, expected_last = unroll(rnn_cell, x, h0, w)
        _diagnose_rnn_outputs(name, f"for x of shape {(B, T, I)}", outputs, expected, args, h0)
        if close_to(last, h0) and T > 0 and not close_to(expected_last, h0):
            raise CheckFailure(f"{name}: h_last is the initial state h0, not the state after the last step.",
                               hint="Return the h you updated inside the loop.")
        compare_arrays(f"h_last for x of shape {(B, T, I)}", last, expected_last,
                       hint="h_last is the hidden state after the last step: outputs[:, -1].")
    return (f"matches the RNN equations on {len(RNN_CASES)} sequences, including a single step "
            "and a zero initial state.")


def _diagnose_rnn_outputs(name: str, which: str, outputs: Any, expected: torch.Tensor, args: tuple,
                          h0: torch.Tensor) -> None:
    B, T, H = expected.shape
    if isinstance(outputs, (list, tuple)) and outputs and all(isinstance(o, torch.Tensor) for o in outputs):
        raise CheckFailure(
            f"{name}: outputs is a {type(outputs).__name__} of {len(outputs)} tensors; it should be one "
            f"tensor of shape (batch, time, hidden) = {(B, T, H)}.",
            hint="`torch.stack(states, dim=1)` stacks the states along a new time dimension 1.",
        )
    if isinstance(outputs, torch.Tensor) and outputs.shape == (T, B, H) and T != B:
        if close_to(outputs.transpose(0, 1), expected):
            raise CheckFailure(
                f"{name}: outputs has shape {(T, B, H)}, time first; it should be (batch, time, "
                f"hidden) = {(B, T, H)}.",
                hint="`torch.stack(states, dim=1)` puts time in dimension 1.",
            )
    states_before = torch.cat([h0[:, None], expected[:, :-1]], dim=1)
    mistakes = {
        "the new state must be fed back: every step used the initial state h0 instead of the "
        "previous step's h": (_rnn_with(torch.tanh, carry=False)(*args)[0],
                              "Inside the loop, overwrite h with the new state."),
        "it uses a ReLU where the RNN uses tanh": (_rnn_with(torch.relu)(*args)[0],
                                                   "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."),
        "it uses a sigmoid where the RNN uses tanh": (_rnn_with(torch.sigmoid)(*args)[0],
                                                      "tanh keeps the state centred on 0, in (−1, 1)."),
        "it has no tanh at all, so the RNN is linear": (_rnn_with(lambda v: v)(*args)[0],
                                                        "Apply torch.tanh to the sum."),
        "bias_hh is missing": (_rnn_with(torch.tanh, use_bias_hh=False)(*args)[0],
                               "PyTorch's RNN adds two biases, bias_ih and bias_hh."),
        "bias_ih is missing": (_rnn_with(torch.tanh, use_bias_ih=False)(*args)[0],
                               "PyTorch's RNN adds two biases, bias_ih and bias_hh."),
        "outputs[:, t] is the state before step t, not after it (the outputs are shifted by one)": (
            states_before, "Append h after computing it from x[:, t]."),
    }
    compare_arrays(f"the output tensor {which}", outputs, expected, mistakes=mistakes,
                   hint="Check the equation h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh).")


# ---------------------------------------------------------------------------- LSTM


def _lstm_variant(candidate=torch.tanh, output=torch.tanh, order="ifgo",
                  output_of_old_c: bool = False) -> Callable[..., tuple]:
    """One LSTM step with one thing changed (the typical mistakes)."""

    def step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        pre = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        blocks = dict(zip(order, pre.chunk(4, dim=1)))
        i, f, o = torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"]), torch.sigmoid(blocks["o"])
        g = candidate(blocks["g"])
        c_new = f * c + i * g
        h_new = o * output(c if output_of_old_c else c_new)
        return h_new, c_new

    return step


LSTM_MISTAKES: list[tuple[str, Callable[..., tuple], str]] = [
    ("the candidate uses a sigmoid and the output uses a ReLU: these are the two mistakes of the "
     "buggy version, and both must be tanh",
     _lstm_variant(candidate=torch.sigmoid, output=torch.relu),
     "Candidate g = tanh(...), output h = o ⊙ tanh(c)."),
    ("the candidate uses a sigmoid, so it lies in (0, 1) and can only add to the cell state; it "
     "must be tanh, in (−1, 1), so the cell can also write negative values",
     _lstm_variant(candidate=torch.sigmoid),
     GATES_HINT),
    ("the output uses a ReLU of the cell state; it must be tanh, which keeps h in (−1, 1) and lets "
     "negative cell values through",
     _lstm_variant(output=torch.relu),
     "h = o ⊙ tanh(c)."),
    ("h is o ⊙ c: the tanh on the cell state is missing",
     _lstm_variant(output=lambda v: v), "h = o ⊙ tanh(c)."),
    ("the candidate is used without any squashing: it needs tanh",
     _lstm_variant(candidate=lambda v: v), "g = tanh(...)."),
    ("h is computed from the old cell state c_{t-1}; it must use the new one",
     _lstm_variant(output_of_old_c=True), "Compute c first, then h = o ⊙ tanh(c_new)."),
    ("the four blocks of rows are taken in the order i, f, o, g; PyTorch's order is i, f, g, o "
     "(input gate, forget gate, candidate, output gate)",
     _lstm_variant(order="ifog"), "`i, f, g, o = pre.chunk(4, dim=1)`."),
    ("the input gate and the forget gate are swapped (PyTorch's order is i, f, g, o)",
     _lstm_variant(order="figo"), "`i, f, g, o = pre.chunk(4, dim=1)`."),
]

LSTM_CASES = [(10, 2, 3, 4), (11, 3, 2, 2), (12, 1, 5, 3)]  # (seed, batch, inputs, hidden)


@checker("lstm_step")
def check_lstm_step(lstm_step: Any) -> str:
    """``lstm_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_new, c_new)``."""
    for seed, B, I, H in LSTM_CASES:
        w = _weights(seed, 4, I, H, scale=1.0)
        x = seeded_randn(B, I, seed=seed + 1)
        h, c = seeded_randn(B, H, seed=seed + 2) * 0.8, seeded_randn(B, H, seed=seed + 3) * 2.0
        args = (x, h, c, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
        name = f"lstm_step on a batch of {B}"
        got_h, got_c = _as_pair(name, call_student(lstm_step, *args), "h", "c")
        want_h, want_c = lstm_cell(x, h, c, **w)
        if close_to(got_h, want_h) and close_to(got_c, want_c):
            continue
        if close_to(got_h, want_c) and close_to(got_c, want_h):
            raise CheckFailure(f"{name} returned (c, h); it should return (h, c).",
                               hint="`return h_new, c_new`.")
        for description, variant, hint in LSTM_MISTAKES:
            mistake_h, mistake_c = variant(*args)
            if close_to(got_h, mistake_h) and close_to(got_c, mistake_c):
                raise CheckFailure(f"{name}: {description}.", hint=hint)
        compare_arrays(f"the new cell state c for a batch of {B}", got_c, want_c,
                       hint="c_t = f ⊙ c_{t-1} + i ⊙ g, with g = tanh(...) and the gates sigmoids.")
        compare_arrays(f"the new hidden state h for a batch of {B}", got_h, want_h,
                       hint="h_t = o ⊙ tanh(c_t), with o a sigmoid gate.")
    return (f"matches the LSTM equations on {len(LSTM_CASES)} batches: sigmoid gates, a tanh "
            "candidate and a tanh on the new cell state.")


# ----------------------------------------------------------------------------- GRU


def _gru_variant(candidate=torch.tanh, order="rzn", reset_before_product: bool = False,
                 swap_z: bool = False, reset: bool = True) -> Callable[..., torch.Tensor]:
    def step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        H = h.shape[1]
        from_x = dict(zip(order, (x @ weight_ih.T + bias_ih).chunk(3, dim=1)))
        from_h = dict(zip(order, (h @ weight_hh.T + bias_hh).chunk(3, dim=1)))
        r = torch.sigmoid(from_x["r"] + from_h["r"])
        z = torch.sigmoid(from_x["z"] + from_h["z"])
        if reset_before_product:
            w_hn = dict(zip(order, weight_hh.split(H, dim=0)))["n"]
            b_hn = dict(zip(order, bias_hh.split(H, dim=0)))["n"]
            hidden_part = (r * h) @ w_hn.T + b_hn
        else:
            hidden_part = (r if reset else 1.0) * from_h["n"]
        n = candidate(from_x["n"] + hidden_part)
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h

    return step


GRU_MISTAKES: list[tuple[str, Callable[..., torch.Tensor], str]] = [
    ("the roles of z and 1 − z are swapped. In PyTorch's GRU, z is the share of the OLD state that "
     "is kept: h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}",
     _gru_variant(swap_z=True), "Some texts write it the other way round; this course follows PyTorch."),
    ("the reset gate multiplies h before the matrix product, r ⊙ h, as in the original GRU paper; "
     "PyTorch (and this course) applies it after: r ⊙ (W_hn h + b_hn)",
     _gru_variant(reset_before_product=True), "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))."),
    ("the reset gate is never applied to the candidate",
     _gru_variant(reset=False), "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))."),
    ("the candidate uses a ReLU; it must be tanh", _gru_variant(candidate=torch.relu), GATES_HINT),
    ("the candidate uses a sigmoid; it must be tanh", _gru_variant(candidate=torch.sigmoid), GATES_HINT),
    ("the first two blocks of rows are taken as z, r; PyTorch's order is r, z, n",
     _gru_variant(order="zrn"), "`r_x, z_x, n_x = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)`."),
]

GRU_CASES = [(20, 2, 3, 4), (21, 3, 2, 2), (22, 1, 4, 3)]


@checker("gru_step")
def check_gru_step(gru_step: Any) -> str:
    """``gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h_new``."""
    for seed, B, I, H in GRU_CASES:
        w = _weights(seed, 3, I, H, scale=1.0)
        x, h = seeded_randn(B, I, seed=seed + 1), seeded_randn(B, H, seed=seed + 2) * 0.8
        args = (x, h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
        name = f"gru_step on a batch of {B}"
        got = call_student(gru_step, *args)
        expected = gru_cell(x, h, **w)
        if isinstance(got, (tuple, list)):
            raise CheckFailure(f"{name} returned a {type(got).__name__}; a GRU has no cell state, so "
                               "it should return just the new h.", hint="`return h_new`.")
        mistakes = {description: (variant(*args), hint) for description, variant, hint in GRU_MISTAKES}
        compare_arrays(f"the new h for a batch of {B}", got, expected, mistakes=mistakes,
                       hint="r, z = σ(...); n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); "
                            "h = (1 − z) ⊙ n + z ⊙ h_prev.")
    return f"matches PyTorch's GRU equations on {len(GRU_CASES)} batches."


# --------------------------------------------------------------------- convolution

CONV_CASES = [  # (seed, batch, in channels, out channels, time, kernel, dilation)
    (30, 2, 3, 2, 8, 3, 1),
    (31, 1, 2, 3, 10, 3, 2),
    (32, 2, 2, 2, 6, 2, 4),
    (33, 1, 1, 2, 5, 1, 1),
]


def _conv_case(seed, B, C_in, C_out, T, k):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C_in, T, generator=g), torch.randn(C_out, C_in, k, generator=g),
            torch.randn(C_out, generator=g))


@checker("causal_conv1d")
def check_causal_conv1d(causal_conv: Any) -> str:
    """``causal_conv1d(x, weight, bias, dilation) -> y`` with y[..., t] depending on x[..., :t+1]."""
    for seed, B, C_in, C_out, T, k, d in CONV_CASES:
        x, weight, bias = _conv_case(seed, B, C_in, C_out, T, k)
        name = f"causal_conv1d with kernel size {k} and dilation {d}"
        got = call_student(causal_conv, x, weight, bias, d)
        expected = causal_conv1d(x, weight, bias, dilation=d)
        _conv_shape(name, got, expected, k, d)
        if close_to(got, expected):
            continue
        _conv_leak(name, causal_conv, x, weight, bias, d)
        mistakes: dict[str, Any] = {
            "the kernel is flipped: output t multiplies x[t] by weight[..., 0] instead of by "
            "weight[..., -1]": (causal_conv1d(x, weight.flip(-1), bias, dilation=d),
                                "Pad on the left and call F.conv1d; do not flip the weights."),
            "the bias is missing": (causal_conv1d(x, weight, None, dilation=d), "Pass `bias` to F.conv1d."),
        }
        if d > 1:
            mistakes["the dilation is ignored"] = (
                causal_conv1d(x, weight, bias, dilation=1), "Pass `dilation=dilation` to F.conv1d.")
        compare_arrays(f"the output of {name}", got, expected, mistakes=mistakes,
                       hint="Pad (k − 1)·dilation zeros on the left, then F.conv1d(x, weight, bias, dilation=dilation).")
    return (f"correct on {len(CONV_CASES)} cases (kernel sizes 1 to 3, dilations 1 to 4); "
            "no output depends on a later input.")


def _conv_shape(name: str, got: Any, expected: torch.Tensor, k: int, d: int) -> None:
    """The usual wrong lengths: no padding at all, or padding that forgets the dilation."""
    if not isinstance(got, torch.Tensor) or got.dim() != 3:
        compare_arrays(f"the output of {name}", got, expected)  # explains None, lists, shapes
        return
    if got.shape == expected.shape:
        return
    T, got_T = expected.shape[-1], got.shape[-1]
    if got.shape[:2] == expected.shape[:2]:
        if got_T == T - (k - 1) * d:
            raise CheckFailure(
                f"{name} returns {got_T} time steps instead of {T}: without padding the output "
                f"is (k − 1)·dilation = {(k - 1) * d} steps shorter than the input.",
                hint="Pad (k − 1)·dilation zeros on the LEFT (the past) with F.pad(x, (pad, 0)).",
            )
        if d > 1 and got_T == T + (k - 1) - (k - 1) * d:
            raise CheckFailure(
                f"{name} returns {got_T} time steps instead of {T}: the padding is k − 1 = {k - 1}, "
                f"but a dilated kernel spans (k − 1)·dilation + 1 positions, so it must be "
                f"(k − 1)·dilation = {(k - 1) * d}.",
                hint="pad = (k - 1) * dilation.",
            )
        if d > 1 and got_T == T + (k - 1) * (d - 1):
            raise CheckFailure(
                f"{name} returns {got_T} time steps instead of {T}: the padding is right for a "
                f"dilation of {d}, but the convolution itself ran without it, so its kernel spans "
                f"only k = {k} neighbouring positions.",
                hint="Pass the dilation to the convolution too: F.conv1d(..., dilation=dilation).",
            )
        if got_T == T + (k - 1) * d:
            raise CheckFailure(
                f"{name} returns {got_T} time steps instead of {T}: it pads on both sides "
                "(F.conv1d's `padding=` does), which adds outputs at the end that see the future.",
                hint="Pad only on the left with F.pad(x, (pad, 0)) and call F.conv1d without padding.",
            )
    compare_arrays(f"the output of {name}", got, expected)


def _conv_leak(name: str, causal_conv: Any, x: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor, d: int) -> None:
    """Change one input step and see whether an earlier output moves: the future leaking in."""
    T = x.shape[-1]
    base = call_student(causal_conv, x, weight, bias, d)
    for s in range(1, T):
        changed = x.clone()
        changed[..., s] += 1.0
        out = call_student(causal_conv, changed, weight, bias, d)
        if isinstance(out, torch.Tensor) and out.shape == base.shape:
            moved = (out[..., :s] - base[..., :s]).abs().amax(dim=(0, 1)) > 1e-6
            if bool(moved.any()):
                t = int(moved.nonzero()[0])
                raise CheckFailure(
                    f"{name} is not causal: the output at position {t} changes when the input at the "
                    f"later position {s} changes, so a next-character model could read the answer.",
                    hint="Pad only on the left (the past), with (k − 1)·dilation zeros: F.pad(x, (pad, 0)).",
                )


# ---------------------------------------------------------------- receptive field

FIELD_CASES: list[tuple[int, list[int]]] = [
    (3, [1]), (3, [1, 2, 4, 8]), (2, [1, 1, 1]), (5, [1, 3]), (1, [1, 2]), (3, []), (4, [2, 2]),
]


def _field_mistakes(k: int, dilations: list[int]) -> list[tuple[int, str, str]]:
    n = len(dilations)
    product = 1
    for d in dilations:
        product *= d
    return [
        (sum((k - 1) * d for d in dilations),
         "it forgets the current position: add 1 for the position the output stands on",
         "One layer with kernel size 3 sees 3 positions: 1 + (3 − 1)."),
        (1 + n * (k - 1), "it ignores the dilations", "Each layer adds (k − 1)·dilation positions."),
        (1 + sum(k * d for d in dilations),
         "each layer adds k·dilation positions; it adds (k − 1)·dilation, since the kernel's "
         "newest tap is the current position", "A kernel of size k reaches k − 1 steps back."),
        (sum(k * d for d in dilations), "each layer adds k·dilation positions and the +1 is missing",
         "1 + Σ (k − 1)·dilation."),
        (1 + (k - 1) * product, "it multiplies the dilations; the layers' reaches add up",
         "1 + Σ (k − 1)·dilation."),
    ]


@checker("receptive_field")
def check_receptive_field(field_fn: Any) -> str:
    """``receptive_field(kernel_size, dilations) -> int``."""
    for k, dilations in FIELD_CASES:
        name = f"receptive_field({k}, {dilations})"
        got = call_student(field_fn, k, list(dilations))
        expected = receptive_field(k, dilations)
        got = python_number(got)  # a NumPy or one-element tensor count is a count too
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise CheckFailure(f"{name} should return a whole number, but returned {short_repr(got)}.",
                               hint="Did you forget to `return` the result?")
        if got == expected:
            continue
        for value, description, hint in _field_mistakes(k, dilations):
            if got == value and value != expected:
                raise CheckFailure(f"{name} is {got}, but should be {expected}: {description}.", hint=hint)
        raise CheckFailure(f"{name} is {got}, but should be {expected}.",
                           hint="Count from the earliest input an output can depend on to the output's own "
                                "position: itself plus (k − 1)·dilation more for each layer, "
                                "positions a dilation skips included.")
    return (f"correct on {len(FIELD_CASES)} stacks, including kernel size 1 and no layers at all "
            "(the lesson's CNN, kernel 3 with dilations 1, 2, 4, 8, sees 31 positions).")


__all__ = [
    "check_causal_conv1d",
    "check_gru_step",
    "check_lstm_step",
    "check_receptive_field",
    "check_rnn_forward",
]
