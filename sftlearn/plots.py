"""Small plotting helpers the lessons share: heat-maps (attention, confusion matrices) and
labelled scatter plots (embedding projections).

Labels are drawn so that you can read them: whitespace tokens become visible symbols
(:func:`token_label`), and Chinese characters use a Chinese font when one is installed (or
appear as code points such as ``U+732B`` when none is, see :func:`drawable`).

Every function draws onto a matplotlib ``Axes`` (a new one when ``ax`` is None) and returns
it, or returns the ``Figure`` when it draws a grid of panels. None of them calls
``plt.show()``: the notebook cell does that, so a figure can still be changed before it is
shown. Inputs may be torch tensors, numpy arrays or nested lists.

Reading an attention heat-map: row i is the query (the token that is looking), column j is
the key (the token being looked at), and the colour of cell (i, j) is the weight token i
gives to token j. Each row sums to 1. Under a causal mask everything above the diagonal is 0.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# How characters that print as nothing are shown in axis labels.
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "": "∅"}

# Fonts that can draw Chinese, in order of preference; matplotlib's default font cannot.
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC",
    "Arial Unicode MS",
)


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed font that can draw Chinese characters, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


@functools.lru_cache(maxsize=1)
def _default_font_characters() -> frozenset[int]:
    """The code points matplotlib's default font can draw."""
    from matplotlib import font_manager, ft2font

    path = font_manager.findfont(font_manager.FontProperties(family=mpl.rcParams["font.family"]))
    return frozenset(ft2font.FT2Font(path).get_charmap())


def _missing_characters(text: str) -> list[str]:
    known = _default_font_characters()
    return [c for c in text if ord(c) not in known and not c.isspace()]


def drawable(text: str) -> str:
    """``text`` as it can be drawn: unchanged when the fonts can draw it; otherwise every
    character no installed font can draw is written as its code point, e.g. ``猫`` -> ``U+732B``
    (install a Chinese font such as Noto Sans CJK to see the characters themselves)."""
    if not _missing_characters(text) or cjk_font() is not None:
        return text
    known = _default_font_characters()
    return "".join(c if ord(c) in known or c.isspace() else f"U+{ord(c):04X}" for c in text)


def _font_for(texts: Sequence[str]) -> dict[str, Any]:
    """Text properties that let matplotlib draw ``texts`` (a Chinese fallback font if needed)."""
    if cjk_font() is not None and any(_missing_characters(t) for t in texts):
        return {"fontfamily": [mpl.rcParams["font.sans-serif"][0], cjk_font()]}
    return {}


def token_label(token: str) -> str:
    """A label you can see: a space becomes ``␣``, a line break ``⏎``, a tab ``⇥``. Spaces
    inside a word's token stay spaces (" the" reads well); a token of spaces alone shows each.

    >>> [token_label(t) for t in ["a", " ", "\\n", "the", "   "]]
    ['a', '␣', '⏎', 'the', '␣␣␣']
    """
    if not isinstance(token, str):
        token = str(token)
    if token in VISIBLE:
        return VISIBLE[token]
    if token.isspace():  # e.g. BPE's "   ": would otherwise be an empty-looking label
        return "".join(VISIBLE.get(c, c) for c in token)
    return token.replace("\n", "⏎").replace("\t", "⇥")


def _as_array(name: str, values: Any, dims: tuple[int, ...]) -> np.ndarray:
    """``values`` as a float numpy array with one of the allowed numbers of dimensions."""
    if hasattr(values, "detach"):  # a torch tensor (torch is not needed to plot numpy arrays)
        values = values.detach().float().cpu().numpy()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a tensor, array or nested list of numbers, "
                        f"got {type(values).__name__}.") from None
    if array.ndim not in dims:
        allowed = " or ".join(str(d) for d in dims)
        hint = ("For a batch, pick one example first (e.g. weights[0])." if array.ndim > max(dims)
                else "It has too few: pass the whole array, not one row or one number of it.")
        raise ValueError(f"{name} must have {allowed} dimensions, got shape {array.shape}. {hint}")
    return array


