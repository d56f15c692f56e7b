"""Choosing the next token: temperature, top-k and top-p, with sliders.

A language model gives one score (logit) ``z_i`` per vocabulary entry for the next token.
Turning those scores into a choice takes up to three steps, applied in this order (the order
of :func:`sftlearn.generation.next_token`):

1. **temperature** τ: ``softmax(z / τ)``. τ < 1 sharpens the distribution, τ > 1 flattens it,
   and τ = 0 means greedy decoding (always the most likely token);
2. **top-k**: keep the k most likely tokens, give the others probability 0, renormalise;
3. **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities add up
   to at least p, give the others probability 0, renormalise.

:func:`filter_stages` returns the distribution after each step, :func:`stages_figure` draws
them side by side, and :func:`sample_texts` writes a few continuations with one setting.
:func:`sampling_explorer` puts them behind sliders for a model and a prompt; when no front end
can draw widgets (:func:`sftlearn.widgets.headless`) it shows :func:`sampling_figure` and prints
a table of samples for a few settings instead. :class:`SamplingExplorer` holds the widget; its
logic runs without a browser: set ``explorer.temperature.value`` and read
``explorer.stages``, ``explorer.samples`` or ``explorer.status.value``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch

from sftlearn import plots
from sftlearn.generation import apply_temperature, check_sampling, filter_logits
from sftlearn.validation import check_int
from sftlearn.widgets import Explorer, check_in_range, check_slider_value, figure_png, headless

# (label, temperature, top_k, top_p) for the static table of samples.
DEFAULT_SETTINGS: tuple[tuple[str, float, int | None, float | None], ...] = (
    ("greedy (τ = 0)", 0.0, None, None),
    ("τ = 0.7", 0.7, None, None),
    ("τ = 1.0", 1.0, None, None),
    ("τ = 2.0", 2.0, None, None),
    ("τ = 2.0, top-k = 5", 2.0, 5, None),
    ("τ = 2.0, top-p = 0.9", 2.0, None, 0.9),
)


# The sliders' ranges: top-k 0 and top-p 1 mean "off".
TEMPERATURE = (0.0, 3.0)
TOP_K = (0, 50)
TOP_P = (0.05, 1.0)


# ----------------------------------------------------------------------------- the maths


@dataclass(frozen=True)
class Stage:
    """The next-token distribution after one step of the recipe."""

    label: str  # e.g. "top-k = 5"
    probs: torch.Tensor  # (V,) probabilities, summing to 1

    @property
    def kept(self) -> int:
        """How many tokens still have a probability above zero."""
        return int((self.probs > 0).sum())

    @property
    def entropy(self) -> float:
        """Entropy in nats; exp(entropy) is the "effective number of choices"."""
        return float(torch.special.entr(self.probs.double()).sum())


def filter_stages(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> list[Stage]:
    """The distribution of the next token after each step: the model's own (τ = 1), after the
    temperature, after top-k, after top-p. Steps that are switched off are left out.

    ``logits``: one score per vocabulary entry, shape (V,). The last stage is exactly the
    distribution that :func:`sftlearn.generation.next_token` samples from.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 1:
        raise ValueError("logits must be a 1-D tensor with one score per vocabulary entry, "
                         f"got {getattr(logits, 'shape', type(logits).__name__)}; "
                         "for a batch, pass one row: logits[0].")
    check_sampling(temperature, top_k, top_p)
    z = logits.detach().float()[None]  # (1, V): filter_logits works on batches
    stages = [Stage("model (τ = 1)", torch.softmax(z, -1)[0])]
    if temperature == 0:  # greedy: all the probability on the most likely token
        greedy = torch.zeros_like(z[0])
        greedy[z[0].argmax()] = 1.0
        return stages + [Stage("greedy (τ = 0)", greedy)]
    if temperature != 1:
        z = apply_temperature(z, temperature)
        stages.append(Stage(f"τ = {temperature:g}", torch.softmax(z, -1)[0]))
    if top_k is not None:
        z = filter_logits(z, top_k=top_k)
        stages.append(Stage(f"top-k = {top_k}", torch.softmax(z, -1)[0]))
    if top_p is not None and top_p < 1:
        z = filter_logits(z, top_p=top_p)
        stages.append(Stage(f"top-p = {top_p:g}", torch.softmax(z, -1)[0]))
    return stages


@torch.no_grad()
def next_token_logits(model, tokenizer, prompt: str) -> torch.Tensor:
    """The model's scores for the token after ``prompt``, shape (V,)."""
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty: give the model at least one character to continue.")
    device = next(model.parameters()).device
    block = model.config.block_size
    x = torch.tensor([ids[-block:]], device=device)  # (1, T): the most recent block_size tokens
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(x)
    finally:
        model.train(was_training)
    return logits[0, -1].float().cpu()  # (V,)


