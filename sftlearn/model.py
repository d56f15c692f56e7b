"""The GPT model: a stack of pre-LayerNorm Transformer blocks over token + position embeddings.

Reading order: ``MLP`` → ``Block`` → ``GPT``. Parameter names follow GPT-2's layout
(``transformer.wte``, ``transformer.h.0.attn.c_attn`` …) so a model converts cleanly to and
from the Hugging Face format.

Shapes used in comments: B = batch, T = time (tokens), C = channels (``n_embd``), V = vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CausalSelfAttention
from .config import GPTConfig
from .kv_cache import KVCache
from .modes import evaluation_mode

IGNORE_INDEX = -100  # targets with this value contribute nothing to the loss


def check_targets(targets: object, shape: tuple[int, ...], hint: str, num_classes: int,
                  what: str, fix: str, training: bool = False) -> torch.Tensor:
    """``targets`` as int64 class ids, after checking it is an integer tensor of ``shape``
    (``hint`` says what the targets are) whose values are in 0..num_classes-1 or IGNORE_INDEX.
    int32 ids are accepted, as for the inputs. ``what`` names a value ("target id", "label")
    and ``fix`` ends the message for one out of range.

    Reading the values costs a GPU sync, so (as GPT.check_input_ids does) they are read on
    the CPU, and on a GPU only outside ``training``; compiled graphs never read them."""
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() \
            or targets.is_complex() or targets.dtype == torch.bool:
        got = f"dtype {targets.dtype}" if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise TypeError(
            f"targets must be a tensor of integer ids, got {got}: use torch.tensor(ids) or "
            f".long(); for scores or probabilities take .argmax(-1) first."
        )
    if tuple(targets.shape) != shape:
        raise ValueError(f"expected targets of shape {shape}, got {tuple(targets.shape)}: {hint}")
    read_values = on_cpu(targets) or not training
    if read_values and targets.numel() and not torch.compiler.is_compiling():
        bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= num_classes))
        if bool(bad.any()):
            # cross_entropy's own "Target 45 is out of bounds" names neither cause nor fix
            raise ValueError(
                f"{what} {int(targets[bad][0])} is outside the range 0..{num_classes - 1} "
                f"({IGNORE_INDEX} marks a position to skip, not -1). {fix}"
            )
    return targets.long()


def check_mask_type(attention_mask: object) -> None:
    """Refuse an attention mask that is not a tensor (None, for no mask, passes)."""
    if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
        raise TypeError(
            f"attention_mask must be a torch.Tensor of 1s (real tokens) and 0s (padding), got "
            f"{type(attention_mask).__name__}; wrap a list with torch.tensor(mask)."
        )


def on_cpu(tensor: torch.Tensor) -> bool:
    """Is ``tensor`` on the CPU, where reading its values costs no sync?"""
    return tensor.device.type == "cpu"


class MLP(nn.Module):
    """The feed-forward part of a block: widen ×4, GELU, project back, applied to each token."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        # tanh-approximate GELU is what GPT-2 uses; matching it keeps exports exact.
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """x + attention(norm(x)), then x + mlp(norm(x)): the pre-LayerNorm residual block."""

    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_index)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, attention_mask=None, kv_cache=None, return_weights=False):
        attended, weights = self.attn(self.ln_1(x), attention_mask, kv_cache, return_weights)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class GPT(nn.Module):
    """A decoder-only Transformer language model.

    ``model(input_ids, targets=None, attention_mask=None)`` returns ``(logits, loss)``:
    logits (B, T, V) for the next token at every position, and the mean cross-entropy over
    targets that are not ``-100`` (``None`` when no targets are given).

    ``targets_only=True`` computes the output layer only at the N positions whose target
    counts and returns their logits (N, V), in reading order, with the same loss. The output
    layer scores every token of the vocabulary at every position, so where most targets are
    ignored (fine-tuning: the prompt and the padding) skipping the rest saves real time.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(
                f"GPT needs a GPTConfig, got {type(config).__name__}; "
                f"build one with GPTConfig.preset('tiny', vocab_size=...)."
            )
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
                wpe=nn.Embedding(config.block_size, config.n_embd),  # position embeddings
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output layer reuses the token embedding matrix. It saves V×C
        # parameters and works well: similar tokens get similar input and output vectors.
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # Each block adds two projections into the residual stream; scaling their init by
        # 1/sqrt(2·n_layer) keeps the stream's variance from growing with depth (GPT-2).
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # ------------------------------------------------------------------ inputs
    def check_input_ids(self, input_ids: torch.Tensor, past: int = 0) -> None:
        """Raise a readable error for input the model cannot take."""
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(
                f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}; "
                f"wrap a list with torch.tensor([ids])."
            )
        if input_ids.dim() != 2:
            raise ValueError(
                f"input_ids must have shape (batch, time), got {tuple(input_ids.shape)}; "
                f"for a single sequence use ids[None, :] (or .unsqueeze(0))."
            )
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            # Nothing to predict from: the reshapes inside attention would fail without naming it.
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}: the model needs at least one "
                f"sequence of at least one token. Check the batch is not empty; to generate "
                f"from nothing, start the prompt with one token (a newline, say)."
            )
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(
                f"input_ids must hold integer ids, got dtype {input_ids.dtype}; convert them "
                f"with input_ids.long() (token ids are whole numbers, not values to compute with)."
            )
        T = input_ids.shape[1] + past
        if T > self.config.block_size:
            raise ValueError(
                f"Sequence of {T} tokens is longer than the model's context "
                f"(block_size={self.config.block_size}). Shorten or crop the input "
                f"(e.g. input_ids[:, -{self.config.block_size}:]) or use a config with a "
                f"larger block_size."
            )
        # Checking id ranges needs the values on the host: free on the CPU, a sync on a GPU,
        # so the GPU training loop skips it, and so does torch.compile (it would split the graph).
        if torch.compiler.is_compiling():
            return
        if input_ids.numel() and (on_cpu(input_ids) or not self.training):
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(
                    f"Token id {bad} is outside the vocabulary (valid ids are 0 to "
                    f"{self.config.vocab_size - 1}). Encode with the tokenizer the model was "
                    f"built for, or set vocab_size to tokenizer.vocab_size."
                )

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        targets_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if targets_only and targets is None:
            raise ValueError("targets_only=True computes the logits where a target counts, so "
                             "it needs targets; leave it False to get every position's logits.")
        hidden, _ = self.hidden_states(input_ids, attention_mask, kv_cache)  # (B, T, C); checks the ids
        if targets is not None:
            targets = check_targets(
                targets, tuple(input_ids.shape), "targets[:, t] is the token after input_ids[:, t].",
                self.config.vocab_size, "target id",
                "Encode the targets with the model's own tokenizer, and mark skipped positions "
                "with IGNORE_INDEX.", training=self.training)
        if targets_only:
            keep = targets != IGNORE_INDEX  # (B, T); on a GPU, indexing with it waits for the GPU
            logits = self.lm_head(hidden[keep])  # (N, V): only where the loss looks
            # (an empty selection gives NaN, like a batch whose every target is ignored)
            return logits, F.cross_entropy(logits, targets[keep])
        logits = self.lm_head(hidden)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss

    def hidden_states(self, input_ids, attention_mask=None, kv_cache=None, return_weights=False):
        """The final normalised hidden states (B, T, C), plus per-layer attention weights when
        ``return_weights`` (a list of (B, H, T, T_total) tensors, else an empty list)."""
        past = kv_cache.length if kv_cache is not None else 0
        self.check_input_ids(input_ids, past)
        if kv_cache is not None:
            cfg = self.config
            kv_cache.check_fits(cfg.n_layer, input_ids.shape[0], cfg.n_head, cfg.head_dim)
        check_mask_type(attention_mask)
        if attention_mask is not None:
            B, T = input_ids.shape
            if tuple(attention_mask.shape) != (B, past + T):
                cached = f" ({past} cached + {T} new: the mask covers the cached positions too)"
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}, but input_ids "
                    f"{(B, T)} need ({B}, {past + T}){cached if past else ''}: one 1 or 0 per "
                    f"token, 1 for real tokens and 0 for padding."
                )
        positions = self.position_ids(input_ids, attention_mask, past)  # (B or 1, T)
        x = self.transformer.wte(input_ids) + self.transformer.wpe(positions)  # (B, T, C)
        x = self.transformer.drop(x)
        all_weights = []
        for block in self.transformer.h:
            x, weights = block(x, attention_mask, kv_cache, return_weights)
            if return_weights:
                all_weights.append(weights)
        if kv_cache is not None:
            kv_cache.advance(input_ids.shape[1])
        return self.transformer.ln_f(x), all_weights

    @staticmethod
    def position_ids(input_ids, attention_mask=None, past: int = 0) -> torch.Tensor:
        """Position of each token. Without a mask: past, past+1, … With a mask, positions count
        real tokens only, so a left-padded prompt starts at position 0 like an unpadded one.
        ``attention_mask`` covers cached positions too: shape (B, past + T)."""
        T = input_ids.shape[1]
        if attention_mask is None:
            return torch.arange(past, past + T, device=input_ids.device)[None]  # (1, T)
        counted = attention_mask.long().cumsum(dim=1) - 1  # (B, past + T)
        return counted[:, past:].clamp(min=0)  # (B, T)

    @torch.no_grad()
    def attention_maps(self, input_ids, attention_mask=None) -> torch.Tensor:
        """Attention weights of every layer and head: (L, B, H, T, T), via the math path.

        Computed in eval mode (dropout off), so the same input always gives the same maps;
        every submodule's mode is restored afterwards."""
        with evaluation_mode(self):
            _, weights = self.hidden_states(input_ids, attention_mask, return_weights=True)
        return torch.stack(weights)

    # ------------------------------------------------------------------- sizes
    def num_parameters(self, include_embeddings: bool = True) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        n = sum(p.numel() for p in self.parameters())  # .parameters() deduplicates ties
        if not include_embeddings:
            n -= self.transformer.wpe.weight.numel() + self.transformer.wte.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6·N for the weight matmuls plus
        12·L·T·C for attention's QKᵀ and AV (the estimate of Chowdhery et al., 2022)."""
        cfg = self.config
        T = seq_len or cfg.block_size
        N = self.num_parameters(include_embeddings=False) + cfg.vocab_size * cfg.n_embd
        return 6 * N + 12 * cfg.n_layer * T * cfg.n_embd

    # -------------------------------------------------------------- generation
    def generate(self, input_ids, max_new_tokens: int, **kwargs) -> torch.Tensor:
        """Continue ``input_ids`` (B, T) by ``max_new_tokens`` tokens; see ``sftlearn.generation``."""
        from .generation import generate

        return generate(self, input_ids, max_new_tokens, **kwargs)
