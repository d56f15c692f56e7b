"""Recurrent cells and a causal convolution, written from their equations.

These are the sequence models that came before the Transformer (chapter 06). Each cell is
one time step: it takes the input ``x`` at step t and the state from step t - 1 and returns
the new state. ``unroll`` runs a cell along a whole sequence.

The weights use PyTorch's layout, so the weights of ``torch.nn.RNN``, ``torch.nn.LSTM`` and
``torch.nn.GRU`` can be copied in (``cell_weights(module)``) and the results compared:

- ``weight_ih`` (G·H, I) multiplies the input, ``weight_hh`` (G·H, H) the previous hidden state,
  ``bias_ih`` and ``bias_hh`` (G·H,) are added; G = 1 (RNN), 4 (LSTM), 3 (GRU) blocks of rows.
- LSTM rows come in the order input gate i, forget gate f, candidate g, output gate o.
- GRU rows come in the order reset gate r, update gate z, candidate n.

Shapes: B = batch, T = time, I = input features, H = hidden units, C = channels, k = kernel.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .validation import check_int

State = torch.Tensor | tuple[torch.Tensor, ...]


# ---------------------------------------------------------------------------- checks


def _check_cell_inputs(name: str, x: torch.Tensor, h: torch.Tensor, weight_ih: torch.Tensor,
                       weight_hh: torch.Tensor, blocks: int, bias_ih: torch.Tensor | None = None,
                       bias_hh: torch.Tensor | None = None) -> None:
    """Raise a ValueError naming the mismatch, before torch raises an obscure one."""
    for label, t in (("x", x), ("h", h), ("weight_ih", weight_ih), ("weight_hh", weight_hh)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: {label} must be a torch.Tensor, got {type(t).__name__}.")
    if x.dim() != 2 or h.dim() != 2:
        raise ValueError(
            f"{name}: x and h must be 2-D, (batch, features), got x {tuple(x.shape)} and "
            f"h {tuple(h.shape)}. For a single example use x[None] (or .unsqueeze(0))."
        )
    if x.shape[0] != h.shape[0]:
        # broadcasting would quietly pair one input with every row of h (or fail obscurely)
        raise ValueError(
            f"{name}: x has {x.shape[0]} examples but h has {h.shape[0]}; each example needs its "
            f"own state (start from torch.zeros({x.shape[0]}, hidden))."
        )
    hidden = h.shape[1]
    if weight_ih.shape != (blocks * hidden, x.shape[1]):
        raise ValueError(
            f"{name}: weight_ih has shape {tuple(weight_ih.shape)} but should be "
            f"({blocks} * hidden, input) = ({blocks * hidden}, {x.shape[1]}) for x {tuple(x.shape)} "
            f"and h {tuple(h.shape)}. Copy the weights with cell_weights(module)."
        )
    if weight_hh.shape != (blocks * hidden, hidden):
        raise ValueError(
            f"{name}: weight_hh has shape {tuple(weight_hh.shape)} but should be "
            f"({blocks * hidden}, {hidden}) for a hidden state of size {hidden}."
        )
    for label, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None and tuple(bias.shape) != (blocks * hidden,):
            raise ValueError(
                f"{name}: {label} has shape {tuple(bias.shape)} but should be ({blocks * hidden},), "
                f"one number per row of the weights."
            )


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x Wᵀ + b, the linear map every cell applies to its input and to its hidden state."""
    out = x @ weight.T
    return out if bias is None else out + bias


# ----------------------------------------------------------------------------- cells


