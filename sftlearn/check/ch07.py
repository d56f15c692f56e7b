"""Checks for chapter 07, the Transformer and GPT.

- ``check_layer_norm(fn)``: ``fn(x, weight, bias, eps)`` normalises each vector of ``x`` over
  its last dimension (biased variance, ``eps`` inside the square root), then scales and shifts;
- ``check_block_forward(fn)``: ``fn(block, x)`` runs a pre-LN block of :mod:`sftlearn.model`
  from its parts (``ln_1``, ``attn``, ``ln_2``, ``mlp``);
- ``check_num_parameters(fn)``: ``fn(config)`` counts a GPT's parameters by formula;
- ``check_attention_mask(fn)``: ``fn(kind, n_queries, n_keys)`` builds the boolean mask of
  an ``"encoder"``, a ``"decoder"`` or a ``"cross"`` attention (True = may attend);
- ``check_mask_tokens(fn)``: ``fn(ids, positions, mask_id)`` prepares a masked-language-model
  example, returning ``(inputs, labels)`` (the "spot the mistake" exercise: a common mistake
  hard-codes the mask id of a different tokenizer).

Each check computes what the usual mistakes give on the same inputs, so it can name the
mistake instead of only reporting a difference.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sftlearn.check._core import (CheckFailure, call_student, checker, compare_arrays, counting_calls,
                                  python_number, same_on_every_case, short_repr)
from sftlearn.config import GPTConfig
from sftlearn.device import seeded
from sftlearn.model import IGNORE_INDEX, Block  # IGNORE_INDEX: the label that cross-entropy skips

GPT2_END_OF_TEXT = 50256  # GPT-2's <|endoftext|> id
BERT_MASK = 103  # [MASK] in BERT's uncased English vocabulary


def _compare_exact(name: str, got: Any, expected: torch.Tensor, mistakes: dict[str, Any], hint: str) -> None:
    """Like :func:`compare_arrays` for integer and boolean values, but naming known mistakes
    first (``compare_arrays`` only looks for them among floating-point values)."""
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not got.is_floating_point():
        got_same = got.to(expected.dtype)
        for sentence, (wrong, mistake_hint) in mistakes.items():
            wrong = wrong.to(expected.dtype)
            # a "mistake" that happens to give the right answer on this input says nothing
            if not torch.equal(wrong, expected) and torch.equal(got_same, wrong):
                raise CheckFailure(f"{name} is wrong: {sentence}.", mistake_hint)
    compare_arrays(name, got, expected, hint=hint)


# ----------------------------------------------------------------------------- layer norm


def reference_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def _layer_norm_mistakes(x, weight, bias, eps) -> dict[str, Any]:
    """What the usual wrong layer norms give on these inputs (sentence -> (value, hint))."""
    mean = x.mean(-1, keepdim=True)
    centred = x - mean
    var = centred.pow(2).mean(-1, keepdim=True)
    mistakes: dict[str, Any] = {}
    if x.dim() >= 2 and x.shape[0] > 1:
        batch_mean = x.mean(0, keepdim=True)
        batch_var = (x - batch_mean).pow(2).mean(0, keepdim=True)
        mistakes[
            "it normalises each feature over the batch (dimension 0), as batch norm does; layer "
            "norm normalises each vector over its own features, the last dimension"
        ] = (
            (x - batch_mean) / torch.sqrt(batch_var + eps) * weight + bias,
            "Use `dim=-1` (with `keepdim=True`) for the mean and the variance.",
        )
    if x.shape[-1] > 1:
        unbiased = x.var(-1, keepdim=True, unbiased=True)
        mistakes[
            f"it uses the unbiased variance (dividing by C − 1 = {x.shape[-1] - 1}); layer norm "
            f"divides by C = {x.shape[-1]}, the number of features"
        ] = (
            centred / torch.sqrt(unbiased + eps) * weight + bias,
            "`x.var(dim=-1)` divides by C − 1 by default: use `x.var(dim=-1, unbiased=False)` "
            "or `((x - mean) ** 2).mean(dim=-1, keepdim=True)`.",
        )
    mistakes["eps is added after the square root; it belongs inside it: sqrt(var + eps)"] = (
        centred / (torch.sqrt(var) + eps) * weight + bias,
        "Write `(x - mean) / torch.sqrt(var + eps)`.",
    )
    mistakes["eps is missing; it belongs inside the square root: sqrt(var + eps)"] = (
        centred / torch.sqrt(var) * weight + bias,
        "eps keeps the division finite for (nearly) constant vectors: `torch.sqrt(var + eps)`.",
    )
    mistakes["it divides by the variance instead of by its square root (the standard deviation)"] = (
        centred / (var + eps) * weight + bias,
        "Divide by `torch.sqrt(var + eps)`.",
    )
    mistakes["it normalises over every number of the tensor at once instead of over each vector"] = (
        (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) * weight + bias,
        "Reduce over the last dimension only: `dim=-1, keepdim=True`.",
    )
    mistakes["the learned scale `weight` and shift `bias` are not applied"] = (
        centred / torch.sqrt(var + eps),
        "Finish with `* weight + bias`.",
    )
    mistakes["`weight` and `bias` are applied before normalising instead of after"] = (
        F.layer_norm(x * weight + bias, (x.shape[-1],), eps=eps),
        "Normalise first, then multiply by `weight` and add `bias`.",
    )
    return mistakes


def _layer_norm_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(7)
    cases = [
        ("x = [1, 2, 3, 4]", torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4), torch.zeros(4), 1e-5),
    ]
    x = torch.randn(3, 5, generator=g) * 3 + 1
    cases.append(("a (3, 5) batch of vectors", x, torch.rand(5, generator=g) + 0.5,
                  torch.randn(5, generator=g), 1e-5))
    x = torch.randn(2, 4, 6, generator=g) * 2 - 1
    cases.append(("a (2, 4, 6) batch of sequences", x, torch.rand(6, generator=g) + 0.5,
                  torch.randn(6, generator=g), 1e-5))
    # Nearly constant vectors: here eps is comparable to the variance, so where eps goes matters.
    x = torch.tensor([[1.0, 1.1, 0.9, 1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.2, -0.2, 0.1]])
    cases.append(("nearly constant vectors with eps = 0.01", x, torch.tensor([1.0, 2.0, 0.5, 1.5]),
                  torch.tensor([0.0, 0.1, -0.1, 0.2]), 1e-2))
    return cases


@checker("layer_norm")
def check_layer_norm(layer_norm: Any) -> str:
    """``layer_norm(x, weight, bias, eps)`` must equal ``torch.nn.functional.layer_norm``."""
    cases = _layer_norm_cases()
    for label, x, weight, bias, eps in cases:
        got = call_student(layer_norm, x, weight, bias, eps)
        compare_arrays(
            f"layer_norm on {label}",
            got,
            reference_layer_norm(x, weight, bias, eps),
            atol=1e-5,
            rtol=1e-4,
            mistakes=_layer_norm_mistakes(x, weight, bias, eps),
            hint="Mean and biased variance over the last dimension, (x − mean) / sqrt(var + eps), "
            "then `* weight + bias`.",
        )
    return (f"correct on {len(cases)} inputs, including a batch of sequences and nearly "
            "constant vectors.")


# ---------------------------------------------------------------------------- block forward


def _random_block(n_embd: int, n_head: int, seed: int) -> Block:
    """A package block with every weight random (layer norms too, so that where they sit
    changes the output)."""
    with seeded(seed), torch.no_grad():
        block = Block(GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_head=n_head, n_embd=n_embd))
        for name, param in block.named_parameters():
            if name.startswith("ln_") and name.endswith("weight"):
                param.copy_(torch.rand_like(param) + 0.5)
            elif name.startswith("ln_"):
                param.copy_(0.3 * torch.randn_like(param))
            else:
                param.copy_(torch.randn_like(param) / math.sqrt(param.shape[-1]))
    return block.eval()


def _block_mistakes(block: Block, x: torch.Tensor) -> dict[str, Any]:
    def attn(h):
        return block.attn(h)[0]

    mistakes: dict[str, Any] = {}
    h = block.ln_1(x + attn(x))
    mistakes[
        "it normalises after adding the residual, LN(x + f(x)) (the original Transformer's "
        "post-LN order); a GPT block normalises the input of each sub-layer and adds the "
        "result to the unnormalised x: x + f(LN(x))"
    ] = (block.ln_2(h + block.mlp(h)), "Write `x = x + block.attn(block.ln_1(x))[0]`, then the same for the MLP.")
    h = attn(block.ln_1(x))
    mistakes["it has no residual connections: each sub-layer's output must be added to its input"] = (
        block.mlp(block.ln_2(h)),
        "`x = x + ...` keeps the input and adds what the sub-layer computes.",
    )
    n1 = block.ln_1(x)
    h = n1 + attn(n1)
    n2 = block.ln_2(h)
    mistakes["it adds each sub-layer's output to the normalised input LN(x) instead of to x itself"] = (
        n2 + block.mlp(n2),
        "Keep `x` unnormalised on the residual path: `x = x + f(ln(x))`.",
    )
    mistakes[
        "it computes the feed-forward part from the block's input instead of from the output of "
        "the attention step (the two steps run one after the other)"
    ] = (
        x + attn(block.ln_1(x)) + block.mlp(block.ln_2(x)),
        "Update `x` after attention, then feed that `x` to `ln_2` and the MLP.",
    )
    h = x + attn(block.ln_1(x))
    mistakes["it leaves out the feed-forward step (`ln_2` and `mlp`)"] = (
        h, "After attention: `x = x + block.mlp(block.ln_2(x))`."
    )
    mistakes["it leaves out the attention step (`ln_1` and `attn`)"] = (
        x + block.mlp(block.ln_2(x)), "First: `x = x + block.attn(block.ln_1(x))[0]`."
    )
    mistakes["it uses `ln_1` for both sub-layers; the feed-forward step has its own norm, `ln_2`"] = (
        h + block.mlp(block.ln_1(h)), "Use `block.ln_2` before `block.mlp`."
    )
    mistakes["it runs the feed-forward step before attention; attention comes first"] = (
        (lambda m: m + attn(block.ln_1(m)))(x + block.mlp(block.ln_2(x))),
        "Attention first (`ln_1`, `attn`), then the MLP (`ln_2`, `mlp`).",
    )
    return mistakes


BLOCK_CASES = [((2, 5, 16), 2), ((1, 1, 16), 4), ((3, 7, 24), 3)]


@checker("block_forward")
def check_block_forward(block_forward: Any) -> str:
    """``block_forward(block, x)`` must give what the package's pre-LN ``Block`` gives."""
    for i, (shape, n_head) in enumerate(BLOCK_CASES):
        block = _random_block(shape[-1], n_head, seed=i)
        g = torch.Generator().manual_seed(100 + i)
        x = torch.randn(*shape, generator=g)
        name = f"block_forward(block, x) for x of shape {shape}"
        # The block must be computed from its parts, not called (`block(x)` or `block.forward(x)`).
        with torch.no_grad(), counting_calls(block) as calls:
            try:
                got = call_student(block_forward, block, x)
            except CheckFailure as failure:
                if "(on input" not in failure.message:
                    raise
                # The input's description would print the whole block: name its size instead.
                message = (failure.message.split(" (on input")[0]
                           + f" (on a block of width {shape[-1]} and x of shape {shape}).")
                hint = failure.hint
                if "tuple" in message:
                    hint = "`block.attn(h)` returns a pair (output, attention weights): use `block.attn(h)[0]`."
                raise CheckFailure(message, hint) from None
            if calls:
                raise CheckFailure(
                    f"{name} calls the block itself (`block(x)` or `block.forward(x)`), which is "
                    f"the answer the check compares with; the exercise is to compute it from the "
                    f"block's parts.",
                    hint="Use block.ln_1, block.attn, block.ln_2 and block.mlp, with the two "
                    "residual additions.",
                )
            if isinstance(got, tuple):
                raise CheckFailure(
                    f"{name} returned a tuple of {len(got)} items; return only the output tensor.",
                    hint="`block.attn(h)` returns (output, weights): take `[0]` before adding it to x.",
                )
            expected = block(x)[0]
            compare_arrays(
                name, got, expected, atol=1e-5, rtol=1e-4, mistakes=_block_mistakes(block, x),
                hint="x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).",
            )
    return (f"correct on {len(BLOCK_CASES)} blocks, including a sequence of one token; "
            "it matches sftlearn.model.Block.")


