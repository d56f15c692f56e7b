"""``sftlearn doctor``: each thing that can be off is faked, and the advice is read back.

A doctor that says "✓" on a broken machine is worse than none, so every check is tested on the
condition it exists for (with monkeypatch) as well as on this healthy machine, and the last
tests break everything at once and ask that every problem comes with a fix.
"""

from __future__ import annotations

import json
import shutil
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from sftlearn import cli, doctor
from sftlearn import device as device_module

SCRIPTS = Path(sysconfig.get_path("scripts"))


def fake_which(**found):
    """A stand-in for shutil.which that knows only the commands given (name=path)."""
    return lambda name, *args, **kwargs: found.get(name.replace("-", "_"))


# ----------------------------------------------------------------------------- Python, PyTorch


def test_old_python_is_refused_with_the_version_to_install(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    finding = doctor.check_python()
    assert finding.ok is False and finding.what == "Python 3.9.18 is too old"
    assert "Python 3.10 or newer" in finding.fix


def test_a_torch_that_fails_to_load_is_reported_not_raised(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "torch":
            raise OSError("libcudnn.so.9: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    finding = doctor.check_torch()
    assert finding.ok is False
    assert finding.what == "PyTorch is installed but fails to import: OSError: libcudnn.so.9: cannot open shared object file"
    assert "--force-reinstall torch" in finding.fix


def test_a_package_that_fails_to_import_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "broken_pkg_sftlearn.py").write_text("raise ImportError('libfoo.so: not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finding = doctor.check_module("broken_pkg_sftlearn", "a test", "pip install it")
    assert finding.ok is False and finding.fix == "pip install it"
    assert finding.what == ("broken_pkg_sftlearn is installed but fails to import (a test): "
                            "ImportError: libfoo.so: not found")


def test_missing_torch_points_at_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" raise ImportError
    finding = doctor.check_torch()
    assert finding.ok is False and finding.what == "PyTorch is not installed"
    assert finding.fix == 'run: pip install -e ".[dev]"'


def test_old_torch_is_named_with_its_version(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.3.1+cu121")  # no fused AdamW on the CPU
    finding = doctor.check_torch()
    assert finding.what == "PyTorch 2.3.1+cu121 is older than 2.4"
    assert finding.fix == "upgrade: pip install -U 'torch>=2.4'"
    monkeypatch.setattr(torch, "__version__", "2.4.0")
    assert doctor.check_torch().ok is True


# ----------------------------------------------------------------------------- the device


def cpu_only(monkeypatch, nvidia_smi: bool, built_for_cuda: str | None):
    monkeypatch.delenv("SFTLEARN_DEVICE", raising=False)
    monkeypatch.setattr(device_module, "available_devices", lambda: ["cpu"])
    monkeypatch.setattr(shutil, "which", fake_which(
        nvidia_smi="/usr/bin/nvidia-smi" if nvidia_smi else None))
    monkeypatch.setattr(torch.version, "cuda", built_for_cuda)


def test_no_gpu_at_all_is_not_a_problem(monkeypatch):
    cpu_only(monkeypatch, nvidia_smi=False, built_for_cuda=None)
    findings = doctor.check_device()
    assert findings[0].ok is True and findings[0].what.startswith("device: cpu")
    assert findings[1].ok is None and findings[1].what.startswith("no GPU found")
    assert "CUDA build of PyTorch" in findings[1].fix


def test_gpu_with_a_cpu_only_torch_says_how_to_get_the_cuda_build(monkeypatch):
    cpu_only(monkeypatch, nvidia_smi=True, built_for_cuda=None)
    finding = doctor.check_device()[1]
    assert finding.ok is None
    assert "CPU-only build" in finding.what and "NVIDIA driver" in finding.what
    assert "install a CUDA build of PyTorch" in finding.fix


def test_gpu_that_torch_cannot_reach_points_at_the_driver(monkeypatch):
    cpu_only(monkeypatch, nvidia_smi=True, built_for_cuda="12.4")
    finding = doctor.check_device()[1]
    assert finding.what == "PyTorch is built for CUDA 12.4 but cannot reach the GPU"
    assert "below 12.4, update the driver" in finding.fix


def test_device_variable_that_hides_a_gpu_is_pointed_out(monkeypatch):
    monkeypatch.setattr(device_module, "available_devices", lambda: ["cuda", "cpu"])
    monkeypatch.setenv("SFTLEARN_DEVICE", "cpu")
    findings = doctor.check_device()
    assert findings[0].what.startswith("device: cpu")
    assert findings[1].what == "SFTLEARN_DEVICE=cpu keeps this machine's cuda GPU unused"
    assert findings[1].fix == "unset SFTLEARN_DEVICE to let the course pick the GPU"


def test_a_device_this_machine_lacks_is_a_problem(monkeypatch):
    monkeypatch.setattr(device_module, "available_devices", lambda: ["cpu"])
    monkeypatch.setenv("SFTLEARN_DEVICE", "cuda")
    findings = doctor.check_device()
    assert len(findings) == 1 and findings[0].ok is False
    assert "not available on this machine" in findings[0].what
    assert findings[0].fix == "unset SFTLEARN_DEVICE or set it to 'cpu'"


def test_a_single_thread_is_noticed(monkeypatch):
    cpu_only(monkeypatch, nvidia_smi=False, built_for_cuda=None)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(doctor.os, "cpu_count", lambda: 8)
    finding = doctor.check_device()[-1]
    assert finding.what == ("torch uses 1 of this machine's 8 cores: best when the CPU is busy, "
                            "slower when it is idle")
    assert finding.fix == "on an idle machine, unset OMP_NUM_THREADS to use every core"
    monkeypatch.setattr(doctor.os, "cpu_count", lambda: 1)  # one core: nothing to say
    assert not any("cores" in f.what for f in doctor.check_device())


def test_speed_is_measured_in_tokens_per_second_without_reseeding_the_caller():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is quickest, above all on a busy machine
    torch.manual_seed(42)
    expected_next = torch.rand(3)
    torch.manual_seed(42)
    try:
        assert doctor._tokens_per_second("micro", batch=2, length=16) > 0
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.rand(3), expected_next)  # chapter 00 runs the doctor in the reader's kernel


def test_a_slow_machine_is_told_what_to_expect(monkeypatch):
    monkeypatch.setattr(doctor, "_tokens_per_second", lambda *args: 2_000.0)
    finding = doctor.check_speed()
    assert finding.ok is False
    assert finding.what == "training speed 2,000 tokens/s is slow for the lessons"
    assert "close other programs" in finding.fix
    monkeypatch.setattr(doctor, "_tokens_per_second", lambda *args: 20_000.0)
    assert doctor.check_speed().what == "training speed of the lesson model: 20,000 tokens/s"


def test_a_busy_cpu_where_one_thread_is_faster_gets_that_advice(monkeypatch):
    # Threads that wait on each other: two are four times slower than one.
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setattr(doctor, "_tokens_per_second",
                        lambda *args: 1_400.0 if chosen and chosen[-1] == 1 else 350.0)
    finding = doctor.check_speed()
    assert finding.what == ("training speed 350 tokens/s is slow for the lessons, but 1,400 with "
                            "one thread: the CPU is busy and torch's threads wait for each other")
    assert finding.fix.startswith("set OMP_NUM_THREADS=1 before starting JupyterLab")
    assert chosen == [1, 2]  # the thread count is put back


# ----------------------------------------------------------------------------- packages


def test_missing_and_old_packages(monkeypatch):
    missing = doctor.check_module("no_such_package_sftlearn", "nothing", "pip install it")
    assert (missing.ok, missing.what, missing.fix) == (
        False, "no_such_package_sftlearn is missing (nothing)", "pip install it")
    import ipywidgets

    monkeypatch.setattr(ipywidgets, "__version__", "7.8.1")
    old = doctor.check_module("ipywidgets", "interactive explorers", "x", minimum=(8, 0))
    assert old.ok is False and old.what == "ipywidgets 7.8.1 is older than 8.0 (interactive explorers)"
    assert old.fix == "upgrade: pip install -U 'ipywidgets>=8.0'"
    monkeypatch.setattr(ipywidgets, "__version__", "8.0.0")
    assert doctor.check_module("ipywidgets", "widgets", "x", minimum=(8, 0)).ok is True


# ----------------------------------------------------------------------------- Jupyter


def test_jupyter_from_another_environment_is_a_problem(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which(jupyter="/opt/other-env/bin/jupyter"))
    finding = doctor.check_jupyter_command()
    assert finding.ok is False and "/opt/other-env/bin/jupyter" in finding.what
    assert f"{sys.executable} -m jupyterlab notebooks/" in finding.fix
    assert sys.prefix in finding.fix  # which environment to activate


def test_jupyter_missing_from_path_and_present(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which())
    missing = doctor.check_jupyter_command()
    assert missing.ok is None and "-m jupyterlab" in missing.fix
    monkeypatch.setattr(shutil, "which", fake_which(jupyter=str(SCRIPTS / "jupyter")))
    assert doctor.check_jupyter_command().ok is True


def fake_kernel(monkeypatch, argv=None):
    def get_kernel_spec(self, name):
        if argv is None:
            raise NoSuchKernel(name)
        return SimpleNamespace(argv=argv)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", get_kernel_spec)


def test_kernel_of_another_environment_is_a_problem(monkeypatch):
    fake_kernel(monkeypatch, ["/opt/conda/bin/python", "-m", "ipykernel_launcher"])
    finding = doctor.check_kernel()
    assert finding.ok is False
    assert finding.what.startswith("Jupyter's python3 kernel runs /opt/conda/bin/python")
    assert f"{sys.executable} -m ipykernel install --user --name python3" in finding.fix


def test_kernel_of_another_environment_on_the_same_base_python_is_a_problem(monkeypatch, tmp_path):
    # Another virtual environment's python is a link to the same base interpreter as ours:
    # following links would call it "this environment", though sftlearn is not installed there.
    other = tmp_path / "other-env" / "bin"
    other.mkdir(parents=True)
    (other / "python3").symlink_to(Path(sys.executable).resolve())
    fake_kernel(monkeypatch, [str(other / "python3"), "-m", "ipykernel_launcher"])
    assert doctor.check_kernel().ok is False


def test_missing_kernel_and_kernels_that_are_fine(monkeypatch):
    fake_kernel(monkeypatch, None)
    missing = doctor.check_kernel()
    assert missing.ok is False and missing.what == "no 'python3' Jupyter kernel found"
    assert "-m ipykernel install" in missing.fix
    same_folder = str(Path(sys.executable).parent / "python")  # this environment, other name
    this_version = "python{}.{}".format(*sys.version_info[:2])  # jupyter_client swaps it too
    for argv0 in ("python", "python3", this_version, sys.executable, same_folder):
        fake_kernel(monkeypatch, [argv0, "-m", "ipykernel_launcher"])  # a bare name is Jupyter's own
        assert doctor.check_kernel().ok is True, argv0
    fake_kernel(monkeypatch, ["python2.7", "-m", "ipykernel_launcher"])  # another Python's name
    assert doctor.check_kernel().ok is False


def fake_widgets(monkeypatch, tmp_path, versions: dict, extension_files: bool):
    monkeypatch.setattr(doctor, "_installed_version", versions.get)
    monkeypatch.setattr(doctor, "_labextension_dirs", lambda: [tmp_path / "nowhere", tmp_path])
    if extension_files:
        folder = tmp_path / "@jupyter-widgets" / "jupyterlab-manager"
        folder.mkdir(parents=True)
        (folder / "package.json").write_text("{}")


def test_missing_widgets_front_end_says_what_the_student_would_see(monkeypatch, tmp_path):
    fake_widgets(monkeypatch, tmp_path, {"ipywidgets": "8.1.5"}, extension_files=False)
    finding = doctor.check_widgets_frontend()
    assert finding.ok is False and "a line of text (VBox(children=...))" in finding.what
    assert "pip install -U 'ipywidgets>=8' 'jupyterlab_widgets>=3'" in finding.fix
    assert "restart JupyterLab" in finding.fix


def test_mismatched_widget_versions_are_a_problem(monkeypatch, tmp_path):
    fake_widgets(monkeypatch, tmp_path, {"ipywidgets": "8.1.5", "jupyterlab_widgets": "1.1.7"},
                 extension_files=True)
    finding = doctor.check_widgets_frontend()
    assert finding.what == ("ipywidgets 8.1.5 needs jupyterlab_widgets 3.x, but 1.1.7 is "
                            "installed: widgets will not display")


def test_widgets_extension_that_jupyterlab_cannot_find(monkeypatch, tmp_path):
    fake_widgets(monkeypatch, tmp_path, {"ipywidgets": "8.1.5", "jupyterlab_widgets": "3.0.13"},
                 extension_files=False)
    finding = doctor.check_widgets_frontend()
    assert finding.ok is False and "cannot find its extension" in finding.what
    assert finding.fix.startswith("pip install --force-reinstall jupyterlab_widgets")


def test_matching_widgets_with_their_extension_are_fine(monkeypatch, tmp_path):
    fake_widgets(monkeypatch, tmp_path, {"ipywidgets": "8.1.5", "jupyterlab_widgets": "3.0.13"},
                 extension_files=True)
    assert doctor.check_widgets_frontend().ok is True


def test_this_environment_has_a_working_widgets_front_end():
    # Not faked: the dev install must give JupyterLab what the browser test relies on.
    finding = doctor.check_widgets_frontend()
    assert finding.ok is True, finding.render()


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_headless_variable_is_mentioned_only_when_it_turns_widgets_off(monkeypatch, value, expected):
    monkeypatch.setenv("SFTLEARN_HEADLESS", value)
    finding = doctor.check_headless_setting()
    if expected:
        assert finding.ok is None and f"SFTLEARN_HEADLESS={value} is set" in finding.what
        assert finding.fix == "unset SFTLEARN_HEADLESS before starting JupyterLab to get the sliders"
    else:
        assert finding is None
    monkeypatch.delenv("SFTLEARN_HEADLESS")
    assert doctor.check_headless_setting() is None


# ----------------------------------------------------------------------------- files


def test_unwritable_cache_names_the_variable_to_set(monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SFTLEARN_CACHE", str(blocker / "cache"))  # cannot make a folder in a file
    finding = doctor.check_cache()
    assert finding.ok is False and str(blocker / "cache") in finding.what
    assert finding.fix.startswith("set SFTLEARN_CACHE to a folder you can write to")


def test_writable_cache_is_created_and_left_empty(monkeypatch, tmp_path):
    monkeypatch.setenv("SFTLEARN_CACHE", str(tmp_path / "cache"))
    finding = doctor.check_cache()
    assert finding.ok is True and finding.what == f"model cache: {tmp_path / 'cache'}"
    assert list((tmp_path / "cache").iterdir()) == []  # the probe file is gone


# ----------------------------------------------------------------------------- all together


@pytest.fixture
def broken_machine(monkeypatch, tmp_path):
    """Everything the doctor knows about is wrong at once (PyTorch too old to go further)."""
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    fake_kernel(monkeypatch, ["/opt/conda/bin/python"])
    monkeypatch.setattr(shutil, "which", fake_which(jupyter="/opt/conda/bin/jupyter"))
    fake_widgets(monkeypatch, tmp_path, {"ipywidgets": "8.1.5"}, extension_files=False)
    monkeypatch.setenv("SFTLEARN_HEADLESS", "1")


def test_every_problem_comes_with_a_fix(broken_machine):
    findings = doctor.run_checks(speed=False)
    problems = [f for f in findings if f.ok is False]
    assert [f.what.split(" ")[0] for f in problems] == ["PyTorch", "'jupyter'", "Jupyter's", "the"]
    assert all(f.fix for f in problems)
    assert not any(f.what.startswith("device:") for f in findings)  # skipped without torch 2.4
    text = doctor.report(findings)
    assert text.endswith("4 problem(s) to fix before the course runs smoothly.")
    assert text.count("\n    fix: ") == 5  # the four problems and the headless note


def test_cli_exit_code_and_json_on_a_broken_machine(broken_machine, capsys):
    assert cli.main(["doctor", "--quick", "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert {"ok", "what", "fix"} == set(findings[0])
    assert sum(f["ok"] is False for f in findings) == 4


def test_healthy_checks_report_no_problem_here(monkeypatch, tmp_path):
    monkeypatch.setenv("SFTLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shutil, "which", fake_which(jupyter=str(SCRIPTS / "jupyter")))
    findings = doctor.run_checks(speed=False)
    assert [f.render() for f in findings if f.ok is False] == []
    assert doctor.report(findings).endswith("Start with: jupyter lab notebooks/")


def test_without_a_jupyter_command_the_report_says_how_to_start_without_one(monkeypatch, tmp_path):
    monkeypatch.setenv("SFTLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shutil, "which", fake_which(jupyter=None))
    findings = doctor.run_checks(speed=False)
    assert doctor.check_jupyter_command().ok is None  # worth knowing, not a problem
    assert doctor.report(findings).endswith(f"Start with: {sys.executable} -m jupyterlab notebooks/")
