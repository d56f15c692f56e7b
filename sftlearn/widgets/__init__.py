"""Interactive explorers for the lessons, each with a static fallback.

Every explorer is a function in a module of this package. It builds an ``ipywidgets`` control
panel whose logic can be tested without a browser (set a control's ``.value`` and look at the
result), and it shows a static matplotlib figure instead when no front end can draw widgets:
outside a Jupyter kernel, or when ``SFTLEARN_HEADLESS=1`` (set by the tests and when lessons
are executed to be published, so the saved notebook shows a picture rather than a dead widget).
"""

from __future__ import annotations

import os

ENV_HEADLESS = "SFTLEARN_HEADLESS"


def headless() -> bool:
    """True when widgets cannot be shown: no IPython kernel, or SFTLEARN_HEADLESS=1."""
    if os.environ.get(ENV_HEADLESS, "").strip() not in ("", "0"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


def figure_png(fig, dpi: int = 90) -> bytes:
    """``fig`` as PNG bytes for an ``ipywidgets.Image``; the figure is closed, because the
    picture now lives in the widget and an open pyplot figure would be drawn a second time."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def check_slider_value(name: str, value: float, slider) -> None:
    """Refuse a starting ``value`` that ``slider`` (an ipywidgets slider built with it) could
    not show: the slider silently moves such a value to its nearest end (or, for a whole-number
    slider, drops its fraction)."""
    if slider.value != value:
        log = hasattr(slider, "base")  # a FloatLogSlider's min and max are exponents
        low, high = (slider.base**slider.min, slider.base**slider.max) if log else (slider.min, slider.max)
        check_in_range(name, value, low, high)
        # In range, but the slider still changed it: e.g. an IntSlider drops the fraction of 2.5.
        raise ValueError(f"{name} = {value!r} cannot be set on the explorer's slider, which would "
                         f"show {slider.value!r}; pass a value of the slider's type.")


def check_in_range(name: str, value: float, low: float, high: float) -> None:
    """The same refusal without a slider: headless explorers accept what the live one does."""
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is outside the explorer's slider, which runs from "
                         f"{low:g} to {high:g}; start it inside that range.")


class Explorer:
    """Base of the explorers: a cell that ends with one shows its control panel ``widget``.

    The output carries two pictures of it: the live widget, and a PNG of its current ``image``.
    JupyterLab with the widgets extension draws the live one. A front end without it (an
    editor, a notebook viewer, a JupyterLab whose extension is missing) falls back to the PNG
    instead of printing a bare ``VBox(children=...)`` line.
    """

    widget: object
    image: object  # an ipywidgets.Image holding the current picture as PNG bytes

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        import base64

        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude))
        png = getattr(getattr(self, "image", None), "value", b"")
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle
