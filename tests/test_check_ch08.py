"""Tests of the chapter 08 checks (sftlearn.check.ch08): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with the package."""

from __future__ import annotations

import math

import pytest
import torch

from sftlearn.check import ch08
from sftlearn.datasets import LMBlockDataset
from sftlearn.generation import filter_logits

from conftest import failure_of, stub


# ------------------------------------------------------------------ the references themselves


def test_reference_block_is_the_datasets_block():
    ids = ch08.CORPUS_IDS
    data = LMBlockDataset(ids, 4)
    x, y = ch08.reference_lm_block(ids, 4, 4)
    assert torch.equal(x, data[1]["input_ids"]) and torch.equal(y, data[1]["targets"])


def test_reference_filters_on_worked_numbers():
    z = torch.tensor([2.0, 0.2, 1.0, -0.5, 0.6])
    assert torch.isfinite(ch08.reference_top_p_filter(z, 0.7)).tolist() == [True, False, True, False, False]
    assert torch.isfinite(ch08.reference_top_p_filter(z, 0.3)).tolist() == [True, False, False, False, False]
    assert torch.isfinite(ch08.reference_top_k_filter(z, 2)).tolist() == [True, False, True, False, False]
    probs = ch08.reference_temperature_probs(z, 0.5)
    assert torch.allclose(probs, torch.softmax(2 * z, -1))


def test_reference_perplexity_weights_by_tokens():
    value = ch08.reference_heldout_perplexity([1.0, 3.0], [300, 100])
    assert value == pytest.approx(math.exp(1.5))


# -------------------------------------------------------------------------------- lm_block


def right_block(ids, start, block_size):
    if start + block_size + 1 > len(ids):
        raise ValueError(f"the block needs {start + block_size + 1} tokens, ids has {len(ids)}")
    return ids[start : start + block_size], ids[start + 1 : start + block_size + 1]


def test_block_right(capsys):
    ch08.check_lm_block(right_block)
    assert "✓ lm_block: correct on 5 blocks" in capsys.readouterr().out


def test_block_stub(capsys):
    ch08.check_lm_block(stub)
    assert "lm_block: not done yet" in capsys.readouterr().out


def _unchecked(fn):
    """Wrap a block function so that it never raises for blocks past the end."""
    return lambda ids, s, T: fn(ids, s, T)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda ids, s, T: (ids[s : s + T], ids[s : s + T]), "not shifted by one"),
        (lambda ids, s, T: (ids[s : s + T], ids[s - 1 : s + T - 1] if s else ids[s + 1 : s + T + 1]),
         "shifted the wrong way"),
        (lambda ids, s, T: (ids[s + 1 : s + T + 1], ids[s : s + T]), "inputs and targets are swapped"),
        (lambda ids, s, T: (ids[s : s + T + 1], ids[s + 1 : s + T + 2]), "one too many"),
        (lambda ids, s, T: (ids[s : s + T], ids[s + 1 : s + T]), "should have shape (4,)"),
        (lambda ids, s, T: ids[s : s + T], "should return two tensors"),
        (lambda ids, s, T: (ids[s : s + T], ids[s + 1 : s + T + 1]), "Python slicing never complains"),
    ],
)
def test_block_wrong_answers(answer, words):
    assert words in str(failure_of(ch08.check_lm_block, answer))


def test_block_error_kinds():
    def index_error(ids, s, T):
        if s + T + 1 > len(ids):
            raise IndexError("too far")
        return right_block(ids, s, T)

    def silent_value_error(ids, s, T):
        if s + T + 1 > len(ids):
            raise ValueError()
        return right_block(ids, s, T)

    failure = failure_of(ch08.check_lm_block, index_error)
    assert "raised IndexError, but a block that does not fit should raise ValueError" in failure.message
    assert "with no message" in failure_of(ch08.check_lm_block, silent_value_error).message
    failure = failure_of(ch08.check_lm_block, lambda ids, s, T: (ids[s : s + T], ids[s + 1 : s + T + 1]))
    assert failure.message.startswith("lm_block(ids, start=10, block_size=4) with len(ids) = 14 returned "
                                      "a block (inputs of length 4, targets of length 3)")


# ------------------------------------------------------------------------ temperature_probs


def right_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def test_temperature_right(capsys):
    ch08.check_temperature_probs(right_temperature)
    # p ** (1/τ), renormalised, is the same distribution (and exact here): also right.
    ch08.check_temperature_probs(lambda z, t: torch.softmax(z.double(), -1).pow(1 / t)
                                 / torch.softmax(z.double(), -1).pow(1 / t).sum(-1, keepdim=True))
    assert capsys.readouterr().out.count("✓ temperature_probs: correct on 6 inputs") == 2


def test_temperature_stub(capsys):
    ch08.check_temperature_probs(stub)
    assert "temperature_probs: not done yet" in capsys.readouterr().out


