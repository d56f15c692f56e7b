"""Text generation: turn next-token logits into a choice, one token at a time.

Choosing the next token from the logits ``z`` (one score per vocabulary entry):

- **greedy**: always the most likely token (``temperature=0``). Deterministic, can loop.
- **temperature** ``τ``: sample from ``softmax(z / τ)``; τ < 1 sharpens, τ > 1 flattens.
- **top-k**: keep only the k most likely tokens, renormalise, sample.
- **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities add up
  to at least p, renormalise, sample.

With ``use_cache=True`` the model keeps each layer's keys and values (``KVCache``), so after the
prompt each step runs on one new token. The cached and uncached loops pick identical tokens.
"""

from __future__ import annotations

import numbers

import torch

from .kv_cache import KVCache
from .model import check_mask_type
from .modes import evaluation_mode
from .validation import check_int


def check_sampling(temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> None:
    """Raise a ValueError for a sampling setting outside its range (NaN included)."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number (0 means greedy), got "
                        f"{type(temperature).__name__} {temperature!r}.")
    if not 0 <= temperature < float("inf"):  # written so, NaN fails too
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), "
                         f"got {temperature}.")
    if top_k is not None:
        check_int("top_k", top_k, fix="Or None for no top-k.")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None (no top-p), got {top_p!r}.")


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Set the logits of tokens outside the top-k / top-p set to -inf. logits: (B, V).

    Top-k keeps every token whose logit is at least the k-th largest, so tokens tied with
    the k-th are all kept (as Hugging Face's top-k does): with ties, more than k survive."""
    check_sampling(top_k=top_k, top_p=top_p)
    if top_k is not None:
        k = min(top_k, logits.size(-1))
        kth_best = torch.topk(logits, k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    # top_p = 1 keeps every token; skipped, because float32 sums of the sorted probabilities
    # can reach 1.0 before the tail and would drop its tokens for good.
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # mass of the tokens strictly before each one; a token is kept while that mass < p,
        # so the most likely token is always kept.
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` in float32, for a temperature > 0. logits: (B, V) or (V,)."""
    logits = logits.float()
    scaled = logits / temperature
    if torch.isposinf(scaled).any():
        # A tiny temperature (1e-39) overflows the largest logits to +inf, and a softmax of
        # inf is NaN. Shifted so that each row's largest logit is 0 first (softmax does not
        # change), the best tokens stay finite and the others go to -inf: the argmax.
        scaled = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    return scaled


def next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row from logits (B, V); returns (B, 1)."""
    check_sampling(temperature, top_k, top_p)  # also when greedy: a bad setting is a slip
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(apply_temperature(logits, temperature), top_k, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def _stop_ids(stop_token) -> torch.Tensor:
    """``stop_token`` (None, an id, a list of ids, a NumPy integer or an integer tensor) as a
    1-D tensor of ids."""
    if stop_token is None:
        return torch.tensor([], dtype=torch.long)
    try:
        ids = torch.as_tensor(stop_token)
    except (TypeError, ValueError, RuntimeError):
        ids = None
    if ids is not None and ids.numel() == 0:
        return torch.tensor([], dtype=torch.long)  # [] has no dtype to check: no stop token
    if ids is None or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(
            f"stop_token must be a token id or a list of ids (ints), got {stop_token!r}; "
            f"e.g. stop_token=tokenizer.end_id."
        )
    return ids.long().reshape(-1)


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    stop_token: int | list[int] | None = None,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``input_ids`` (B, T); returns (B, T + n).

    ``stop_token``: an id (or ids); a row that produces one stops, and its later positions are
    filled with the (first) stop id. Generation ends early when every row has stopped.
    ``attention_mask`` (B, T): 1 for real tokens; use it for a batch of *left-padded* prompts.
    """
    check_sampling(temperature, top_k, top_p)  # also when greedy: a bad setting is a slip
    if greedy:
        temperature = 0.0
    model.check_input_ids(input_ids)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    B, T = input_ids.shape
    block_size = model.config.block_size
    if T + max_new_tokens > block_size:
        raise ValueError(
            f"Prompt ({T} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
            f"context of {block_size} tokens. Ask for at most {max(block_size - T, 0)} new "
            f"tokens or shorten the prompt."
        )
    check_mask_type(attention_mask)
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} must equal input_ids shape "
            f"{tuple(input_ids.shape)}."
        )
    if attention_mask is not None and not bool(attention_mask[:, -1].all()):
        # With padding on the right, the first new token would be predicted from a padding
        # position, which sees nothing of the prompt: the answer would be garbage.
        raise ValueError(
            "Prompts must be left-padded for generation: every row's last position must be a "
            "real token (attention_mask 1). Put the pad ids before each prompt, as "
            "sftlearn.sft.generate_answers does."
        )
    stops = _stop_ids(stop_token).to(input_ids.device)  # (S,)

    with evaluation_mode(model):  # dropout off; every submodule's own mode comes back after
        cache = None
        if use_cache:
            dtype = next(model.parameters()).dtype
            cfg = model.config
            cache = KVCache(
                cfg.n_layer, B, cfg.n_head, cfg.head_dim, T + max_new_tokens,
                input_ids.device, dtype,
            )
        ids = input_ids
        mask = attention_mask
        finished = torch.zeros(B, dtype=torch.bool, device=ids.device)
        fill = stops[0] if len(stops) else None
        step_input = ids
        for _ in range(max_new_tokens):
            if cache is not None:
                logits, _ = model(step_input, attention_mask=mask, kv_cache=cache)
            else:
                logits, _ = model(ids, attention_mask=mask)
            token = next_token(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            if fill is not None:
                token = torch.where(finished[:, None], fill, token)
                finished |= torch.isin(token[:, 0], stops)
            ids = torch.cat([ids, token], dim=1)
            if mask is not None:
                mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            step_input = token
            if fill is not None and bool(finished.all()):
                break
        return ids
