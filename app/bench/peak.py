"""The device's peak FLOP/s, the denominator of model FLOP utilisation (MFU).

On CUDA the published dense peak of the GPU (bf16 tensor cores, or fp32 without TF32) where the
device is known; elsewhere, and always on the CPU, a large matrix product measured in the same run,
so that MFU is a ratio on any machine."""

from __future__ import annotations

import torch

from app.bench.timing import median_seconds

# published dense peaks (no sparsity), FLOP/s: (bf16, fp32)
PUBLISHED = {
    "H200": (989.4e12, 66.9e12),
    "H100 PCIe": (756.5e12, 51.2e12),
    "H100": (989.4e12, 66.9e12),
    "A100": (312e12, 19.5e12),
    "L40S": (362.05e12, 91.6e12),
    "A10G": (70e12, 31.2e12),
}


def published_peak(device: torch.device, dtype: torch.dtype) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (bf16, fp32) in PUBLISHED.items():  # the most specific key first ("H100 PCIe" before "H100")
        if key in name:
            return bf16 if dtype == torch.bfloat16 else fp32
    return None


def measured_peak(device: torch.device, dtype: torch.dtype, size: int | None = None) -> float:
    """FLOP/s of a size x size matrix product in `dtype` (2 size^3 operations)."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.rand(size, size, device=device, dtype=dtype)
    b = torch.rand(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: a @ b, device, repeats=5, warmup=2)
    return 2 * size**3 / seconds


def peak(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """(FLOP/s, where the figure comes from)."""
    published = published_peak(device, dtype)
    if published is not None:
        return published, f"published peak of {torch.cuda.get_device_name(device)}"
    return measured_peak(device, dtype), "a large matrix product measured in this run"
