"""Tests of the chapter 06 checks (sftlearn.check.ch06): right answers, typical wrong ones and
unfinished stubs, each with the words the student sees."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch06
from conftest import failure_of, stub


# ------------------------------------------------------------------------------- RNN


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """A student's right answer: a loop over time."""
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def rnn_with_torch(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """Another right answer: torch.nn.RNN with the weights copied in."""
    module = torch.nn.RNN(x.shape[2], h0.shape[1], batch_first=True)
    with torch.no_grad():
        for name, value in [("weight_ih_l0", weight_ih), ("weight_hh_l0", weight_hh),
                            ("bias_ih_l0", bias_ih), ("bias_hh_l0", bias_hh)]:
            getattr(module, name).copy_(value)
    out, last = module(x, h0[None])
    return out.detach(), last[0].detach()


@pytest.mark.parametrize("answer", [rnn_forward, rnn_with_torch])
def test_rnn_forward_right(answer, capsys):
    ch06.check_rnn_forward(answer)
    assert capsys.readouterr().out.startswith("✓ rnn_forward: matches the RNN equations on 3 sequences")


def test_rnn_forward_stub(capsys):
    ch06.check_rnn_forward(stub)
    assert "rnn_forward: not done yet" in capsys.readouterr().out


def rnn_variant(activation=torch.tanh, carry=True, bias_hh=True, bias_ih=True, shift=False, time_first=False,
                return_h0=False):
    def run(x, h0, W_ih, W_hh, b_ih, b_hh):
        h, outputs = h0, []
        for t in range(x.shape[1]):
            if shift:
                outputs.append(h)
            h = activation(x[:, t] @ W_ih.T + (b_ih if bias_ih else 0)
                           + (h if carry else h0) @ W_hh.T + (b_hh if bias_hh else 0))
            if not shift:
                outputs.append(h)
        return torch.stack(outputs, dim=0 if time_first else 1), (h0 if return_h0 else h)
    return run


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (rnn_variant(carry=False), "every step used the initial state h0"),
        (rnn_variant(activation=torch.relu), "it uses a ReLU where the RNN uses tanh"),
        (rnn_variant(activation=torch.sigmoid), "it uses a sigmoid where the RNN uses tanh"),
        (rnn_variant(activation=lambda v: v), "it has no tanh at all"),
        (rnn_variant(bias_hh=False), "bias_hh is missing"),
        (rnn_variant(bias_ih=False), "bias_ih is missing"),
        (rnn_variant(shift=True), "the outputs are shifted by one"),
        (rnn_variant(time_first=True), "outputs has shape (5, 2, 4), time first"),
        (rnn_variant(return_h0=True), "h_last is the initial state h0"),
        (lambda *a: rnn_forward(*a)[0], "should return a pair (outputs, h_last)"),
        (lambda *a: None, "returned None"),
        (lambda *a: (list(rnn_forward(*a)[0].unbind(1)), rnn_forward(*a)[1]), "outputs is a list of 5 tensors"),
        (lambda *a: (rnn_forward(*a)[0], rnn_forward(*a)[0][:, 0]), "h_last"),
        (lambda *a: (rnn_forward(*a)[0] * 2, rnn_forward(*a)[1]), "twice as large"),
    ],
)
def test_rnn_forward_wrong_answers(answer, words):
    assert words in str(failure_of(ch06.check_rnn_forward, answer))


def test_rnn_forward_crash_is_reported():
    def crashes(x, h0, W_ih, W_hh, b_ih, b_hh):
        return x @ W_hh, h0  # wrong matrix: shapes do not fit
    failure = failure_of(ch06.check_rnn_forward, crashes)
    assert "raised RuntimeError" in failure.message


# ------------------------------------------------------------------------------ LSTM


def lstm_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    H = h.shape[1]
    i = torch.sigmoid(gates[:, :H])
    f = torch.sigmoid(gates[:, H:2 * H])
    g = torch.tanh(gates[:, 2 * H:3 * H])
    o = torch.sigmoid(gates[:, 3 * H:])
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def lstm_with_torch(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    h_new, c_new = torch.lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)
    return h_new, c_new


def lstm_variant(candidate=torch.tanh, output=torch.tanh, order="ifgo", old_c=False):
    def step(x, h, c, W_ih, W_hh, b_ih, b_hh):
        parts = dict(zip(order, (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)))
        i, f, o = (torch.sigmoid(parts[k]) for k in "ifo")
        c_new = f * c + i * candidate(parts["g"])
        return o * output(c if old_c else c_new), c_new
    return step


