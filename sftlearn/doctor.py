"""``sftlearn doctor``: is this machine ready for the course? Each check says what it found and,
when something is off, how to fix it.

The checks, in the order a student meets the problems:

- Python and PyTorch recent enough;
- the device: a GPU, or why there is none (no NVIDIA card, a CPU-only PyTorch build, a driver
  too old for PyTorch's CUDA, or ``SFTLEARN_DEVICE`` keeping the GPU unused);
- the packages the lessons import;
- the ``jupyter`` command and the ``python3`` kernel belong to *this* environment (the usual
  cause of ``ModuleNotFoundError: sftlearn`` in a notebook is a JupyterLab or a kernel from
  another one);
- the widgets front end, without which an explorer shows a bare text line (``VBox(...)``) or
  "Error displaying widget" instead of its sliders;
- the cache folder for the zoo's models can be written.

Every check is a small function returning :class:`Finding` (or a list of them), so a test can
fake one condition at a time and read the advice.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 10)
MIN_TORCH = (2, 4)  # the Trainer's fused AdamW runs on CPUs from torch 2.4 on
INSTALL = 'pip install -e ".[dev]"'  # the README's set-up command, run in the course folder
# ipywidgets (in the kernel) and jupyterlab_widgets (in JupyterLab) talk a protocol that
# changed between major versions: ipywidgets 8 needs jupyterlab_widgets 3, ipywidgets 7 needs 1.
WIDGETS_FRONTEND_FOR = {8: 3, 7: 1}
WIDGETS_EXTENSION = Path("@jupyter-widgets") / "jupyterlab-manager"


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


def _installed_version(distribution: str) -> str | None:
    """The installed version of a pip distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------- Python, PyTorch


def check_python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Finding(False, f"Python {version} is too old",
                       "install Python 3.10 or newer, then make a new environment with it")
    return Finding(True, f"Python {version} ({sys.executable})")


def check_torch() -> Finding:
    try:
        import torch
    except ImportError:
        return Finding(False, "PyTorch is not installed", f"run: {INSTALL}")
    except Exception as error:  # e.g. OSError: a shared library of a CUDA build is missing
        return Finding(False, f"PyTorch is installed but fails to import: {type(error).__name__}: {error}",
                       f"reinstall it: pip install --force-reinstall torch, then {INSTALL}")
    if _version_tuple(torch.__version__) < MIN_TORCH:
        needed = ".".join(map(str, MIN_TORCH))
        return Finding(False, f"PyTorch {torch.__version__} is older than {needed}",
                       f"upgrade: pip install -U 'torch>={needed}'")
    return Finding(True, f"PyTorch {torch.__version__}")


# ----------------------------------------------------------------------------- the device


def _why_no_gpu() -> Finding:
    """On a machine where PyTorch sees no GPU: is there one it could use, and how?"""
    import torch

    has_nvidia = shutil.which("nvidia-smi") is not None  # installed with the NVIDIA driver
    built_for = torch.version.cuda  # None for a CPU-only build of PyTorch
    if has_nvidia and built_for is None:
        return Finding(
            None,
            f"this machine has an NVIDIA driver (nvidia-smi), but PyTorch {torch.__version__} is "
            "a CPU-only build, so the GPU goes unused",
            "the lessons run on the CPU; to use the GPU, install a CUDA build of PyTorch with the "
            "command pytorch.org/get-started/locally gives for your system, then rerun doctor",
        )
    if has_nvidia:
        return Finding(
            None,
            f"PyTorch is built for CUDA {built_for} but cannot reach the GPU",
            f"run nvidia-smi: if it fails, reinstall the NVIDIA driver; if its 'CUDA Version' "
            f"is below {built_for}, update the driver or install a PyTorch build for that "
            "CUDA version (pytorch.org/get-started/locally)",
        )
    return Finding(
        None,
        "no GPU found: every lesson is sized to run on a CPU in about a minute; "
        "only the 'Scaling up on a GPU' sections need a CUDA GPU",
        "nothing to fix for the lessons; for the scaling-up sections use a machine with an "
        "NVIDIA GPU and a CUDA build of PyTorch",
    )


def check_device() -> list[Finding]:
    import torch

    from .device import ENV_DEVICE, available_devices, describe, get_device

    try:
        device = get_device()
    except ValueError as error:
        return [Finding(False, str(error), f"unset {ENV_DEVICE} or set it to 'cpu'")]
    findings = [Finding(True, f"device: {describe(device)}")]
    best = available_devices()[0]
    if device.type == "cpu" and best != "cpu":
        findings.append(Finding(
            None,
            f"{ENV_DEVICE}={os.environ.get(ENV_DEVICE)} keeps this machine's {best} GPU unused",
            f"unset {ENV_DEVICE} to let the course pick the GPU",
        ))
    elif device.type == "cpu":
        findings.append(_why_no_gpu())
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    if threads < 2 and cores > 1:
        # Right on a busy machine (see check_speed), a waste of cores on an idle one.
        findings.append(Finding(None, f"torch uses {threads} of this machine's {cores} cores: "
                                      "best when the CPU is busy, slower when it is idle",
                                "on an idle machine, unset OMP_NUM_THREADS to use every core"))
    return findings