# ------------------------------------------------------------------------ parameter count


def reference_num_parameters(config: GPTConfig) -> int:
    """Parameters of ``sftlearn.model.GPT(config)`` for ``config.bias=True`` (tied output)."""
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    per_block = 12 * C * C + 13 * C
    return V * C + T * C + L * per_block + 2 * C


def _count_mistakes(config: GPTConfig) -> list[tuple[int, str, str]]:
    """(what the mistake gives, sentence, hint) for the usual slips in the formula."""
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    right = reference_num_parameters(config)
    return [
        (right + V * C,
         "it counts the output layer's V × C weights separately, but GPT ties them to the token "
         "embedding (one matrix used twice is counted once)",
         "Weight tying: `lm_head.weight` is `wte.weight`."),
        (right - T * C,
         "it leaves out the position embeddings (block_size × n_embd numbers)",
         "`wpe` has one learned vector per position of the context."),
        (right - 2 * C,
         "it leaves out the final layer norm (`ln_f`, 2 · n_embd numbers)",
         "After the last block comes one more layer norm with a weight and a bias."),
        (V * C + T * C + L * 12 * C * C,
         "it leaves out every bias and layer-norm parameter (13 · n_embd per block, plus 2 · n_embd "
         "for the final norm)",
         "Each Linear has a bias (3C, C, 4C and C numbers) and each layer norm a weight and a bias."),
        (right - L * 4 * C - 2 * C,
         "it leaves out the layer-norm parameters (two norms of 2 · n_embd per block, plus the "
         "final one)",
         "A layer norm learns a weight and a bias for each of the n_embd features."),
        (right - L * 9 * C,
         "it leaves out the biases of the linear layers (9 · n_embd per block)",
         "c_attn has 3C biases, attn.c_proj C, mlp.c_fc 4C and mlp.c_proj C."),
        # A 2C-wide feed-forward layer has (2C² + 2C) + (2C² + C) numbers, not (4C² + 4C) + (4C² + C).
        (right - L * (4 * C * C + 2 * C),
         "its feed-forward network widens to 2 × n_embd; GPT's widens to 4 × n_embd",
         "c_fc maps C to 4C numbers and c_proj maps them back: 8C² weights and 5C biases."),
        (right - L * (2 * C * C + 2 * C),
         "it counts c_attn as one C × C projection (C² + C), but it makes the query, the key and "
         "the value at once (3C² + 3C)",
         "`c_attn` has 3C outputs: query, key and value."),
        # Leaving out attn.c_proj (C² + C) and counting c_attn as two projections (2C² + 2C
        # instead of 3C² + 3C) give the same total: the sentence names both.
        (right - L * (C * C + C),
         "it is short by C² + C per block, one C × C linear layer with its bias: either "
         "attention's output projection `attn.c_proj` is missing, or c_attn is counted as two "
         "projections (query and key) instead of three",
         "After the heads are joined, one more C × C layer (attn.c_proj) mixes them; c_attn has "
         "3C outputs: query, key and value."),
    ]


