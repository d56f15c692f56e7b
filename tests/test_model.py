"""The GPT model: shapes, attention paths, causality, initial loss, input errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from sftlearn.attention import build_attention_mask
from sftlearn.config import PRESETS, GPTConfig
from sftlearn.model import GPT

from conftest import VOCAB


def twin_models(config, **changes):
    """The same weights behind the fused and the math attention path."""
    torch.manual_seed(0)
    fused = GPT(config.with_(attention="fused", **changes)).eval()
    math_path = GPT(config.with_(attention="math", **changes)).eval()
    math_path.load_state_dict(fused.state_dict())
    return fused, math_path


def test_logits_shape_and_loss(micro_model):
    x = torch.randint(0, VOCAB, (3, 17))
    logits, loss = micro_model(x)
    assert logits.shape == (3, 17, VOCAB)
    assert loss is None


def test_untrained_loss_is_close_to_log_vocab(micro_model):
    # With small random weights every token is about equally likely: loss ≈ ln V.
    torch.manual_seed(1)
    x = torch.randint(0, VOCAB, (8, 64))
    y = torch.randint(0, VOCAB, (8, 64))
    _, loss = micro_model(x, targets=y)
    assert abs(loss.item() - math.log(VOCAB)) < 0.05


def test_loss_matches_torch_cross_entropy_with_ignored_targets(micro_model):
    x = torch.randint(0, VOCAB, (2, 10))
    y = torch.randint(0, VOCAB, (2, 10))
    y[0, :4] = -100
    logits, loss = micro_model(x, targets=y)
    keep = y != -100
    reference = -torch.log_softmax(logits, -1)[keep].gather(1, y[keep][:, None]).mean()
    assert torch.allclose(loss, reference, atol=1e-6)


def sft_like_batch(seed=0):
    """Right-padded rows whose targets are ignored except a short reply near each end."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, VOCAB, (3, 12), generator=g)
    y = torch.full((3, 12), -100)
    mask = torch.ones(3, 12, dtype=torch.long)
    for row, (start, end) in enumerate([(8, 12), (3, 6), (9, 10)]):
        y[row, start:end] = torch.randint(0, VOCAB, (end - start,), generator=g)
        mask[row, end:] = 0  # padding after the reply
    return x, y, mask


def test_targets_only_gives_the_same_loss_gradients_and_logits(micro_model):
    x, y, mask = sft_like_batch()
    full_logits, full_loss = micro_model(x, targets=y, attention_mask=mask)
    full_grads = torch.autograd.grad(full_loss, list(micro_model.parameters()))
    logits, loss = micro_model(x, targets=y, attention_mask=mask, targets_only=True)
    grads = torch.autograd.grad(loss, list(micro_model.parameters()))
    keep = y != -100
    assert logits.shape == (int(keep.sum()), VOCAB) == (8, VOCAB)
    torch.testing.assert_close(logits, full_logits[keep], atol=1e-5, rtol=0)  # reading order
    # the reference: torch's cross-entropy over the kept positions only
    torch.testing.assert_close(loss, F.cross_entropy(full_logits[keep], y[keep]), atol=1e-6, rtol=0)
    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=0)
    for a, b in zip(grads, full_grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_targets_only_through_the_trainer_loss_and_lora():
    from sftlearn.lora import attach_lora
    from sftlearn.train import default_loss, targets_only_loss

    x, y, mask = sft_like_batch(seed=1)
    batch = {"input_ids": x, "targets": y, "attention_mask": mask}
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64))
    attach_lora(model, r=4, target_modules=("c_attn", "c_fc"))
    torch.testing.assert_close(targets_only_loss(model, batch), default_loss(model, batch),
                               atol=1e-6, rtol=0)


def test_targets_only_needs_targets_and_fails_like_the_full_loss(micro_model):
    x, y, _ = sft_like_batch()
    with pytest.raises(ValueError, match="targets_only=True .* needs targets"):
        micro_model(x, targets_only=True)
    with pytest.raises(ValueError, match="expected targets of shape"):
        micro_model(x, targets=y[:, :5], targets_only=True)
    # every target ignored: NaN either way (the Trainer refuses such a step before the model)
    none = torch.full_like(y, -100)
    _, full = micro_model(x, targets=none)
    logits, only = micro_model(x, targets=none, targets_only=True)
    assert logits.shape == (0, VOCAB) and torch.isnan(only) and torch.isnan(full)


