"""What a run costs: the device it ran on, images per second, device-seconds and peak memory."""

from __future__ import annotations

import resource
import sys

import torch
from lightning import Trainer


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU with the threads torch uses."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def device(trainer: Trainer) -> dict[str, object]:
    """The device's name, how many took part (GPUs or processes) and the precision."""
    return {
        "device": device_name(trainer.strategy.root_device),
        "devices": trainer.world_size,
        "precision": str(trainer.precision),
    }


def peak_memory(trainer: Trainer) -> dict[str, object]:
    """The peak of this process: CUDA memory allocated on its GPU, else the resident set size."""
    root = trainer.strategy.root_device
    if root.type == "cuda":
        return {
            "peak_memory_mb": round(torch.cuda.max_memory_allocated(root) / 2**20, 1),
            "peak_memory_of": "cuda allocated",
        }
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return {
        "peak_memory_mb": round(kilobytes / (2**20 if sys.platform == "darwin" else 2**10), 1),
        "peak_memory_of": "process resident set",
    }


def fit_cost(
    trainer: Trainer, fit_seconds: float, images_per_rank: int, validation_seconds: float = 0.0
) -> dict[str, object]:
    """Training images per second over the fit's wall time (validation included), and device-seconds
    (devices x wall), the figure a GPU-hour budget counts; `validation_device_seconds`: the part of
    them validation took (the validation loop, with its robust loss, and the measurements on the
    validation subset each epoch)."""
    images = images_per_rank * trainer.world_size
    return (
        device(trainer)
        | {
            "train_images": images,
            "train_images_per_s": round(images / max(fit_seconds, 1e-9), 2),
            "fit_device_seconds": round(fit_seconds * trainer.world_size, 1),
            "validation_device_seconds": round(validation_seconds * trainer.world_size, 1),
        }
        | peak_memory(trainer)
    )


def test_cost(trainer: Trainer, seconds: dict[str, float]) -> dict[str, object]:
    """Each measurement's device-seconds (its wall time on every device taking part)."""
    return (
        device(trainer)
        | {
            "measurement_device_seconds": {
                name: round(value * trainer.world_size, 1) for name, value in seconds.items()
            }
        }
        | peak_memory(trainer)
    )