COUNT_CASES = [
    ("the 'micro' preset", GPTConfig.preset("micro")),
    ("the 'tiny' preset", GPTConfig.preset("tiny")),
    ("the 'small' preset", GPTConfig.preset("small")),
    ("the 'tiny' preset with 8 heads", GPTConfig.preset("tiny", n_head=8)),
    ("vocab 50257, 2 layers, width 96", GPTConfig(vocab_size=50257, block_size=64, n_layer=2,
                                                   n_head=3, n_embd=96)),
]


def _count_with_other_heads(num_parameters: Any, config: GPTConfig, got: int) -> tuple[int, int] | None:
    """(heads, count) for the first other head count that changes the student's answer, if any."""
    for heads in (1, 2, 4, 8):
        if heads == config.n_head or config.n_embd % heads:
            continue
        try:
            count = python_number(call_student(num_parameters, config.with_(n_head=heads)))
        except CheckFailure:
            continue  # a failure on a model the exercise never asked about is not the point here
        if isinstance(count, (int, float)) and not isinstance(count, bool) and count != got:
            return heads, int(count)
    return None


@checker("num_parameters")
def check_num_parameters(num_parameters: Any) -> str:
    """``num_parameters(config)`` must equal ``GPT(config).num_parameters()``."""
    for label, config in COUNT_CASES:
        got = call_student(num_parameters, config)
        expected = reference_num_parameters(config)
        name = f"num_parameters for {label}"
        got = python_number(got)  # NumPy and one-element tensor counts are counts too
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise CheckFailure(f"{name} should be a whole number, but it is {short_repr(got)}.",
                               hint="Return the count, e.g. `return V * C + ...`.")
        if isinstance(got, float) and not got.is_integer():
            raise CheckFailure(f"{name} is {got}, which is not a whole number.",
                               hint="A count of parameters is an int; use `*` and `//`, not `/`.")
        got = int(got)
        if got == expected:
            continue
        for index, (wrong, sentence, hint) in enumerate(_count_mistakes(config)):
            if got == wrong and same_on_every_case(
                    [c for _, c in COUNT_CASES],
                    lambda c: python_number(call_student(num_parameters, c)),
                    lambda c, i=index: _count_mistakes(c)[i][0]):
                raise CheckFailure(f"{name} is {got:,} but should be {expected:,}: {sentence}.", hint)
        other_heads = _count_with_other_heads(num_parameters, config, got)
        if other_heads is not None:
            heads, count = other_heads
            raise CheckFailure(
                f"{name} is {got:,} but should be {expected:,}: your count changes with the number "
                f"of heads (the same model with {heads} head{'s' * (heads > 1)} instead of {config.n_head} gives "
                f"{count:,}). Heads split the n_embd features among themselves; they add no "
                "parameters.",
                hint="n_head should not appear in the formula.",
            )
        raise CheckFailure(
            f"{name} is {got:,} but should be {expected:,} (off by {got - expected:+,}).",
            hint="Add up wte (V·C), wpe (T·C), L blocks of 12C² + 13C, and ln_f (2C); "
            "the output layer is tied to wte.",
        )
    return (f"correct on {len(COUNT_CASES)} configurations, from 'micro' to the 124 M 'small'; "
            "note that the number of heads does not change the count.")