@pytest.mark.parametrize("padded", [False, True])
def test_math_and_fused_attention_agree(micro_config, padded):
    fused, math_path = twin_models(micro_config)
    x = torch.randint(0, VOCAB, (3, 40))
    mask = torch.ones(3, 40, dtype=torch.long)
    if padded:
        mask[1, 25:] = 0  # right padding
        mask[2, :7] = 0  # left padding
    kwargs = {"attention_mask": mask} if padded else {}
    a, _ = fused(x, **kwargs)
    b, _ = math_path(x, **kwargs)
    assert torch.allclose(a, b, atol=1e-5)


def test_attention_matches_an_independent_reference(micro_config):
    """One attention layer against a from-scratch softmax(QK^T/sqrt(d) + causal) V."""
    torch.manual_seed(0)
    layer = GPT(micro_config).transformer.h[0].attn.eval()
    x = torch.randn(2, 9, micro_config.n_embd)
    out, _ = layer(x)
    H, hd = micro_config.n_head, micro_config.head_dim
    q, k, v = (x @ layer.c_attn.weight.T + layer.c_attn.bias).chunk(3, dim=-1)
    heads = []
    for h in range(H):
        qh, kh, vh = (t[..., h * hd : (h + 1) * hd] for t in (q, k, v))
        scores = qh @ kh.transpose(1, 2) / math.sqrt(hd)
        future = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        heads.append(weights @ vh)
    reference = torch.cat(heads, dim=-1) @ layer.c_proj.weight.T + layer.c_proj.bias
    assert torch.allclose(out, reference, atol=1e-5)


def test_attention_weights_rows_sum_to_one_and_are_causal(micro_model):
    x = torch.randint(0, VOCAB, (2, 12))
    maps = micro_model.eval().attention_maps(x)  # (L, B, H, T, T)
    assert maps.shape == (2, 2, 2, 12, 12)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 2, 12), atol=1e-6)
    upper = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    assert maps[..., upper].abs().max() == 0


def test_attention_maps_of_a_model_with_dropout_are_repeatable_and_keep_its_mode(micro_config):
    torch.manual_seed(0)
    model = GPT(micro_config.with_(dropout=0.3))  # a new model is in training mode
    x = torch.randint(0, VOCAB, (1, 10))
    first, second = model.attention_maps(x), model.attention_maps(x)
    assert torch.equal(first, second)  # dropout off while the maps are computed
    assert torch.equal(first, model.eval().attention_maps(x))
    assert not model.train().attention_maps(x).isnan().any() and model.training


def test_attention_maps_give_every_submodule_its_own_mode_back(micro_config):
    torch.manual_seed(0)
    model = GPT(micro_config.with_(dropout=0.3)).train()
    model.transformer.h[0].eval()  # e.g. a frozen first block, deliberately without dropout
    before = {name: part.training for name, part in model.named_modules()}
    model.attention_maps(torch.randint(0, VOCAB, (1, 10)))
    assert {name: part.training for name, part in model.named_modules()} == before


@pytest.mark.parametrize("path", ["fused", "math"])
def test_causal_mask_never_leaks_the_future(micro_config, path):
    torch.manual_seed(0)
    model = GPT(micro_config.with_(attention=path)).eval()
    x = torch.randint(0, VOCAB, (2, 30))
    changed = x.clone()
    changed[:, 20:] = (changed[:, 20:] + 7) % VOCAB  # perturb only later tokens
    a, _ = model(x)
    b, _ = model(changed)
    assert torch.equal(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_padding_does_not_change_real_positions(micro_config):
    """Right padding: the real tokens' logits are the same with or without the pad tail."""
    fused, _ = twin_models(micro_config)
    x = torch.randint(1, VOCAB, (1, 12))
    padded = torch.cat([x, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 12), torch.zeros(1, 5)], dim=1).long()
    a, _ = fused(x)
    b, _ = fused(padded, attention_mask=mask)
    assert torch.allclose(a, b[:, :12], atol=1e-5)


