"""The from-scratch cells of sftlearn.recurrent agree with torch.nn's RNN, LSTM and GRU."""

from __future__ import annotations

import pytest
import torch

from sftlearn.recurrent import (
    causal_conv1d,
    cell_weights,
    gru_cell,
    lstm_cell,
    receptive_field,
    rnn_cell,
    unroll,
)

B, T, I, H = 3, 7, 5, 4


def inputs(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, I, generator=g, dtype=dtype)
    h0 = torch.randn(1, B, H, generator=g, dtype=dtype)
    c0 = torch.randn(1, B, H, generator=g, dtype=dtype)
    return x, h0, c0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rnn_matches_torch(dtype):
    torch.manual_seed(1)
    module = torch.nn.RNN(I, H, batch_first=True).to(dtype)
    x, h0, _ = inputs(dtype)
    expected, expected_last = module(x, h0)
    got, last = unroll(rnn_cell, x, h0[0], cell_weights(module))
    assert got.shape == (B, T, H)
    assert (got - expected).abs().max() < 1e-6
    assert (last - expected_last[0]).abs().max() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lstm_matches_torch(dtype):
    torch.manual_seed(2)
    module = torch.nn.LSTM(I, H, batch_first=True).to(dtype)
    x, h0, c0 = inputs(dtype)
    expected, (h_last, c_last) = module(x, (h0, c0))
    got, (h, c) = unroll(lstm_cell, x, (h0[0], c0[0]), cell_weights(module))
    assert (got - expected).abs().max() < 1e-6
    assert (h - h_last[0]).abs().max() < 1e-6
    assert (c - c_last[0]).abs().max() < 1e-6
    # the pair written as a list [h, c] is the same state
    got_list, (h2, c2) = unroll(lstm_cell, x, [h0[0], c0[0]], cell_weights(module))
    assert torch.equal(got_list, got) and torch.equal(h2, h) and torch.equal(c2, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gru_matches_torch(dtype):
    torch.manual_seed(3)
    module = torch.nn.GRU(I, H, batch_first=True).to(dtype)
    x, h0, _ = inputs(dtype)
    expected, expected_last = module(x, h0)
    got, last = unroll(gru_cell, x, h0[0], cell_weights(module))
    assert (got - expected).abs().max() < 1e-6
    assert (last - expected_last[0]).abs().max() < 1e-6


def test_second_layer_and_cell_modules():
    torch.manual_seed(4)
    stacked = torch.nn.GRU(I, H, num_layers=2, batch_first=True)
    x, _, _ = inputs()
    expected, _ = stacked(x)
    first, _ = unroll(gru_cell, x, torch.zeros(B, H), cell_weights(stacked, 0))
    second, _ = unroll(gru_cell, first, torch.zeros(B, H), cell_weights(stacked, 1))
    assert (second - expected).abs().max() < 1e-6

    cell = torch.nn.LSTMCell(I, H)
    h, c = cell(x[:, 0])
    mine = lstm_cell(x[:, 0], torch.zeros(B, H), torch.zeros(B, H), **cell_weights(cell))
    assert (mine[0] - h).abs().max() < 1e-6 and (mine[1] - c).abs().max() < 1e-6


def test_cells_without_bias():
    torch.manual_seed(5)
    module = torch.nn.RNN(I, H, bias=False, batch_first=True)
    x, h0, _ = inputs()
    weights = cell_weights(module)
    assert set(weights) == {"weight_ih", "weight_hh"}
    got, _ = unroll(rnn_cell, x, h0[0], weights)
    assert (got - module(x, h0)[0]).abs().max() < 1e-6


def test_lstm_state_is_bounded_and_gates_use_tanh():
    # Huge pre-activations: with tanh on the candidate and on the output, |h| < 1 always,
    # and the candidate can be negative, so the cell state can go down as well as up.
    W_ih = torch.zeros(4 * H, I)
    W_ih[2 * H:3 * H] = -50.0  # candidate rows
    x = torch.ones(B, I)
    h, c = lstm_cell(x, torch.zeros(B, H), torch.zeros(B, H), W_ih, torch.zeros(4 * H, H))
    assert (c < 0).all()
    assert (h.abs() < 1).all()


def test_unroll_of_an_empty_sequence():
    weights = cell_weights(torch.nn.RNN(I, H))
    hidden, last = unroll(rnn_cell, torch.zeros(B, 0, I), torch.ones(B, H), weights)
    assert hidden.shape == (B, 0, H)
    assert torch.equal(last, torch.ones(B, H))


def test_bad_shapes_are_explained():
    weights = cell_weights(torch.nn.LSTM(I, H))
    with pytest.raises(ValueError, match="weight_ih has shape"):
        rnn_cell(torch.zeros(B, I), torch.zeros(B, H), weights["weight_ih"], weights["weight_hh"])
    with pytest.raises(ValueError, match="must be 2-D"):
        lstm_cell(torch.zeros(I), torch.zeros(H), torch.zeros(H), **weights)
    with pytest.raises(ValueError, match="c has shape"):
        lstm_cell(torch.zeros(B, I), torch.zeros(B, H), torch.zeros(B, H + 1), **weights)
    with pytest.raises(TypeError, match=r"c must be a torch.Tensor, got NoneType.*zeros_like\(h\)"):
        lstm_cell(torch.zeros(B, I), torch.zeros(B, H), None, **weights)
    with pytest.raises(ValueError, match="batch, time, features"):
        unroll(lstm_cell, torch.zeros(T, I), (torch.zeros(B, H), torch.zeros(B, H)), weights)
    with pytest.raises(ValueError, match="has no weight_ih_l3"):
        cell_weights(torch.nn.GRU(I, H), layer=3)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        gru_cell([0.0] * I, torch.zeros(1, H), torch.zeros(3 * H, I), torch.zeros(3 * H, H))
    rnn = cell_weights(torch.nn.RNN(I, H))
    with pytest.raises(ValueError, match="x has 1 examples but h has 4"):  # broadcast before
        rnn_cell(torch.zeros(1, I), torch.zeros(4, H), **rnn)
    with pytest.raises(ValueError, match=rf"bias_hh has shape \({H + 2},\) but should be \({H},\)"):
        rnn_cell(torch.zeros(B, I), torch.zeros(B, H), rnn["weight_ih"], rnn["weight_hh"],
                 rnn["bias_ih"], torch.zeros(H + 2))


# ----------------------------------------------------------------------- convolution


@pytest.mark.parametrize(("k", "dilation"), [(1, 1), (3, 1), (3, 2), (2, 4)])
def test_causal_conv_matches_a_loop_and_never_sees_the_future(k, dilation):
    g = torch.Generator().manual_seed(k * 10 + dilation)
    x = torch.randn(2, 3, 12, generator=g)
    w = torch.randn(4, 3, k, generator=g)
    b = torch.randn(4, generator=g)
    y = causal_conv1d(x, w, b, dilation=dilation)
    assert y.shape == (2, 4, 12)
    # y[:, o, t] = b[o] + Σ_j w[o, :, j] · x[:, :, t − (k − 1 − j)·dilation] (zero before 0)
    for t in range(12):
        expected = b.expand(2, 4).clone()
        for j in range(k):
            s = t - (k - 1 - j) * dilation
            if s >= 0:
                expected += x[:, :, s] @ w[:, :, j].T
        assert torch.allclose(y[:, :, t], expected, atol=1e-5)
    # Changing the last input changes only the last output.
    x2 = x.clone()
    x2[:, :, -1] += 1.0
    y2 = causal_conv1d(x2, w, b, dilation=dilation)
    assert torch.equal(y2[:, :, :-1], y[:, :, :-1])


def test_causal_conv_bad_input():
    with pytest.raises(ValueError, match="transpose"):
        causal_conv1d(torch.zeros(2, 5), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="input channels"):
        causal_conv1d(torch.zeros(2, 5, 8), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="dilation"):
        causal_conv1d(torch.zeros(2, 3, 8), torch.zeros(1, 3, 3), dilation=0)


def test_receptive_field():
    assert receptive_field(3, [1]) == 3
    assert receptive_field(3, [1, 2, 4, 8]) == 31
    assert receptive_field(1, [1, 1]) == 1
    assert receptive_field(2, []) == 1
    with pytest.raises(ValueError):
        receptive_field(0, [1])


def test_receptive_field_matches_a_gradient():
    # The inputs that receive gradient from the last output are exactly the receptive field.
    torch.manual_seed(0)
    dilations = [1, 2, 4]
    x = torch.randn(1, 2, 40, requires_grad=True)
    h = x
    for d in dilations:
        h = causal_conv1d(h, torch.rand(2, 2, 3) + 0.1, dilation=d)
    h[0, :, -1].sum().backward()
    seen = int((x.grad[0].abs().sum(0) > 0).sum())
    assert seen == receptive_field(3, dilations) == 15
