"""Type a sentence, see where every attention head of a model looks.

:class:`AttentionExplorer` runs a GPT on the text in a text box and draws the attention
weights of each head as heat-maps (row = the token looking, column = the token looked at;
see :func:`sftlearn.plots.attention_heads`). A drop-down picks one layer or all of them.
The model's attention weights come from ``GPT.attention_maps``, which uses the explicit
"math" path of :mod:`sftlearn.attention`.

Its logic runs without a browser: set ``explorer.text.value`` (or ``explorer.layer.value``)
and read ``explorer.tokens``, ``explorer.weights`` (L, H, T, T) and ``explorer.status.value``.
Text the tokenizer cannot encode is refused with a message in ``status`` and the previous
picture stays; text longer than the model's context is cut to its last ``block_size`` tokens.

:func:`attention_explorer` shows the widget, or, when no front end can draw widgets
(:func:`sftlearn.widgets.headless`), a static figure of the same heat-maps.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import torch

from sftlearn.plots import attention_heads
from sftlearn.widgets import Explorer, figure_png, headless

ALL_LAYERS = -1  # the drop-down's value for "every layer"


def _check_model(model) -> None:
    if not hasattr(model, "attention_maps") or not hasattr(model, "config"):
        raise TypeError(f"the explorer needs an sftlearn GPT (with .attention_maps and .config), "
                        f"got {type(model).__name__}.")


def _check_layer(layer: int, n_layer: int) -> None:
    if layer != ALL_LAYERS and not (isinstance(layer, int) and 0 <= layer < n_layer):
        raise ValueError(f"layer must be between 0 and {n_layer - 1} (this model has {n_layer} "
                         f"layers), or {ALL_LAYERS} for all of them; got {layer!r}.")


def attention_for_text(model, tokenizer, text: str) -> tuple[list[str], torch.Tensor, int]:
    """Encode ``text``, run the model and return ``(tokens, weights, n_cut)``.

    ``tokens`` are the token strings, ``weights`` the attention of every layer and head,
    shape (L, H, T, T), and ``n_cut`` how many tokens were dropped from the front to fit the
    model's context (0 when it fits). Raises ValueError for empty text or characters the
    tokenizer does not know.
    """
    _check_model(model)
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    if not text:
        raise ValueError("the text is empty: type at least one character.")
    ids = tokenizer.encode(text)  # raises ValueError naming an unknown character
    block = model.config.block_size
    n_cut = max(0, len(ids) - block)
    ids = ids[n_cut:]
    was_training = model.training
    model.eval()  # no dropout: the weights must be the model's, not a random thinning of them
    try:
        device = next(model.parameters()).device
        maps = model.attention_maps(torch.tensor([ids], device=device))  # (L, 1, H, T, T)
    finally:
        model.train(was_training)
    tokens = [tokenizer.id_to_token(i) for i in ids]
    return tokens, maps[:, 0].float().cpu(), n_cut


def attention_figure(tokens: list[str], weights: torch.Tensor, layer: int = ALL_LAYERS,
                     title: str | None = None) -> plt.Figure:
    """The heat-maps of one layer's heads (or of every layer, ``layer=-1``) as a Figure."""
    _check_layer(layer, weights.shape[0])
    chosen = weights if layer == ALL_LAYERS else weights[layer]
    size = 2.4 if len(tokens) <= 24 else 3.4
    fig = attention_heads(chosen, tokens, panel_size=size, title=title)
    if layer != ALL_LAYERS:
        for ax in fig.axes:
            ax.set_title(f"layer {layer} · {ax.get_title()}", fontsize=9)
    return fig


class AttentionExplorer(Explorer):
    """A text box and a layer drop-down over the attention heat-maps of ``model``.

    ``text`` (ipywidgets Text) and ``layer`` (Dropdown: "all layers" or one layer) are the
    controls; ``status`` (HTML) says what is shown or what is wrong; ``image`` shows the
    heat-maps; ``widget`` is the whole panel. After a control changes, ``tokens`` and
    ``weights`` (L, H, T, T) describe the new text. ``draw=False`` skips drawing (tests).
    Display it as the last line of a cell, or with ``display(explorer)``.
    """

    def __init__(self, model, tokenizer, text: str = "Sam has a goat.", layer: int = ALL_LAYERS,
                 draw: bool = True):
        import ipywidgets as w  # imported here: the package must import without it

        _check_model(model)
        n_layer = model.config.n_layer
        _check_layer(layer, n_layer)
        self.model, self.tokenizer, self.draw = model, tokenizer, draw
        self.tokens: list[str] = []
        self.weights: torch.Tensor | None = None
        self.error: str | None = None
        self.text = w.Text(value=text, description="text", continuous_update=False,
                           placeholder="type a sentence and press Enter",
                           layout=w.Layout(width="32em"))
        options = [("all layers", ALL_LAYERS)] + [(f"layer {i}", i) for i in range(n_layer)]
        self.layer = w.Dropdown(options=options, value=layer, description="show")
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.widget = w.VBox([w.HBox([self.text, self.layer]), self.status, self.image])
        self.text.observe(self._on_text, names="value")
        self.layer.observe(self._on_layer, names="value")
        self._on_text()

    def _on_text(self, change: object = None) -> None:
        """Run the model on the new text; on bad text keep the last picture and say why."""
        try:
            tokens, weights, n_cut = attention_for_text(self.model, self.tokenizer, self.text.value)
        except ValueError as err:
            self.error = str(err)
            self.status.value = f"<span style='color:#b00'>✗ {html.escape(self.error)}</span>"
            return
        self.error = None
        self.tokens, self.weights = tokens, weights
        L, H, T, _ = weights.shape
        note = (f" The text was longer than the model's context of {T} tokens, so the first "
                f"{n_cut} were dropped." if n_cut else "")
        self.status.value = html.escape(
            f"{T} tokens, {L} layers × {H} heads. Row = the token looking, column = the token "
            f"looked at; each row sums to 1.{note}")
        self._redraw()

    def _on_layer(self, change: object = None) -> None:
        self._redraw()

    def figure(self) -> plt.Figure:
        """The current heat-maps as a matplotlib Figure."""
        if self.weights is None:
            raise ValueError(f"there is nothing to draw yet: {self.error}")
        return attention_figure(self.tokens, self.weights, self.layer.value)

    def _redraw(self) -> None:
        if not self.draw or self.weights is None:
            return
        self.image.value = figure_png(self.figure(), dpi=80)


def attention_explorer(model, tokenizer, text: str = "Sam has a goat.", layer: int = ALL_LAYERS):
    """Show the :class:`AttentionExplorer`, or its static figure when widgets cannot be drawn.

    Returns the explorer (displayed when it ends a cell), or ``None`` after showing the
    static heat-maps of ``text``.
    """
    if headless():
        _check_model(model)
        _check_layer(layer, model.config.n_layer)
        tokens, weights, _ = attention_for_text(model, tokenizer, text)
        attention_figure(tokens, weights, layer, title=f"attention of each head for {text!r}")
        plt.show()
        return None
    return AttentionExplorer(model, tokenizer, text, layer)
