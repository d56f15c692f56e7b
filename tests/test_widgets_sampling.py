"""The sampling explorer: the stages of temperature / top-k / top-p, samples, the static output
and the widget driven without a browser."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import html

import pytest
import torch

from sftlearn.config import GPTConfig
from sftlearn.generation import filter_logits
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer
from sftlearn.widgets import sampling as sw

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.from_world()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = GPTConfig.preset("micro", vocab_size=tokenizer.vocab_size, block_size=64)
    return GPT(config).eval()


def test_stages_follow_the_recipe_in_order():
    stages = sw.filter_stages(LOGITS, temperature=0.5, top_k=3, top_p=0.9)
    assert [s.label for s in stages] == ["model (τ = 1)", "τ = 0.5", "top-k = 3", "top-p = 0.9"]
    assert torch.allclose(stages[0].probs, torch.softmax(LOGITS, -1))
    assert torch.allclose(stages[1].probs, torch.softmax(LOGITS / 0.5, -1))
    assert [s.kept for s in stages] == [6, 6, 3, 2]
    for stage in stages:
        assert stage.probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    # The last stage is what sftlearn.generation.next_token samples from.
    expected = torch.softmax(filter_logits(LOGITS[None] / 0.5, 3, 0.9), -1)[0]
    assert torch.allclose(stages[-1].probs, expected)


def test_switched_off_steps_are_left_out():
    assert [s.label for s in sw.filter_stages(LOGITS)] == ["model (τ = 1)"]
    assert [s.label for s in sw.filter_stages(LOGITS, top_p=1.0)] == ["model (τ = 1)"]
    assert [s.label for s in sw.filter_stages(LOGITS, top_k=2)] == ["model (τ = 1)", "top-k = 2"]


def test_temperature_sharpens_and_flattens():
    entropy = {t: sw.filter_stages(LOGITS, temperature=t)[-1].entropy for t in (0.5, 1.0, 2.0)}
    assert entropy[0.5] < entropy[1.0] < entropy[2.0] < math.log(6)
    greedy = sw.filter_stages(LOGITS, temperature=0)
    assert greedy[-1].label == "greedy (τ = 0)"
    assert greedy[-1].probs.tolist() == [1.0, 0, 0, 0, 0, 0]
    assert greedy[-1].kept == 1 and greedy[-1].entropy == 0.0


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        sw.filter_stages(LOGITS, temperature=-1)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        sw.filter_stages(LOGITS, top_k=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        sw.filter_stages(LOGITS, top_p=1.5)
    with pytest.raises(ValueError, match="pass one row"):
        sw.filter_stages(LOGITS[None])


def test_empty_tables_and_charts_are_refused_plainly(model, tokenizer):
    with pytest.raises(ValueError, match="settings is empty"):
        sw.samples_table(model, tokenizer, "Mia", settings=())
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        sw.samples_table(model, tokenizer, "Mia", n=0)
    with pytest.raises(ValueError, match="n_show must be a positive int, got 0"):
        sw.stages_figure(sw.filter_stages(LOGITS), tokenizer, n_show=0)


def test_next_token_logits_match_the_model(model, tokenizer):
    prompt = "Mia lives on the farm."
    logits = sw.next_token_logits(model, tokenizer, prompt)
    assert logits.shape == (tokenizer.vocab_size,)
    full, _ = model(torch.tensor([tokenizer.encode(prompt)]))
    assert torch.allclose(logits, full[0, -1])
    with pytest.raises(ValueError, match="prompt is empty"):
        sw.next_token_logits(model, tokenizer, "")


def test_samples_are_reproducible_and_leave_the_global_rng_alone(model, tokenizer):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = sw.sample_texts(model, tokenizer, "Tom has", n=3, max_new_tokens=12, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = sw.sample_texts(model, tokenizer, "Tom has", n=3, max_new_tokens=12, seed=5)
    assert a == b and len(a) == 3 and all(len(tokenizer.encode(t)) == 12 for t in a)
    assert sw.sample_texts(model, tokenizer, "Tom has", n=3, max_new_tokens=12, seed=6) != a
    greedy = sw.sample_texts(model, tokenizer, "Tom has", n=2, max_new_tokens=12, temperature=0)
    assert greedy[0] == greedy[1]
    # The context is 64 tokens: a long prompt leaves room for only a few new ones.
    assert len(tokenizer.encode(sw.sample_texts(model, tokenizer, "x" * 60, n=1, max_new_tokens=50)[0])) == 4
    with pytest.raises(ValueError, match="fills the model's context"):
        sw.sample_texts(model, tokenizer, "x" * 64, n=1)


def test_token_labels_make_whitespace_visible(tokenizer):
    assert sw.token_label(tokenizer, tokenizer.encode(" ")[0]) == "␣"
    assert sw.token_label(tokenizer, tokenizer.encode("\n")[0]) == "⏎"
    assert sw.token_label(tokenizer, tokenizer.encode("a")[0]) == "a"


def test_stages_figure_has_a_panel_per_stage(tokenizer):
    logits = torch.zeros(tokenizer.vocab_size)
    logits[tokenizer.encode("abcde")] = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.2])
    fig = sw.stages_figure(sw.filter_stages(logits, 2.0, 3, 0.9), tokenizer, n_show=5)
    try:
        assert len(fig.axes) == 4
        assert fig.axes[2].get_title().startswith("top-k = 3\n3 kept")
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcde")
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="no stages"):
        sw.stages_figure([], tokenizer)


def test_headless_explorer_draws_and_prints(monkeypatch, capsys, model, tokenizer):
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    settings = (("greedy", 0.0, None, None), ("τ = 1.5, top-k = 5", 1.5, 5, None))
    assert sw.sampling_explorer(model, tokenizer, "Mia", settings=settings, n=2, max_new_tokens=8) is None
    assert len(shown) == 1 and len(shown[0].axes) == 4  # model, τ = 2, top-k = 5, top-p = 0.9
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prompt: 'Mia'"
    assert len(lines) == 5 and lines[1].startswith("greedy             | ")
    plt.close("all")
    # 0 and 1 switch top-k and top-p off, as they do on the live explorer's sliders
    assert sw.sampling_explorer(model, tokenizer, "Mia", top_k=0, top_p=1.0, settings=settings, n=1,
                                max_new_tokens=4) is None
    assert len(shown) == 2 and len(shown[1].axes) == 2  # the model's distribution and τ = 2 only
    plt.close("all")


def test_widget_reacts_to_the_sliders(model, tokenizer):
    explorer = sw.SamplingExplorer(model, tokenizer, "Mia has a", n_samples=2, max_new_tokens=10)
    assert [s.label for s in explorer.stages] == ["model (τ = 1)"]
    assert len(explorer.samples) == 2
    assert bytes(explorer.image.value).startswith(b"\x89PNG")

    explorer.top_k.value = 3
    assert explorer.settings() == (1.0, 3, None)
    assert explorer.stages[-1].kept == 3
    assert "3 of 292 tokens can be chosen" in explorer.status.value

    explorer.temperature.value = 0.0
    assert explorer.stages[-1].label == "greedy (τ = 0)"
    assert explorer.samples[0] == explorer.samples[1]

    explorer.temperature.value = 2.0
    explorer.top_k.value = 0
    explorer.top_p.value = 0.5
    assert [s.label for s in explorer.stages] == ["model (τ = 1)", "τ = 2", "top-p = 0.5"]

    first = list(explorer.samples)
    explorer.resample.click()
    assert explorer.seed == 1 and explorer.samples != first


def test_widget_refuses_settings_its_sliders_cannot_show_and_keeps_n_and_seed(monkeypatch, model,
                                                                               tokenizer):
    for setting, message in (({"temperature": 5.0}, "temperature = 5.0 is outside"),
                             ({"top_k": 100}, "top_k = 100 is outside"),
                             ({"top_p": 0.01}, "top_p = 0.01 is outside")):
        with pytest.raises(ValueError, match=message):
            sw.SamplingExplorer(model, tokenizer, "Mia", draw=False, **setting)
    off = sw.SamplingExplorer(model, tokenizer, "Mia", draw=False, top_k=None, top_p=None)
    assert off.top_k.value == 0 and off.top_p.value == 1.0  # None means off, as in generate
    monkeypatch.setattr(sw, "headless", lambda: False)  # the live explorer, not the static one
    explorer = sw.sampling_explorer(model, tokenizer, "Mia has a", n=4, seed=7, max_new_tokens=5)
    assert explorer.n_samples == 4 and explorer.seed == 7 and len(explorer.samples) == 4
    with pytest.raises(ValueError, match="the prompt is empty"):
        sw.sample_texts(model, tokenizer, "", n=2)


def test_widget_explains_a_prompt_it_cannot_read(model, tokenizer):
    explorer = sw.SamplingExplorer(model, tokenizer, "Mia", draw=False)
    explorer.prompt.value = "🙂"
    assert explorer.status.value.startswith("<b>Cannot sample:</b>")
    assert explorer.samples == [] and explorer.stages == []
    explorer.prompt.value = "Tom"
    assert len(explorer.samples) == 3


def test_the_status_line_shows_special_tokens_and_messages_as_text(model, tokenizer):
    # The status is HTML: an unescaped '<|pad|>' (or '<' in a message) was read as a tag and
    # vanished from the line.
    special = tokenizer.pad_id

    def favour_a_special_token(module, inputs, logits):
        logits = logits.clone()
        logits[..., special] += 50.0
        return logits

    hook = model.lm_head.register_forward_hook(favour_a_special_token)
    try:
        explorer = sw.SamplingExplorer(model, tokenizer, "Mia", n_samples=1, max_new_tokens=2, draw=False)
    finally:
        hook.remove()
    name = tokenizer.id_to_token(special)
    assert name.startswith("<")
    assert f"the most likely is {html.escape(repr(name))} " in explorer.status.value
    explorer.prompt.value = "a <b> 🙂"
    assert explorer.status.value.startswith("<b>Cannot sample:</b> ")
    message = explorer.status.value.removeprefix("<b>Cannot sample:</b> ")
    assert "<" not in message and ">" not in message


@pytest.mark.parametrize("setting, message", [
    ({"temperature": 5.0}, r"temperature = 5.0 is outside the explorer's slider, which runs from 0 to 3"),
    ({"top_k": 100}, r"top_k = 100 is outside the explorer's slider, which runs from 0 to 50"),
    ({"top_p": 0.01}, r"top_p = 0.01 is outside the explorer's slider, which runs from 0.05 to 1"),
    ({"top_p": 1.5}, r"top_p = 1.5 is outside the explorer's slider"),
    ({"top_p": 0.0}, r"top_p = 0.0 is outside the explorer's slider"),
])
def test_live_and_static_explorers_refuse_the_same_settings(monkeypatch, model, tokenizer, setting,
                                                            message):
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    with pytest.raises(ValueError, match=message):
        sw.sampling_explorer(model, tokenizer, "Mia", n=1, max_new_tokens=2, **setting)
    monkeypatch.setattr(sw, "headless", lambda: False)
    with pytest.raises(ValueError, match=message):
        sw.sampling_explorer(model, tokenizer, "Mia", n=1, max_new_tokens=2, **setting)
    plt.close("all")


def test_a_whole_number_slider_refuses_a_fraction_instead_of_dropping_it(model, tokenizer):
    with pytest.raises(ValueError, match=r"top_k = 2.5 cannot be set on the explorer's slider, which "
                                         r"would show 2"):
        sw.SamplingExplorer(model, tokenizer, "Mia", top_k=2.5, draw=False)


def test_no_samples_is_refused_plainly(model, tokenizer):
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        sw.sample_texts(model, tokenizer, "Mia", n=0)
