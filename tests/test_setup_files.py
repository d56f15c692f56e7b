"""The files a new user installs from: environment.yml, and the README's set-up and test
commands, which .ci/run must repeat word for word (CI proves the README, not something else)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml  # PyYAML comes with JupyterLab (through jupyter_events)

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_is_a_conda_forge_env_that_installs_the_dev_extra():
    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    assert env["name"] == "sftlearn"
    assert env["channels"] == ["conda-forge"]  # no defaults channel: its licence and mixing issues
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert tuple(int(x) for x in python.split("=")[1].split(".")[:2]) >= (3, 10)
    assert "pip" in deps  # conda must install pip before it can run the pip section
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip_section == ["-e .[dev]"]


def readme_block_after(heading: str) -> list[str]:
    """The shell commands of the first ```bash block after the line starting with ``heading``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    commands = []
    for line in block.splitlines():
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [c.replace(" --quiet", "") for c in commands]  # CI only hides pip's progress


def test_readme_setup_and_test_commands_are_what_ci_runs():
    setup = readme_block_after("Set up (")
    assert setup == ["python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[dev]"']
    ci = ci_commands()
    positions = [ci.index(command) for command in setup]
    assert positions == sorted(positions), "CI runs the set-up commands in another order"
    assert readme_block_after("Test (") == ["pytest"]
    assert ci[-1] == "pytest"


def test_ci_installs_chromium_before_the_tests():
    # Without it tests/test_browser.py skips, and CI would pass without a browser ever running.
    ci = ci_commands()
    install = next(i for i, c in enumerate(ci) if "apt-get install" in c and "chromium" in c)
    assert any("chromium could not be installed" in c for c in ci[install:])
    assert install < ci.index("pytest")
