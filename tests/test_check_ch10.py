"""Tests of the chapter 10 checks (sftlearn.check.ch10): right answers, typical wrong ones,
unfinished stubs, answers of the wrong kind; and that the checks' references agree with the
package's LoRA layer, with Hugging Face PEFT and with a real AdamW optimizer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import CheckFailure, ch10
from sftlearn.config import GPTConfig
from sftlearn.freeze import freeze_all_but
from sftlearn.lora import LoRALinear, attach_lora
from sftlearn.model import GPT
from conftest import failure_of, stub

CHECKS = [ch10.check_lora_forward, ch10.check_freeze_last_blocks, ch10.check_training_memory,
          ch10.check_lora_init]


@pytest.mark.parametrize("check", CHECKS)
def test_a_stub_is_not_done_yet(check, capsys, monkeypatch):
    monkeypatch.delenv("SFTLEARN_GRADING", raising=False)
    check(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("check", CHECKS)
def test_a_stub_fails_when_grading(check, monkeypatch):
    monkeypatch.setenv("SFTLEARN_GRADING", "1")
    assert failure_of(check, stub).message == "not done yet."


@pytest.mark.parametrize("check", CHECKS)
def test_passing_a_value_instead_of_the_function(check):
    assert "expected a function" in failure_of(check, 42).message


def _crash(*args):
    return 1 / 0


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(
    "answer",
    [_crash, lambda *a: None, lambda *a: "text", lambda *a: torch.full((3, 3), math.nan),
     lambda *a: torch.zeros(2, 3, 5, 7), lambda *a: object(), lambda: 0],
    ids=["crashes", "None", "string", "NaN", "wrong shape", "object", "no arguments"],
)
def test_wrong_kinds_of_answer_fail_plainly(check, answer):
    """Whatever comes back, the check answers with its own short message, never a crash."""
    failure = failure_of(check, answer)
    assert len(failure.message) > 20 and "Traceback" not in str(failure)
    if answer is _crash:
        assert "ZeroDivisionError" in failure.message


# ----------------------------------------------------------------------------- LoRA forward


def right_lora_forward(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + (alpha / A.shape[0]) * (x @ A.T) @ B.T


def test_lora_forward_right(capsys):
    ch10.check_lora_forward(right_lora_forward)

    def merged_weight(x, weight, bias, A, B, alpha):  # the same function, computed another way
        return F.linear(x, weight + alpha / A.shape[0] * B @ A, bias)

    ch10.check_lora_forward(merged_weight)
    assert capsys.readouterr().out.count("✓ lora_forward: correct on 5 inputs") == 2


def test_the_reference_agrees_with_the_package_and_with_peft():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    ours = LoRALinear(base, r=2, alpha=6)
    with torch.no_grad():
        ours.lora_B.normal_()
    x = torch.randn(4, 6)
    want = ch10.reference_lora_forward(x, ours.weight, ours.bias, ours.lora_A, ours.lora_B, 6.0)
    torch.testing.assert_close(ours(x), want, atol=1e-6, rtol=1e-5)

    holder = torch.nn.Sequential()
    holder.add_module("lin", torch.nn.Linear(6, 5))
    with torch.no_grad():
        holder.lin.weight.copy_(base.weight)
        holder.lin.bias.copy_(base.bias)
    twin = peft.get_peft_model(holder, peft.LoraConfig(r=2, lora_alpha=6, target_modules=["lin"]))
    lin = twin.base_model.model.lin
    with torch.no_grad():
        lin.lora_A["default"].weight.copy_(ours.lora_A)
        lin.lora_B["default"].weight.copy_(ours.lora_B)
    torch.testing.assert_close(twin(x), want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("scale", "words"),
    [(lambda alpha, r: 1.0, "is not scaled; LoRA multiplies it by alpha / r"),
     (lambda alpha, r: alpha, "scaled by alpha = 6 instead of alpha / r = 3"),
     (lambda alpha, r: 1 / r, "scaled by 1 / r instead of alpha / r = 3"),
     (lambda alpha, r: alpha * r, "scaled by alpha · r instead of alpha / r = 3"),
     (lambda alpha, r: r / alpha, "scaled by r / alpha instead of alpha / r = 3")],
)
def test_lora_forward_wrong_scale(scale, words):
    def wrong(x, weight, bias, A, B, alpha):
        return F.linear(x, weight, bias) + scale(alpha, A.shape[0]) * (x @ A.T) @ B.T

    failure = failure_of(ch10.check_lora_forward, wrong)
    assert failure.message.startswith("lora_forward on x of shape (4, 6), r = 2, alpha = 6 is wrong: ")
    assert words in failure.message


def test_lora_forward_only_the_update():
    failure = failure_of(ch10.check_lora_forward,
                         lambda x, w, b, A, B, alpha: alpha / A.shape[0] * (x @ A.T) @ B.T)
    assert "returns only the low-rank update" in failure.message


def test_lora_forward_without_the_adapter():
    failure = failure_of(ch10.check_lora_forward, lambda x, w, b, A, B, alpha: F.linear(x, w, b))
    assert "the adapter is ignored" in failure.message


def test_lora_forward_without_the_bias():
    failure = failure_of(ch10.check_lora_forward,
                         lambda x, w, b, A, B, alpha: x @ w.T + alpha / A.shape[0] * (x @ A.T) @ B.T)
    assert "the bias is missing" in failure.message


def test_lora_forward_that_cannot_handle_a_missing_bias():
    def wrong(x, weight, bias, A, B, alpha):
        return x @ weight.T + bias + alpha / A.shape[0] * (x @ A.T) @ B.T

    failure = failure_of(ch10.check_lora_forward, wrong)
    assert failure.message.startswith("lora_forward on a layer without bias (bias=None), r = 3, "
                                      "alpha = 12: your function raised an error because bias is None")
    assert "F.linear(x, weight, bias)" in failure.hint


def test_lora_forward_with_the_matrices_in_the_wrong_order():
    failure = failure_of(ch10.check_lora_forward,
                         lambda x, w, b, A, B, alpha: F.linear(x, w, b) + alpha / A.shape[0] * (x @ B) @ A)
    assert "raised RuntimeError" in failure.message


def test_lora_forward_keeps_the_students_inputs_safe():
    def in_place(x, weight, bias, A, B, alpha):
        weight += alpha / A.shape[0] * B @ A  # merges into the caller's weight
        return F.linear(x, weight, bias)

    ch10.check_lora_forward(in_place)  # right values; the check's own copy is untouched


# ------------------------------------------------------------------------ freezing by hand


def right_freeze(model, k):
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = model.transformer.h
    for block in blocks[len(blocks) - k:]:
        for p in block.parameters():
            p.requires_grad_(True)


def test_freeze_last_blocks_right(capsys):
    ch10.check_freeze_last_blocks(right_freeze)

    def with_the_package(model, k):
        if k == 0:
            for p in model.parameters():
                p.requires_grad_(False)
        else:
            freeze_all_but(model, last_blocks=k)

    ch10.check_freeze_last_blocks(with_the_package)
    out = capsys.readouterr().out
    assert out.count("✓ freeze_last_blocks: correct on a 3-block GPT for k = 1, 2, 0") == 2


def test_freeze_on_the_module_instead_of_the_parameters():
    def wrong(model, k):
        model.requires_grad = False  # an attribute, not a freeze
        for block in model.transformer.h[len(model.transformer.h) - k:]:
            block.requires_grad = True

    failure = failure_of(ch10.check_freeze_last_blocks, wrong)
    assert failure.message == ("after freeze_last_blocks(model, 1) on a 3-block GPT, nothing is "
                               "frozen: every parameter still has requires_grad=True.")
    assert "p.requires_grad_(False)" in failure.hint


def test_freeze_the_first_blocks():
    def wrong(model, k):
        for p in model.parameters():
            p.requires_grad_(False)
        for block in model.transformer.h[:k]:
            for p in block.parameters():
                p.requires_grad_(True)

    assert "the FIRST 1 block(s) are trainable instead of the last 1" in failure_of(
        ch10.check_freeze_last_blocks, wrong).message


def test_freeze_with_a_negative_slice_unfreezes_everything_for_k_zero():
    def wrong(model, k):
        for p in model.parameters():
            p.requires_grad_(False)
        for block in model.transformer.h[-k:]:
            for p in block.parameters():
                p.requires_grad_(True)

    failure = failure_of(ch10.check_freeze_last_blocks, wrong)
    assert failure.message.startswith("after freeze_last_blocks(model, 0) on a 3-block GPT, every "
                                      "block is trainable, but k = 0 should freeze them all.")
    assert "blocks[len(blocks) - k:]" in failure.hint


def test_freeze_only_the_other_blocks():
    def wrong(model, k):  # forgets to freeze the embeddings and the final norm
        blocks = model.transformer.h
        for block in blocks[: len(blocks) - k]:
            for p in block.parameters():
                p.requires_grad_(False)

    failure = failure_of(ch10.check_freeze_last_blocks, wrong)
    assert failure.message == (
        "after freeze_last_blocks(model, 1) on a 3-block GPT, these parameters are trainable but "
        "should be frozen: transformer.ln_f, transformer.wpe, transformer.wte (the token "
        "embedding, which lm_head shares).")


def test_freeze_only_the_weights_of_the_last_blocks():
    def wrong(model, k):
        for p in model.parameters():
            p.requires_grad_(False)
        for block in model.transformer.h[len(model.transformer.h) - k:]:
            for name, p in block.named_parameters():
                p.requires_grad_(name.endswith("weight"))

    failure = failure_of(ch10.check_freeze_last_blocks, wrong)
    assert "are frozen but should be trainable: transformer.h.2" in failure.message


def test_freeze_everything():
    def wrong(model, k):
        for p in model.parameters():
            p.requires_grad_(False)

    assert "every parameter is frozen; the last 1 block(s) should stay trainable" in failure_of(
        ch10.check_freeze_last_blocks, wrong).message


# --------------------------------------------------------------------------- memory budget


def right_memory(model):
    params = list(model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return {"parameters": sum(p.numel() * p.element_size() for p in params),
            "gradients": trainable, "optimizer": 2 * trainable}


def test_training_memory_right(capsys):
    ch10.check_training_memory(right_memory)
    ch10.check_training_memory(lambda m: {k: torch.tensor(v) for k, v in right_memory(m).items()})
    assert capsys.readouterr().out.count("✓ training_memory: correct on 4 models") == 2


def test_the_reference_matches_what_adamw_and_backward_really_allocate():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16))
    attach_lora(model, r=2, alpha=4, target_modules=["c_attn"])
    freeze_all_but(model, head=True)  # adapters and the tied embedding train
    want = ch10.reference_training_memory(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    ids = torch.randint(0, 30, (2, 9))
    model(ids[:, :-1], targets=ids[:, 1:])[1].backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    optimizer.step()
    moments = sum(t.numel() * t.element_size() for s in optimizer.state.values()
                  for name, t in s.items() if name in ("exp_avg", "exp_avg_sq"))
    # every distinct parameter tensor in the state dict (lm_head.weight is wte.weight: once)
    distinct = {id(t): t for t in model.state_dict(keep_vars=True).values()
                if isinstance(t, torch.nn.Parameter)}
    params = sum(t.numel() * t.element_size() for t in distinct.values())
    assert (want["gradients"], want["optimizer"], want["parameters"]) == (grads, moments, params)


def _memory_variant(**changes):
    """right_memory with one part computed the wrong way."""
    def answer(model):
        got = right_memory(model)
        for key, fn in changes.items():
            got[key] = fn(model)
        return got
    return answer


def _bytes(params):
    return sum(p.numel() * p.element_size() for p in params)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_memory_variant(parameters=lambda m: _bytes(m.state_dict().values())),
         '"parameters" is 31,232 bytes, which is wrong: the output layer lm_head shares its weight'),
        (_memory_variant(parameters=lambda m: sum(p.numel() for p in m.parameters())),
         "this is the number of parameters, not their size in bytes"),
        (_memory_variant(gradients=lambda m: _bytes(m.parameters())),
         "it counts a gradient for every parameter, but frozen parameters"),
        (_memory_variant(gradients=lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)),
         "this is the number of gradient values, not their size in bytes"),
        (_memory_variant(gradients=lambda m: sum(4 * p.numel() for p in m.parameters() if p.requires_grad)),
         '"gradients" is 640 bytes, which is wrong: it assumes 4 bytes per number'),
        (_memory_variant(optimizer=lambda m: _bytes(p for p in m.parameters() if p.requires_grad)),
         "it keeps one number per trainable parameter, but AdamW keeps two"),
        (_memory_variant(optimizer=lambda m: 2 * _bytes(m.parameters())),
         "it counts optimizer state for frozen parameters too"),
        (_memory_variant(optimizer=lambda m: 2 * sum(p.numel() for p in m.parameters() if p.requires_grad)),
         "this is the number of optimizer values, not their size in bytes"),
        # On the fully trainable model this is also "one number per trainable parameter": the other
        # models tell the two apart
        (_memory_variant(optimizer=lambda m: _bytes(m.parameters())),
         "it counts one number per parameter, frozen ones included"),
        # Right for float32; on the float64 model it equals "one number per trainable parameter"
        (_memory_variant(optimizer=lambda m: sum(2 * 4 * p.numel() for p in m.parameters() if p.requires_grad)),
         '"optimizer" is 1,280 bytes, which is wrong: it assumes 4 bytes per number'),
    ],
)
def test_training_memory_mistakes(answer, words):
    assert words in failure_of(ch10.check_training_memory, answer).message


def test_training_memory_with_four_bytes_hard_coded():
    def wrong(model):
        params = list(model.parameters())
        trainable = sum(4 * p.numel() for p in params if p.requires_grad)
        return {"parameters": sum(4 * p.numel() for p in params), "gradients": trainable,
                "optimizer": 2 * trainable}

    failure = failure_of(ch10.check_training_memory, wrong)
    assert failure.message.startswith("training_memory on a float64 GPT with LoRA (r = 1) on c_fc: "
                                      '"parameters"')
    assert "it assumes 4 bytes per number, but this model's numbers take 8 bytes" in failure.message


def test_training_memory_not_a_dict_or_missing_keys():
    assert "should return a dict with keys ['parameters', 'gradients', 'optimizer']" in failure_of(
        ch10.check_training_memory, lambda m: (1, 2, 3)).message
    failure = failure_of(ch10.check_training_memory, lambda m: {"params": 1, "grads": 2})
    assert failure.message == ("training_memory on a fully trainable GPT: the dict has no key "
                               "'parameters' (it has ['grads', 'params']).")
    failure = failure_of(ch10.check_training_memory, _memory_variant(gradients=lambda m: "many"))
    assert '"gradients" should be a number of bytes' in failure.message


def test_training_memory_other_wrong_number():
    failure = failure_of(ch10.check_training_memory, _memory_variant(optimizer=lambda m: 3))
    assert failure.message.startswith('training_memory on a fully trainable GPT: "optimizer" is 3 '
                                      "bytes but should be ")


# ----------------------------------------------------------------------- LoRA initialisation


def kaiming_init(r, n_in, n_out):
    A = torch.empty(r, n_in)
    torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
    return A, torch.zeros(n_out, r)


def test_lora_init_right(capsys):
    ch10.check_lora_init(kaiming_init)
    ch10.check_lora_init(lambda r, n_in, n_out: (torch.randn(r, n_in) / math.sqrt(n_in), torch.zeros(n_out, r)))
    assert capsys.readouterr().out.count("✓ lora_init: correct on 3 layer sizes") == 2


def test_lora_init_the_other_way_round_is_refused():
    # B·A = 0 and it would train, but it is not how LoRA starts (nor what the ✓ would describe)
    failure = failure_of(ch10.check_lora_init,
                         lambda r, n_in, n_out: (torch.zeros(r, n_in), torch.randn(n_out, r)))
    assert "A is zero and B is random" in failure.message


def test_lora_init_the_package_passes(capsys):
    def from_the_package(r, n_in, n_out):
        layer = LoRALinear(torch.nn.Linear(n_in, n_out), r=r, alpha=2 * r)
        return layer.lora_A.detach(), layer.lora_B.detach()

    ch10.check_lora_init(from_the_package)
    assert "✓ lora_init" in capsys.readouterr().out


def test_lora_init_both_zero():
    failure = failure_of(ch10.check_lora_init, lambda r, n_in, n_out: (torch.zeros(r, n_in), torch.zeros(n_out, r)))
    assert failure.message.startswith("lora_init(1, 8, 8): both A and B start at zero, so the adapter "
                                      "can never learn")
    assert "LoRA draws A at random and sets B = 0" in failure.hint


def test_lora_init_both_random():
    failure = failure_of(ch10.check_lora_init, lambda r, n_in, n_out: (torch.randn(r, n_in), torch.randn(n_out, r)))
    assert "B·A is not zero, so the adapted layer does not start as the pretrained one" in failure.message


def test_lora_init_a_constant_A_wastes_rank():
    failure = failure_of(ch10.check_lora_init,
                         lambda r, n_in, n_out: (torch.full((r, n_in), 0.1), torch.zeros(n_out, r)))
    # rank 1 is full rank for r = 1; the second size (r = 4) shows the problem
    assert failure.message.startswith("lora_init(4, 16, 48): A has rank 1, less than r = 4")


def test_lora_init_wrong_shapes_and_kinds():
    failure = failure_of(ch10.check_lora_init, lambda r, n_in, n_out: (torch.randn(n_in, r), torch.zeros(r, n_out)))
    assert "A should be (r, in_features) = (1, 8) and B (out_features, r) = (8, 1)" in failure.message
    assert "should return a pair of tensors (A, B)" in failure_of(
        ch10.check_lora_init, lambda r, n_in, n_out: torch.zeros(r, n_in)).message
    def integers(r, n_in, n_out):
        return torch.ones(r, n_in, dtype=torch.long), torch.zeros(n_out, r, dtype=torch.long)

    failure = failure_of(ch10.check_lora_init, integers)
    assert "must hold floating-point numbers" in failure.message
    failure = failure_of(ch10.check_lora_init,
                         lambda r, n_in, n_out: (torch.full((r, n_in), math.nan), torch.zeros(n_out, r)))
    assert "NaN or inf" in failure.message


def test_failures_are_check_failures_with_the_check_name():
    failure = failure_of(ch10.check_lora_init, lambda r, n_in, n_out: (torch.zeros(r, n_in), torch.zeros(n_out, r)))
    assert isinstance(failure, CheckFailure) and str(failure).startswith("✗ lora_init: ")


def test_lora_forward_with_integer_division_is_caught():
    def floor_scaled(x, weight, bias, A, B, alpha):
        return F.linear(x, weight, bias) + (alpha // A.shape[0]) * (x @ A.T @ B.T)

    failure = failure_of(ch10.check_lora_forward, floor_scaled)
    assert "alpha // r = 2 (integer division)" in failure.message
