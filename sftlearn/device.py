"""Where the computation runs, at what precision, and how to make it repeatable.

Three questions every training script answers before it starts:

1. **Which device?** ``get_device()`` picks CUDA if there is a GPU, then Apple's MPS, then the
   CPU. You can force a choice with an argument or with the ``SFTLEARN_DEVICE`` environment
   variable (for example ``SFTLEARN_DEVICE=cpu`` to run a lesson on the CPU on a GPU machine).
2. **Which precision?** ``choose_precision()`` returns bf16 on GPUs that support it (same
   exponent range as fp32, so no loss scaling is needed), fp16 with a gradient scaler on older
   GPUs, and plain fp32 on the CPU, where low precision is slower rather than faster.
3. **Same numbers every run?** ``seed_everything()`` seeds Python, NumPy and torch.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .validation import check_seed

ENV_DEVICE = "SFTLEARN_DEVICE"
_KNOWN_KINDS = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The device kinds this machine can use, best first (the CPU is always there)."""
    kinds = []
    if torch.cuda.is_available():
        kinds.append("cuda")
    if _mps_available():
        kinds.append("mps")
    kinds.append("cpu")
    return kinds


def get_device(name: str | int | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    Order of precedence: the ``name`` argument, then the ``SFTLEARN_DEVICE`` environment
    variable, then the best available device (cuda → mps → cpu). A number names a CUDA GPU
    (``0`` is ``"cuda:0"``, as ``model.to(0)`` means on a CUDA machine). Asking for a device
    that this machine does not have raises a ``ValueError`` that says what is available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    elif isinstance(name, int) and not isinstance(name, bool):
        if name < 0:
            raise ValueError(f"A GPU number counts from 0, got {name}.")
        name = f"cuda:{name}"
    elif name is not None and not isinstance(name, str):
        raise TypeError(
            f"A device is a name such as 'cpu', 'cuda', 'cuda:1' or 'auto', a GPU number or a "
            f"torch.device, got {type(name).__name__} {name!r}."
        )
    requested = name or os.environ.get(ENV_DEVICE) or ""
    requested = requested.strip().lower()
    if not requested or requested == "auto":
        return torch.device(available_devices()[0])

    kind, colon, index = requested.partition(":")
    if kind not in _KNOWN_KINDS or (colon and not index.isdigit()):
        raise ValueError(
            f"Unknown device {requested!r}. Use one of {', '.join(_KNOWN_KINDS)} "
            f"(optionally 'cuda:N'), or 'auto' to pick the best available."
        )
    if kind not in available_devices():
        source = "argument" if name else f"environment variable {ENV_DEVICE}"
        raise ValueError(
            f"Device {requested!r} was requested (by the {source}) but is not available on "
            f"this machine; available: {', '.join(available_devices())}. "
            f"Ask for one of those, or unset {ENV_DEVICE} to choose automatically."
        )
    if kind == "cuda" and colon and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"{requested!r} does not exist: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s), numbered from 0."
        )
    return torch.device(requested)


@dataclass(frozen=True)
class Precision:
    """How to run the forward pass: ``dtype`` for autocast (None = plain fp32) and whether
    gradients must be scaled (fp16 gradients underflow without it)."""

    name: str  # "bf16", "fp16" or "fp32"
    dtype: torch.dtype | None
    needs_grad_scaler: bool

    def autocast(self, device: torch.device):
        """A context manager for the forward pass at this precision (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


FP32 = Precision("fp32", None, False)
BF16 = Precision("bf16", torch.bfloat16, False)
FP16 = Precision("fp16", torch.float16, True)
PRECISIONS = {"fp32": FP32, "bf16": BF16, "fp16": FP16}


def choose_precision(device: torch.device | str, requested: str = "auto") -> Precision:
    """Pick the training precision for ``device``.

    ``"auto"``: bf16 on a GPU that computes it natively (see ``native_bf16``), else fp16
    (with a gradient scaler) on CUDA, else fp32. On the CPU and MPS, ``"auto"`` means fp32:
    mixed precision there is slower or unsupported for training, and the course's small
    models do not need it.
    """
    device = torch.device(device)  # "cpu" and "cuda:0" too
    if not isinstance(requested, str):
        raise TypeError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {requested!r}.")
    requested = requested.lower()
    if requested != "auto":
        if requested not in PRECISIONS:
            raise ValueError(
                f"Unknown precision {requested!r}; use 'auto', 'fp32', 'bf16' or 'fp16'."
            )
        if requested == "fp16" and device.type != "cuda":
            raise ValueError(
                "fp16 training needs a CUDA GPU (its gradient scaler is CUDA-only); "
                "use 'fp32' or 'bf16' on this device."
            )
        return PRECISIONS[requested]
    if device.type == "cuda":
        return BF16 if native_bf16(device) else FP16
    return FP32


def native_bf16(device: torch.device) -> bool:
    """Whether the CUDA GPU ``device`` does bf16 arithmetic in hardware: NVIDIA GPUs of
    compute capability 8.0 or newer (A100, RTX 30xx, H100, ...), and AMD GPUs under ROCm.

    Not ``torch.cuda.is_bf16_supported()``: by default that also says True for older GPUs
    (T4, V100) that can merely store bf16 tensors and emulate the arithmetic slowly; for
    them fp16 with a gradient scaler is the fast path. It also asks about the current
    GPU, not necessarily ``device``.
    """
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators (all devices)."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's CPU generator seeded with ``seed``, then give the caller back
    the random state it had: code that builds a fixed model on the CPU inside

    >>> with seeded(0):
    ...     model = torch.nn.Linear(4, 2)

    always builds the same one, and does not change what the caller's next ``torch.rand``
    returns (an exercise check or a speed test must not reseed the reader's notebook)."""
    check_seed(seed)
    # The CPU generator only: forking the GPUs' generators would start CUDA on a GPU machine
    # for nothing, and torch.manual_seed would reseed them without giving their state back.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def enable_fast_math(device: torch.device) -> None:
    """On CUDA, allow TF32 matrix multiplies (fp32 inputs, ~10-bit mantissa products):
    several times faster on Ampere and newer GPUs, accurate enough for training."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def describe(device: torch.device | str | int | None = None) -> str:
    """One line saying which device will be used, for printing at the top of a lesson."""
    device = get_device(device)  # a name, a GPU number or a torch.device; None picks the best
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        memory_gb = props.total_memory / 2**30
        return f"cuda ({props.name}, {memory_gb:.0f} GiB), precision {choose_precision(device).name}"
    if device.type == "mps":
        return "mps (Apple GPU), precision fp32"
    return f"cpu ({torch.get_num_threads()} threads), precision fp32"
