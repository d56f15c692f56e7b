"""Tests of the chapter 07 checks (sftlearn.check.ch07): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with the package's GPT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch07
from sftlearn.model import GPT
from conftest import failure_of, stub


@pytest.mark.parametrize(
    "check",
    [ch07.check_layer_norm, ch07.check_block_forward, ch07.check_num_parameters,
     ch07.check_attention_mask, ch07.check_mask_tokens],
)
def test_a_stub_is_not_done_yet(check, capsys):
    check(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "check",
    [ch07.check_layer_norm, ch07.check_block_forward, ch07.check_num_parameters,
     ch07.check_attention_mask, ch07.check_mask_tokens],
)
def test_passing_a_value_instead_of_the_function(check):
    assert "expected a function" in failure_of(check, 42).message


# ------------------------------------------------------------------------------- layer norm


def right_layer_norm(x, weight, bias, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def test_layer_norm_right(capsys):
    ch07.check_layer_norm(right_layer_norm)
    ch07.check_layer_norm(lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], w, b, eps))
    out = capsys.readouterr().out
    assert out.count("✓ layer_norm: correct on 4 inputs") == 2


def test_layer_norm_unbiased_variance():
    def wrong(x, w, b, eps):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b

    failure = failure_of(ch07.check_layer_norm, wrong)
    assert "it uses the unbiased variance (dividing by C − 1 = 3)" in failure.message
    assert "unbiased=False" in failure.hint


def test_layer_norm_over_the_batch_axis():
    def wrong(x, w, b, eps):
        mean = x.mean(0, keepdim=True)
        var = ((x - mean) ** 2).mean(0, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * w + b

    failure = failure_of(ch07.check_layer_norm, wrong)
    # the first case is a single vector (its batch axis is its feature axis); the second fails
    assert failure.message.startswith("layer_norm on a (3, 5) batch of vectors is wrong: it normalises "
                                      "each feature over the batch (dimension 0), as batch norm does")
    assert "dim=-1" in failure.hint


def test_layer_norm_eps_outside_the_square_root():
    def wrong(x, w, b, eps):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / (torch.sqrt(var) + eps) * w + b

    failure = failure_of(ch07.check_layer_norm, wrong)
    assert failure.message.startswith("layer_norm on nearly constant vectors with eps = 0.01 is wrong: "
                                      "eps is added after the square root")


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) * w + b,
         "it uses the unbiased variance"),  # x.std() is unbiased too
        (lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], eps=eps), "`weight` and shift `bias` are not applied"),
        (lambda x, w, b, eps: (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) * w + b,
         "over every number of the tensor at once"),
        (lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / ((x - x.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True).add(eps) * w + b,
         "divides by the variance instead of by its square root"),
        (lambda x, w, b, eps: right_layer_norm(x * w + b, torch.ones_like(w), torch.zeros_like(b), eps),
         "`weight` and `bias` are applied before normalising instead of after"),
    ],
)
def test_layer_norm_other_mistakes(wrong, words):
    assert words in failure_of(ch07.check_layer_norm, wrong).message


def test_layer_norm_without_eps_is_caught_on_the_nearly_constant_vectors():
    def wrong(x, w, b, eps):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(((x - mean) ** 2).mean(-1, keepdim=True)) * w + b

    failure = failure_of(ch07.check_layer_norm, wrong)
    # the row [2, 2, 2, 2] has variance 0: 0 / 0 gives NaN, and the message says where
    assert "NaN" in failure.message or "eps is missing" in failure.message


def test_layer_norm_forgetting_to_return():
    assert "is None" in failure_of(ch07.check_layer_norm, lambda x, w, b, eps: None).message


# ---------------------------------------------------------------------------- block forward


def right_block_forward(block, x):
    x = x + block.attn(block.ln_1(x))[0]
    return x + block.mlp(block.ln_2(x))


def test_block_forward_right(capsys):
    ch07.check_block_forward(right_block_forward)
    out = capsys.readouterr().out
    assert out.count("✓ block_forward: correct on 3 blocks") == 1


@pytest.mark.parametrize("shortcut", [lambda block, x: block(x)[0], lambda block, x: block.forward(x)[0]])
def test_block_forward_that_calls_the_block_is_refused(shortcut):
    # block.forward(x) skipped the forward hook that used to watch for block(x)
    failure = failure_of(ch07.check_block_forward, shortcut)
    assert "calls the block itself" in failure.message


def test_a_refused_shortcut_leaves_the_block_as_it_was():
    block = ch07._random_block(16, 2, seed=0)
    with ch07.counting_calls(block) as calls:
        block(torch.zeros(1, 2, 16))
    assert calls == [1] and "forward" not in vars(block)  # the class's forward again


def post_ln(block, x):
    x = block.ln_1(x + block.attn(x)[0])
    return block.ln_2(x + block.mlp(x))


def no_residual(block, x):
    return block.mlp(block.ln_2(block.attn(block.ln_1(x))[0]))


def residual_from_normalised(block, x):
    h = block.ln_1(x)
    x = h + block.attn(h)[0]
    h = block.ln_2(x)
    return h + block.mlp(h)


def parallel(block, x):
    return x + block.attn(block.ln_1(x))[0] + block.mlp(block.ln_2(x))


def one_norm(block, x):
    x = x + block.attn(block.ln_1(x))[0]
    return x + block.mlp(block.ln_1(x))


def no_mlp(block, x):
    return x + block.attn(block.ln_1(x))[0]


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (post_ln, "it normalises after adding the residual, LN(x + f(x))"),
        (no_residual, "it has no residual connections"),
        (residual_from_normalised, "to the normalised input LN(x) instead of to x itself"),
        (parallel, "computes the feed-forward part from the block's input"),
        (one_norm, "it uses `ln_1` for both sub-layers"),
        (no_mlp, "it leaves out the feed-forward step"),
        (lambda block, x: x + block.mlp(block.ln_2(x)), "it leaves out the attention step"),
        (lambda block, x: (lambda h: h + block.attn(block.ln_1(h))[0])(x + block.mlp(block.ln_2(x))),
         "it runs the feed-forward step before attention"),
    ],
)
def test_block_forward_mistakes(wrong, words):
    failure = failure_of(ch07.check_block_forward, wrong)
    assert failure.message.startswith("block_forward(block, x) for x of shape (2, 5, 16) is wrong: ")
    assert words in failure.message


def test_block_forward_forgetting_that_attention_returns_a_pair():
    failure = failure_of(ch07.check_block_forward, lambda block, x: x + block.attn(block.ln_1(x)))
    assert failure.message == (
        "your function `<lambda>` raised TypeError: unsupported operand type(s) for +: 'Tensor' and "
        "'tuple' (on a block of width 16 and x of shape (2, 5, 16))."
    )
    assert "block.attn(h)[0]" in failure.hint


def test_block_forward_other_errors_name_the_input_briefly():
    def wrong(block, x):
        return block.mlp(x.transpose(1, 2))

    failure = failure_of(ch07.check_block_forward, wrong)
    assert failure.message.startswith("your function `wrong` raised RuntimeError")
    assert failure.message.endswith("(on a block of width 16 and x of shape (2, 5, 16)).")
    assert "Block(" not in failure.message


def test_block_forward_returning_a_tuple():
    failure = failure_of(ch07.check_block_forward, lambda block, x: (right_block_forward(block, x), None))
    assert failure.message == ("block_forward(block, x) for x of shape (2, 5, 16) returned a tuple of "
                               "2 items; return only the output tensor.")


# ------------------------------------------------------------------------- parameter count


def right_count(config):
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C


def count_with_block(config, ln=2, attn=3, proj=1, hidden=4):
    """The count with each part of a block written out, so that a mistake is one changed part:
    two layer norms of 2C (``ln``), c_attn making ``attn`` projections of C × C with biases,
    ``proj`` output projections, and a feed-forward layer ``hidden`` × C wide."""
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    block = (2 * ln * C + attn * (C * C + C) + proj * (C * C + C)
             + (C * hidden * C + hidden * C) + (hidden * C * C + C))
    return V * C + T * C + L * block + 2 * C


def test_the_written_out_count_is_the_right_one():
    for _, config in ch07.COUNT_CASES:
        assert count_with_block(config) == right_count(config)


def test_reference_count_matches_the_package():
    for _, config in ch07.COUNT_CASES:
        with torch.device("meta"):  # no memory is allocated, even for the 124 M model
            model = GPT(config)
        assert model.num_parameters() == ch07.reference_num_parameters(config) == right_count(config)


def test_num_parameters_right(capsys):
    ch07.check_num_parameters(right_count)
    ch07.check_num_parameters(lambda c: float(right_count(c)))
    out = capsys.readouterr().out
    assert out.count("✓ num_parameters: correct on 5 configurations") == 2
    assert "the number of heads does not change the count" in out


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (lambda c: right_count(c) + c.vocab_size * c.n_embd, "ties them to the token embedding"),
        (lambda c: right_count(c) - c.block_size * c.n_embd, "leaves out the position embeddings"),
        (lambda c: right_count(c) - 2 * c.n_embd, "leaves out the final layer norm"),
        (lambda c: c.vocab_size * c.n_embd + c.block_size * c.n_embd + 12 * c.n_layer * c.n_embd ** 2,
         "leaves out every bias and layer-norm parameter"),
        (lambda c: count_with_block(c, hidden=2), "widens to 2 × n_embd"),
        (lambda c: right_count(c) - c.n_layer * 9 * c.n_embd, "biases of the linear layers"),
        (lambda c: count_with_block(c, attn=1), "counts c_attn as one C × C projection"),
        (lambda c: count_with_block(c, attn=2), "or c_attn is counted as two projections"),
        (lambda c: count_with_block(c, proj=0), "`attn.c_proj` is missing"),
    ],
)
def test_num_parameters_mistakes(wrong, words):
    failure = failure_of(ch07.check_num_parameters, wrong)
    assert failure.message.startswith("num_parameters for the 'micro' preset is ")
    assert "but should be 141,056: " in failure.message
    assert words in failure.message


def test_num_parameters_depending_on_heads():
    failure = failure_of(ch07.check_num_parameters, lambda c: right_count(c) + (c.n_head - 4) * 10)
    assert failure.message.startswith("num_parameters for the 'micro' preset is 141,036 but should be "
                                      "141,056: your count changes with the number of heads (the same "
                                      "model with 1 head instead of 2 gives 141,026)")
    assert failure.hint == "n_head should not appear in the formula."
    failure = failure_of(ch07.check_num_parameters,
                         lambda c: right_count(c) + 10 * (c.n_head == 8))
    assert "your count changes with the number of heads" in failure.message


def test_num_parameters_other_answers():
    assert "off by +1" in failure_of(ch07.check_num_parameters, lambda c: right_count(c) + 1).message
    assert "not a whole number" in failure_of(ch07.check_num_parameters, lambda c: right_count(c) + 0.5).message
    assert "should be a whole number" in failure_of(ch07.check_num_parameters, lambda c: "many").message


# ------------------------------------------------------------------------- attention masks


def right_mask(kind, n_queries, n_keys):
    full = torch.ones(n_queries, n_keys, dtype=torch.bool)
    return full.tril() if kind == "decoder" else full


def test_attention_mask_right(capsys):
    ch07.check_attention_mask(right_mask)
    ch07.check_attention_mask(lambda k, q, n: right_mask(k, q, n).long())  # 0/1 integers pass
    out = capsys.readouterr().out
    assert out.count("✓ attention_mask: correct on 7 masks") == 2


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (lambda k, q, n: torch.ones(q, n, dtype=torch.bool).triu() if k == "decoder" else right_mask(k, q, n),
         "attention_mask('decoder', 4, 4) is wrong: it lets each position see the future"),
        (lambda k, q, n: torch.ones(q, n, dtype=torch.bool).tril(-1) if k == "decoder" else right_mask(k, q, n),
         "it hides each position from itself"),
        (lambda k, q, n: torch.ones(q, n, dtype=torch.bool),
         "attention_mask('decoder', 4, 4) is wrong: it has no causal mask"),
        (lambda k, q, n: torch.ones(q, n, dtype=torch.bool).tril(),
         "attention_mask('encoder', 3, 3) is wrong: it applies a causal mask in an encoder"),
        (lambda k, q, n: torch.ones(q, n, dtype=torch.bool).tril() if k != "encoder" else right_mask(k, q, n),
         "attention_mask('cross', 4, 6) is wrong: it applies a causal mask in cross-attention"),
        (lambda k, q, n: ~right_mask(k, q, n), "it is inverted"),
    ],
)
def test_attention_mask_mistakes(wrong, words):
    assert words in failure_of(ch07.check_attention_mask, wrong).message


def test_attention_mask_float_and_shape():
    failure = failure_of(ch07.check_attention_mask, lambda k, q, n: torch.ones(q, n).tril())
    assert "holds floating-point numbers" in failure.message
    failure = failure_of(ch07.check_attention_mask, lambda k, q, n: right_mask(k, n, q))
    assert failure.message == ("attention_mask('cross', 4, 6) has shape (6, 4) but should have shape "
                               "(4, 6). It looks transposed: the last two dimensions are swapped.")


# ------------------------------------------------------------------------------ mask_tokens


def right_mask_tokens(ids, positions, mask_id):
    inputs = ids.clone()
    inputs[positions] = mask_id
    labels = torch.full_like(ids, -100)
    labels[positions] = ids[positions]
    return inputs, labels


def test_mask_tokens_right(capsys):
    ch07.check_mask_tokens(right_mask_tokens)
    ch07.check_mask_tokens(lambda ids, pos, m: (ids.masked_fill(pos, m), ids.masked_fill(~pos, -100)))
    out = capsys.readouterr().out
    assert out.count("✓ mask_tokens: correct on 4 inputs") == 2


def test_mask_tokens_hard_coded_gpt2_id():
    def wrong(ids, positions, mask_id):
        return ids.masked_fill(positions, 50256), ids.masked_fill(~positions, -100)

    failure = failure_of(ch07.check_mask_tokens, wrong)
    assert "50256 is GPT-2's end-of-text id" in failure.message
    assert "BERT's [MASK] is 103" in failure.message
    assert "`mask_id` argument" in failure.hint


def test_mask_tokens_other_hard_coded_id():
    failure = failure_of(ch07.check_mask_tokens,
                         lambda ids, pos, m: (ids.masked_fill(pos, 103), ids.masked_fill(~pos, -100)))
    assert "the inputs hold 103 at the masked positions instead of mask_id = 292" in failure.message


@pytest.mark.parametrize(
    ("wrong", "words"),
    [
        (lambda ids, pos, m: (ids.masked_fill(pos, m), ids.clone()), "every position has a label"),
        (lambda ids, pos, m: (ids.masked_fill(pos, m), ids.masked_fill(~pos, 0)), "hold 0, but 0 is a real token id"),
        (lambda ids, pos, m: (ids.masked_fill(pos, m), ids.masked_fill(pos, m)), "the labels are the masked inputs"),
        # the labels built from the masked inputs: the mask id where a token was hidden
        (lambda ids, pos, m: (ids.masked_fill(pos, m), ids.masked_fill(pos, m).masked_fill(~pos, -100)),
         "the labels hold the mask id"),
        (lambda ids, pos, m: (ids.masked_fill(pos, m), ids.masked_fill(pos, -100)),
         "labels are given to the unmasked positions"),
        (lambda ids, pos, m: (ids.clone(), ids.masked_fill(~pos, -100)), "nothing is hidden"),
        (lambda ids, pos, m: (ids.masked_fill(~pos, m), ids.masked_fill(~pos, -100)),
         "where `positions` is False instead of where it is True"),
        (lambda ids, pos, m: ids.masked_fill(pos, m), "should return a pair (inputs, labels)"),
    ],
)
def test_mask_tokens_mistakes(wrong, words):
    assert words in failure_of(ch07.check_mask_tokens, wrong).message


def test_mask_tokens_message_names_the_tensor():
    failure = failure_of(ch07.check_mask_tokens, lambda ids, pos, m: (ids.masked_fill(pos, m), ids.clone()))
    assert failure.message.startswith(
        "mask_tokens on a sequence of 6 tokens (mask_id=292): `labels` is wrong: every position has a label")


def test_mask_tokens_changing_ids_in_place():
    def in_place(ids, positions, mask_id):
        labels = ids.masked_fill(~positions, -100)
        ids[positions] = mask_id
        return ids, labels

    failure = failure_of(ch07.check_mask_tokens, in_place)
    assert failure.message.startswith("mask_tokens changes `ids` in place")
    assert "ids.clone()" in failure.hint


def test_two_slips_adding_up_to_a_third_are_not_named_as_it():
    # without wpe and ln_f the micro preset's count equals "without attn.c_proj"; the other
    # configurations tell them apart, so no single slip is named
    def no_positions_no_final_norm(config):
        return ch07.reference_num_parameters(config) - config.block_size * config.n_embd - 2 * config.n_embd

    failure = failure_of(ch07.check_num_parameters, no_positions_no_final_norm)
    assert "c_proj" not in failure.message and "off by" in failure.message