def _check_not_empty(name: str, array: np.ndarray) -> None:
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): there is nothing to draw.")


def _check_labels(name: str, labels: Sequence[Any] | None, size: int, axis: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [drawable(token_label(label)) for label in labels]
    if len(labels) != size:
        one = axis[:-2] if axis.endswith("sses") else axis[:-1]  # classes -> class, rows -> row
        raise ValueError(f"{name} has {len(labels)} labels but the matrix has {size} {axis}; "
                         f"give one label per {one}.")
    return labels


def heatmap(
    matrix: Any,
    *,
    row_labels: Sequence[Any] | None = None,
    col_labels: Sequence[Any] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cmap: str = "Blues",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    fmt: str = ".2f",
    colorbar: bool = False,
) -> plt.Axes:
    """Draw a 2-D ``matrix`` as coloured cells, row 0 at the top.

    ``annotate=True`` writes each value in its cell (with ``fmt``), in white on dark cells.
    Returns the Axes.
    """
    values = _as_array("matrix", matrix, (2,))
    _check_not_empty("matrix", values)
    rows, cols = values.shape
    row_labels = _check_labels("row_labels", row_labels, rows, "rows")
    col_labels = _check_labels("col_labels", col_labels, cols, "columns")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(1.0 + 0.45 * cols, 8.0), min(0.8 + 0.4 * rows, 7.0)))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    for labels, set_ticks, set_labels in ((col_labels, ax.set_xticks, ax.set_xticklabels),
                                          (row_labels, ax.set_yticks, ax.set_yticklabels)):
        if labels is not None:
            set_ticks(range(len(labels)))
            set_labels(labels, **_font_for(labels))
    if annotate:
        low, high = image.get_clim()  # the colour scale drawn: it leaves out NaN and ±inf
        middle = (low + high) / 2 if low is not None and high is not None else np.inf
        for i in range(rows):
            for j in range(cols):
                colour = "white" if values[i, j] > middle else "black"
                ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8, color=colour)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    _titles(ax, title, xlabel, ylabel)
    return ax


def _titles(ax: plt.Axes, title: str | None, xlabel: str | None, ylabel: str | None) -> None:
    if title:
        ax.set_title(drawable(title), fontsize=10, **_font_for([title]))
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)


def attention_heatmap(
    weights: Any,
    tokens: Sequence[str] | None = None,
    *,
    key_tokens: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    colorbar: bool = False,
) -> plt.Axes:
    """One attention matrix (queries × keys) as a heat-map, on a fixed 0..1 colour scale.

    ``tokens`` label the rows (the queries) and, for self-attention, the columns as well;
    for cross-attention give the other sequence as ``key_tokens``. ``annotate`` writes the
    weights into the cells; by default it does so when the matrix is at most 8 × 8.
    """
    values = _as_array("weights", weights, (2,))
    if annotate is None:
        annotate = max(values.shape) <= 8
    columns = key_tokens if key_tokens is not None else tokens
    ax = heatmap(values, row_labels=tokens, col_labels=columns, ax=ax, title=title,
                 xlabel="key (looked at)", ylabel="query (looking)", cmap="Blues",
                 vmin=0.0, vmax=1.0, annotate=annotate, colorbar=colorbar)
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    return ax


