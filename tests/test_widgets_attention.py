"""The attention explorer: run without a browser by setting the controls' values."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from sftlearn.config import GPTConfig
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer
from sftlearn.widgets import attention as aw


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer("abcdefghijklmnopqrstuvwxyz .")


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    config = GPTConfig.preset("micro", vocab_size=tok.vocab_size, block_size=16, n_embd=32)
    return GPT(config)  # the fused path: attention_maps still works (it uses the math path)


def test_attention_for_text_returns_tokens_and_every_layer_and_head(model, tok):
    tokens, weights, n_cut = aw.attention_for_text(model, tok, "a cat.")
    assert tokens == list("a cat.")
    assert weights.shape == (2, 2, 6, 6)  # (layers, heads, T, T)
    assert n_cut == 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 6))
    assert bool((weights.triu(1) == 0).all())  # causal: nothing above the diagonal


def test_long_text_keeps_the_last_block_size_tokens(model, tok):
    tokens, weights, n_cut = aw.attention_for_text(model, tok, "abcdefghijklmnopqrst")  # 20 > 16
    assert n_cut == 4 and "".join(tokens) == "efghijklmnopqrst"
    assert weights.shape[-1] == 16


def test_model_mode_is_restored(model, tok):
    model.train()
    aw.attention_for_text(model, tok, "ab")
    assert model.training
    model.eval()
    aw.attention_for_text(model, tok, "ab")
    assert not model.training


def test_typing_new_text_updates_tokens_weights_and_status(model, tok):
    explorer = aw.AttentionExplorer(model, tok, "the cat", draw=False)
    assert explorer.tokens == list("the cat")
    explorer.text.value = "a dog sat."
    assert explorer.tokens == list("a dog sat.")
    assert explorer.weights.shape == (2, 2, 10, 10)
    assert explorer.status.value.startswith("10 tokens, 2 layers × 2 heads.")
    assert explorer.error is None


def test_bad_text_keeps_the_last_picture_and_says_why(model, tok):
    explorer = aw.AttentionExplorer(model, tok, "the cat", draw=False)
    explorer.text.value = "the CAT"  # capitals are not in this tokenizer's vocabulary
    assert explorer.tokens == list("the cat")
    assert "cannot encode 'C'" in explorer.error
    assert "✗" in explorer.status.value
    explorer.text.value = ""
    assert explorer.error == "the text is empty: type at least one character."
    explorer.text.value = "ok"
    assert explorer.error is None and explorer.tokens == ["o", "k"]


def test_too_long_text_is_cut_with_a_note(model, tok):
    explorer = aw.AttentionExplorer(model, tok, "abcdefghijklmnopqrstuvwxyz", draw=False)
    assert len(explorer.tokens) == 16
    assert "the first 10 were dropped" in explorer.status.value


def test_layer_choice_changes_the_figure_and_draws_a_png(model, tok):
    explorer = aw.AttentionExplorer(model, tok, "a cat", draw=True)
    assert bytes(explorer.image.value[:4]) == b"\x89PNG"
    all_layers = explorer.figure()
    assert len(all_layers.axes) == 4
    first_png = bytes(explorer.image.value)
    explorer.layer.value = 1
    assert bytes(explorer.image.value) != first_png  # redrawn by the observer
    one_layer = explorer.figure()
    assert [ax.get_title() for ax in one_layer.axes] == ["layer 1 · head 0", "layer 1 · head 1"]


def test_headless_shows_a_static_figure(model, tok, monkeypatch):
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.gcf()))
    assert aw.attention_explorer(model, tok, "a cat", layer=0) is None
    assert len(shown) == 1
    assert [ax.get_title() for ax in shown[0].axes] == ["layer 0 · head 0", "layer 0 · head 1"]
    assert shown[0]._suptitle.get_text() == "attention of each head for 'a cat'"


def test_with_a_front_end_it_returns_the_explorer(model, tok, monkeypatch):
    monkeypatch.setattr(aw, "headless", lambda: False)
    explorer = aw.attention_explorer(model, tok, "a cat")
    assert isinstance(explorer, aw.AttentionExplorer)
    assert explorer.widget.children[0].children == (explorer.text, explorer.layer)


def test_bad_arguments_are_explained(model, tok):
    with pytest.raises(ValueError, match="layer must be between 0 and 1"):
        aw.AttentionExplorer(model, tok, "a", layer=2, draw=False)
    with pytest.raises(TypeError, match="needs an sftlearn GPT"):
        aw.AttentionExplorer(torch.nn.Linear(2, 2), tok, "a", draw=False)
    with pytest.raises(TypeError, match="text must be a str"):
        aw.attention_for_text(model, tok, 42)
