"""Deciding between an interactive widget and its static fallback."""

from sftlearn.widgets import headless


def test_headless_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("SFTLEARN_HEADLESS", raising=False)
    assert headless()  # pytest is not a Jupyter kernel


def test_environment_variable_forces_static(monkeypatch):
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")
    assert headless()
