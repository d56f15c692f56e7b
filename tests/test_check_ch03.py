"""Tests of the chapter 03 checks (sftlearn.check.ch03): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with sftlearn.attention and with
torch.nn.functional.scaled_dot_product_attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.attention import CausalSelfAttention
from sftlearn.check import ch03
from sftlearn.config import GPTConfig
from conftest import failure_of, stub


# ------------------------------------------------------------- the references are the package's


@pytest.mark.parametrize("path", ["math", "fused"])
def test_reference_self_attention_matches_the_package(path):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_head=4, n_embd=32, attention=path)
    attn = CausalSelfAttention(config).eval()
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        torch.testing.assert_close(ch03.reference_causal_self_attention(x, attn), attn(x)[0],
                                   atol=1e-5, rtol=1e-4)


def test_reference_attention_matches_torch_sdpa():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 4)
    mask = torch.rand(5, 6) > 0.3
    mask[:, 0] = True  # every query may see at least one key
    out, weights = ch03.reference_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
    out, _ = ch03.reference_attention(q, k, v, ch03.reference_causal_mask(5))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_reference_softmax_is_torchs_and_stable():
    x = torch.randn(4, 6) * 5
    torch.testing.assert_close(ch03.reference_softmax(x), torch.softmax(x, dim=-1))
    big = ch03.reference_softmax(torch.tensor([1000.0, 1000.0]))
    torch.testing.assert_close(big, torch.tensor([0.5, 0.5]))


def test_split_and_merge_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = ch03.reference_split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])  # head 1 holds channels 4..7
    torch.testing.assert_close(ch03.reference_merge_heads(heads), x)


def test_worked_example_weight():
    assert ch03.WEIGHT_V2_FOR_V1 == pytest.approx(0.1192, abs=1e-4)
    X = torch.tensor([ch03.V1, ch03.V2])
    assert torch.softmax(X @ X.T, dim=-1)[0, 1].item() == pytest.approx(ch03.WEIGHT_V2_FOR_V1)


# ----------------------------------------------------------------------------------- softmax


def softmax_right(s):
    e = (s - s.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(dim=-1, keepdim=True)


def test_softmax_right(capsys):
    ch03.check_softmax(softmax_right)
    ch03.check_softmax(lambda s: torch.softmax(s, dim=-1))
    out = capsys.readouterr().out
    assert out.count("✓ softmax: correct on 6 inputs") == 2


def test_softmax_stub(capsys):
    ch03.check_softmax(stub)
    assert "softmax: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda s: s.exp() / s.exp().sum(dim=-1, keepdim=True), "contains NaN or inf: exp(1000)"),
        (lambda s: s.exp(), "it is not normalised: these are exp(scores)"),
        (lambda s: s / s.sum(dim=-1, keepdim=True), "it divides the scores by their sum, without exp()"),
        (lambda s: torch.softmax(s, dim=0), "sums to 1 along dimension 0 instead of dimension 1"),
        (lambda s: torch.softmax(s, dim=-1).tolist() and None, "is None"),
        (lambda s: (s - s.max()).exp() / (s - s.max()).exp().sum(dim=-1, keepdim=True),
         "it subtracts one maximum, of the whole tensor, from every row"),
    ],
)
def test_softmax_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_softmax, answer).message


def test_softmax_in_float64_is_judged_like_float32():
    # The student's float64 tensor was compared with a float32 one: a RuntimeError, not a message.
    def float64_without_max(s):
        e = s.double().exp()
        return e / e.sum(dim=-1, keepdim=True)

    def float64_one_max(s):
        e = (s.double() - s.max()).exp()
        return e / e.sum(dim=-1, keepdim=True)

    assert "exp(1000) is too large for a float" in failure_of(ch03.check_softmax, float64_without_max).message
    assert "it subtracts one maximum, of the whole tensor" in failure_of(ch03.check_softmax, float64_one_max).message


def test_softmax_messages_have_hints():
    failure = failure_of(ch03.check_softmax, lambda s: s.exp() / s.exp().sum(dim=-1, keepdim=True))
    assert "Subtract each row's own maximum" in failure.hint
    failure = failure_of(ch03.check_softmax, lambda s: (s - s.max()).exp() / (s - s.max()).exp().sum(-1, keepdim=True))
    assert "`scores.max(dim=-1, keepdim=True).values`" in failure.hint
    failure = failure_of(ch03.check_softmax, lambda s: torch.softmax(s, dim=0))
    assert failure.message == ("softmax(a tensor of shape (3, 5)) sums to 1 along dimension 0 instead "
                               "of dimension 1.")


# ------------------------------------------------------------------ spot the mistake: own score


def weights_right(X):
    return torch.softmax(X @ X.T, dim=-1)


def weights_own_score_as_one(X):
    """The exercise's `weight_buggy`, filled in for every (i, j): 1 (= e^0) stands in the
    denominator where e^(x_i·x_i) belongs; the numerator is e^(s_ij) for every j, j = i too."""
    scores = X @ X.T
    T = len(X)
    out = torch.empty(T, T)
    for i in range(T):
        others = sum(math.exp(scores[i, k]) for k in range(T) if k != i)
        for j in range(T):
            out[i, j] = math.exp(scores[i, j]) / (1 + others)
    return out


def weights_own_score_zeroed(X):
    """Another slip: the diagonal of the scores set to 0 before the softmax."""
    scores = X @ X.T
    scores.fill_diagonal_(0.0)
    return torch.softmax(scores, dim=-1)


def test_self_attention_weights_right(capsys):
    ch03.check_self_attention_weights(weights_right)
    out = capsys.readouterr().out
    assert out.startswith("✓ self_attention_weights: correct on 5 inputs")
    assert "1/(1 + e²) ≈ 0.119" in out


def test_self_attention_weights_stub(capsys):
    ch03.check_self_attention_weights(stub)
    assert "self_attention_weights: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (weights_own_score_as_one, "the score of each token with itself is left out of the denominator"),
        (weights_own_score_zeroed, "each token's score with itself is replaced by 0 before the softmax"),
        (lambda X: torch.softmax((X @ X.T).fill_diagonal_(float("-inf")), dim=-1),
         "each token is not allowed to look at itself at all"),
        (lambda X: torch.softmax(X @ X.T / math.sqrt(X.shape[-1]), dim=-1), "the scores are divided by √d"),
        (lambda X: torch.softmax(X @ X.T, dim=0), "sums to 1 along dimension 0 instead of dimension 1"),
        (lambda X: (X @ X.T).exp(), "should sum to 1 along dimension 1"),
        (lambda X: torch.softmax(X.T @ X, dim=-1), "has shape (3, 3) but should have shape (2, 2)"),
    ],
)
def test_self_attention_weights_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_self_attention_weights, answer).message


def test_own_score_mistake_gives_one_half_and_the_hint_says_why():
    X = torch.tensor([ch03.V1, ch03.V2])
    assert weights_own_score_as_one(X)[0, 1].item() == pytest.approx(0.5)
    # as the exercise's question (a) says, token 1's two weights do not add up to 1
    assert weights_own_score_as_one(X)[0].sum().item() == pytest.approx(math.e**2 / 2 + 0.5)
    failure = failure_of(ch03.check_self_attention_weights, weights_own_score_as_one)
    assert failure.message == (
        "self_attention_weights(tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])) is wrong: the score of "
        "each token with itself is left out of the denominator (as if it were 0, so 1 stands where "
        "e^(x_i·x_i) belongs).")
    assert "e^(v1·v1) = e², not 1" in failure.hint


def test_weight_v2_for_v1(capsys):
    ch03.check_weight_v2_for_v1(1 / (1 + math.exp(2)))
    ch03.check_weight_v2_for_v1(torch.tensor(0.1192))
    ch03.check_weight_v2_for_v1(lambda: math.exp(0) / (math.exp(2) + math.exp(0)))
    assert capsys.readouterr().out.count("✓ weight_v2_for_v1: 1/(1 + e²) ≈ 0.1192") == 3


@pytest.mark.parametrize("nan", [math.nan, torch.tensor(math.nan), lambda: math.nan])
def test_weight_v2_for_v1_refuses_nan(nan):
    # NaN is neither close to a known mistake nor far from the answer: it used to pass
    assert failure_of(ch03.check_weight_v2_for_v1, nan).message == (
        "the weight is nan, but it should be about 0.119.")


def test_weight_v2_for_v1_stub(capsys):
    ch03.check_weight_v2_for_v1(stub)
    assert "weight_v2_for_v1: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0.5, "0.5 is what the common mistake gives"),
        (1 / (1 + math.e), "is the weight v2 gives to v1"),
        (0.881, "the weight v1 gives to itself"),
        (1 / 3, "1/3 is the weight for three equal scores"),
        (0.2, "the weight is 0.2, but it should be about 0.119"),
        ("0.119", "expected a number"),
        (torch.tensor([0.1, 0.2]), "expected a single number"),
        (lambda: None, "expected a number, but got None"),
        (lambda: 0.5, "0.5 is what the common mistake gives"),
    ],
)
def test_weight_v2_for_v1_wrong(value, words):
    assert words in failure_of(ch03.check_weight_v2_for_v1, value).message


# --------------------------------------------------------------------------------- attention


def attention_right(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def attention_variant(scale="sqrt", mask_mode="before", values="v", axis=-1, order="ow"):
    def attention(q, k, v, mask=None):
        d = q.shape[-1]
        scores = q @ k.transpose(-2, -1)
        if scale == "sqrt":
            scores = scores / math.sqrt(d)
        if mask is not None and mask_mode == "before":
            scores = scores.masked_fill(~mask, float("-inf"))
        if mask is not None and mask_mode == "inverted":
            scores = scores.masked_fill(mask, float("-inf"))
        if mask is not None and mask_mode == "big negative":
            scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=axis)
        if scale == "after":
            weights = weights / math.sqrt(d)
        if mask is not None and mask_mode == "after":
            weights = weights * mask
        out = weights @ (v if values == "v" else k)
        return (out, weights) if order == "ow" else (weights, out)

    return attention


def test_attention_right(capsys):
    ch03.check_attention(attention_right)
    ch03.check_attention(attention_variant(mask_mode="big negative"))  # −1e9 works as well as −inf
    out = capsys.readouterr().out
    assert out.count("✓ attention: correct on 3 inputs") == 2


def test_attention_stub(capsys):
    ch03.check_attention(stub)
    assert "attention: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (attention_variant(scale="none"), "the scores are not divided by √d_k (here √8 ≈ 2.83)"),
        (attention_variant(scale="after"), "the scaling by √d_k is applied after the softmax"),
        (attention_variant(values="k"), "it averages the keys instead of the values"),
        (attention_variant(axis=-2), "sums to 1 along dimension 0 instead of dimension 1"),
        (attention_variant(order="wo"), "returns (weights, output)"),
        (lambda q, k, v, mask=None: attention_right(q, k, v, mask)[0], "should return a pair (output, weights)"),
        (lambda q, k, v, mask=None: attention_right(q, k, v), "the mask is ignored"),
        (attention_variant(mask_mode="after"), "the mask is applied after the softmax"),
        (attention_variant(mask_mode="inverted"), "the mask is used the wrong way round"),
        (lambda q, k, v, mask=None: (attention_right(q, k, v, mask)[1] @ v, None), "is None"),
        (lambda q, k, v: attention_right(q, k, v), "raised TypeError"),
    ],
)
def test_attention_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_attention, answer).message


def test_attention_scores_divided_by_d():
    def by_d(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / q.shape[-1]
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ v, weights

    failure = failure_of(ch03.check_attention, by_d)
    assert "divided by d_k = 8 instead of √d_k" in failure.message
    assert failure.hint == "Use math.sqrt(d_k), not d_k."


def test_attention_wrong_output_after_right_weights():
    failure = failure_of(ch03.check_attention, lambda q, k, v, mask=None: (
        attention_right(q, k, v, mask)[0] * 2, attention_right(q, k, v, mask)[1]))
    assert failure.message.startswith("the output for 3 queries, 4 keys, d_k = 8 is twice as large")


# ------------------------------------------------------------------------------- causal mask


def test_causal_mask_right(capsys):
    ch03.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril())
    ch03.check_causal_mask(lambda T: torch.arange(T)[None, :] <= torch.arange(T)[:, None])
    ch03.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.long).tril())  # 0/1 integers pass
    out = capsys.readouterr().out
    assert out.count("✓ causal_mask: correct for T = 1, 2, 5, 8") == 3


def test_causal_mask_stub(capsys):
    ch03.check_causal_mask(stub)
    assert "causal_mask: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda T: torch.ones(T, T, dtype=torch.bool).triu(),
         "causal_mask(2) lets position 0 look at position 1, which comes after it: a future leak"),
        (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), "does not let a position see itself"),
        (lambda T: torch.ones(T, T, dtype=torch.bool).triu(1), "is True exactly where looking is forbidden"),
        (lambda T: torch.ones(T, T, dtype=torch.bool), "a future leak"),
        (lambda T: torch.zeros(T, T).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")),
         "should be a boolean mask (True/False)"),
        (lambda T: torch.ones(T, T, dtype=torch.bool).tril()[None], "extra dimension of size 1"),
        (lambda T: [[j <= i for j in range(T)] for i in range(T - 1)], "causal_mask(2) has shape (1, 2) but should have shape (2, 2)"),
    ],
)
def test_causal_mask_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_causal_mask, answer).message


# ------------------------------------------------------------------------------------- heads


def test_split_and_merge_right(capsys):
    ch03.check_split_heads(lambda x, H: x.view(x.shape[0], x.shape[1], H, -1).transpose(1, 2))
    ch03.check_merge_heads(lambda y: y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1))
    ch03.check_merge_heads(lambda y: y.transpose(1, 2).contiguous().view(y.shape[0], y.shape[2], -1))
    out = capsys.readouterr().out
    assert "✓ split_heads: correct on 4 shapes" in out
    assert out.count("✓ merge_heads: correct on 4 shapes") == 2


def test_split_and_merge_stubs(capsys):
    ch03.check_split_heads(stub)
    ch03.check_merge_heads(stub)
    out = capsys.readouterr().out
    assert "split_heads: not done yet" in out and "merge_heads: not done yet" in out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda x, H: x.reshape(x.shape[0], H, x.shape[1], -1), "the numbers are in the wrong places"),
        (lambda x, H: x.view(x.shape[0], x.shape[1], H, -1), "the head dimension must come before time"),
        (lambda x, H: x.view(x.shape[0], H, -1), "should have shape (2, 2, 3, 4)"),
    ],
)
def test_split_heads_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_split_heads, answer).message


def test_merge_heads_wrong_answers():
    failure = failure_of(ch03.check_merge_heads, lambda y: y.reshape(y.shape[0], y.shape[2], -1))
    assert "the numbers are in the wrong places" in failure.message
    failure = failure_of(ch03.check_merge_heads, lambda y: y.transpose(1, 2).view(y.shape[0], y.shape[2], -1))
    assert "raised RuntimeError: view size is not compatible" in failure.message
    assert "use `.reshape(...)`" in failure.hint
    failure = failure_of(ch03.check_merge_heads, lambda y: y.transpose(1, 2))
    assert "should have shape (2, 3, 8)" in failure.message


# ----------------------------------------------------------------------- causal self-attention


def csa_right(x, attn):
    B, T, C = x.shape
    H = attn.n_head
    q, k, v = attn.c_attn(x).split(C, dim=-1)
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    y, _ = attention_right(q, k, v, mask)
    return attn.c_proj(y.transpose(1, 2).reshape(B, T, C))


def csa_future_mask(x, attn):
    """The mask the wrong way round (upper triangle): every position sees the last token."""
    B, T, C = x.shape
    H = attn.n_head
    q, k, v = attn.c_attn(x).split(C, dim=-1)
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    y, _ = attention_right(q, k, v, torch.ones(T, T, dtype=torch.bool).triu())
    return attn.c_proj(y.transpose(1, 2).reshape(B, T, C))


def csa_variant(causal=True, scale="sqrt", heads="split", project=True):
    """A student's causal self-attention with one thing changed, written out step by step."""
    def run(x, attn):
        B, T, C = x.shape
        H = 1 if heads == "one" else attn.n_head
        d = C // H
        qkv = attn.c_attn(x)
        q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
        if heads == "scrambled":
            q, k, v = (t.reshape(B, H, T, d) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, T, H, d).permute(0, 2, 1, 3) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2)
        if scale == "sqrt":
            scores = scores / math.sqrt(d)
        if causal:
            future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(dim=-1)
        if scale == "after":
            weights = weights / math.sqrt(d)
        y = (weights @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        return attn.c_proj(y) if project else y

    return run


def test_causal_self_attention_right(capsys):
    ch03.check_causal_self_attention(csa_right)
    assert capsys.readouterr().out.startswith("✓ causal_self_attention: matches sftlearn's CausalSelfAttention")


@pytest.mark.parametrize("shortcut", [lambda x, attn: attn(x)[0], lambda x, attn: attn.forward(x)[0]])
def test_causal_self_attention_that_calls_the_module_is_refused(shortcut):
    failure = failure_of(ch03.check_causal_self_attention, shortcut)
    assert "your function calls the module itself" in failure.message
    assert "attn.c_attn" in failure.hint


def test_causal_self_attention_stub(capsys):
    ch03.check_causal_self_attention(stub)
    assert "causal_self_attention: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (csa_variant(causal=False), "the causal mask is missing, so each position also looks at later ones"),
        (csa_future_mask, "a future leak. Changing only the last token changed the output at position 0"),
        (csa_variant(scale="none"), "the scores are not divided by √d_k"),
        (csa_variant(scale="after"), "the scaling by √d_k is applied after the softmax"),
        (csa_variant(project=False), "the output projection c_proj is missing"),
        (csa_variant(heads="one"), "it uses one head over all C channels"),
        (csa_variant(heads="scrambled"), "the heads are split wrongly"),
        (lambda x, attn: csa_right(x, attn)[:, :, :4], "should have shape (2, 6, 16)"),
    ],
)
def test_causal_self_attention_wrong_answers(answer, words):
    assert words in failure_of(ch03.check_causal_self_attention, answer).message


def test_checks_leave_torch_grad_mode_alone():
    assert torch.is_grad_enabled()
    ch03.check_causal_self_attention(csa_right)
    assert torch.is_grad_enabled()


def test_softmax_that_breaks_on_masked_scores_is_told_why():
    # subtracting the mean: −inf − (−inf) is NaN on a masked row; no score there is huge
    failure = failure_of(ch03.check_softmax, lambda s: (s - s.mean(-1, keepdim=True)).exp()
                         / (s - s.mean(-1, keepdim=True)).exp().sum(-1, keepdim=True))
    assert "from the −inf scores of masked positions" in failure.message


def test_attention_masked_with_zero_and_heads_scaled_by_the_width_are_named():
    def zero_masked(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, 0.0)
        weights = scores.softmax(-1)
        return weights @ v, weights

    assert "set to 0 instead of −inf" in failure_of(ch03.check_attention, zero_masked).message

    def width_scaled(x, attn):
        B, T, C = x.shape
        H = attn.n_head
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in attn.c_attn(x).split(C, -1))
        scores = (q @ k.transpose(-2, -1) / math.sqrt(C)).masked_fill(
            ~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return attn.c_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))

    assert "the model's width" in failure_of(ch03.check_causal_self_attention, width_scaled).message
