"""Device and precision choice, seeding, and the MFU helper."""

import random
import re

import numpy as np
import pytest
import torch

from sftlearn import device as dev
from sftlearn.perf import mfu, peak_flops, peak_for_name


def test_cpu_is_always_available_and_last():
    assert dev.available_devices()[-1] == "cpu"


def test_auto_picks_the_best_available(monkeypatch):
    monkeypatch.delenv(dev.ENV_DEVICE, raising=False)
    assert dev.get_device().type == dev.available_devices()[0]


def test_environment_variable_and_argument_override(monkeypatch):
    monkeypatch.setenv(dev.ENV_DEVICE, "cpu")
    assert dev.get_device() == torch.device("cpu")
    assert dev.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(dev.ENV_DEVICE, "tpu")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        dev.get_device()
    assert dev.get_device("cpu") == torch.device("cpu")  # the argument wins


@pytest.mark.parametrize("name", ["cpu:x", "cuda:abc", "cuda:", "mps:-1", "cuda:0:1"])
def test_a_device_number_that_is_not_a_number_is_named(name):
    with pytest.raises(ValueError, match=rf"Unknown device '{re.escape(name)}'.*'cuda:N'"):
        dev.get_device(name)


def test_cuda_numbers_are_checked_against_the_gpus_there_are(monkeypatch):
    # Pretend to have one GPU: cuda:0 exists, cuda:1 does not (no GPU is touched).
    monkeypatch.setattr(dev, "available_devices", lambda: ["cuda", "cpu"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert dev.get_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="'cuda:1' does not exist: this machine has 1 CUDA device"):
        dev.get_device("cuda:1")


def test_a_number_names_a_cuda_gpu(monkeypatch):
    # get_device(0) used to mean "auto" (0 is falsy) and get_device(1) crashed on .strip().
    monkeypatch.setattr(dev, "available_devices", lambda: ["cuda", "cpu"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.get_device(0) == torch.device("cuda:0")
    assert dev.get_device(1) == torch.device("cuda:1")
    with pytest.raises(ValueError, match="'cuda:2' does not exist: this machine has 2 CUDA device"):
        dev.get_device(2)
    with pytest.raises(ValueError, match="counts from 0, got -1"):
        dev.get_device(-1)


@pytest.mark.parametrize("name", [True, 1.0, ["cpu"], b"cpu"])
def test_a_device_of_another_type_is_refused(name):
    with pytest.raises(TypeError, match="A device is a name such as 'cpu'"):
        dev.get_device(name)


@pytest.mark.skipif(not hasattr(torch, "cuda") or torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_number_without_a_gpu_names_what_is_available(monkeypatch):
    monkeypatch.delenv(dev.ENV_DEVICE, raising=False)
    monkeypatch.setattr(dev, "available_devices", lambda: ["cpu"])
    with pytest.raises(ValueError, match="'cuda:0' was requested \\(by the argument\\).*available: cpu"):
        dev.get_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_unavailable_device_names_what_is_available(monkeypatch):
    monkeypatch.setenv(dev.ENV_DEVICE, "cuda")
    with pytest.raises(ValueError, match="environment variable SFTLEARN_DEVICE.*available: .*cpu"):
        dev.get_device()


def test_precision_choice_on_cpu():
    cpu = torch.device("cpu")
    assert dev.choose_precision(cpu).name == "fp32"
    assert dev.choose_precision(cpu, "bf16").dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 training needs a CUDA GPU"):
        dev.choose_precision(cpu, "fp16")
    with pytest.raises(ValueError, match="Unknown precision"):
        dev.choose_precision(cpu, "fp8")
    # a device written as a string, as get_device accepts it, works everywhere
    assert dev.choose_precision("cpu").name == "fp32"
    assert dev.describe("cpu") == dev.describe(cpu)
    from sftlearn.perf import peak_flops
    assert peak_flops("cpu", "bf16") is None
    with pytest.raises(TypeError, match="precision must be 'auto', 'fp32', 'bf16' or 'fp16', got None"):
        dev.choose_precision(cpu, None)


def test_bf16_autocast_runs_the_model_on_cpu(micro_model):
    x = torch.randint(0, 10, (2, 8))
    with dev.BF16.autocast(torch.device("cpu")):
        logits, _ = micro_model(x)
    assert logits.dtype == torch.bfloat16
    full, _ = micro_model(x)
    assert torch.allclose(logits.float(), full, atol=0.05)


@pytest.mark.parametrize("capability, hip, expected", [
    ((9, 0), None, ("bf16", False)),   # H100
    ((8, 0), None, ("bf16", False)),   # A100: the first with bf16 in hardware
    ((7, 5), None, ("fp16", True)),    # T4: stores bf16 but emulates its arithmetic
    ((7, 0), None, ("fp16", True)),    # V100
    ((9, 4), "6.2", ("bf16", False)),  # an AMD GPU under ROCm
])
def test_auto_precision_on_cuda_follows_the_gpus_own_bf16(monkeypatch, capability, hip, expected):
    # torch.cuda.is_bf16_supported() says True for a T4 by default (emulation counts), so it
    # must not decide; the compute capability of the very device asked about does.
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: asked.append(d) or capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", hip)
    p = dev.choose_precision(torch.device("cuda", 1))
    assert (p.name, p.needs_grad_scaler) == expected
    assert asked == ([] if hip else [torch.device("cuda", 1)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_precision_is_bf16_or_fp16_with_scaler():
    p = dev.choose_precision(torch.device("cuda"))
    assert (p.name, p.needs_grad_scaler) in {("bf16", False), ("fp16", True)}


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    dev.seed_everything(7)
    first = draw()
    dev.seed_everything(7)
    assert draw() == first
    with pytest.raises(TypeError, match="seed must be an int"):
        dev.seed_everything("7")


def test_seeded_builds_the_same_model_and_gives_the_random_state_back():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with dev.seeded(0):
        first = torch.nn.Linear(4, 2).weight.detach().clone()
    with dev.seeded(0):
        second = torch.nn.Linear(4, 2).weight.detach().clone()
    assert torch.equal(first, second)
    torch.manual_seed(0)
    assert torch.equal(first, torch.nn.Linear(4, 2).weight.detach())  # exactly manual_seed(0)
    torch.manual_seed(123)
    with dev.seeded(0):
        pass
    assert torch.equal(torch.rand(3), expected_next)


def test_seeded_gives_the_state_back_when_the_block_fails():
    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    with pytest.raises(RuntimeError, match="boom"), dev.seeded(1):
        torch.rand(10)
        raise RuntimeError("boom")
    assert torch.equal(torch.rand(2), expected_next)
    with pytest.raises(TypeError, match="seed must be an int"), dev.seeded(1.5):
        pass


def test_peaks_are_found_by_whole_words_of_the_device_name():
    assert peak_for_name("NVIDIA H100 80GB HBM3", "bf16") == 989e12  # SXM
    assert peak_for_name("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_for_name("NVIDIA H100 NVL", "bf16") == 835e12
    assert peak_for_name("NVIDIA H200 NVL", "bf16") == 835e12  # not the SXM's 989
    assert peak_for_name("NVIDIA H200", "bf16") == 989e12
    assert peak_for_name("Tesla V100-PCIE-32GB", "fp16") == 112e12  # not the SXM2's 125
    assert peak_for_name("Tesla V100-SXM2-16GB", "fp16") == 125e12
    assert peak_for_name("NVIDIA L40", "bf16") == 181e12  # not the L4's 121
    assert peak_for_name("NVIDIA L4", "bf16") == 121e12
    assert peak_for_name("NVIDIA L40S", "bf16") == 362e12
    assert peak_for_name("Tesla T4", "bf16") is None  # no bf16 on a T4
    assert peak_for_name("Some Future GPU", "bf16") is None


def test_mfu_arithmetic_and_unknown_devices():
    assert peak_flops(torch.device("cpu"), "fp32") is None
    assert mfu(1000.0, 1e9, None) is None
    assert mfu(100_000.0, 1e9, 989e12) == pytest.approx(1e14 / 989e12)


def test_describe_mentions_the_device():
    assert dev.describe(torch.device("cpu")).startswith("cpu (")


def test_describe_reads_the_device_as_get_device_does(monkeypatch):
    monkeypatch.setattr(dev, "available_devices", lambda: ["cpu"])
    with pytest.raises(ValueError, match="'cuda:0' was requested.*available: cpu"):
        dev.describe(0)  # GPU 0, not "pick the best" (0 is falsy)
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        dev.describe("tpu")