def sample_texts(model, tokenizer, prompt: str, n: int = 3, max_new_tokens: int = 80,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0) -> list[str]:
    """``n`` continuations of ``prompt`` (the new text only), reproducible through ``seed``.

    A private random generator is used, so sampling here never changes the global random state
    (a training run that samples along the way stays identical to one that does not).
    """
    check_sampling(temperature, top_k, top_p)
    check_int("n", n, fix="It is how many continuations to write.")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty: give the model at least one token to continue.")
    room = model.config.block_size - len(ids)
    if room < 1:
        raise ValueError(f"the prompt has {len(ids)} tokens and fills the model's context of "
                         f"{model.config.block_size}; shorten it.")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.tensor([ids] * n, dtype=torch.long, device=device)  # (n, T)
    out = model.generate(x, min(max_new_tokens, room), temperature=temperature, top_k=top_k,
                         top_p=top_p, generator=gen)
    return [tokenizer.decode(row[len(ids):].tolist()) for row in out.cpu()]


def token_label(tokenizer, token_id: int) -> str:
    """A token as it can be read on an axis: a space is ␣, a newline ⏎."""
    return plots.token_label(tokenizer.id_to_token(int(token_id)))


# ----------------------------------------------------------------------------- drawing


def stages_figure(stages: list[Stage], tokenizer, n_show: int = 10, title: str | None = None):
    """One bar chart per stage, over the same ``n_show`` tokens (the model's most likely ones)."""
    if not stages:
        raise ValueError("no stages to draw: pass the list that filter_stages returns.")
    check_int("n_show", n_show, fix="It is how many of the most likely tokens each chart shows.")
    order = torch.argsort(stages[0].probs, descending=True)[:n_show]
    labels = [plots.drawable(token_label(tokenizer, i)) for i in order.tolist()]
    # Chinese characters need a font that has them (without one, drawable() wrote code points).
    font = {"fontfamily": ["DejaVu Sans", plots.cjk_font()]} if plots.cjk_font() else {}
    # Word tokens (" pen", " kite") would overlap side by side: slant them; characters stay upright.
    slant = {"rotation": 60, "ha": "right"} if max(len(label) for label in labels) > 2 else {}
    fig, axes = plt.subplots(1, len(stages), figsize=(2.6 * len(stages), 3.3 if slant else 2.8), sharey=True)
    axes = [axes] if len(stages) == 1 else list(axes)
    for ax, stage in zip(axes, stages):
        shown = stage.probs[order]
        ax.bar(range(len(order)), shown.tolist(), color="tab:blue")
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(labels, fontsize=9, **slant, **font)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{stage.label}\n{stage.kept} kept, e^H = {math.exp(stage.entropy):.2f}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("probability")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sampling_figure(model, tokenizer, prompt: str, temperature: float = 2.0, top_k: int | None = 5,
                    top_p: float | None = 0.9, n_show: int = 10):
    """The static picture: the next-token distribution after ``prompt``, after each step."""
    stages = filter_stages(next_token_logits(model, tokenizer, prompt), temperature, top_k, top_p)
    return stages_figure(stages, tokenizer, n_show, title=f"next token after {prompt!r}")


def samples_table(model, tokenizer, prompt: str, settings=DEFAULT_SETTINGS, n: int = 2,
                  max_new_tokens: int = 80, seed: int = 0) -> list[tuple[str, str]]:
    """(setting, continuation) rows: ``n`` samples for each setting, same seed for all."""
    check_int("n", n, fix="It is how many samples each setting draws.")
    if not settings:
        raise ValueError("settings is empty: give at least one (label, temperature, top_k, top_p) row, "
                         "e.g. the default DEFAULT_SETTINGS.")
    rows = []
    for label, temperature, top_k, top_p in settings:
        for text in sample_texts(model, tokenizer, prompt, n, max_new_tokens, temperature,
                                 top_k, top_p, seed):
            rows.append((label, text))
    return rows


def _one_line(text: str) -> str:
    return text.replace("\n", " ⏎ ")


# ----------------------------------------------------------------------------- the widget