@pytest.mark.parametrize("answer", [lstm_step, lstm_with_torch])
def test_lstm_step_right(answer, capsys):
    ch06.check_lstm_step(answer)
    assert capsys.readouterr().out.startswith("✓ lstm_step: matches the LSTM equations on 3 batches")


def test_lstm_step_stub(capsys):
    ch06.check_lstm_step(stub)
    assert "lstm_step: not done yet" in capsys.readouterr().out


def test_lstm_the_buggy_version_is_recognised():
    failure = failure_of(ch06.check_lstm_step, lstm_variant(candidate=torch.sigmoid, output=torch.relu))
    assert failure.message == (
        "lstm_step on a batch of 2: the candidate uses a sigmoid and the output uses a ReLU: these "
        "are the two mistakes of the buggy version, and both must be tanh."
    )
    assert failure.hint == "Candidate g = tanh(...), output h = o ⊙ tanh(c)."
    assert str(failure).startswith("✗ lstm_step: lstm_step on a batch of 2: the candidate")


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lstm_variant(candidate=torch.sigmoid), "the candidate uses a sigmoid, so it lies in (0, 1)"),
        (lstm_variant(output=torch.relu), "the output uses a ReLU of the cell state"),
        (lstm_variant(output=lambda v: v), "the tanh on the cell state is missing"),
        (lstm_variant(candidate=lambda v: v), "the candidate is used without any squashing"),
        (lstm_variant(old_c=True), "h is computed from the old cell state"),
        (lstm_variant(order="ifog"), "in the order i, f, o, g"),
        (lstm_variant(order="figo"), "the input gate and the forget gate are swapped"),
        (lambda *a: lstm_step(*a)[::-1], "returned (c, h)"),
        (lambda *a: lstm_step(*a)[0], "should return a pair (h, c)"),
        (lambda *a: (lstm_step(*a)[0], a[2]), "the new cell state c"),
        (lambda *a: (lstm_step(*a)[0] + 1, lstm_step(*a)[1]), "the new hidden state h"),
    ],
)
def test_lstm_step_wrong_answers(answer, words):
    assert words in failure_of(ch06.check_lstm_step, answer).message


# ------------------------------------------------------------------------------- GRU


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    r_x, z_x, n_x = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)
    r_h, z_h, n_h = (h @ weight_hh.T + bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(r_x + r_h)
    z = torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)
    return (1 - z) * n + z * h


def gru_variant(candidate=torch.tanh, order="rzn", reset_before_product=False, swap_z=False, reset=True):
    """A student's GRU step with one thing changed, written out block by block."""
    def step(x, h, W_ih, W_hh, b_ih, b_hh):
        H = h.shape[1]
        rows = {name: slice(j * H, (j + 1) * H) for j, name in enumerate(order)}
        gx, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
        r = torch.sigmoid(gx[:, rows["r"]] + gh[:, rows["r"]])
        z = torch.sigmoid(gx[:, rows["z"]] + gh[:, rows["z"]])
        if reset_before_product:  # the paper's form: W_hn (r ⊙ h) + b_hn
            from_h = (r * h) @ W_hh[rows["n"]].T + b_hh[rows["n"]]
        else:
            from_h = r * gh[:, rows["n"]] if reset else gh[:, rows["n"]]
        n = candidate(gx[:, rows["n"]] + from_h)
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h
    return step


def test_gru_step_right(capsys):
    ch06.check_gru_step(gru_step)
    ch06.check_gru_step(lambda x, h, *w: torch.gru_cell(x, h, *w))
    assert capsys.readouterr().out.count("✓ gru_step: matches PyTorch's GRU equations on 3 batches") == 2


def test_gru_step_stub(capsys):
    ch06.check_gru_step(stub)
    assert "gru_step: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (gru_variant(swap_z=True), "the roles of z and 1 − z are swapped"),
        (gru_variant(reset_before_product=True), "as in the original GRU paper"),
        (gru_variant(reset=False), "the reset gate is never applied"),
        (gru_variant(candidate=torch.relu), "the candidate uses a ReLU"),
        (gru_variant(candidate=torch.sigmoid), "the candidate uses a sigmoid"),
        (gru_variant(order="zrn"), "PyTorch's order is r, z, n"),
        (lambda *a: (gru_step(*a), gru_step(*a)), "a GRU has no cell state"),
        (lambda x, h, *w: h, "is wrong at"),
        (lambda *a: None, "is None"),
    ],
)
def test_gru_step_wrong_answers(answer, words):
    assert words in failure_of(ch06.check_gru_step, answer).message


# ----------------------------------------------------------------------- convolution


def causal_conv(x, weight, bias, dilation):
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(F.pad(x, (pad, 0)), weight, bias, dilation=dilation)