def after_softmax(logits, temperature):  # the exercise's buggy version
    probs = torch.softmax(logits, dim=-1) / temperature
    return probs / probs.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (after_softmax, "the temperature has no effect"),
        (lambda z, t: torch.softmax(z, -1) / t, "divided by τ after the softmax and not renormalised"),
        (lambda z, t: torch.softmax(z * t, -1), "multiplied by τ instead of divided"),
        (lambda z, t: torch.exp(z / t) / torch.exp(z / t).sum(-1, keepdim=True), "contains NaN"),
        (lambda z, t: torch.softmax(z / t, 0), "normalises each column instead of each row"),
        (lambda z, t: z / t, "probabilities are never negative"),
        (lambda z, t: None, "is None"),
    ],
)
def test_temperature_wrong_answers(answer, words):
    assert words in failure_of(ch08.check_temperature_probs, answer).message


def test_temperature_message_for_the_buggy_version():
    failure = failure_of(ch08.check_temperature_probs, after_softmax)
    assert failure.message.startswith("temperature_probs for the same logits at τ = 0.5 (sharper) is wrong: "
                                      "the temperature has no effect")
    assert failure.hint == "Apply the temperature to the logits, before the softmax: softmax(logits / τ)."


# ----------------------------------------------------------------------------- top_k_filter


def right_top_k(logits, k):
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def test_top_k_right(capsys):
    ch08.check_top_k_filter(right_top_k)
    assert "✓ top_k_filter: correct on 5 inputs" in capsys.readouterr().out


def test_top_k_stub(capsys):
    ch08.check_top_k_filter(stub)
    assert "top_k_filter: not done yet" in capsys.readouterr().out


def _kth(logits, k):
    return torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda z, k: z.masked_fill(z < _kth(z, k), 0.0), "sets the dropped logits to 0"),
        (lambda z, k: torch.softmax(right_top_k(z, k), -1), "returns probabilities"),
        (lambda z, k: z.masked_fill(z <= _kth(z, k), float("-inf")), "one too few"),
        (lambda z, k: z.masked_fill(z < _kth(z, k + 1), float("-inf")) if k < z.shape[-1] else z,
         "one too many"),
        (lambda z, k: z.masked_fill(z > -_kth(-z, k), float("-inf")), "keeps the k *smallest* logits"),
        (lambda z, k: z.masked_fill(z < torch.topk(z.flatten(), min(k, z.numel())).values[-1], float("-inf")),
         "not 2 in each row"),
        (lambda z, k: right_top_k(z, k)[..., :k], "should have shape"),
        (lambda z, k: z.masked_fill(z < torch.topk(z, k, dim=-1).values[..., -1:], float("-inf")),
         "raised RuntimeError"),
    ],
)
def test_top_k_wrong_answers(answer, words):
    assert words in failure_of(ch08.check_top_k_filter, answer).message


# ----------------------------------------------------------------------------- top_p_filter


def right_top_p(logits, p):
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True, dim=-1)
    before = sorted_probs.cumsum(-1) - sorted_probs       # mass of the tokens ahead of each one
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def test_top_p_right(capsys):
    ch08.check_top_p_filter(right_top_p)
    ch08.check_top_p_filter(lambda z, p: filter_logits(z.reshape(-1, z.shape[-1]), top_p=p).reshape(z.shape))
    assert capsys.readouterr().out.count("✓ top_p_filter: correct on 5 inputs") == 2


def test_top_p_stub(capsys):
    ch08.check_top_p_filter(stub)
    assert "top_p_filter: not done yet" in capsys.readouterr().out


def crossing_dropped(logits, p):  # keeps only tokens whose running total stays ≤ p
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True, dim=-1)
    drop_sorted = sorted_probs.cumsum(-1) > p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def crossing_dropped_keep_top(logits, p):  # the same, but it never drops the top token
    out = crossing_dropped(logits, p)
    top = logits.argmax(-1, keepdim=True)
    return out.scatter(-1, top, logits.gather(-1, top))


def unsorted(logits, p):
    probs = torch.softmax(logits, dim=-1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (crossing_dropped_keep_top, "it drops the token that crosses p"),
        (unsorted, "running total is taken in vocabulary order"),
        (lambda z, p: torch.where(torch.isinf(right_top_p(z, p)), 0.0, z), "sets the dropped logits to 0"),
        (lambda z, p: torch.softmax(right_top_p(z, p), -1), "returns probabilities"),
        (lambda z, p: right_top_p(z, p) * (1.01 if p == 0.9 else 1.0), "off by a constant factor"),
    ],
)
def test_top_p_wrong_answers(answer, words):
    assert words in failure_of(ch08.check_top_p_filter, answer).message


def test_top_p_that_drops_everything():
    failure = failure_of(ch08.check_top_p_filter, crossing_dropped)
    # p = 0.7 keeps one token where two are needed; p = 0.3 then leaves nothing at all.
    assert failure.message.startswith("top_p_filter for logits [2, 0.2, 1, -0.5, 0.6] with p = 0.7 is wrong: "
                                      "it drops the token that crosses p")
    failure = failure_of(ch08.check_top_p_filter,
                         lambda z, p: crossing_dropped(z, p) if p < 0.5 else right_top_p(z, p))
    assert "drops every token, so there is nothing left to sample" in failure.message
    assert "always kept" in failure.hint