class SamplingExplorer(Explorer):
    """Sliders for temperature, top-k and top-p over the next-token distribution and samples.

    ``temperature`` (0 = greedy), ``top_k`` (0 = off) and ``top_p`` (1 = off) are ipywidgets
    sliders, ``prompt`` a text box and ``resample`` a button that draws new samples. After any
    change, ``stages`` holds the distributions, ``samples`` the continuations, ``status`` (HTML)
    a summary and ``image`` the bar charts; ``widget`` is the whole panel.
    """

    def __init__(self, model, tokenizer, prompt: str, temperature: float = 1.0,
                 top_k: int | None = 0, top_p: float | None = 1.0, n_samples: int = 3,
                 max_new_tokens: int = 60, draw: bool = True, seed: int = 0):
        import ipywidgets as w  # imported here: the package must import without it

        # None means "off" everywhere else (filter_stages, generate); the sliders' off is 0 / 1
        top_k = 0 if top_k is None else top_k
        top_p = 1.0 if top_p is None else top_p

        self.model, self.tokenizer = model, tokenizer
        self.n_samples, self.max_new_tokens, self.draw = n_samples, max_new_tokens, draw
        self.seed = seed
        style = {"description_width": "initial"}
        self.prompt = w.Text(value=prompt, description="prompt", style=style, continuous_update=False)
        self.temperature = w.FloatSlider(value=temperature, min=TEMPERATURE[0], max=TEMPERATURE[1], step=0.05,
                                         description="temperature τ", style=style,
                                         continuous_update=False)
        self.top_k = w.IntSlider(value=top_k, min=TOP_K[0], max=TOP_K[1], description="top-k (0 = off)",
                                 style=style, continuous_update=False)
        self.top_p = w.FloatSlider(value=top_p, min=TOP_P[0], max=TOP_P[1], step=0.05,
                                   description="top-p (1 = off)", style=style, continuous_update=False)
        for name, value, slider in (("temperature", temperature, self.temperature),
                                    ("top_k", top_k, self.top_k), ("top_p", top_p, self.top_p)):
            check_slider_value(name, value, slider)
        self.resample = w.Button(description="new samples")
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.samples_html = w.HTML()
        self.widget = w.VBox([
            self.prompt, w.HBox([self.temperature, self.top_k, self.top_p, self.resample]),
            self.status, self.image, self.samples_html,
        ])
        for control in (self.prompt, self.temperature, self.top_k, self.top_p):
            control.observe(self._update, names="value")
        self.resample.on_click(self._new_samples)
        self._update()

    def settings(self) -> tuple[float, int | None, float | None]:
        """(temperature, top_k, top_p) with the "off" positions turned into None."""
        k = int(self.top_k.value)
        p = float(self.top_p.value)
        return float(self.temperature.value), (k if k > 0 else None), (p if p < 1 else None)

    def _new_samples(self, button: object = None) -> None:
        self.seed += 1
        self._update()

    def _update(self, change: object = None) -> None:
        """Recompute the distributions and the samples for the current controls."""
        temperature, top_k, top_p = self.settings()
        prompt = self.prompt.value
        try:
            self.stages = filter_stages(next_token_logits(self.model, self.tokenizer, prompt),
                                        temperature, top_k, top_p)
            self.samples = sample_texts(self.model, self.tokenizer, prompt, self.n_samples,
                                        self.max_new_tokens, temperature, top_k, top_p, self.seed)
        except ValueError as err:  # e.g. a character the tokenizer does not know
            self.stages, self.samples = [], []
            self.status.value = f"<b>Cannot sample:</b> {html.escape(str(err))}"
            self.samples_html.value = ""
            return
        final = self.stages[-1]
        self.status.value = (
            f"<b>{final.label}</b>: {final.kept} of {final.probs.numel()} tokens can be chosen; "
            f"the most likely is "
            f"{html.escape(repr(token_label(self.tokenizer, int(final.probs.argmax()))))} "
            f"with p = {float(final.probs.max()):.2f}; effective number of choices "
            f"e^H = {math.exp(final.entropy):.2f}.")
        rows = "".join(f"<li><code>{_escape(prompt)}<b>{_escape(s)}</b></code></li>" for s in self.samples)
        self.samples_html.value = f"<ol>{rows}</ol>"
        if self.draw:
            self.image.value = self._png()

    def _png(self) -> bytes:
        return figure_png(stages_figure(self.stages, self.tokenizer))


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "⏎")


def sampling_explorer(model, tokenizer, prompt: str, temperature: float = 2.0, top_k: int | None = 5,
                      top_p: float | None = 0.9, settings=DEFAULT_SETTINGS, n: int = 2,
                      max_new_tokens: int = 60, seed: int = 0):
    """Show the explorer, or, when widgets cannot be drawn, the distributions after each step
    for one setting (:func:`sampling_figure`) and a printed table of samples for ``settings``.

    Returns the :class:`SamplingExplorer` (displayed when it ends a cell), or ``None`` after the
    static output. ``settings`` lists the rows of the static table; the live explorer has
    sliders instead.
    """
    if headless():
        # what the live explorer's sliders cannot show, the static figure refuses too
        check_in_range("temperature", temperature, *TEMPERATURE)
        if top_k is not None:
            check_in_range("top_k", top_k, *TOP_K)
        if top_p is not None:
            check_in_range("top_p", top_p, *TOP_P)
        # 0 for top-k and 1 for top-p mean "off", as on the live explorer's sliders
        top_k = top_k if top_k else None
        top_p = top_p if top_p is not None and top_p < 1 else None
        sampling_figure(model, tokenizer, prompt, temperature, top_k, top_p)
        plt.show()
        rows = samples_table(model, tokenizer, prompt, settings, n, max_new_tokens, seed)
        width = max(len(label) for label, _ in rows)
        print(f"prompt: {prompt!r}")
        for label, text in rows:
            print(f"{label:<{width}} | {_one_line(text)}")
        return None
    return SamplingExplorer(model, tokenizer, prompt, temperature=temperature, top_k=top_k,
                            top_p=top_p, n_samples=n, max_new_tokens=max_new_tokens, seed=seed)