def _tokens_per_second(preset: str = "tiny", batch: int = 16, length: int = 128) -> float:
    """Training tokens per second of a ``preset`` GPT, best of three steps after a warm-up."""
    import torch

    from .config import GPTConfig
    from .device import seeded
    from .model import GPT

    with seeded(0):  # the same model every time, and the caller's random state untouched
        model = GPT(GPTConfig.preset(preset, vocab_size=256))
        x = torch.randint(0, 256, (batch, length))  # (B, T) token ids
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    timings = []
    for _ in range(4):
        start = time.perf_counter()
        _, loss = model(x, targets=x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - start)
    return x.numel() / min(timings[1:])


def check_speed(preset: str = "tiny", batch: int = 16, length: int = 128) -> Finding:
    """Time a few training steps of the lesson-size model to estimate whether lessons fit.

    On a busy machine (a shared lab server, a laptop doing other work) torch's threads can
    spend more time waiting for each other than computing; then one thread is faster, and
    the advice says how to ask for it.
    """
    import torch

    tok_s = _tokens_per_second(preset, batch, length)
    if tok_s >= 5_000:
        return Finding(True, f"training speed of the lesson model: {tok_s:,.0f} tokens/s")
    what = f"training speed {tok_s:,.0f} tokens/s is slow for the lessons"
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        try:
            single = _tokens_per_second(preset, batch, length)
        finally:
            torch.set_num_threads(threads)
        if single > 1.5 * tok_s:
            return Finding(False, f"{what}, but {single:,.0f} with one thread: the CPU is busy "
                                  "and torch's threads wait for each other",
                           "set OMP_NUM_THREADS=1 before starting JupyterLab (or call "
                           "torch.set_num_threads(1) at the top of a notebook), or close other "
                           "programs")
    return Finding(False, what, "close other programs; lessons will run several times over "
                                "their budget")


# ----------------------------------------------------------------------------- packages


def check_module(name: str, purpose: str, fix: str, minimum: tuple[int, ...] | None = None) -> Finding:
    """Is ``name`` importable (and at least version ``minimum``)?"""
    if importlib.util.find_spec(name) is None:
        return Finding(False, f"{name} is missing ({purpose})", fix)
    try:
        module = importlib.import_module(name)
    except Exception as error:  # installed but broken (a missing library, a bad build): say so
        return Finding(False, f"{name} is installed but fails to import ({purpose}): "
                              f"{type(error).__name__}: {error}", fix)
    version = getattr(module, "__version__", "")
    if minimum and version and _version_tuple(version) < minimum:
        needed = ".".join(map(str, minimum))
        return Finding(False, f"{name} {version} is older than {needed} ({purpose})",
                       f"upgrade: pip install -U '{name}>={needed}'")
    return Finding(True, f"{name} {version} ({purpose})".replace("  ", " "))


# ----------------------------------------------------------------------------- Jupyter


NO_JUPYTER_COMMAND = "the jupyter command is not on PATH"


def check_jupyter_command() -> Finding:
    """Will typing ``jupyter lab`` start this environment's JupyterLab?

    If another environment's ``jupyter`` comes first on PATH, its JupyterLab starts kernels
    without sftlearn and without the widgets front end, and every lesson fails on its first
    import.
    """
    here = Path(sysconfig.get_path("scripts"))  # where this environment's commands live
    fix = (f"activate this environment ({sys.prefix}) before starting JupyterLab, or start it "
           f"with: {sys.executable} -m jupyterlab notebooks/")
    found = shutil.which("jupyter")
    if found is None:  # worth knowing, not wrong: "python -m jupyterlab" works as well
        return Finding(None, NO_JUPYTER_COMMAND, fix)
    if Path(found).parent.resolve() != here.resolve():
        return Finding(False, f"'jupyter' on PATH is {found}, from another environment: "
                              "'jupyter lab' would start kernels without sftlearn", fix)
    return Finding(True, f"'jupyter lab' starts this environment's JupyterLab ({found})")


