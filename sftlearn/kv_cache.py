"""A key/value cache: remember each layer's keys and values during generation.

Without a cache, generating token t+1 re-runs the model over all t previous tokens. Their keys
and values do not change (a causal model never lets a token see the future), so we store them
once and, at each step, run the model on the single new token only. The cache is a pair of
preallocated tensors per layer, filled left to right.
"""

from __future__ import annotations

import torch


class KVCache:
    """Per-layer key and value tensors of shape (B, H, max_len, head_dim)."""

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_head: int,
        head_dim: int,
        max_len: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ):
        shape = (batch_size, n_head, max_len, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.max_len = max_len
        self.length = 0  # positions filled so far (the same in every layer after a step)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store the new keys/values (B, H, T, hd) of ``layer``; return all keys/values so far.

        Every layer appends the same T positions in a step; the shared ``length`` moves on when
        the model calls ``advance`` after its last layer."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(
                f"KV cache is full: it holds {self.max_len} positions and {end} were needed. "
                f"Create it with a larger max_len (at most the model's block_size)."
            )
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def check_fits(self, n_layer: int, batch_size: int, n_head: int, head_dim: int) -> None:
        """Refuse a cache made for another model or batch, before any layer writes into it
        (torch's own errors would come from inside attention, with one layer already written)."""
        have = (len(self.keys), *self.keys[0].shape[:2], self.keys[0].shape[3]) if self.keys else (0,)
        want = (n_layer, batch_size, n_head, head_dim)
        if have != want:
            raise ValueError(
                f"This KV cache was made for (layers, batch, heads, head_dim) = {have}, but the "
                f"model and input need {want}. Make a new cache for this model and batch, "
                f"with the sizes of its config: KVCache(n_layer, batch_size, n_head, head_dim, "
                f"block_size, device)."
            )

    def advance(self, steps: int) -> None:
        """Mark ``steps`` more positions as filled (called once per forward pass)."""
        self.length += steps