def attention_heads(
    weights: Any,
    tokens: Sequence[str] | None = None,
    *,
    key_tokens: Sequence[str] | None = None,
    title: str | None = None,
    panel_size: float = 2.6,
    annotate: bool | None = False,
) -> plt.Figure:
    """A grid of attention heat-maps: one panel per head, one row per layer.

    ``weights`` has shape (H, T_q, T_k) for the heads of one layer, or (L, H, T_q, T_k) for
    every layer (what ``GPT.attention_maps(ids)[:, 0]`` gives for the first sequence).
    Panels are titled "layer l · head h" (just "head h" for the heads of one layer). Returns
    the Figure.
    """
    values = _as_array("weights", weights, (3, 4))
    _check_not_empty("weights", values)
    one_layer = values.ndim == 3
    if one_layer:
        values = values[None]
    n_layer, n_head = values.shape[:2]
    # Checked before the figure exists, so a mistake leaves no empty grid behind.
    _check_labels("tokens", tokens, values.shape[2], "rows")
    _check_labels("key_tokens" if key_tokens is not None else "tokens",
                  key_tokens if key_tokens is not None else tokens, values.shape[3], "columns")
    fig, axes = plt.subplots(n_layer, n_head, figsize=(panel_size * n_head + 0.4, panel_size * n_layer + 0.5),
                             squeeze=False)
    for layer in range(n_layer):
        for head in range(n_head):
            name = f"head {head}" if one_layer else f"layer {layer} · head {head}"
            ax = axes[layer, head]
            attention_heatmap(values[layer, head], tokens, key_tokens=key_tokens, ax=ax,
                              annotate=annotate)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            # Axis names once per figure, not in every panel.
            if head > 0:
                ax.set_ylabel("")
            if layer > 0:
                ax.set_xlabel("")
    if title:
        fig.suptitle(drawable(title), fontsize=11, **_font_for([title]))
    fig.tight_layout()
    return fig


def labelled_scatter(
    points: Any,
    labels: Sequence[str] | None = None,
    *,
    groups: Sequence[Any] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
) -> plt.Axes:
    """Points in 2-D (e.g. embeddings projected with PCA), each with its text label.

    ``groups`` (one entry per point) colours the points by group, with a legend unless
    ``legend=False`` (when each point is its own group and its label already names it). A label
    that would land on one already written goes below its point instead of above.
    """
    xy = _as_array("points", points, (2,))
    if xy.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {xy.shape}; project to 2 dimensions first.")
    labels = _check_labels("labels", labels, len(xy), "points")
    if hasattr(groups, "tolist"):  # a tensor or array: its values, not 0-d tensors (hashed by identity)
        groups = groups.tolist()
    if groups is not None and len(groups) != len(xy):
        raise ValueError(f"groups has {len(groups)} entries but there are {len(xy)} points; "
                         "give one group per point.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    if groups is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    else:
        for group in dict.fromkeys(groups):  # first-seen order: a stable legend
            chosen = np.array([g == group for g in groups])
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=18, label=str(group))
        if legend:
            ax.legend(fontsize=8)
    if labels is not None:
        font = _font_for(labels)
        for (x, y), label, below in zip(xy, labels, _crowded(xy)):
            ax.annotate(label, (x, y), xytext=(3, -11) if below else (3, 3), textcoords="offset points",
                        fontsize=8, **font)
    _titles(ax, title, xlabel, ylabel)
    ax.grid(alpha=0.3)
    return ax


def _crowded(xy: np.ndarray) -> list[bool]:
    """For each point, whether an earlier point lies within 15% of the width and 8% of the
    height of the cloud: its label above the point would then sit on the earlier one's."""
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    near = np.abs(xy[:, None, :] - xy[None, :, :]) < np.array([0.15, 0.08]) * span  # (N, N, 2)
    return [bool(near[i, :i].all(axis=-1).any()) for i in range(len(xy))]


def plot_confusion_matrix(
    matrix: Any,
    class_names: Sequence[str],
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    normalise: bool = False,
) -> plt.Axes:
    """A confusion matrix: row = true class, column = predicted class, counts in the cells.

    ``normalise=True`` divides each row by its total, so a cell is the fraction of that
    true class predicted as the column's class (rows with no examples stay 0).
    """
    values = _as_array("matrix", matrix, (2,))
    if values.shape[0] != values.shape[1]:
        raise ValueError(f"a confusion matrix is square (classes × classes), got shape {values.shape}.")
    _check_labels("class_names", class_names, values.shape[0], "classes")  # named as passed
    if normalise:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    fmt = ".2f" if normalise or not np.allclose(values, np.round(values)) else ".0f"
    return heatmap(values, row_labels=class_names, col_labels=class_names, ax=ax, title=title,
                   xlabel="predicted", ylabel="true", annotate=True, fmt=fmt,
                   vmin=0.0, vmax=1.0 if normalise else None)
