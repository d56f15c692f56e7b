"""Causal multi-head self-attention, with two interchangeable paths.

For every position, attention mixes the value vectors of the positions it may look at, weighted
by how well their keys match its query:

.. math::  \\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\Big(\\frac{Q K^\\top}{\\sqrt{d_k}} + M\\Big) V

where :math:`M` is 0 where looking is allowed and :math:`-\\infty` elsewhere (the future, and
padding). The ``"math"`` path writes exactly that and can hand back the weights for plots; the
``"fused"`` path calls ``torch.nn.functional.scaled_dot_product_attention``, which computes the
same thing in one kernel (flash or memory-efficient attention on GPUs). Tests check they agree.

The module also understands a key/value cache for generation: keys and values of earlier
positions are stored, so each new token costs one row of attention instead of a full recompute.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GPTConfig
from .kv_cache import KVCache


def build_attention_mask(
    q_len: int,
    k_len: int,
    key_padding: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor:
    """Boolean mask of shape (B or 1, 1, q_len, k_len); True = may attend.

    Queries are the *last* ``q_len`` positions of the ``k_len`` keys (with a cache, earlier
    keys come from previous steps), so query i sits at absolute position ``k_len - q_len + i``
    and may see keys at positions up to and including its own.
    ``key_padding`` (B, k_len) is 1/True for real tokens, 0/False for padding.
    """
    offset = k_len - q_len
    q_pos = torch.arange(q_len, device=device)[:, None] + offset  # (q, 1)
    k_pos = torch.arange(k_len, device=device)[None, :]  # (1, k)
    allowed = (k_pos <= q_pos)[None, None]  # (1, 1, q, k)
    if key_padding is not None:
        real = key_padding.to(torch.bool)[:, None, None, :]  # (B, 1, 1, k)
        # A padding query may have no real key to look at; letting it see itself keeps its
        # softmax finite (its output is ignored anyway) instead of producing NaN.
        itself = (k_pos == q_pos)[None, None]
        allowed = allowed & (real | itself)
    return allowed


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with GPT-2's parameter layout.

    ``c_attn`` projects each token to its query, key and value at once (3 × n_embd outputs);
    ``c_proj`` mixes the heads' outputs back into the residual stream.
    """

    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.path = config.attention
        self.dropout = config.dropout
        self.layer_index = layer_index
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (B, T, C). attention_mask: (B, T_total) with 1 for real tokens (T_total includes
        cached positions). Returns (output (B, T, C), weights (B, H, T, T_total) or None)."""
        q, k, v = self.heads(x)  # each (B, H, T, hd)
        if kv_cache is not None:
            k, v = kv_cache.append(self.layer_index, k, v)  # (B, H, T_total, hd)
        return self.attend(q, k, v, attention_mask, return_weights)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of x (B, T, C), split into heads: each (B, H, T, hd)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        return tuple(t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))

    def attend(self, q, k, v, attention_mask=None, return_weights: bool = False):
        """Attention of queries q (B, H, T, hd) over keys and values (B, H, S, hd), heads
        re-joined and projected: (output (B, T, C), weights (B, H, T, S) or None)."""
        if self.path == "math" or return_weights:
            y, weights = self._math(q, k, v, attention_mask)
        else:
            y, weights = self._fused(q, k, v, attention_mask), None
        B, _, T, _ = q.shape
        y = y.transpose(1, 2).contiguous().view(B, T, -1)  # re-join heads: (B, T, C)
        return self.resid_dropout(self.c_proj(y)), weights

    def _math(self, q, k, v, attention_mask):
        """softmax(QKᵀ/√d + M) V, written out. q: (B,H,T,hd), k/v: (B,H,S,hd)."""
        T, S = q.shape[2], k.shape[2]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
        allowed = build_attention_mask(T, S, attention_mask, q.device)
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # rows sum to 1
        y = self.attn_dropout(weights) @ v  # (B, H, T, hd)
        return y, weights

    def _fused(self, q, k, v, attention_mask):
        T, S = q.shape[2], k.shape[2]
        dropout = self.dropout if self.training else 0.0
        if attention_mask is None and T == S:
            # The common training case: let the kernel build the causal mask itself, which
            # allows the flash-attention kernel on GPUs.
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        if attention_mask is None and T == 1:
            # One new token with a cache: it may look at every cached position.
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        allowed = build_attention_mask(T, S, attention_mask, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
