"""Tests of the chapter 04 checks (sftlearn.check.ch04): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with torch and with sftlearn.metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch04
from sftlearn.metrics import perplexity
from conftest import failure_of, stub


# ------------------------------------------------------------------ the references themselves


def test_reference_entropy_matches_torch_distributions():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5]])
    expected = torch.distributions.Categorical(probs=p).entropy()
    assert torch.allclose(ch04.reference_entropy(p), expected)
    assert ch04.reference_entropy(torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2))


def test_reference_cross_entropy_between_is_entropy_plus_kl():
    p = torch.tensor([0.2, 0.3, 0.5])
    q = torch.tensor([0.3, 0.3, 0.4])
    kl = F.kl_div(q.log(), p, reduction="sum")
    assert ch04.reference_cross_entropy_between(p, q).item() == pytest.approx(
        (ch04.reference_entropy(p) + kl).item(), rel=1e-6)
    # The worked example, done right: target class 0, prediction [0.9, 0.05, 0.05].
    value = ch04.reference_cross_entropy_between(torch.tensor([1.0, 0, 0]), torch.tensor([0.9, 0.05, 0.05]))
    assert value.item() == pytest.approx(0.1054, abs=1e-4)


def test_reference_gradients_match_the_formulas():
    z = torch.linspace(-8, 8, 9, dtype=torch.float64)
    y = torch.ones_like(z)
    grad_mse, grad_ce = ch04.reference_logit_gradients(z, y)
    p = torch.sigmoid(z)
    assert torch.allclose(grad_mse, 2 * (p - y) * p * (1 - p))
    assert torch.allclose(grad_ce, p - y)
    # The point of the exercise: confidently wrong, the squared error's gradient has vanished.
    assert abs(grad_mse[0].item()) < 1e-3 and grad_ce[0].item() == pytest.approx(-1.0, abs=1e-3)


def test_reference_bigram_perplexity_agrees_with_metrics_and_torch():
    probs = ch04.reference_bigram_probabilities(ch04.BIGRAM_COUNTS, 1.0)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4))
    ids = torch.tensor([0, 1, 3, 3, 2, 0, 2, 1])
    loss = F.nll_loss(probs.log()[ids[:-1]], ids[1:])
    assert ch04.reference_bigram_perplexity(probs, ids) == pytest.approx(perplexity(loss), rel=1e-5)
    assert ch04.reference_bigram_perplexity(torch.full((6, 6), 1 / 6), torch.tensor([1, 2, 3])) == pytest.approx(6.0)


# -------------------------------------------------------------------------------- entropy


def right_entropy(p):
    return -torch.xlogy(p, p).sum(dim=-1)


def test_entropy_right(capsys):
    ch04.check_entropy(right_entropy)
    ch04.check_entropy(lambda p: -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1))
    out = capsys.readouterr().out
    assert out.count("✓ entropy: correct on 6 inputs, including a certain outcome") == 2


def test_entropy_stub(capsys):
    ch04.check_entropy(stub)
    assert "entropy: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda p: torch.xlogy(p, p).sum(-1), "the minus sign is missing"),
        (lambda p: -(torch.xlogy(p, p) / math.log(2)).sum(-1), "log base 2 (bits)"),
        (lambda p: -torch.xlogy(p, p).mean(-1), "averages the terms over the 2 outcomes"),
        (lambda p: -p.log().sum(-1), "without weighting each by its probability"),
        (lambda p: -(p * p.log()).sum(-1), "contains NaN: where p = 0 you compute 0 · log 0"),
        (lambda p: -torch.xlogy(p, p).sum(), "the sum runs over the whole tensor"),
        (lambda p: -torch.xlogy(p, p).sum(0), "sums over dimension 0 instead of the last"),
        (lambda p: None, "is None"),
        (lambda p: -torch.xlogy(p, p).sum(-1).float(), "the answer should keep the input's precision"),
        (lambda p: -torch.xlogy(p, p).sum(-1) + 0.1, "entropy([0.5, 0.5]) is 0.793147, but should be 0.693147"),
    ],
)
def test_entropy_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_entropy, answer).message


def test_entropy_messages_have_hints():
    failure = failure_of(ch04.check_entropy, lambda p: -(p * p.log()).sum(-1))
    assert failure.message.startswith("entropy([0, 1, 0]) contains NaN")
    assert "torch.xlogy" in failure.hint
    failure = failure_of(ch04.check_entropy, lambda p: -(torch.xlogy(p, p) / math.log(2)).sum(-1))
    assert failure.message == (
        "entropy([0.5, 0.5]) is wrong: it uses log base 2 (bits) instead of the natural log (nats); "
        "the two differ by a factor ln 2 ≈ 0.693.")
    assert "natural log" in failure.hint


# ------------------------------------------------------------------ cross_entropy_between


def right_between(p, q):
    for name, d in (("p", p), ("q", q)):
        if (d < 0).any() or not torch.isclose(d.sum(), torch.tensor(1.0), atol=1e-5):
            raise ValueError(f"{name} is not a probability distribution (it sums to {d.sum():.4g})")
    return -torch.xlogy(p, q).sum()


def test_cross_entropy_between_right(capsys):
    ch04.check_cross_entropy_between(right_between)
    out = capsys.readouterr().out
    assert out.startswith("✓ cross_entropy_between: correct on 5 pairs of distributions")
    assert "raises ValueError on 4 that are not distributions" in out


def test_cross_entropy_between_stub(capsys):
    ch04.check_cross_entropy_between(stub)
    assert "cross_entropy_between: not done yet" in capsys.readouterr().out


def test_the_mistaken_worked_example_is_recognised():
    """The common mistake: −log 0.9 reported as −0.105 (a negative loss)."""
    failure = failure_of(ch04.check_cross_entropy_between, lambda p, q: torch.xlogy(p, q).sum())
    assert failure.message.startswith(
        "cross_entropy_between([1.0, 0.0, 0.0], [0.9, 0.05, 0.05]) is wrong: it is negative. "
        "A cross-entropy is a loss and is never negative")


def test_a_missing_validation_is_recognised():
    failure = failure_of(ch04.check_cross_entropy_between, lambda p, q: -torch.xlogy(p, q).sum())
    assert failure.message == (
        "cross_entropy_between([1.0, 0.0, 0.0], [0.9, 0.1, 0.1]) returned 0.1054, but q sums to 1.1, "
        "so it is not a probability distribution and no cross-entropy should be computed: raise "
        "ValueError instead. A check like this would have caught the mistaken worked example.")


def only_checks_q(p, q):
    if (q < 0).any() or not torch.isclose(q.sum(), torch.tensor(1.0)):
        raise ValueError("q is not a distribution")
    return -torch.xlogy(p, q).sum()


def asserting(p, q):
    assert torch.isclose(q.sum(), torch.tensor(1.0))
    return -torch.xlogy(p, q).sum()


def silent_value_error(p, q):
    if not torch.isclose(q.sum(), torch.tensor(1.0)) or not torch.isclose(p.sum(), torch.tensor(1.0)) or (q < 0).any():
        raise ValueError()
    return -torch.xlogy(p, q).sum()


def with_epsilon(p, q):
    right_between(p, q)
    return -(p * (q + 1e-9).log()).sum()


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (only_checks_q, "but p sums to 1.2, so it is not a probability distribution"),
        (asserting, "raised AssertionError, but a bad argument should raise ValueError (q sums to 1.1)"),
        (silent_value_error, "raises ValueError, but with no message"),
        (lambda p, q: -(p * q.log()).sum(), "is NaN: where p = 0 and q = 0"),
        (with_epsilon, "should be inf: the model is certain (q = 0)"),
        (lambda p, q: -(torch.xlogy(p, q) / math.log(2)).sum(), "log base 2 (bits)"),
        (lambda p, q: -torch.xlogy(q, p).sum(), "the two distributions are swapped"),
        (lambda p, q: p, "should be a single number"),
    ],
)
def test_cross_entropy_between_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_cross_entropy_between, answer).message


# -------------------------------------------------------------------------- cross_entropy


def right_cross_entropy(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != -100
    logits, targets = logits[keep], targets[keep]
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return -log_probs[torch.arange(len(targets)), targets].mean()


def naive_cross_entropy(logits, targets):
    """Right except for stability: exp() of the raw logits."""
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != -100
    probs = logits[keep].exp() / logits[keep].exp().sum(-1, keepdim=True)
    return -probs[torch.arange(int(keep.sum())), targets[keep]].log().mean()


def log_of_softmax(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != -100
    probs = torch.softmax(logits[keep], dim=-1)
    return -probs[torch.arange(int(keep.sum())), targets[keep]].log().mean()


def counts_ignored(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != -100
    logp = torch.log_softmax(logits, -1)[torch.arange(len(targets)), targets.clamp(min=0)]
    return -(logp * keep).sum() / len(targets)


def only_2d(logits, targets):
    logp = torch.log_softmax(logits, -1)
    picked = logp[torch.arange(logits.shape[0]), targets.clamp(min=0)]
    return -picked[targets != -100].mean()


def no_ignore(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    logp = torch.log_softmax(logits, -1)
    return -logp[torch.arange(len(targets)), targets].mean()


def gather_no_ignore(logits, targets):
    logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]), -1)
    return -logp.gather(1, targets.reshape(-1, 1)).mean()


def test_cross_entropy_right(capsys):
    ch04.check_cross_entropy(right_cross_entropy)
    ch04.check_cross_entropy(lambda z, t: F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1)))
    out = capsys.readouterr().out
    assert out.count("✓ cross_entropy: agrees with F.cross_entropy(..., ignore_index=-100) on 4 inputs") == 2


def test_cross_entropy_stub(capsys):
    ch04.check_cross_entropy(stub)
    assert "cross_entropy: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (naive_cross_entropy, "the computation is numerically unstable. exp(1000) overflows"),
        (log_of_softmax, "numerically unstable"),
        (counts_ignored, "divides by all the positions, including the ignored ones"),
        (only_2d, "It should accept any leading dimensions"),
        (no_ignore, "A target of -100 is not a class"),
        (gather_no_ignore, "A target of -100 is not a class"),
        (lambda z, t: -right_cross_entropy(z, t), "the sign is wrong"),
        (lambda z, t: right_cross_entropy(z, t) / math.log(2), "in bits (log base 2)"),
        (lambda z, t: right_cross_entropy(z, t) * int((t != -100).sum()), "the sum of the per-position losses"),
        (lambda z, t: -z.reshape(-1, z.shape[-1])[torch.arange(t.numel()), t.reshape(-1)].mean(),
         "without the normaliser log Σ exp(z)"),
        (lambda z, t: F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1), reduction="none"),
         "should be a single number"),
        (lambda z, t: right_cross_entropy(z, t).item(), "carries no gradient"),
        (lambda z, t: right_cross_entropy(z, t).detach(), "carries no gradient"),
        (lambda z, t: right_cross_entropy(z, t).reshape(1), "the mean loss should be a single number, shape ()"),
    ],
)
def test_cross_entropy_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_cross_entropy, answer).message


def test_cross_entropy_crash_messages_in_full():
    failure = failure_of(ch04.check_cross_entropy, only_2d)
    assert failure.message.startswith(
        "your function crashed on logits of shape (2, 3, 5) with targets (2, 3), one -100; it raised "
        "IndexError: shape mismatch")
    assert "reshape(-1, logits.shape[-1])" in failure.hint
    failure = failure_of(ch04.check_cross_entropy, no_ignore)
    assert failure.message == (
        "your function crashed on logits of shape (5, 4) with two targets -100; it raised IndexError: "
        "index -100 is out of bounds for dimension 1 with size 4. A target of -100 is not a class: it "
        "marks a position to ignore (padding, or a prompt token), and must not be used as an index.")


def test_cross_entropy_unstable_message_in_full():
    failure = failure_of(ch04.check_cross_entropy, naive_cross_entropy)
    assert failure.message.startswith("the loss for large logits such as ±1000 is nan")
    assert "log-sum-exp" in failure.hint and "torch.logsumexp" in failure.hint


def test_cross_entropy_every_named_mistake_gives_its_own_value():
    # Two sentences for one value would name only the first; the loss of a -100 used as an index
    # was such a twin of the class-0 one (-100 % 4 == -100 % 5 == 0), for a mistake that in fact
    # raises IndexError (explained separately).
    for _, logits, targets in ch04._ce_cases():
        values = [torch.as_tensor(v[0] if isinstance(v, tuple) else v, dtype=torch.float64)
                  for v in ch04._ce_mistakes(logits, targets, ch04.reference_cross_entropy(logits, targets)).values()]
        for i in range(len(values)):
            for j in range(i):
                assert not torch.allclose(values[i], values[j], rtol=1e-4, atol=1e-5), (i, j)


def test_cross_entropy_clamped_targets():
    def clamped(logits, targets):
        logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]), -1)
        t = targets.reshape(-1).clamp(min=0)
        return -logp[torch.arange(len(t)), t].mean()

    assert "scored as if their target were class 0" in failure_of(ch04.check_cross_entropy, clamped).message


# ------------------------------------------------------------------------ logit_gradients


def right_gradients(z, y):
    p = torch.sigmoid(z)
    return 2 * (p - y) * p * (1 - p), p - y


def test_logit_gradients_right(capsys):
    ch04.check_logit_gradients(right_gradients)

    def by_autograd(z, y):
        return ch04.reference_logit_gradients(z, y)

    ch04.check_logit_gradients(by_autograd)
    out = capsys.readouterr().out
    assert out.count("✓ logit_gradients: both gradients agree with autograd on 3 cases") == 2


def test_logit_gradients_stub(capsys):
    ch04.check_logit_gradients(stub)
    assert "logit_gradients: not done yet" in capsys.readouterr().out


def sig(z):
    return torch.sigmoid(z)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda z, y: (2 * (sig(z) - y), sig(z) - y), "with respect to the probability p = σ(z), 2(p − y)"),
        (lambda z, y: ((sig(z) - y) * sig(z) * (1 - sig(z)), sig(z) - y), "half as large"),
        (lambda z, y: (2 * (sig(z) - y) * sig(z), sig(z) - y), "σ'(z) is written as σ(z)"),
        (lambda z, y: (right_gradients(z, y)[0], y - sig(z)), "the wrong sign"),
        (lambda z, y: (right_gradients(z, y)[0], -y / sig(z) + (1 - y) / (1 - sig(z))),
         "grad_ce (the cross-entropy gradient) at z = [-8, -4, -1, 0, 1, 4, 8], label y = 1 is wrong: it is "
         "the derivative with respect to the probability"),
        (lambda z, y: (right_gradients(z, y)[0], (sig(z) - y) * sig(z) * (1 - sig(z))), "which the log cancels"),
        (lambda z, y: right_gradients(z, y)[::-1], "returned in the wrong order"),
        (lambda z, y: right_gradients(z, y)[0], "should return two tensors (grad_mse, grad_ce)"),
    ],
)
def test_logit_gradients_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_logit_gradients, answer).message


# ------------------------------------------------------------------ bigram_probabilities


def right_probabilities(counts, k):
    counts = counts.float()
    return (counts + k) / (counts.sum(dim=1, keepdim=True) + k * counts.shape[1])


def test_bigram_probabilities_right(capsys):
    ch04.check_bigram_probabilities(right_probabilities)
    assert capsys.readouterr().out.startswith("✓ bigram_probabilities: correct on 4 tables")


def test_bigram_probabilities_stub(capsys):
    ch04.check_bigram_probabilities(stub)
    assert "bigram_probabilities: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda c, k: (c.float() + k) / c.float().sum(1, keepdim=True), "k·V is not added to the row total"),
        (lambda c, k: (c.float() + k) / (c.float().sum(0, keepdim=True) + k * c.shape[0]), "P(current | next)"),
        (lambda c, k: (c.float() + k) / (c.float().sum() + k * c.numel()), "the joint probability"),
        (lambda c, k: right_probabilities(torch.where(c == 0, k, 0) + c, 0.0), "k is added only to the zero counts"),
        (lambda c, k: (c + int(k)) // (c.sum(1, keepdim=True) + int(k) * c.shape[1]), "holds integers"),
        (lambda c, k: right_probabilities(c, k).T, "sums to 1 along dimension 0 instead of dimension 1"),
    ],
)
def test_bigram_probabilities_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_bigram_probabilities, answer).message


# --------------------------------------------------------------------- bigram_perplexity


def self_pairs_in_a_loop(probs, ids):
    """The loop over t = 0 .. len(ids) - 2, with ids[t] where ids[t + 1] belongs."""
    total = 0.0
    for t in range(len(ids) - 1):
        total += -math.log(probs[ids[t], ids[t]])
    return math.exp(total / (len(ids) - 1))


def right_perplexity(probs, ids):
    return torch.exp(-probs[ids[:-1], ids[1:]].log().mean())


def test_bigram_perplexity_right(capsys):
    ch04.check_bigram_perplexity(right_perplexity)
    ch04.check_bigram_perplexity(lambda probs, ids: 2 ** (-probs[ids[:-1], ids[1:]].log2().mean()).item())
    out = capsys.readouterr().out
    assert out.count("✓ bigram_perplexity: correct on 4 sequences") == 2


def test_bigram_perplexity_stub(capsys):
    ch04.check_bigram_perplexity(stub)
    assert "bigram_perplexity: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda P, ids: -P[ids[:-1], ids[1:]].log().mean(), "it is the mean cross-entropy (the loss)"),
        (lambda P, ids: torch.exp(-P[ids[:-1], ids[1:]].log().sum()), "exp of the SUM"),
        (lambda P, ids: (1 / P[ids[:-1], ids[1:]]).mean(), "it averages 1/p"),
        (lambda P, ids: torch.exp(-P[ids[:-1], ids[1:]].log2().mean()), "it mixes bases"),
        (lambda P, ids: torch.exp(-P[ids[1:], ids[:-1]].log().mean()), "read the wrong way round"),
        (lambda P, ids: torch.exp(-P[ids, ids].log().mean()), "scores every token against itself, probs[ids, ids]"),
        (self_pairs_in_a_loop, "scores each token against itself, probs[ids[t], ids[t]]"),
        (lambda P, ids: torch.exp(-P[ids[:-2], ids[2:]].log().mean()), "the pairs are off by one"),
        (lambda P, ids: None, "is None"),
    ],
)
def test_bigram_perplexity_wrong_answers(answer, words):
    assert words in failure_of(ch04.check_bigram_perplexity, answer).message


# ----------------------------------------------------------------------- passing a result


@pytest.mark.parametrize(
    "check",
    [ch04.check_entropy, ch04.check_cross_entropy_between, ch04.check_cross_entropy,
     ch04.check_logit_gradients, ch04.check_bigram_probabilities, ch04.check_bigram_perplexity],
)
def test_passing_a_value_instead_of_the_function(check):
    failure = failure_of(check, torch.tensor(0.5))
    assert "expected a function" in failure.message
