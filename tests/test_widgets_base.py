"""Deciding between an interactive widget and its static fallback."""

from sftlearn.widgets import headless


def test_headless_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("SFTLEARN_HEADLESS", raising=False)
    assert headless()  # pytest is not a Jupyter kernel


def test_environment_variable_forces_static(monkeypatch):
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    assert headless()


def test_an_explorer_shows_the_live_widget_with_a_picture_as_fallback():
    """Front ends with the widgets extension draw the widget; others get the PNG, never a
    bare "VBox(children=...)" line."""
    import base64

    from sftlearn.widgets.learning_rate import LearningRateExplorer

    explorer = LearningRateExplorer()
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == explorer.image.value
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