@pytest.mark.parametrize("path", ["fused", "math"])
def test_left_padding_does_not_change_real_positions(micro_config, path):
    """Left padding: the real tokens come after the pads, so only the mask (and positions
    counted from the first real token) keep them from reading the pads."""
    model = GPT(micro_config.with_(attention=path)).eval()
    x = torch.randint(1, VOCAB, (1, 12))
    padded = torch.cat([torch.zeros(1, 5, dtype=torch.long), x], dim=1)
    mask = torch.cat([torch.zeros(1, 5), torch.ones(1, 12)], dim=1).long()
    alone, _ = model(x)
    masked, _ = model(padded, attention_mask=mask)
    unmasked, _ = model(padded)
    assert torch.allclose(alone, masked[:, 5:], atol=1e-5)
    assert not torch.allclose(alone, unmasked[:, 5:], atol=1e-3)  # the mask is what does it


def test_build_attention_mask_with_cache_offset():
    # 2 new queries after 3 cached keys: query 0 is position 3, query 1 is position 4.
    mask = build_attention_mask(2, 5, None, torch.device("cpu"))[0, 0]
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def test_weight_tying_and_parameter_count(micro_config):
    model = GPT(micro_config)
    assert model.lm_head.weight is model.transformer.wte.weight
    C, V, T, L = micro_config.n_embd, micro_config.vocab_size, micro_config.block_size, micro_config.n_layer
    per_block = 12 * C * C + 13 * C  # qkv+proj (4C²+4C), mlp (8C²+5C), two norms (4C)
    expected = V * C + T * C + L * per_block + 2 * C
    assert model.num_parameters() == expected


def test_gpt2_small_shape_has_124m_parameters():
    config = GPTConfig.preset("small", vocab_size=50257)
    C, V, T, L = config.n_embd, config.vocab_size, config.block_size, config.n_layer
    count = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
    assert count == 124_439_808  # GPT-2 small's published count (tied output layer)
    with torch.device("meta"):  # the model itself, without allocating its weights
        model = GPT(config)
    assert model.num_parameters() == 124_439_808


def test_parameter_names_follow_gpt2_layout(micro_model):
    names = set(micro_model.state_dict())
    for expected in ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                     "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.bias",
                     "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight",
                     "transformer.ln_f.bias", "lm_head.weight"]:
        assert expected in names


def test_flops_per_token_formula(micro_model):
    # Counted from the shape, not from num_parameters: the weights every token multiplies
    # (blocks, final norm, the output layer; not the position table) times 6, plus attention.
    cfg = micro_model.config
    C, V, L = cfg.n_embd, cfg.vocab_size, cfg.n_layer
    matmul_weights = L * (12 * C * C + 13 * C) + 2 * C + V * C
    assert micro_model.flops_per_token(32) == 6 * matmul_weights + 12 * L * 32 * C
    assert micro_model.flops_per_token() == 6 * matmul_weights + 12 * L * cfg.block_size * C


