"""Wall time of a piece of work on a device: warm-up first, CUDA synchronised, the median of repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(work: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        work()
    times = []
    for _ in range(max(repeats, 1)):
        synchronize(device)
        started = time.perf_counter()
        work()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