def test_causal_conv1d_right(capsys):
    ch06.check_causal_conv1d(causal_conv)
    assert capsys.readouterr().out.startswith("✓ causal_conv1d: correct on 4 cases")


def test_causal_conv1d_stub(capsys):
    ch06.check_causal_conv1d(stub)
    assert "causal_conv1d: not done yet" in capsys.readouterr().out


def conv_same(x, weight, bias, dilation):
    """Pads half on each side: the length is right, but the future leaks in."""
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(F.pad(x, (pad // 2, pad - pad // 2)), weight, bias, dilation=dilation)


def conv_right_padded(x, weight, bias, dilation):
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(F.pad(x, (0, pad)), weight, bias, dilation=dilation)


def conv_by_a_loop(x, weight, bias, dilation):
    """The textbook convolution y[t] = Σ_j w[j] · x[t − j·dilation]: weight[..., 0] meets x[t]."""
    B, _, T = x.shape
    k = weight.shape[-1]
    y = bias[None, :, None].repeat(B, 1, T)
    for t in range(T):
        for j in range(k):
            if t - j * dilation >= 0:
                y[:, :, t] += x[:, :, t - j * dilation] @ weight[:, :, j].T
    return y


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (conv_same, "is not causal: the output at position 0 changes when the input at the later position 1"),
        (conv_right_padded, "is not causal"),
        (lambda x, w, b, d: F.conv1d(x, w, b, dilation=d), "returns 6 time steps instead of 8: without padding"),
        (lambda x, w, b, d: F.conv1d(x, w, b, padding=(w.shape[-1] - 1) * d, dilation=d),
         "returns 10 time steps instead of 8: it pads on both sides"),
        (lambda x, w, b, d: F.conv1d(F.pad(x, (w.shape[-1] - 1, 0)), w, b, dilation=d),
         "returns 8 time steps instead of 10: the padding is k − 1 = 2"),
        (conv_by_a_loop, "the kernel is flipped"),
        (lambda x, w, b, d: causal_conv(x, w, None, d), "the bias is missing"),
        (lambda x, w, b, d: F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w, b)[..., -x.shape[-1]:],
         "the dilation is ignored"),
        (lambda x, w, b, d: causal_conv(x, w, b, d).transpose(1, 2), "should have shape (2, 2, 8)"),
        (lambda x, w, b, d: None, "is None"),
    ],
)
def test_causal_conv1d_wrong_answers(answer, words):
    assert words in failure_of(ch06.check_causal_conv1d, answer).message


# ------------------------------------------------------------------- receptive field


def test_receptive_field_right(capsys):
    ch06.check_receptive_field(lambda k, dilations: 1 + sum((k - 1) * d for d in dilations))
    assert capsys.readouterr().out.startswith("✓ receptive_field: correct on 7 stacks")


def test_receptive_field_stub(capsys):
    ch06.check_receptive_field(stub)
    assert "receptive_field: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda k, ds: sum((k - 1) * d for d in ds), "is 2, but should be 3: it forgets the current position"),
        (lambda k, ds: 1 + len(ds) * (k - 1), "is 9, but should be 31: it ignores the dilations"),
        (lambda k, ds: 1 + sum(k * d for d in ds), "is 4, but should be 3: each layer adds k·dilation"),
        (lambda k, ds: sum(k * d for d in ds), "the +1 is missing"),
        (lambda k, ds: 1 + (k - 1) * math.prod(ds), "is 129, but should be 31: it multiplies the dilations"),
        (lambda k, ds: None, "should return a whole number"),
        (lambda k, ds: 31, "receptive_field(3, [1]) is 31, but should be 3."),
    ],
)
def test_receptive_field_wrong_answers(answer, words):
    assert words in failure_of(ch06.check_receptive_field, answer).message


def test_receptive_field_accepts_a_tensor(capsys):
    ch06.check_receptive_field(lambda k, ds: torch.tensor(1 + sum((k - 1) * d for d in ds)))
    assert capsys.readouterr().out.startswith("✓ receptive_field")


def test_receptive_field_as_a_numpy_integer_is_a_number(capsys):
    import numpy as np

    ch06.check_receptive_field(lambda k, d: 1 + (k - 1) * np.sum(d, dtype=np.int64))
    assert "✓ receptive_field" in capsys.readouterr().out


def test_dilation_forgotten_in_the_convolution_is_named():
    def no_dilation(x, weight, bias, dilation):
        k = weight.shape[-1]
        return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight, bias)

    assert "Pass the dilation to the convolution too" in failure_of(
        ch06.check_causal_conv1d, no_dilation).hint
