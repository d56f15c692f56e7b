"""Export to Hugging Face GPT-2 and back: transformers' own GPT2LMHeadModel is the reference.

Tolerance: logits of the two implementations agree to 1e-4 (float32; the kernels differ, e.g.
Conv1D's addmm against nn.Linear, so last bits may differ). The round trip back into sftlearn
copies tensors, so it is checked for exact equality.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sftlearn.config import GPTConfig
from sftlearn.export import (
    TOKENIZER_FILE,
    from_transformers,
    load_exported_tokenizer,
    to_transformers,
)
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer

transformers = pytest.importorskip("transformers")

VOCAB = 61
ATOL = 1e-4


def scrambled_model(seed=0, **overrides) -> GPT:
    """A micro GPT whose every parameter is random and far from its initial value, so that a
    transposed matrix, a lost bias or a wrong LayerNorm gain would change the logits."""
    torch.manual_seed(seed)
    config = GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32, **overrides)
    model = GPT(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):  # gains
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model.eval()


def hf_model(path, attn="sdpa"):
    model, info = transformers.GPT2LMHeadModel.from_pretrained(
        path, attn_implementation=attn, output_loading_info=True)
    # every weight came from our file, none was freshly initialised or left over
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    return model.eval()


def random_ids(B=3, T=20, seed=1):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ logits agree
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_transformers_gives_our_logits(tmp_path, attn):
    model = scrambled_model()
    to_transformers(model, None, tmp_path)
    hf = hf_model(tmp_path, attn)
    ids = random_ids()
    with torch.no_grad():
        ours, _ = model(ids)
        theirs = hf(ids).logits
    assert ours.abs().max() > 1.0  # the logits are far from uniform: the check has teeth
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


def test_logits_agree_with_padding_on_either_side(tmp_path):
    """With an attention mask the real tokens' logits agree. Hugging Face numbers positions
    0, 1, 2, ... regardless of the mask, we count real tokens only, so for left padding the
    HF model is given our position ids (what its generate() computes itself)."""
    model = scrambled_model()
    to_transformers(model, None, tmp_path)
    hf = hf_model(tmp_path)
    ids = random_ids(B=3, T=12)
    lengths = torch.tensor([12, 7, 3])
    right = (torch.arange(12)[None] < lengths[:, None]).long()  # (B, T)
    left = right.flip(1)
    for mask in (right, left):
        positions = GPT.position_ids(ids, mask)
        with torch.no_grad():
            ours, _ = model(ids, attention_mask=mask)
            theirs = hf(ids, attention_mask=mask, position_ids=positions).logits
        real = mask.bool()
        torch.testing.assert_close(theirs[real], ours[real], atol=ATOL, rtol=0)


def test_exported_activation_is_exactly_ours():
    """GPT-2's 'gelu_new' is our tanh-GELU written out in Python: equal to about 1e-6 but not
    bit for bit; 'gelu_pytorch_tanh' calls the same kernel. The erf GELU ('gelu') is a
    different function, so exporting under that name would be wrong."""
    from transformers.activations import ACT2FN

    x = torch.linspace(-6, 6, 10_001)
    ours = F.gelu(x, approximate="tanh")
    assert torch.equal(ACT2FN["gelu_pytorch_tanh"](x), ours)
    assert (ACT2FN["gelu_new"](x) - ours).abs().max() < 1e-6
    assert (ACT2FN["gelu"](x) - ours).abs().max() > 1e-4


def test_written_config_is_a_gpt2_config(tmp_path):
    model = scrambled_model()
    to_transformers(model, None, tmp_path)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, transformers.GPT2Config)
    shape = (config.n_layer, config.n_head, config.n_embd, config.n_positions, config.vocab_size)
    assert shape == (2, 2, 64, 32, VOCAB)
    assert config.activation_function == "gelu_pytorch_tanh"
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)


# --------------------------------------------------------------------- round trip
def test_round_trip_is_exact_and_keeps_the_tokenizer(tmp_path):
    model = scrambled_model(attention="math")
    tokenizer = CharTokenizer("abcdefgh ")
    to_transformers(model, tokenizer, tmp_path)
    again = from_transformers(tmp_path)
    assert not any(m.training for m in again.modules())  # evaluation mode, as from_pretrained
    assert again.config == model.config  # attention="math" came back through the hint
    ours, back = model.state_dict(), again.state_dict()
    assert ours.keys() == back.keys()
    for name in ours:
        assert torch.equal(ours[name], back[name]), name
    assert again.lm_head.weight is again.transformer.wte.weight  # still tied
    assert load_exported_tokenizer(tmp_path) == tokenizer

    to_transformers(model, None, tmp_path)  # re-export without one: no stale tokenizer left
    assert not (tmp_path / TOKENIZER_FILE).exists()
    assert load_exported_tokenizer(tmp_path) is None


def test_model_without_biases_exports_zero_biases_and_comes_back_without(tmp_path):
    model = scrambled_model(bias=False)
    to_transformers(model, None, tmp_path)
    hf = hf_model(tmp_path)
    assert all(not p.any() for n, p in hf.named_parameters() if n.endswith(".bias"))
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids)[0], atol=ATOL, rtol=0)
    again = from_transformers(tmp_path)
    assert again.config.bias is False
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  again.state_dict().values()))


def test_a_model_saved_by_transformers_imports(tmp_path):
    """Independent of our exporter: a GPT-2 built and saved by transformers itself (GPT-2's
    own 'gelu_new', no sftlearn entry in its config) gives the same logits after import."""
    torch.manual_seed(3)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=48, n_layer=3,
                                     n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=1, eos_token_id=2)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.2 * torch.randn_like(p))
    hf.save_pretrained(tmp_path)
    model = from_transformers(tmp_path).eval()
    assert (model.config.n_layer, model.config.n_head, model.config.n_embd) == (3, 4, 48)
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], hf(ids).logits, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------- LoRA
def test_lora_must_be_merged_and_then_exports_the_merged_weights(tmp_path):
    from sftlearn.lora import LoRAConfig, attach_lora, merge_lora

    model = scrambled_model()
    attach_lora(model, LoRAConfig(r=2, alpha=4, target_modules=["c_attn", "c_fc"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.3)  # a trained-looking adapter: B·A is not zero
    with pytest.raises(ValueError, match=r"not merged.*merge_lora"):
        to_transformers(model, None, tmp_path)
    ids = random_ids()
    with torch.no_grad():
        adapted, _ = model(ids)
    merge_lora(model)
    to_transformers(model, None, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(hf_model(tmp_path)(ids).logits, adapted, atol=ATOL, rtol=0)


# ---------------------------------------------------------------- bad input
def test_untied_output_layer_is_refused(tmp_path):
    model = scrambled_model()
    model.lm_head.weight = nn.Parameter(model.transformer.wte.weight.detach().clone())
    fix = r"model.lm_head.weight = model.transformer.wte.weight"
    with pytest.raises(ValueError, match=r"not tied.*" + fix):
        to_transformers(model, None, tmp_path)


def test_extra_parameters_are_refused(tmp_path):
    model = scrambled_model()
    model.transformer.h[0].gate = nn.Parameter(torch.ones(64))
    with pytest.raises(ValueError, match=r"does not have: \['transformer.h.0.gate'\]"):
        to_transformers(model, None, tmp_path)


def test_things_that_are_not_a_gpt_are_refused(tmp_path):
    from sftlearn.heads import SequenceClassifier

    with pytest.raises(TypeError, match=r"to_transformers\(model.body"):
        to_transformers(SequenceClassifier(scrambled_model(), 2), None, tmp_path)
    with pytest.raises(TypeError, match="got Linear"):
        to_transformers(nn.Linear(2, 2), None, tmp_path)


def test_wrong_tokenizer_and_file_path_are_refused(tmp_path):
    model = scrambled_model()
    big = CharTokenizer("".join(chr(c) for c in range(0x4E00, 0x4E00 + 80)))
    with pytest.raises(ValueError, match=f"{big.vocab_size} tokens but the model only {VOCAB}"):
        to_transformers(model, big, tmp_path)
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        to_transformers(model, None, file)


def test_import_refuses_what_our_gpt_cannot_be(tmp_path):
    with pytest.raises(FileNotFoundError, match="No config.json"):
        from_transformers(tmp_path)
    to_transformers(scrambled_model(), None, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())

    def import_with(**changes):
        (tmp_path / "config.json").write_text(json.dumps({**config, **changes}))
        return from_transformers(tmp_path)

    with pytest.raises(ValueError, match="model_type 'llama'"):
        import_with(model_type="llama")
    with pytest.raises(ValueError, match=r"n_inner=100.*4 \* n_embd = 256"):
        import_with(n_inner=100)
    with pytest.raises(ValueError, match="activation_function='relu'"):
        import_with(activation_function="relu")
    with pytest.raises(ValueError, match="different dropout rates"):
        import_with(attn_pdrop=0.2)
    with pytest.raises(ValueError, match="weights do not match"):
        import_with(n_layer=3)
    with pytest.raises(ValueError, match=r"lacks \['n_head'\]"):
        (tmp_path / "config.json").write_text(json.dumps(
            {k: v for k, v in config.items() if k != "n_head"}))
        from_transformers(tmp_path)


def test_import_refuses_an_untied_output_layer(tmp_path):
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=1,
                                     n_head=2, tie_word_embeddings=False,
                                     bos_token_id=1, eos_token_id=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tie_word_embeddings is off"):
        from_transformers(tmp_path)