# ----------------------------------------------------------------------- heldout_perplexity


def right_perplexity(batch_losses, batch_tokens):
    total = sum(loss * n for loss, n in zip(batch_losses, batch_tokens))
    return math.exp(total / sum(batch_tokens))


def test_perplexity_right(capsys):
    ch08.check_heldout_perplexity(right_perplexity)
    ch08.check_heldout_perplexity(lambda l, n: torch.exp((torch.tensor(l) * torch.tensor(n, dtype=torch.float))
                                                         .sum() / sum(n)))
    assert capsys.readouterr().out.count("✓ heldout_perplexity: correct on 4 sets of batches") == 2


def test_perplexity_stub(capsys):
    ch08.check_heldout_perplexity(stub)
    assert "heldout_perplexity: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda l, n: math.exp(sum(l) / len(l)), "as if every batch had the same number of tokens"),
        (lambda l, n: sum(math.exp(x) * m for x, m in zip(l, n)) / sum(n), "averages the perplexities"),
        (lambda l, n: math.log(right_perplexity(l, n)), "it is the mean loss, not the perplexity"),
        (lambda l, n: math.exp(sum(x * m for x, m in zip(l, n))), "overflowed"),
        (lambda l, n: float(torch.exp(torch.tensor(sum(x * m for x, m in zip(l, n))))),
         "exp of the total loss summed over tokens"),
        (lambda l, n: 2 ** math.log(right_perplexity(l, n)), "it uses base 2"),
        (lambda l, n: [right_perplexity(l, n)] * 2, "should be a number"),
    ],
)
def test_perplexity_wrong_answers(answer, words):
    assert words in failure_of(ch08.check_heldout_perplexity, answer).message


def test_perplexity_message_names_the_numbers():
    failure = failure_of(ch08.check_heldout_perplexity, lambda l, n: math.exp(sum(l) / len(l)))
    assert failure.message.startswith(
        "heldout_perplexity for three full batches and a short last one (losses [1.2, 1.05, 1.1, 2.4], "
        "tokens [4096, 4096, 4096, 512]) is 4.21016, but should be 3.21556: it averages the batch losses")
    assert "Weight each batch's mean loss by its number of tokens" in failure.hint


def test_top_p_mask_left_in_sorted_order_and_a_wrong_kept_set_are_named():
    def sorted_order(z, p):
        probs = torch.softmax(z, -1)
        sorted_p, _ = torch.sort(probs, descending=True, dim=-1)
        return z.masked_fill(sorted_p.cumsum(-1) - sorted_p >= p, float("-inf"))

    assert "applied to the logits in vocabulary order" in failure_of(
        ch08.check_top_p_filter, sorted_order).message

    def ascending(z, p):  # adds up from the least likely: drops nothing here
        probs = torch.softmax(z, -1)
        sorted_p, order = torch.sort(probs, dim=-1)
        drop = torch.zeros_like(sorted_p, dtype=torch.bool).scatter(
            -1, order, sorted_p.cumsum(-1) - sorted_p >= p)
        return z.masked_fill(drop, float("-inf"))

    assert "keeps the tokens at positions [0, 1, 2, 3, 4], but should keep [0, 2]" in failure_of(
        ch08.check_top_p_filter, ascending).message


def test_temperature_with_one_maximum_for_the_whole_batch_is_named():
    def batch_max(z, tau):
        s = z / tau
        e = (s - s.max()).exp()
        return e / e.sum(-1, keepdim=True)

    assert "one maximum was subtracted for the whole batch" in failure_of(
        ch08.check_temperature_probs, batch_max).message


def _summed_over_batches(batch_losses, batch_tokens):
    return sum(loss * n for loss, n in zip(batch_losses, batch_tokens)) / len(batch_losses)


@pytest.mark.parametrize("exp", [math.exp, lambda x: float(torch.exp(torch.tensor(x)))],
                         ids=["math.exp overflows", "torch.exp gives inf"])
def test_perplexity_divided_by_the_number_of_batches_is_named(exp):
    # exp(thousands / 4) overflows like exp of the undivided total: the check tells the two apart
    # on small batches, where neither overflows
    failure = failure_of(ch08.check_heldout_perplexity, lambda l, n: exp(_summed_over_batches(l, n)))
    assert "divides the summed loss by the number of batches instead of the number of tokens" in failure.message
    assert "Σ n_b" in failure.hint
    total = failure_of(ch08.check_heldout_perplexity,
                       lambda l, n: exp(sum(loss * m for loss, m in zip(l, n))))
    assert "exp of the total loss summed over tokens" in total.message


def test_perplexity_that_overflows_in_between_is_told_so():
    def product_of_exps(batch_losses, batch_tokens):  # right, but e^(Σ loss·n) is computed first
        product = torch.tensor(1.0)
        for loss, n in zip(batch_losses, batch_tokens):
            product = product * torch.exp(torch.tensor(loss * n))
        return float(product ** (1 / sum(batch_tokens)))

    failure = failure_of(ch08.check_heldout_perplexity, product_of_exps)
    assert "is inf, but should be 3.21556: a number in between is too large for a float" in failure.message
