"""``sftlearn doctor``: is this machine ready for the course? Each check says what it found and,
when something is off, how to fix it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 10)
MIN_TORCH = (2, 3)


@dataclass
class Finding:
    ok: bool | None  # True = fine, False = needs fixing, None = worth knowing (not a problem)
    what: str
    fix: str = ""

    def render(self) -> str:
        mark = {True: "✓", False: "✗", None: "•"}[self.ok]
        text = f"{mark} {self.what}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Finding(False, f"Python {version} is too old", "install Python 3.10 or newer")
    return Finding(True, f"Python {version} ({sys.executable})")


def check_torch() -> Finding:
    try:
        import torch
    except ImportError:
        return Finding(False, "PyTorch is not installed", 'run: pip install -e ".[dev]"')
    if _version_tuple(torch.__version__) < MIN_TORCH:
        return Finding(
            False,
            f"PyTorch {torch.__version__} is older than 2.3",
            "upgrade: pip install -U 'torch>=2.3'",
        )
    return Finding(True, f"PyTorch {torch.__version__}")


def check_device() -> list[Finding]:
    import torch

    from .device import describe, get_device

    try:
        device = get_device()
    except ValueError as error:
        return [Finding(False, str(error), "unset SFTLEARN_DEVICE or set it to 'cpu'")]
    findings = [Finding(True, f"device: {describe(device)}")]
    if device.type == "cpu":
        findings.append(Finding(
            None,
            "no GPU found: every lesson is sized to run on a CPU in about a minute; "
            "the 'scale up' sections need a CUDA GPU",
        ))
    threads = torch.get_num_threads()
    if threads < 2:
        findings.append(Finding(None, f"torch uses {threads} CPU thread; lessons will be slower"))
    return findings


def check_speed() -> Finding:
    """Time a few training steps of the lesson-size model to estimate whether lessons fit."""
    import torch

    from .config import GPTConfig
    from .model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", vocab_size=256))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (16, 128))
    timings = []
    for _ in range(4):
        start = time.perf_counter()
        _, loss = model(x, targets=x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - start)
    tok_s = x.numel() / min(timings[1:])
    if tok_s < 5_000:
        return Finding(False, f"training speed {tok_s:,.0f} tokens/s is slow for the lessons",
                       "close other programs; lessons will run several times over their budget")
    return Finding(True, f"training speed of the lesson model: {tok_s:,.0f} tokens/s")


def check_module(name: str, purpose: str, fix: str) -> Finding:
    if importlib.util.find_spec(name) is None:
        return Finding(False, f"{name} is missing ({purpose})", fix)
    module = importlib.import_module(name)
    return Finding(True, f"{name} {getattr(module, '__version__', '')} ({purpose})".replace("  ", " "))


def check_kernel() -> Finding:
    """Does Jupyter's default 'python3' kernel run this same Python?"""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return Finding(False, "Jupyter is not installed", 'run: pip install -e ".[dev]"')
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except Exception:  # no such kernel spec
        return Finding(False, "no 'python3' Jupyter kernel found",
                       "run: python -m ipykernel install --user --name python3")
    executable = spec.argv[0] if spec.argv else ""
    if executable in ("python", "python3", sys.executable) or (
        Path(executable).resolve() == Path(sys.executable).resolve()
    ):
        return Finding(True, "Jupyter's python3 kernel uses this environment")
    return Finding(
        False,
        f"Jupyter's python3 kernel runs {executable}, not this environment ({sys.executable})",
        "activate this environment before starting jupyter lab, or run: "
        f"{sys.executable} -m ipykernel install --user --name python3",
    )


def check_widgets_frontend() -> Finding:
    """ipywidgets needs its JupyterLab extension to draw sliders; without it lessons fall back
    to static plots."""
    try:
        from jupyterlab_widgets import __version__ as version  # noqa: F401
    except ImportError:
        return Finding(
            None,
            "the JupyterLab widgets extension is missing: interactive explorers will show "
            "static plots instead",
            "pip install jupyterlab_widgets, then restart JupyterLab",
        )
    return Finding(True, "JupyterLab widgets extension installed (interactive explorers work)")


def run_checks(speed: bool = True) -> list[Finding]:
    findings = [check_python(), check_torch()]
    if findings[-1].ok:
        findings += check_device()
        if speed:
            findings.append(check_speed())
    findings += [
        check_module("numpy", "arrays", 'pip install -e ".[dev]"'),
        check_module("matplotlib", "plots", 'pip install -e ".[dev]"'),
        check_module("ipywidgets", "interactive explorers", 'pip install -e ".[dev]"'),
        check_kernel(),
        check_widgets_frontend(),
        check_module("nbval", "testing the notebooks; only needed for pytest",
                     'pip install -e ".[dev]"'),
    ]
    return findings


def report(findings: list[Finding]) -> str:
    lines = ["sftlearn doctor", ""] + [f.render() for f in findings] + [""]
    problems = [f for f in findings if f.ok is False]
    if problems:
        lines.append(f"{len(problems)} problem(s) to fix before the course runs smoothly.")
    else:
        lines.append("Everything the course needs is here. Start with: jupyter lab notebooks/")
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([f.__dict__ for f in findings], indent=2, ensure_ascii=False)
