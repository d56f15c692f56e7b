"""sftlearn.freeze: parameter reports and freezing all but chosen parts of a GPT."""

import pytest
import torch
from torch import nn

from sftlearn.config import GPTConfig
from sftlearn.freeze import freeze, freeze_all_but, parameter_report, unfreeze
from sftlearn.heads import SequenceClassifier
from sftlearn.lora import attach_lora
from sftlearn.model import GPT
from sftlearn.train import TrainConfig, Trainer

from conftest import VOCAB, cyclic_blocks, stack_collate

C = 64  # micro preset width


def micro_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32))


def trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def numel(module):
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ report
def test_report_counts_tied_weights_once_and_groups_by_block():
    model = micro_gpt()
    report = parameter_report(model)
    assert report.total == report.trainable == model.num_parameters()
    # By hand: embeddings V*C + T*C; per block 12*C*C + 13*C; final norm 2*C.
    per_block = 12 * C * C + 13 * C
    assert report.total == VOCAB * C + 32 * C + 2 * per_block + 2 * C
    assert report.groups == {
        "transformer.wte": (VOCAB * C, VOCAB * C),
        "transformer.wpe": (32 * C, 32 * C),
        "transformer.h.0": (per_block, per_block),
        "transformer.h.1": (per_block, per_block),
        "transformer.ln_f": (2 * C, 2 * C),
    }
    assert report.fraction == 1.0
    n = f"{report.total:,}"
    assert str(report).splitlines()[-1] == f"trainable parameters: {n} of {n} (100.00%)"


def test_report_rejects_a_non_module():
    with pytest.raises(TypeError, match="nn.Module"):
        parameter_report([1, 2])


# ----------------------------------------------------------------------------- freezing
def test_freeze_and_unfreeze():
    model = micro_gpt()
    freeze(model)
    assert parameter_report(model).trainable == 0
    unfreeze(model.transformer.h[1])
    assert parameter_report(model).trainable == numel(model.transformer.h[1])
    with pytest.raises(TypeError, match="nn.Module"):
        freeze("model")


def test_last_blocks_only():
    model = micro_gpt()
    report = freeze_all_but(model, last_blocks=1)
    last = model.transformer.h[1]
    assert trainable_names(model) == {f"transformer.h.1.{n}" for n, _ in last.named_parameters()}
    assert report.trainable == numel(model.transformer.h[1])
    assert report.groups["transformer.h.0"][0] == 0


def test_head_of_a_gpt_is_the_tied_embedding():
    model = micro_gpt()
    report = freeze_all_but(model, head=True)
    assert trainable_names(model) == {"transformer.wte.weight"}  # lm_head.weight is the same tensor
    assert report.trainable == VOCAB * C


def test_norms_only():
    model = micro_gpt()
    report = freeze_all_but(model, norms=True)
    # ln_1 and ln_2 in each of 2 blocks plus ln_f, each with a weight and a bias of size C.
    assert report.trainable == 5 * 2 * C
    assert all(".ln_" in n for n in trainable_names(model))


def test_combined_choices_and_the_rest_really_stays_put_in_training():
    model = micro_gpt()
    freeze_all_but(model, last_blocks=1, norms=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(model, cyclic_blocks(n_blocks=8, block=16), None,
                      TrainConfig(max_steps=2, batch_size=4, lr=1e-2, progress=False),
                      collate_fn=stack_collate)
    trainer.fit()
    for n, p in model.named_parameters():
        moved = not torch.equal(p, before[n])
        should_move = n.startswith("transformer.h.1.") or ".ln_" in n
        assert moved == should_move, n


def test_lora_adapters_stay_trainable_and_a_classifier_head_can_join_them():
    model = SequenceClassifier(micro_gpt(), num_labels=3)
    attach_lora(model, r=2, alpha=4)
    report = freeze_all_but(model, head=True)
    lora = {f"body.transformer.h.{i}.attn.c_attn.lora_{ab}" for i in (0, 1) for ab in "AB"}
    assert trainable_names(model) == lora | {"score.weight", "score.bias"}
    assert report.trainable == 2 * 2 * (C + 3 * C) + 3 * C + 3


def test_bad_choices():
    with pytest.raises(ValueError, match="from 0 to 2.*has 2 blocks"):
        freeze_all_but(micro_gpt(), last_blocks=3)
    with pytest.raises(ValueError, match="from 0 to 2"):
        freeze_all_but(micro_gpt(), last_blocks=-1)
    with pytest.raises(ValueError, match="from 0 to 2"):
        freeze_all_but(micro_gpt(), last_blocks=True)
    with pytest.raises(ValueError, match="Nothing would be left to train"):
        freeze_all_but(micro_gpt())
    with pytest.raises(ValueError, match="no transformer.h"):
        freeze_all_but(nn.Sequential(nn.Linear(2, 2)), head=True)
    no_head = micro_gpt()
    del no_head.lm_head
    with pytest.raises(ValueError, match="no output layer called one of"):
        freeze_all_but(no_head, head=True)
    with pytest.raises(TypeError, match="nn.Module"):
        freeze_all_but(None, last_blocks=1)


def test_a_refused_choice_changes_nothing():
    model = micro_gpt()
    with pytest.raises(ValueError):
        freeze_all_but(model, last_blocks=5)
    assert parameter_report(model).trainable == model.num_parameters()
