"""The shared plotting helpers: what they draw, and their messages for bad input."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sftlearn import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_token_labels_make_whitespace_visible():
    assert [plots.token_label(t) for t in ["a", " ", "\n", "\t", "", "ab\ncd", 7, "  ", " \n\t", " the"]] == [
        "a", "␣", "⏎", "⇥", "∅", "ab⏎cd", "7", "␣␣", "␣⏎⇥", " the"]


def test_heatmap_draws_the_matrix_with_labels_and_values():
    ax = plots.heatmap([[0.0, 1.0], [2.0, 3.0]], row_labels=["x", " "], col_labels=["a", "b"],
                       annotate=True, fmt=".1f", title="t", xlabel="cols", ylabel="rows")
    np.testing.assert_array_equal(ax.images[0].get_array(), [[0.0, 1.0], [2.0, 3.0]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "␣"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.0", "1.0", "2.0", "3.0"]
    # dark cells (above the middle of the colour range) get white text
    assert [t.get_color() for t in ax.texts] == ["black", "black", "white", "white"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("t", "cols", "rows")


def test_attention_heatmap_uses_a_fixed_scale_and_names_the_axes():
    weights = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    ax = plots.attention_heatmap(weights, ["h", "i"])
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.get_ylabel() == "query (looking)" and ax.get_xlabel() == "key (looked at)"
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "0.25", "0.75"]  # small: annotated


def test_attention_heatmap_for_cross_attention_and_big_matrices():
    ax = plots.attention_heatmap(torch.full((2, 3), 1 / 3), ["x", "y"], key_tokens=["a", "b", "c"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    ax = plots.attention_heatmap(torch.full((9, 9), 1 / 9))
    assert len(ax.texts) == 0  # larger than 8 × 8: no numbers in the cells


def test_attention_heads_grid_for_one_layer_and_for_all_layers():
    one = plots.attention_heads(torch.softmax(torch.randn(3, 4, 4), -1), list("abcd"))
    assert [ax.get_title() for ax in one.axes] == ["head 0", "head 1", "head 2"]
    every = plots.attention_heads(np.full((2, 2, 3, 3), 1 / 3), list("abc"), title="all")
    assert [ax.get_title() for ax in every.axes] == [
        "layer 0 · head 0", "layer 0 · head 1", "layer 1 · head 0", "layer 1 · head 1"]
    assert every._suptitle.get_text() == "all"


def test_labelled_scatter_with_groups():
    ax = plots.labelled_scatter([[0, 0], [1, 1], [2, 0]], ["cat", "dog", "red"],
                                groups=["animal", "animal", "colour"])
    assert [t.get_text() for t in ax.texts] == ["cat", "dog", "red"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["animal", "colour"]


def test_labelled_scatter_puts_a_crowded_label_below_its_point():
    # B sits next to A (same loss, a little slower): its label goes below; C is far from both.
    ax = plots.labelled_scatter([[1.3, 1.55], [1.4, 1.57], [2.5, 2.2]], ["A", "B", "C"],
                                groups=["A", "B", "C"], legend=False)
    offsets = {t.get_text(): t.xyann for t in ax.texts}
    assert offsets == {"A": (3, 3), "B": (3, -11), "C": (3, 3)}
    assert ax.get_legend() is None
    assert len({tuple(c.get_facecolor()[0]) for c in ax.collections}) == 3  # one colour per group


def test_confusion_matrix_counts_and_normalised():
    ax = plots.plot_confusion_matrix([[3, 1], [0, 4]], ["neg", "pos"])
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    ax = plots.plot_confusion_matrix([[3, 1], [0, 0]], ["neg", "pos"], normalise=True)
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "0.00"]


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match=r"must have 2 dimensions, got shape \(2, 2, 2\)\. For a batch, pick one"):
        plots.heatmap(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"must have 2 dimensions, got shape \(4,\)\. It has too few"):
        plots.heatmap(np.zeros(4))
    with pytest.raises(ValueError, match="row_labels has 3 labels but the matrix has 2 rows"):
        plots.heatmap(np.zeros((2, 2)), row_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="must have 3 or 4 dimensions"):
        plots.attention_heads(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="must be a tensor, array or nested list of numbers"):
        plots.heatmap([["a", "b"]])
    with pytest.raises(ValueError, match="project to 2 dimensions first"):
        plots.labelled_scatter(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="give one group per point"):
        plots.labelled_scatter(np.zeros((4, 2)), groups=["a"])
    with pytest.raises(ValueError, match="a confusion matrix is square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"])


def test_chinese_labels_without_a_chinese_font_become_code_points(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plots.drawable("猫 cat") == "U+732B cat"
    assert plots.drawable("hóng ␣ ⏎") == "hóng ␣ ⏎"  # the default font draws these
    ax = plots.attention_heatmap(torch.eye(2), ["猫", "a"], title="猫")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["U+732B", "a"]
    assert ax.get_title() == "U+732B"


def test_chinese_labels_with_a_chinese_font_are_kept(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Serif")  # any installed font will do here
    assert plots.drawable("猫 cat") == "猫 cat"
    ax = plots.attention_heatmap(torch.eye(2), ["猫", "a"])
    label = ax.get_yticklabels()[0]
    assert label.get_text() == "猫"
    assert "DejaVu Serif" in label.get_fontfamily()


def test_empty_input_is_refused_plainly_and_leaves_no_figure_behind():
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=r"matrix is empty \(shape \(0, 0\)\): there is nothing to draw"):
        plots.heatmap(np.zeros((0, 0)), annotate=True)
    with pytest.raises(ValueError, match="matrix is empty"):
        plots.plot_confusion_matrix(np.zeros((0, 0)), [])
    with pytest.raises(ValueError, match=r"weights is empty \(shape \(0, 2, 2\)\)"):
        plots.attention_heads(np.zeros((0, 2, 2)))
    assert plt.get_fignums() == before


def test_attention_heads_checks_the_tokens_before_drawing_the_grid():
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="tokens has 2 labels but the matrix has 3 rows"):
        plots.attention_heads(torch.full((2, 3, 3), 1 / 3), ["a", "b"])
    with pytest.raises(ValueError, match="key_tokens has 1 labels but the matrix has 3 columns"):
        plots.attention_heads(torch.full((2, 2, 3), 1 / 3), ["a", "b"], key_tokens=["x"])
    assert plt.get_fignums() == before  # no empty grid left to show up under the error


def test_annotation_colours_follow_the_drawn_colour_scale_with_infinite_values():
    # imshow leaves ±inf out of the colour range (0..2 here), so 2 and inf are dark cells
    ax = plots.heatmap([[0.0, float("inf")], [1.0, 2.0]], annotate=True)
    assert ax.images[0].get_clim() == (0.0, 2.0)
    assert [t.get_color() for t in ax.texts] == ["black", "white", "black", "white"]
    ax = plots.heatmap([[float("-inf"), 1.0], [1.0, 2.0]], annotate=True)
    assert [t.get_color() for t in ax.texts] == ["black", "black", "black", "white"]


def test_labelled_scatter_groups_may_be_a_tensor():
    ax = plots.labelled_scatter([[0, 0], [1, 1], [2, 0]], groups=torch.tensor([0, 0, 1]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1]
