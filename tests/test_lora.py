"""sftlearn.lora: the LoRA layer, attaching, merging, adapter files, and agreement with PEFT."""

import copy
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sftlearn.checkpoint import load_model, load_weights, save_model, save_weights
from sftlearn.config import GPTConfig
from sftlearn.freeze import freeze_all_but, parameter_report
from sftlearn.lora import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_FILE,
    LoRAConfig,
    LoRALinear,
    attach_lora,
    load_adapter,
    lora_layers,
    lora_state_dict,
    merge_lora,
    save_adapter,
    trained_state_dict,
    unload_lora,
    unmerge_lora,
)
from sftlearn.heads import SequenceClassifier, TokenClassifier
from sftlearn.model import GPT
from sftlearn.train import TrainConfig, Trainer

from conftest import VOCAB, cyclic_blocks, stack_collate

ATOL = 1e-5  # outputs of two computations of the same function in float32


def micro_gpt(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32, **overrides))


def randomise_b(model, seed=1, std=0.1):
    """B starts at zero; give it values so that the adapters change the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * std)


def ids(batch=2, length=8, seed=0):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        (dict(r=0), ValueError, "positive int"),
        (dict(r=-4), ValueError, "positive int"),
        (dict(r=2.0), ValueError, "positive int"),
        (dict(r=True), ValueError, "positive int"),
        (dict(alpha=0), ValueError, "alpha must be a positive"),
        (dict(alpha="16"), ValueError, "alpha must be a positive"),
        (dict(alpha=math.inf), ValueError, "alpha must be a positive, finite number"),
        (dict(alpha=math.nan), ValueError, "alpha must be a positive, finite number"),
        (dict(alpha=True), ValueError, "alpha must be a positive"),
        (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        (dict(target_modules=[]), TypeError, "non-empty list"),
        (dict(target_modules=["c_attn", 3]), TypeError, "non-empty list"),
        (dict(target_modules="c_attn(("), ValueError, "not a valid one"),
    ],
)
def test_config_rejects_bad_settings(kwargs, error, words):
    with pytest.raises(error, match=words):
        LoRAConfig(**kwargs)


def test_config_scaling_and_list_targets_become_a_tuple():
    config = LoRAConfig(r=4, alpha=8, target_modules=["c_attn", "c_fc"])
    assert config.scaling == 2.0
    assert config.target_modules == ("c_attn", "c_fc")


# ------------------------------------------------------------------------------- layer
def test_a_is_kaiming_uniform_b_is_zero_and_the_start_is_the_base_layer():
    torch.manual_seed(0)
    base = nn.Linear(256, 96)
    layer = LoRALinear(base, r=64, alpha=16)
    bound = 1 / math.sqrt(256)  # kaiming_uniform with a=sqrt(5): U(-1/sqrt(fan_in), +)
    assert layer.lora_A.shape == (64, 256) and layer.lora_B.shape == (96, 64)
    assert float(layer.lora_A.detach().abs().max()) <= bound
    # A uniform distribution on [-b, b] has standard deviation b / sqrt(3).
    assert float(layer.lora_A.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert torch.count_nonzero(layer.lora_B) == 0
    assert layer.scaling == 16 / 64
    x = torch.randn(3, 5, 256)
    torch.testing.assert_close(layer(x), base(x), rtol=0, atol=0)


def test_layer_shares_and_freezes_the_base_parameters():
    base = nn.Linear(8, 6)
    layer = LoRALinear(base, r=2, alpha=4)
    assert layer.weight is base.weight and layer.bias is base.bias
    assert not layer.weight.requires_grad and not layer.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    assert set(dict(layer.named_parameters())) == {"weight", "bias", "lora_A", "lora_B"}


def test_layer_computes_base_plus_scaled_low_rank_update_in_float64():
    torch.manual_seed(0)
    base = nn.Linear(7, 5).double()
    layer = LoRALinear(base, r=3, alpha=6)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 7, dtype=torch.float64)
    W = base.weight + 2.0 * layer.lora_B @ layer.lora_A  # alpha / r = 2
    torch.testing.assert_close(layer(x), x @ W.T + base.bias, rtol=1e-12, atol=1e-12)


def test_rank_larger_than_the_layer_is_refused_and_equal_is_allowed():
    with pytest.raises(ValueError, match="rank at most 6.*r <= 6"):
        LoRALinear(nn.Linear(16, 6), r=7, alpha=7)
    assert LoRALinear(nn.Linear(16, 6), r=6, alpha=6).r == 6
    with pytest.raises(ValueError, match="positive int"):
        LoRALinear(nn.Linear(16, 6), r=0, alpha=1)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv1d(4, 4, 1), r=1, alpha=1)


@pytest.mark.parametrize("alpha", [-3.0, 0, "16", True, math.inf, math.nan])
def test_a_layer_built_directly_checks_alpha_as_the_config_does(alpha):
    # the scale alpha / r multiplies every update: a negative, zero, infinite or text alpha
    # gives a wrong model (inf: NaN outputs) instead of an error
    with pytest.raises(ValueError, match="alpha must be a positive, finite number"):
        LoRALinear(nn.Linear(8, 8), r=2, alpha=alpha)
    assert LoRALinear(nn.Linear(8, 8), r=2, alpha=4).scaling == 2.0


def test_merge_twice_and_unmerge_unmerged_are_errors():
    layer = LoRALinear(nn.Linear(4, 4), r=2, alpha=2)
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(ValueError, match="already merged.*unmerge"):
        layer.merge()


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 24),
    n_out=st.integers(1, 24),
    r_fraction=st.floats(0.0, 1.0),
    alpha=st.floats(0.25, 64.0),
    bias=st.booleans(),
    b_std=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_property_merge_equals_unmerged_forward_and_unmerge_restores_it(
    n_in, n_out, r_fraction, alpha, bias, b_std, seed
):
    torch.manual_seed(seed)
    r = 1 + int(r_fraction * (min(n_in, n_out) - 1))
    layer = LoRALinear(nn.Linear(n_in, n_out, bias=bias), r=r, alpha=alpha)
    with torch.no_grad():
        layer.lora_B.normal_(0.0, b_std)
    original_weight = layer.weight.detach().clone()
    x = torch.randn(6, n_in)
    with torch.no_grad():
        unmerged = layer(x)
        # float32 rounding grows with the size of the numbers involved, so the tolerance is
        # 1e-5 relative to the largest output (or absolute when outputs are below 1).
        atol = ATOL * max(1.0, float(unmerged.abs().max()))
        w_atol = 1e-6 * max(1.0, float(layer.delta_weight().abs().max()))
        layer.merge()
        torch.testing.assert_close(layer(x), unmerged, rtol=0, atol=atol)
        layer.unmerge()
        torch.testing.assert_close(layer(x), unmerged, rtol=0, atol=atol)
        torch.testing.assert_close(layer.weight, original_weight, rtol=0, atol=w_atol)


# --------------------------------------------------------------------------- attaching
def test_attach_by_name_list_matches_name_endings_and_freezes_the_rest():
    model = micro_gpt()
    names = attach_lora(model, LoRAConfig(r=4, alpha=8, target_modules=["c_attn", "c_fc"]))
    assert names == [f"transformer.h.{i}.{part}" for i in (0, 1) for part in ("attn.c_attn", "mlp.c_fc")]
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == sorted(f"{n}.lora_{ab}" for n in names for ab in "AB")
    # r * (in + out) per layer: c_attn 64 -> 192, c_fc 64 -> 256
    assert parameter_report(model).trainable == 2 * 4 * ((64 + 192) + (64 + 256))


def test_attach_by_regex_matches_whole_names_only():
    model = micro_gpt()
    names = attach_lora(model, target_modules=r"transformer\.h\.1\.(attn|mlp)\.c_proj", r=2, alpha=2)
    assert names == ["transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"]
    with pytest.raises(ValueError, match="matches no module"):
        attach_lora(micro_gpt(), target_modules="c_attn")  # a regex must match the whole name


def test_attach_keeps_base_parameter_names_so_saved_weights_still_fit(tmp_path):
    model = micro_gpt()
    before = set(model.state_dict())
    attach_lora(model, r=2, alpha=4)
    after = set(model.state_dict())
    assert before <= after
    assert after - before == {f"transformer.h.{i}.attn.c_attn.lora_{ab}" for i in (0, 1) for ab in "AB"}


def test_attach_bad_targets():
    with pytest.raises(ValueError, match=r"matches no module.*\['c_attn', 'c_fc', 'c_proj', 'lm_head'\]"):
        attach_lora(micro_gpt(), target_modules=["q_proj"])
    with pytest.raises(TypeError, match="LayerNorm, not a linear layer"):
        attach_lora(micro_gpt(), target_modules=["ln_1"])
    with pytest.raises(TypeError, match="CausalSelfAttention, not a linear layer.*c_attn"):
        attach_lora(micro_gpt(), target_modules=["attn"])
    with pytest.raises(ValueError, match="too large for transformer.h.0.attn.c_attn.*rank at most 64"):
        attach_lora(micro_gpt(), r=65, alpha=1)
    model = micro_gpt()
    attach_lora(model, r=2, alpha=2)
    with pytest.raises(ValueError, match="already has a LoRA adapter.*unload_lora"):
        attach_lora(model, r=2, alpha=2)
    with pytest.raises(TypeError, match="not both"):
        attach_lora(micro_gpt(), LoRAConfig(), r=2)
    with pytest.raises(TypeError, match="nn.Module"):
        attach_lora("model", r=2)


def test_a_failed_attach_leaves_the_model_untouched():
    model = micro_gpt()
    with pytest.raises(TypeError):
        attach_lora(model, target_modules=["c_attn", "ln_1"])
    # c_attn (64 -> 192) would take r=64, c_proj (64 -> 64) too, the vocabulary head not.
    with pytest.raises(ValueError, match="too large for lm_head"):
        attach_lora(model, r=64, alpha=1, target_modules=["c_attn", "lm_head"])
    assert not lora_layers(model)
    assert all(p.requires_grad for p in model.parameters())


def test_a_second_attach_keeps_the_first_adapters_trainable():
    model = micro_gpt()
    attach_lora(model, r=2, alpha=2, target_modules=["c_attn"])
    attach_lora(model, r=4, alpha=4, target_modules=["c_fc"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"transformer.h.{i}.{m}.lora_{ab}"
                         for i in (0, 1) for m in ("attn.c_attn", "mlp.c_fc") for ab in "AB"}
    assert {n: l.r for n, l in lora_layers(model).items()}["transformer.h.0.mlp.c_fc"] == 4


def test_training_moves_only_the_adapters():
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn", "c_proj"])
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    b_before = {n: l.lora_B.detach().clone() for n, l in lora_layers(model).items()}
    data = cyclic_blocks(n_blocks=8, block=16)
    trainer = Trainer(model, data, None, TrainConfig(max_steps=3, batch_size=4, lr=1e-2,
                      progress=False, weight_decay=0.0), collate_fn=stack_collate)
    trainer.fit()
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    for n, layer in lora_layers(model).items():
        assert not torch.equal(layer.lora_B, b_before[n])


# ------------------------------------------------------------------------------ merging
def test_merge_and_unmerge_on_a_model_keep_the_outputs():
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn", "c_proj", "c_fc"])
    randomise_b(model)
    x = ids()
    with torch.no_grad():
        unmerged = model(x)[0]
        merge_lora(model)
        assert all(layer.merged for layer in lora_layers(model).values())
        torch.testing.assert_close(model(x)[0], unmerged, rtol=0, atol=ATOL)
        unmerge_lora(model)
        torch.testing.assert_close(model(x)[0], unmerged, rtol=0, atol=ATOL)
    # and the adapter really changed the model (otherwise the comparisons prove nothing)
    assert (unmerged - micro_gpt()(x)[0]).abs().max() > 1e-2


def test_model_merge_errors():
    with pytest.raises(ValueError, match="no LoRA layers to merge.*attach_lora"):
        merge_lora(micro_gpt())
    model = micro_gpt()
    attach_lora(model, r=2, alpha=2)
    with pytest.raises(ValueError, match="nothing to unmerge"):
        unmerge_lora(model)
    merge_lora(model)
    with pytest.raises(ValueError, match="already merged.*unmerge_lora"):
        merge_lora(model)


def test_merging_into_a_tied_weight_is_refused():
    model = micro_gpt()
    attach_lora(model, r=2, alpha=2, target_modules=["lm_head"])
    randomise_b(model)
    embedding = model.transformer.wte.weight.detach().clone()
    with pytest.raises(ValueError, match="lm_head.*shared with transformer.wte.*weight tying"):
        merge_lora(model)
    with pytest.raises(ValueError, match="weight tying"):
        unload_lora(model)
    assert torch.equal(model.transformer.wte.weight, embedding)


def test_unload_gives_a_plain_gpt_that_saves_and_loads(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn", "c_fc"])
    randomise_b(model)
    x = ids()
    with torch.no_grad():
        adapted = model(x)[0]
        unload_lora(model, merge=True)
        assert not lora_layers(model)
        assert type(model.transformer.h[0].attn.c_attn) is nn.Linear
        torch.testing.assert_close(model(x)[0], adapted, rtol=0, atol=ATOL)
        save_model(model, tmp_path / "merged")
        torch.testing.assert_close(load_model(tmp_path / "merged")(x)[0], adapted, rtol=0, atol=ATOL)


@pytest.mark.parametrize("merge", [True, False])
def test_unload_gives_each_plain_layer_the_mode_of_the_layer_it_replaces(merge):
    model = micro_gpt().eval()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn", "c_fc"])
    model.transformer.h[1].train()  # one block in training mode, the rest in eval mode
    before = {name: part.training for name, part in model.named_modules()}
    unload_lora(model, merge=merge)
    after = {name: part.training for name, part in model.named_modules()}
    assert after == {name: before[name] for name in after}  # the adapters' own parts are gone


def test_unload_without_merge_restores_the_base_model():
    model = micro_gpt()
    base_out = micro_gpt()(ids())[0]
    attach_lora(model, r=4, alpha=8)
    randomise_b(model)
    merge_lora(model)
    unload_lora(model, merge=False)
    torch.testing.assert_close(model(ids())[0], base_out, rtol=0, atol=ATOL)


# --------------------------------------------------------------------- adapter files
def test_adapter_round_trip_into_a_fresh_base_model(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn", "c_proj"])
    randomise_b(model)
    expected = model(ids())[0]
    save_adapter(model, tmp_path)
    meta = json.loads((tmp_path / ADAPTER_CONFIG_FILE).read_text())
    assert meta["target_modules"] == sorted(lora_layers(model))
    assert meta["layers"]["transformer.h.0.attn.c_attn"] == {
        "r": 4, "alpha": 8.0, "dropout": 0.0, "in_features": 64, "out_features": 192}
    # Only the adapters are on disk: a few percent of the model.
    assert set(lora_state_dict(model)) == {f"{n}.lora_{ab}" for n in lora_layers(model) for ab in "AB"}
    assert (tmp_path / ADAPTER_FILE).stat().st_size < 0.1 * 4 * model.num_parameters()

    fresh = micro_gpt()  # the same base weights (same seed), no adapter yet
    torch.manual_seed(123)  # so that the adapters attached on loading start from other A's
    names = load_adapter(fresh, tmp_path)
    assert names == meta["target_modules"]
    for name, layer in lora_layers(fresh).items():  # both matrices come from the file
        assert torch.equal(layer.lora_A, lora_layers(model)[name].lora_A)
        assert torch.equal(layer.lora_B, lora_layers(model)[name].lora_B)
    torch.testing.assert_close(fresh(ids())[0], expected, rtol=0, atol=0)
    assert parameter_report(fresh).trainable == parameter_report(model).trainable


def test_adapters_take_the_mode_of_the_model_they_join(tmp_path):
    # With dropout in the adapters, a model in eval mode must stay deterministic after
    # attach_lora or load_adapter: the new layers take the mode of the layers they replace.
    model = micro_gpt().eval()
    attach_lora(model, r=4, alpha=8, dropout=0.5, target_modules=["c_attn"])
    assert not any(layer.training for layer in lora_layers(model).values())
    randomise_b(model)
    with torch.no_grad():
        torch.testing.assert_close(model(ids())[0], model(ids())[0], rtol=0, atol=0)
    save_adapter(model, tmp_path)
    fresh = micro_gpt().eval()
    load_adapter(fresh, tmp_path)
    assert not any(layer.training for layer in lora_layers(fresh).values())
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids())[0], model(ids())[0], rtol=0, atol=0)
    # and a model in training mode gets adapters in training mode, dropout on
    training = micro_gpt().train()
    attach_lora(training, r=4, alpha=8, dropout=0.5, target_modules=["c_attn"])
    assert all(layer.training for layer in lora_layers(training).values())


def test_adapter_loads_into_a_model_with_the_same_adapters_attached(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    randomise_b(model)
    save_adapter(model, tmp_path)
    other = micro_gpt()
    torch.manual_seed(123)  # other A's than the saved ones, until the file is loaded
    attach_lora(other, r=4, alpha=8)
    assert not torch.equal(other(ids())[0], model(ids())[0])
    load_adapter(other, tmp_path)
    torch.testing.assert_close(other(ids())[0], model(ids())[0], rtol=0, atol=0)


def test_adapter_that_does_not_fit_is_refused(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    save_adapter(model, tmp_path)
    wider = micro_gpt(n_embd=32, n_head=2)
    with pytest.raises(ValueError, match=r"c_attn is 96x32 here but 192x64 in the adapter"):
        load_adapter(wider, tmp_path)
    shallower = micro_gpt(n_layer=1)
    with pytest.raises(ValueError, match="transformer.h.1.attn.c_attn, which this model does not have"):
        load_adapter(shallower, tmp_path)
    other_targets = micro_gpt()
    attach_lora(other_targets, r=4, alpha=8, target_modules=["c_fc"])
    with pytest.raises(ValueError, match="the model has LoRA on .*c_fc"):
        load_adapter(other_targets, tmp_path)
    other_rank = micro_gpt()
    attach_lora(other_rank, r=2, alpha=8)
    with pytest.raises(ValueError, match="rank 2 here but 4 in the adapter"):
        load_adapter(other_rank, tmp_path)
    merged = micro_gpt()
    attach_lora(merged, r=4, alpha=8)
    merge_lora(merged)
    with pytest.raises(ValueError, match="is merged; call unmerge_lora"):
        load_adapter(merged, tmp_path)
    other_alpha = micro_gpt()  # same rank, another scale alpha / r: other outputs
    attach_lora(other_alpha, r=4, alpha=32)
    with pytest.raises(ValueError, match="alpha 32.0 here but 8.0 in the adapter"):
        load_adapter(other_alpha, tmp_path)
    with pytest.raises(FileNotFoundError, match="not a saved adapter"):
        load_adapter(micro_gpt(), tmp_path / "missing")
    with pytest.raises(ValueError, match="no LoRA layers to save"):
        save_adapter(micro_gpt(), tmp_path / "none")


# --------------------------------------------------------------- agreement with PEFT
def peft_twin(model, config: LoRAConfig):
    """PEFT's LoRA on a copy of ``model``, with our adapters' A and B copied across."""
    peft = pytest.importorskip("peft")
    twin = peft.get_peft_model(
        copy.deepcopy(model),
        peft.LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                        target_modules=list(config.target_modules)
                        if isinstance(config.target_modules, tuple) else config.target_modules),
    )
    return twin


def test_outputs_and_parameter_counts_match_peft():
    config = LoRAConfig(r=4, alpha=12, target_modules=["c_attn", "c_proj", "c_fc"])
    base = micro_gpt()
    twin = peft_twin(base, config)
    model = copy.deepcopy(base)
    names = attach_lora(model, config)
    randomise_b(model)
    theirs = dict(twin.named_parameters())
    peft_names = {n.removeprefix("base_model.model.").removesuffix(".lora_A.default.weight")
                  for n in theirs if n.endswith("lora_A.default.weight")}
    assert peft_names == set(names)  # the same layers are adapted
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            theirs[f"base_model.model.{name}.lora_A.default.weight"].copy_(layer.lora_A)
            theirs[f"base_model.model.{name}.lora_B.default.weight"].copy_(layer.lora_B)
    x = ids(batch=3, length=12)
    with torch.no_grad():
        ours = model(x)[0]
        torch.testing.assert_close(ours, twin(x)[0], rtol=0, atol=ATOL)
        assert (ours - base(x)[0]).abs().max() > 1e-2  # B is not zero: the test means something
        merge_lora(model)
        twin.merge_adapter()
        torch.testing.assert_close(model(x)[0], twin(x)[0], rtol=0, atol=ATOL)
    trainable, total = twin.get_nb_trainable_parameters()
    report = parameter_report(model)
    assert (report.trainable, report.total) == (trainable, total)


def test_regex_targets_select_the_same_layers_as_peft():
    config = LoRAConfig(r=2, alpha=2, target_modules=r".*\.h\.1\..*c_(attn|fc)")
    twin = peft_twin(micro_gpt(), config)
    model = micro_gpt()
    names = attach_lora(model, config)
    peft_names = sorted(n.removeprefix("base_model.model.") for n, m in twin.named_modules()
                        if hasattr(m, "lora_A") and not isinstance(m, nn.ModuleDict))
    assert names == peft_names == ["transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_fc"]
    assert parameter_report(model).trainable == twin.get_nb_trainable_parameters()[0]


def test_a_refused_adapter_load_leaves_the_model_as_it_was(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    save_adapter(model, tmp_path)
    (tmp_path / ADAPTER_FILE).unlink()  # an incomplete copy: the config without the tensors
    fresh = micro_gpt()
    with pytest.raises(FileNotFoundError, match="No adapter file at .*adapter.safetensors. Save the adapter again"):
        load_adapter(fresh, tmp_path)
    assert lora_layers(fresh) == {}
    assert all(p.requires_grad for p in fresh.parameters())


def test_an_adapter_folder_mixing_two_saves_is_refused_and_the_model_left_alone(tmp_path):
    # save_adapter writes the tensors, then the JSON that vouches for them. Interrupted between
    # the two, the folder holds new tensors and the previous JSON: same layers and shapes, so
    # only the digest can tell.
    first, second = micro_gpt(), micro_gpt()
    for seed, model in enumerate((first, second), start=1):
        attach_lora(model, r=4, alpha=8)
        randomise_b(model, seed=seed)
    save_adapter(first, tmp_path / "a")
    save_adapter(second, tmp_path / "b")
    (tmp_path / "b" / ADAPTER_FILE).replace(tmp_path / "a" / ADAPTER_FILE)
    fresh = micro_gpt()
    with pytest.raises(ValueError, match="come from different saves.*interrupted.*Save the adapter again"):
        load_adapter(fresh, tmp_path / "a")
    assert lora_layers(fresh) == {}
    save_adapter(second, tmp_path / "a")  # saved again, whole: it loads
    assert load_adapter(fresh, tmp_path / "a")


def test_a_damaged_adapter_file_is_named(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    save_adapter(model, tmp_path)
    data = (tmp_path / ADAPTER_FILE).read_bytes()
    (tmp_path / ADAPTER_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="adapter.safetensors is not a readable safetensors file.*Save the adapter again"):
        load_adapter(micro_gpt(), tmp_path)


@pytest.mark.parametrize("key", ["weights_digest", "trained"])
def test_an_adapter_saved_by_an_earlier_version_still_loads(tmp_path, key):
    # Folders written before the digest existed, or before the parameters trained beside the
    # adapters were kept, have no such entry in their JSON: nothing to compare, nothing more.
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    randomise_b(model)
    save_adapter(model, tmp_path)
    meta = json.loads((tmp_path / ADAPTER_CONFIG_FILE).read_text())
    removed = meta.pop(key)
    if key == "trained":
        assert removed == {}  # adapters alone: nothing else was trainable
    (tmp_path / ADAPTER_CONFIG_FILE).write_text(json.dumps(meta))
    fresh = micro_gpt()
    load_adapter(fresh, tmp_path)
    x = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        assert torch.equal(fresh(x)[0], model(x)[0])


def trained_beside_the_adapters(model, seed=2):
    """LoRA plus the model's output layer trainable (a head, or a GPT's tied embeddings), with
    values that differ from the base model's, as after training."""
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn"])
    freeze_all_but(model, head=True)
    randomise_b(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def test_embeddings_trained_beside_the_adapters_are_saved_with_them(tmp_path):
    # "LoRA + embeddings" (chapter 10): the embedding matrix is trained too, and an adapter
    # without it would load into the base model as another model, silently.
    model = trained_beside_the_adapters(micro_gpt())
    save_adapter(model, tmp_path)
    meta = json.loads((tmp_path / ADAPTER_CONFIG_FILE).read_text())
    wte = model.transformer.wte.weight
    assert meta["trained"] == {"transformer.wte.weight": list(wte.shape)}  # tied: stored once
    assert set(trained_state_dict(model)) == {"transformer.wte.weight"}
    fresh = micro_gpt()
    assert not torch.equal(fresh.transformer.wte.weight, wte)
    load_adapter(fresh, tmp_path)
    assert torch.equal(fresh.transformer.wte.weight, wte)
    assert fresh.lm_head.weight is fresh.transformer.wte.weight  # still tied
    with torch.no_grad():
        assert torch.equal(fresh(ids())[0], model(ids())[0])
    # trainable as when it was saved, so that training can go on where it stopped
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == {
        n for n, p in model.named_parameters() if p.requires_grad}


def test_a_task_head_trained_beside_the_adapters_is_saved_with_them(tmp_path):
    body = micro_gpt()
    model = trained_beside_the_adapters(SequenceClassifier(body, num_labels=3))
    save_adapter(model, tmp_path)
    assert set(json.loads((tmp_path / ADAPTER_CONFIG_FILE).read_text())["trained"]) == {
        "score.weight", "score.bias"}
    torch.manual_seed(7)  # another random head until the file is loaded
    fresh = SequenceClassifier(micro_gpt(), num_labels=3)
    load_adapter(fresh, tmp_path)
    with torch.no_grad():
        assert torch.equal(fresh(ids())[0], model(ids())[0])
    # a head of another size, or a model without the head, is refused and left alone
    for other, words in ((SequenceClassifier(micro_gpt(), num_labels=2),
                          r"score.weight is \[2, 64\] here but \[3, 64\] in the adapter"),
                         (TokenClassifier(micro_gpt(), num_labels=3), None)):
        before = copy.deepcopy(other.state_dict())
        if words is None:  # the same names and shapes: a token head takes a sequence head's file
            load_adapter(other, tmp_path)
            continue
        with pytest.raises(ValueError, match=words):
            load_adapter(other, tmp_path)
        assert lora_layers(other) == {}
        assert all(torch.equal(t, before[n]) for n, t in other.state_dict().items())
    with pytest.raises(ValueError, match="holds a trained score.weight, which this model does not have"):
        load_adapter(micro_gpt(), tmp_path)


def test_an_adapter_whose_layer_is_merged_and_trainable_is_not_saved(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8, target_modules=["c_attn"])
    layer = lora_layers(model)["transformer.h.0.attn.c_attn"]
    layer.weight.requires_grad_(True)
    merge_lora(model)
    with pytest.raises(ValueError, match="merged and its weight is trainable.*unmerge_lora"):
        save_adapter(model, tmp_path)
    unmerge_lora(model)
    save_adapter(model, tmp_path)  # unmerged, the weight is saved without the update
    assert "transformer.h.0.attn.c_attn.weight" in json.loads(
        (tmp_path / ADAPTER_CONFIG_FILE).read_text())["trained"]


def test_a_merged_lora_model_is_not_saved_whole_and_loading_a_lora_model_says_why(tmp_path):
    model = micro_gpt()
    attach_lora(model, r=4, alpha=8)
    randomise_b(model)
    merge_lora(model)
    with pytest.raises(ValueError, match=r"merged into its weights.*unload_lora\(model\)"):
        save_model(model, tmp_path / "merged")
    unmerge_lora(model)
    save_model(model, tmp_path / "with-adapters")  # a training checkpoint keeps its adapters
    with pytest.raises(ValueError, match=r"holds LoRA adapters: attach the same adapters first"):
        load_model(tmp_path / "with-adapters")
    unload_lora(model)  # merged in and removed: a plain model that loads anywhere
    save_model(model, tmp_path / "plain")
    torch.testing.assert_close(load_model(tmp_path / "plain")(ids())[0], model(ids())[0])


def test_weights_are_not_loaded_into_a_model_whose_adapters_are_merged(tmp_path):
    # A merged layer skips its adapter, so loaded adapters would do nothing, and unmerge_lora
    # would then subtract from the loaded weights an update they never held.
    trained = micro_gpt()
    attach_lora(trained, r=4, alpha=8)
    randomise_b(trained)
    save_weights(trained, tmp_path / "w.safetensors")
    merged = micro_gpt(seed=1)
    attach_lora(merged, r=4, alpha=8)
    merge_lora(merged)
    weights = {name: t.clone() for name, t in merged.state_dict().items()}
    with pytest.raises(ValueError, match=r"merged into its weights.*unmerge_lora\(model\) before loading"):
        load_weights(merged, tmp_path / "w.safetensors")
    assert all(torch.equal(t, weights[name]) for name, t in merged.state_dict().items())  # unchanged
    unmerge_lora(merged)
    load_weights(merged, tmp_path / "w.safetensors")  # the way the message shows
    torch.testing.assert_close(merged(ids())[0], trained(ids())[0], rtol=0, atol=ATOL)