def check_kernel() -> Finding:
    """Does Jupyter's default 'python3' kernel run this same Python?"""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return Finding(False, "Jupyter is not installed", f"run: {INSTALL}")
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except Exception:  # no such kernel spec
        return Finding(False, "no 'python3' Jupyter kernel found",
                       f"run: {sys.executable} -m ipykernel install --user --name python3")
    executable = spec.argv[0] if spec.argv else ""
    # Jupyter replaces a bare "python" (or "python3", "python3.11" for this very version) in a
    # kernel spec by the Python running JupyterLab. A
    # path counts when it is in this environment's own folder of commands: symbolic links are
    # not followed, because every virtual environment's python links to the same base Python,
    # which has none of this environment's packages.
    here = Path(os.path.abspath(sys.executable)).parent
    bare = ("python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2]))
    if executable in (*bare, sys.executable) or (
        Path(os.path.abspath(executable)).parent == here
    ):
        return Finding(True, "Jupyter's python3 kernel uses this environment")
    return Finding(
        False,
        f"Jupyter's python3 kernel runs {executable}, not this environment ({sys.executable})",
        "activate this environment before starting jupyter lab, or run: "
        f"{sys.executable} -m ipykernel install --user --name python3",
    )


def _labextension_dirs() -> list[Path]:
    """The folders JupyterLab searches for installed (prebuilt) extensions."""
    from jupyter_core.paths import jupyter_path

    return [Path(p) for p in jupyter_path("labextensions")]


def check_widgets_frontend() -> Finding:
    """Can JupyterLab draw the explorers' sliders?

    The kernel side (ipywidgets) builds a widget whether or not a front end can show it, so a
    missing or mismatched JupyterLab extension does not fall back to a static picture: the
    output shows a bare text line (``VBox(children=...)``) or "Error displaying widget".
    """
    fix = ("pip install -U 'ipywidgets>=8' 'jupyterlab_widgets>=3', then restart JupyterLab "
           "and reload the page (or set SFTLEARN_HEADLESS=1 to get static pictures)")
    frontend = _installed_version("jupyterlab_widgets")
    if frontend is None:
        return Finding(False, "the JupyterLab widgets extension (jupyterlab_widgets) is missing: "
                              "explorers will show a line of text (VBox(children=...)) instead of "
                              "sliders", fix)
    kernel_side = _installed_version("ipywidgets")
    wanted = WIDGETS_FRONTEND_FOR.get(_version_tuple(kernel_side)[0]) if kernel_side else None
    if wanted is not None and _version_tuple(frontend)[0] != wanted:
        return Finding(False, f"ipywidgets {kernel_side} needs jupyterlab_widgets {wanted}.x, "
                              f"but {frontend} is installed: widgets will not display", fix)
    if not any((folder / WIDGETS_EXTENSION / "package.json").is_file()
               for folder in _labextension_dirs()):
        return Finding(False, f"jupyterlab_widgets {frontend} is installed but JupyterLab cannot "
                              f"find its extension ({WIDGETS_EXTENSION})",
                       "pip install --force-reinstall jupyterlab_widgets, then restart JupyterLab")
    return Finding(True, f"JupyterLab widgets extension {frontend} installed "
                         "(interactive explorers work)")


def check_headless_setting() -> Finding | None:
    """SFTLEARN_HEADLESS=1 (meant for tests and publishing) turns every explorer into a picture."""
    from .widgets import ENV_HEADLESS

    # The rule of sftlearn.widgets.headless(): any value but empty or "0" means static.
    if os.environ.get(ENV_HEADLESS, "").strip() in ("", "0"):
        return None
    return Finding(None, f"{ENV_HEADLESS}={os.environ[ENV_HEADLESS]} is set: every explorer shows "
                         "a static picture instead of its sliders",
                   f"unset {ENV_HEADLESS} before starting JupyterLab to get the sliders")


# ----------------------------------------------------------------------------- files


def check_cache() -> Finding:
    """Can the zoo save the models it trains on first use?"""
    from .zoo import ENV_CACHE, cache_dir

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        return Finding(False, f"cannot write the model cache {folder} ({error.strerror or error})",
                       f"set {ENV_CACHE} to a folder you can write to, e.g. "
                       f"export {ENV_CACHE}=$HOME/sftlearn-cache")
    return Finding(True, f"model cache: {folder}")


# ----------------------------------------------------------------------------- all together


def run_checks(speed: bool = True) -> list[Finding]:
    findings = [check_python(), check_torch()]
    has_torch = findings[-1].ok  # the device, speed and cache checks need a working PyTorch
    if has_torch:
        findings += check_device()
        if speed:
            findings.append(check_speed())
    findings += [
        check_module("numpy", "arrays", INSTALL),
        check_module("matplotlib", "plots", INSTALL),
        check_module("ipywidgets", "interactive explorers", INSTALL, minimum=(8, 0)),
        check_jupyter_command(),
        check_kernel(),
        check_widgets_frontend(),
        check_headless_setting(),
        check_cache() if has_torch else None,
        check_module("nbval", "testing the notebooks; only needed for pytest", INSTALL),
    ]
    return [f for f in findings if f is not None]


def report(findings: list[Finding]) -> str:
    lines = ["sftlearn doctor", ""] + [f.render() for f in findings] + [""]
    problems = [f for f in findings if f.ok is False]
    if problems:
        lines.append(f"{len(problems)} problem(s) to fix before the course runs smoothly.")
    else:
        # without a jupyter command on PATH, say the start command that works as it is
        no_command = any(f.what == NO_JUPYTER_COMMAND for f in findings)
        start = f"{sys.executable} -m jupyterlab" if no_command else "jupyter lab"
        lines.append(f"Everything the course needs is here. Start with: {start} notebooks/")
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([f.__dict__ for f in findings], indent=2, ensure_ascii=False)