# ------------------------------------------------------------------------- attention masks

MASK_KINDS = ("encoder", "decoder", "cross")


def reference_attention_mask(kind: str, n_queries: int, n_keys: int) -> torch.Tensor:
    if kind == "decoder":
        return torch.ones(n_queries, n_keys, dtype=torch.bool).tril()
    return torch.ones(n_queries, n_keys, dtype=torch.bool)


MASK_CASES = [("decoder", 4, 4), ("encoder", 3, 3), ("cross", 4, 6), ("decoder", 1, 1),
              ("cross", 1, 5), ("encoder", 5, 5), ("decoder", 6, 6)]


def _mask_mistakes(kind: str, n_queries: int, n_keys: int) -> dict[str, Any]:
    full = torch.ones(n_queries, n_keys, dtype=torch.bool)
    causal = full.tril()
    right = reference_attention_mask(kind, n_queries, n_keys)
    mistakes: dict[str, Any] = {}
    if kind == "decoder":
        mistakes["it lets each position see the future (an upper triangle); a decoder position "
                 "may attend to itself and the positions before it, the lower triangle"] = (
            full.triu(), "`torch.ones(n, n, dtype=torch.bool).tril()`.")
        mistakes["it hides each position from itself: the diagonal must be True (the first "
                 "position would have nothing at all to attend to)"] = (
            full.tril(-1), "`.tril()` keeps the diagonal; `.tril(-1)` removes it.")
        mistakes["it has no causal mask: in a decoder, a position must not see later positions"] = (
            full, "Keep the lower triangle: `.tril()`.")
    else:
        where = "cross-attention" if kind == "cross" else "an encoder"
        why = ("every decoder position may look at every encoder position, because the whole "
               "input is known" if kind == "cross" else "an encoder is bidirectional: every "
               "position sees every other")
        mistakes[f"it applies a causal mask in {where}; {why}"] = (
            causal, "Only the decoder's self-attention is causal: here everything is True.")
    mistakes["it is inverted: True should mean 'may attend', False 'blocked'"] = (
        ~right, "Use `~mask` to flip a boolean mask, or build it the other way round.")
    return mistakes