def test_presets_exist_and_unknown_preset_is_refused():
    assert {"tiny", "small"} <= set(PRESETS)
    with pytest.raises(ValueError, match="Unknown preset 'huge'.*tiny"):
        GPTConfig.preset("huge")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"n_embd": 30, "n_head": 4}, "divisible by n_head"),
        ({"n_layer": 0}, "positive int"),
        ({"dropout": 1.5}, "dropout"),
        ({"attention": "flash"}, "attention must be one of"),
    ],
)
def test_bad_config_values(changes, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig.preset("micro", **changes)


def test_unknown_config_field():
    with pytest.raises(ValueError, match="Unknown GPTConfig field"):
        GPTConfig.from_dict({"n_layers": 3})


def test_sequence_longer_than_context_is_refused(micro_model):
    with pytest.raises(ValueError, match="longer than the model's context.*block_size=64"):
        micro_model(torch.zeros(1, 65, dtype=torch.long))


@pytest.mark.parametrize("bad_id", [-1, VOCAB])
def test_token_ids_outside_vocabulary_are_refused(micro_model, bad_id):
    x = torch.zeros(1, 5, dtype=torch.long)
    x[0, 3] = bad_id
    with pytest.raises(ValueError, match=f"Token id {bad_id} is outside the vocabulary"):
        micro_model(x)


def test_wrong_input_types_and_shapes(micro_model):
    with pytest.raises(TypeError, match="torch.Tensor"):
        micro_model([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        micro_model(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="integer ids"):
        micro_model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="expected targets of shape"):
        micro_model(torch.zeros(1, 3, dtype=torch.long), targets=torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="input_ids must be a torch.Tensor"):  # ids checked first
        micro_model([[1, 2]], targets=torch.zeros(1, 2, dtype=torch.long))
    for bad in ([[1, 2, 3]], torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool)):
        with pytest.raises(TypeError, match="targets must be a tensor of integer ids"):
            micro_model(torch.zeros(1, 3, dtype=torch.long), targets=bad)


def test_targets_outside_the_vocabulary_are_named(micro_model):
    x = torch.zeros(1, 3, dtype=torch.long)
    for value, shown in ((VOCAB, str(VOCAB)), (-1, "-1")):  # -1 is a common slip for -100
        y = torch.tensor([[1, value, -100]])
        for targets_only in (False, True):
            with pytest.raises(ValueError, match=rf"target id {shown} is outside the range "
                                                 rf"0\.\.{VOCAB - 1} \(-100 marks a position to skip"):
                micro_model(x, targets=y, targets_only=targets_only)
    # -100 itself is fine, and so is the largest id
    _, loss = micro_model(x, targets=torch.tensor([[VOCAB - 1, -100, 0]]))
    assert torch.isfinite(loss)


def test_an_attention_mask_that_is_not_a_tensor_is_named(micro_model):
    x = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(TypeError, match=r"attention_mask must be a torch.Tensor.*got list.*torch.tensor\(mask\)"):
        micro_model(x, attention_mask=[[1, 1, 1]])
    with pytest.raises(TypeError, match=r"attention_mask must be a torch.Tensor"):
        micro_model.generate(x, 2, attention_mask=[[1, 1, 1]])


def test_int32_targets_give_the_int64_loss(micro_model):
    # int32 input ids are accepted, so int32 targets are too (cross_entropy wants int64)
    x = torch.randint(0, VOCAB, (2, 7))
    y = torch.randint(0, VOCAB, (2, 7))
    y[0, :3] = -100
    _, loss64 = micro_model(x, targets=y)
    _, loss32 = micro_model(x.int(), targets=y.int())
    assert torch.equal(loss32, loss64)
    _, only = micro_model(x, targets=y.int(), targets_only=True)
    torch.testing.assert_close(only, loss64)


@pytest.mark.parametrize("shape", [(1, 0), (0, 4), (0, 0)])
@pytest.mark.parametrize("attention", ["fused", "math"])
def test_an_empty_batch_or_sequence_is_refused_plainly(shape, attention):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64, attention=attention))
    empty = torch.zeros(shape, dtype=torch.long)
    message = rf"input_ids has shape \({shape[0]}, {shape[1]}\): the model needs at least one sequence"
    with pytest.raises(ValueError, match=message):
        model(empty)
    with pytest.raises(ValueError, match=message):
        model.generate(empty, 3)


def test_gpt_needs_a_config():
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"n_layer": 2})


def test_gelu_is_gpt2s_tanh_approximation(micro_model):
    mlp = micro_model.transformer.h[0].mlp
    x = 10 * torch.randn(4, micro_model.config.n_embd)  # pre-activations of about ±1.3, where the GELUs differ most
    h = x @ mlp.c_fc.weight.T + mlp.c_fc.bias
    gelu = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    assert torch.allclose(mlp(x), gelu @ mlp.c_proj.weight.T + mlp.c_proj.bias, atol=1e-6)
    exact = F.gelu(h) @ mlp.c_proj.weight.T + mlp.c_proj.bias  # the erf GELU would be caught
    assert (mlp(x) - exact).abs().max() > 2e-5  # 7e-5 here; the tanh match is within 1e-6
