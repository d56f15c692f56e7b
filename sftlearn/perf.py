"""How fast is training, compared with what the hardware could do?

Model FLOPs utilisation (MFU) = achieved FLOP/s ÷ the device's peak FLOP/s, where achieved
FLOP/s = tokens/s × training FLOPs per token (``GPT.flops_per_token``). The peaks below are the
vendors' published dense (no sparsity) tensor-core numbers for the precision we train in.
"""

from __future__ import annotations

import re

import torch

# Published dense peak TFLOP/s by (GPU name fragment, precision). The first fragment found in
# the device's name as whole words wins ("L4" is not found in "L40"), so more specific names
# come first.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 418.0}),  # the PCIe card
    ("H200", {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0}),  # SXM; fp32 = TF32 dense
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 378.0}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 418.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0}),  # SXM
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "fp32": 183.0}),
    ("L40", {"bf16": 181.0, "fp16": 181.0, "fp32": 90.5}),
    ("A10G", {"bf16": 70.0, "fp16": 70.0, "fp32": 35.0}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0}),
    ("RTX 4090", {"bf16": 165.0, "fp16": 165.0, "fp32": 82.6}),
    ("RTX 3090", {"bf16": 71.0, "fp16": 71.0, "fp32": 35.6}),
    ("V100-PCIE", {"fp16": 112.0, "fp32": 14.0}),  # CUDA names it "Tesla V100-PCIE-16GB"
    ("V100", {"fp16": 125.0, "fp32": 15.7}),  # SXM2
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]


def peak_flops(device: torch.device | str, precision: str) -> float | None:
    """Peak FLOP/s of ``device`` at ``precision``, or None if the device is not in the table."""
    device = torch.device(device)  # "cpu" and "cuda:0" too
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device), precision)


def peak_for_name(name: str, precision: str) -> float | None:
    """Peak FLOP/s of the GPU called ``name`` (as CUDA reports it) at ``precision``."""
    for fragment, peaks in PEAK_TFLOPS:
        if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", name):
            value = peaks.get(precision)
            return value * 1e12 if value else None
    return None


def mfu(tokens_per_second: float, flops_per_token: float, peak: float | None) -> float | None:
    """Fraction of peak throughput achieved (None when the peak is unknown)."""
    if not peak:
        return None
    return tokens_per_second * flops_per_token / peak