def rnn_cell(x: torch.Tensor, h: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
             bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None) -> torch.Tensor:
    """One step of a plain (Elman) RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    x (B, I), h (B, H) -> new h (B, H).
    """
    _check_cell_inputs("rnn_cell", x, h, weight_ih, weight_hh, 1, bias_ih, bias_hh)
    return torch.tanh(_affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh))


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_ih: torch.Tensor,
              weight_hh: torch.Tensor, bias_ih: torch.Tensor | None = None,
              bias_hh: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of an LSTM. x (B, I), h and c (B, H) -> new (h, c).

    i, f, o = σ(...) are gates in (0, 1); the candidate g = tanh(...) is in (−1, 1), so the cell
    can add or subtract; c_t = f ⊙ c_{t-1} + i ⊙ g; h_t = o ⊙ tanh(c_t) keeps h in (−1, 1).
    """
    _check_cell_inputs("lstm_cell", x, h, weight_ih, weight_hh, 4, bias_ih, bias_hh)
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"lstm_cell: c must be a torch.Tensor, got {type(c).__name__}; an LSTM "
                        "starts from c = torch.zeros_like(h).")
    if c.shape != h.shape:
        raise ValueError(f"lstm_cell: c has shape {tuple(c.shape)} but must match h {tuple(h.shape)}.")
    pre = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = pre.chunk(4, dim=1)  # PyTorch's order: input, forget, candidate, output
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    g = torch.tanh(g)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return h_new, c_new


def gru_cell(x: torch.Tensor, h: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
             bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None) -> torch.Tensor:
    """One step of a GRU (PyTorch's form). x (B, I), h (B, H) -> new h (B, H).

    r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}.
    """
    _check_cell_inputs("gru_cell", x, h, weight_ih, weight_hh, 3, bias_ih, bias_hh)
    from_x = _affine(x, weight_ih, bias_ih).chunk(3, dim=1)  # 3 × (B, H)
    from_h = _affine(h, weight_hh, bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(from_x[0] + from_h[0])
    z = torch.sigmoid(from_x[1] + from_h[1])
    n = torch.tanh(from_x[2] + r * from_h[2])  # the reset gate scales the hidden part only
    return (1 - z) * n + z * h


# ------------------------------------------------------------------------- sequences


def unroll(cell: Callable[..., State], x: torch.Tensor, state: State,
           weights: dict[str, torch.Tensor]) -> tuple[torch.Tensor, State]:
    """Run ``cell`` along x (B, T, I) from ``state``; return (hidden states (B, T, H), last state).

    ``state`` is h (B, H) for an RNN or GRU, the pair (h, c) for an LSTM; the last state has the
    same form. ``weights`` holds weight_ih, weight_hh, bias_ih, bias_hh (see ``cell_weights``).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"unroll: x must be a tensor of shape (batch, time, features), got {shape}.")
    if isinstance(state, list):  # [h, c] is an easy way to write the pair; a list of h's is not
        state = tuple(state)
    is_pair = isinstance(state, tuple)
    current = state if is_pair else (state,)
    outputs = []
    for t in range(x.shape[1]):
        new = cell(x[:, t], *current, **weights)
        current = new if isinstance(new, tuple) else (new,)
        outputs.append(current[0])  # the hidden state h is what the next layer sees
    hidden = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, current[0].shape[1])
    return hidden, (current if is_pair else current[0])


def cell_weights(module: torch.nn.Module, layer: int = 0) -> dict[str, torch.Tensor]:
    """The weights of one layer of ``torch.nn.RNN``/``LSTM``/``GRU`` (or an ``RNNCell``,
    ``LSTMCell``, ``GRUCell``) as a dict for the cells above. Missing biases are omitted."""
    suffix = "" if isinstance(module, torch.nn.RNNCellBase) else f"_l{layer}"
    if not hasattr(module, f"weight_ih{suffix}"):
        raise ValueError(
            f"cell_weights: {type(module).__name__} has no weight_ih{suffix}; pass a torch.nn.RNN, "
            "LSTM or GRU (or their Cell versions) and a layer index it has."
        )
    if getattr(module, "bidirectional", False) or getattr(module, "proj_size", 0):
        raise ValueError("cell_weights: bidirectional and projected LSTMs are not supported.")
    if getattr(module, "nonlinearity", "tanh") != "tanh":
        # rnn_cell is the tanh RNN: the same weights under ReLU compute something else
        raise ValueError(
            f"cell_weights: this RNN uses nonlinearity={module.nonlinearity!r}, but rnn_cell "
            f"computes the tanh RNN; build it with nonlinearity='tanh' to compare the two."
        )
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return {name: getattr(module, name + suffix).detach() for name in names
            if getattr(module, name + suffix, None) is not None}


# ---------------------------------------------------------------------- convolution


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  dilation: int = 1) -> torch.Tensor:
    """A 1-D convolution over time whose output at t sees only x[..., :t+1].

    x (B, C_in, T), weight (C_out, C_in, k) -> (B, C_out, T). Padding (k − 1)·dilation zeros on
    the left only keeps the length and makes output t depend on inputs t − (k−1)·dilation … t.
    """
    if x.dim() != 3 or weight.dim() != 3:
        raise ValueError(
            f"causal_conv1d: x must be (batch, channels, time) and weight (out, in, kernel); got "
            f"x {tuple(x.shape)} and weight {tuple(weight.shape)}. Text usually arrives as "
            "(batch, time, channels): use x.transpose(1, 2)."
        )
    if weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"causal_conv1d: weight expects {weight.shape[1]} input channels but x has {x.shape[1]}."
        )
    check_int("causal_conv1d: dilation", dilation)
    pad = (weight.shape[2] - 1) * dilation
    return F.conv1d(F.pad(x, (pad, 0)), weight, bias, dilation=dilation)


def receptive_field(kernel_size: int, dilations: list[int] | tuple[int, ...]) -> int:
    """The receptive field of a stack of causal convolutions: how many input positions lie
    between the earliest one an output can depend on and the output's own position, both
    included, 1 + Σ (k − 1)·dilation over the layers. (A large dilation can skip some of
    them: one layer of kernel 2 and dilation 3 reads t and t − 3 and has a field of 4.)"""
    if kernel_size < 1 or any(d < 1 for d in dilations):
        raise ValueError("receptive_field: kernel_size and every dilation must be at least 1.")
    return 1 + sum((kernel_size - 1) * d for d in dilations)