@checker("attention_mask")
def check_attention_mask(attention_mask: Any) -> str:
    """``attention_mask(kind, n_queries, n_keys)``: a (n_queries, n_keys) boolean mask."""
    for kind, n_q, n_k in MASK_CASES:
        got = call_student(attention_mask, kind, n_q, n_k)
        name = f"attention_mask({kind!r}, {n_q}, {n_k})"
        if isinstance(got, torch.Tensor) and got.is_floating_point():
            raise CheckFailure(
                f"{name} holds floating-point numbers ({got.dtype}); it should be a boolean mask "
                "(True = may attend).",
                hint="Create it with `dtype=torch.bool`, or compare: `torch.ones(n, n).tril() == 1`.",
            )
        _compare_exact(
            name, got, reference_attention_mask(kind, n_q, n_k), _mask_mistakes(kind, n_q, n_k),
            hint="True where a query may look at a key; only a decoder's self-attention is causal.",
        )
    return (f"correct on {len(MASK_CASES)} masks: encoder, decoder and cross-attention, "
            "including a single query.")


# ------------------------------------------------------------------------------ mask_tokens


def reference_mask_tokens(ids: torch.Tensor, positions: torch.Tensor,
                          mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = ids.masked_fill(positions, mask_id)
    labels = ids.masked_fill(~positions, IGNORE_INDEX)
    return inputs, labels


def _mask_token_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(3)
    ids = torch.tensor([12, 40, 7, 99, 5, 61])
    positions = torch.tensor([False, True, False, False, True, False])
    cases = [("a sequence of 6 tokens", ids, positions, 292)]
    ids = torch.randint(7, 280, (3, 8), generator=g)
    positions = torch.rand(3, 8, generator=g) < 0.3
    positions[0, 0] = True
    cases.append(("a (3, 8) batch", ids, positions, 9))
    ids = torch.randint(7, 280, (2, 5), generator=g)
    cases.append(("a batch with no masked position", ids, torch.zeros(2, 5, dtype=torch.bool), 292))
    ids = torch.randint(7, 280, (4,), generator=g)
    cases.append(("a sequence with every position masked", ids, torch.ones(4, dtype=torch.bool), 500))
    return cases


@checker("mask_tokens")
def check_mask_tokens(mask_tokens: Any) -> str:
    """``mask_tokens(ids, positions, mask_id)`` -> ``(inputs, labels)`` for masked-LM training."""
    cases = _mask_token_cases()
    for label, ids, positions, mask_id in cases:
        got = call_student(mask_tokens, ids, positions, mask_id)
        name = f"mask_tokens on {label} (mask_id={mask_id})"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailure(f"{name} should return a pair (inputs, labels), but returned {short_repr(got)}.",
                               hint="`return inputs, labels`.")
        inputs, labels = got
        want_inputs, want_labels = reference_mask_tokens(ids, positions, mask_id)
        _check_masked_inputs(name, inputs, ids, positions, mask_id, want_inputs)
        _check_labels(name, labels, ids, positions, mask_id, want_labels)
        _check_unchanged(mask_tokens, ids, positions, mask_id)
    return (f"correct on {len(cases)} inputs, including a batch with nothing masked "
            "and one with everything masked.")


def _check_masked_inputs(name, inputs, ids, positions, mask_id, expected) -> None:
    if isinstance(inputs, torch.Tensor) and inputs.shape == ids.shape and positions.any():
        at_masked = inputs[positions]
        if bool((at_masked == GPT2_END_OF_TEXT).all()) and mask_id != GPT2_END_OF_TEXT:
            raise CheckFailure(
                f"{name}: the inputs hold 50256 at the masked positions instead of mask_id = {mask_id}. "
                "50256 is GPT-2's end-of-text id; a model with another tokenizer has a different "
                f"mask token (BERT's [MASK] is {BERT_MASK}, and its vocabulary has only 30,522 ids).",
                hint="Use the `mask_id` argument: it comes from the tokenizer the model was trained with.",
            )
        constant = at_masked.flatten()[0].item()
        unchanged = bool((at_masked == ids[positions]).all())
        if bool((at_masked == constant).all()) and constant != mask_id and not unchanged:
            raise CheckFailure(
                f"{name}: the inputs hold {constant} at the masked positions instead of mask_id = {mask_id}.",
                hint="Never hard-code a special token's id: use the `mask_id` argument.",
            )
    _compare_exact(
        f"{name}: `inputs`", inputs, expected,
        {
            "nothing is hidden: the masked positions still show the original tokens": (
                ids, "Put `mask_id` where `positions` is True: `ids.masked_fill(positions, mask_id)`."),
            "it masks the positions where `positions` is False instead of where it is True": (
                ids.masked_fill(~positions, mask_id), "`positions` is True where a token is hidden."),
        },
        hint="inputs = ids, with mask_id where positions is True.",
    )


def _check_labels(name, labels, ids, positions, mask_id, expected) -> None:
    _compare_exact(
        f"{name}: `labels`", labels, expected,
        {
            "every position has a label; only the masked positions should, the others must be "
            "-100 so that the loss ignores them (otherwise the model is also trained to copy the "
            "tokens it can see)": (ids, "`ids.masked_fill(~positions, -100)`."),
            "the positions without a label hold 0, but 0 is a real token id (<|pad|>); the value "
            "cross-entropy ignores is -100": (ids.masked_fill(~positions, 0), "Use -100, not 0."),
            "the labels hold the mask id; the label of a masked position is the original token "
            "that was hidden": (torch.full_like(ids, mask_id).masked_fill(~positions, IGNORE_INDEX),
                                "Take the labels from the original `ids`."),
            "the labels are the masked inputs; the label of a masked position is the original "
            "token that was hidden, and unmasked positions get -100": (
                ids.masked_fill(positions, mask_id), "Labels come from `ids`, the inputs from the masking."),
            "labels are given to the unmasked positions instead of the masked ones": (
                ids.masked_fill(positions, IGNORE_INDEX), "Keep `ids` where `positions` is True, -100 elsewhere."),
        },
        hint="labels = ids where positions is True, -100 elsewhere.",
    )


def _check_unchanged(mask_tokens: Callable, ids: torch.Tensor, positions: torch.Tensor, mask_id: int) -> None:
    """The caller's ``ids`` must survive: they are the labels of the masked positions."""
    mine = ids.clone()

    @functools.wraps(mask_tokens)
    def run():
        return mask_tokens(mine, positions.clone(), mask_id)

    call_student(run)
    if not torch.equal(mine, ids):
        raise CheckFailure(
            "mask_tokens changes `ids` in place: after the call, the caller's tensor holds the mask id, "
            "so the original tokens (the labels) are lost.",
            hint="Work on a copy: `inputs = ids.clone()` (or `ids.masked_fill(...)`, which returns a new tensor).",
        )
