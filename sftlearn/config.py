"""``GPTConfig``: every number that fixes the shape of a GPT, with named presets.

A configuration is plain data. Two models built from equal configs have the same parameter
names and shapes, so a checkpoint records its config and refuses to load into a different one.

Presets (``GPTConfig.preset(name, **overrides)``):

========  ======  ======  ======  =======  ==========================================
name      layers  heads   width   context  for
========  ======  ======  ======  =======  ==========================================
micro     2       2       64      128      unit tests and the quickest demos
tiny      4       4       128     256      the course's CPU lessons (~0.9 M parameters)
mini      6       6       384     512      a bigger CPU run or a small GPU run
small     12      12      768     1024     GPT-2 small's shape (124 M with GPT-2's vocab)
========  ======  ======  ======  =======  ==========================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .validation import check_int

ATTENTION_PATHS = ("fused", "math")


@dataclass(frozen=True)
class GPTConfig:
    """Shape and regularisation of a decoder-only Transformer.

    ``vocab_size`` must match the tokenizer (``GPTConfig.preset("tiny", vocab_size=tok.vocab_size)``).
    ``attention`` selects the attention path: ``"fused"`` uses
    ``torch.nn.functional.scaled_dot_product_attention`` (fast kernels on GPUs); ``"math"``
    computes the softmax explicitly and is the one to read. They give the same numbers.
    """

    vocab_size: int = 512
    block_size: int = 256  # the context length: the most tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # GPT-2 uses biases in its linear layers and layer norms
    attention: str = "fused"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(f"GPTConfig.{name}", getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): each head "
                f"gets n_embd / n_head dimensions. Pick n_embd as a multiple of n_head."
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}.")
        if not isinstance(self.bias, bool):
            # any non-empty string would count as True and quietly give the model biases
            raise ValueError(f"bias must be True or False, got {self.bias!r}.")
        if self.attention not in ATTENTION_PATHS:
            raise ValueError(
                f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}."
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides) -> "GPTConfig":
        """A named configuration, with any field overridden by keyword."""
        if name not in PRESETS:
            raise ValueError(
                f"Unknown preset {name!r}. Available presets: {', '.join(PRESETS)}."
            )
        return cls.from_dict({**asdict(PRESETS[name]), **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown GPTConfig field(s) {unknown}; valid fields are {sorted(known)}."
            )
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "GPTConfig":
        """A copy with some fields changed (the config itself is immutable)."""
        return replace(self, **changes)


PRESETS: dict[str, GPTConfig] = {
    "micro": GPTConfig(vocab_size=512, block_size=128, n_layer=2, n_head=2, n_embd=64),
    "tiny": GPTConfig(vocab_size=512, block_size=256, n_layer=4, n_head=4, n_embd=128),
    "mini": GPTConfig(vocab_size=512, block_size=512, n_layer=6, n_head=6, n_embd=384),
    "small": GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768),
}
