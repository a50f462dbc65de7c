"""The evaluation loop: measurements run over a dataset shard, gathered over ranks by dataset index, summarised."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from modules.attacks.mode import eval_mode
from modules.evaluation.figures import collect_examples
from modules.evaluation.measurements import EvaluationSettings, build_measurements


class IndexedSubset(torch.utils.data.Dataset):
    """`dataset` restricted to `indices`, yielding (x, y, dataset index)."""

    def __init__(self, dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.dataset[self.indices[i]][:2]
        return x, y, self.indices[i]


def per_example(
    model: nn.Module,
    dataset,
    indices: list[int],
    measurements: dict,
    device: torch.device,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 30.0,
) -> tuple[dict[str, dict[int, list[bool] | bool]], dict[str, float]]:
    """Per-example correctness of every measurement over `indices` of `dataset` (one shard),
    keyed by dataset index, and the seconds each measurement took. The model is evaluated in
    eval mode; attacks restore every module's mode themselves.

    `progress` receives a line at most every `progress_every` seconds (a standard AutoAttack
    on a CPU takes many minutes; a short run stays silent)."""
    loader = torch.utils.data.DataLoader(IndexedSubset(dataset, indices), batch_size=batch_size)
    results: dict[str, dict[int, list[bool] | bool]] = {name: {} for name in measurements}
    seconds = dict.fromkeys(measurements, 0.0)
    done, last_report = 0, time.perf_counter()
    with eval_mode(model):
        for x, y, idx in loader:
            x, y = x.to(device), y.to(device)
            for name, measurement in measurements.items():
                started = time.perf_counter()
                correct = measurement.run(x, y, idx).cpu()
                seconds[name] += time.perf_counter() - started
                results[name].update({int(i): c.tolist() for i, c in zip(idx, correct)})
            done += len(y)
            if progress is not None and time.perf_counter() - last_report >= progress_every:
                spent = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
                progress(f"robustness measurements: {done}/{len(indices)} images done ({spent})")
                last_report = time.perf_counter()
    return results, seconds


def gather(results: dict[str, dict[int, object]], seconds: dict[str, float]) -> tuple[dict, dict]:
    """Union of every rank's per-example results (keyed by dataset index, so exact whatever the
    sharding); seconds are the maximum over ranks (the wall time). A no-op without a process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return results, seconds
    everything: list = [None] * dist.get_world_size()
    dist.all_gather_object(everything, (results, seconds))
    merged = {name: {} for name in results}
    wall = dict.fromkeys(seconds, 0.0)
    for part, part_seconds in everything:
        for name, rows in part.items():
            merged[name].update(rows)
        for name, value in part_seconds.items():
            wall[name] = max(wall[name], value)
    return merged, wall


def evaluate(
    model: nn.Module,
    dataset,
    indices: list[int],
    names: list[str],
    settings: EvaluationSettings,
    device,
    batch_size: int = 64,
    rank: int = 0,
    world_size: int = 1,
) -> dict:
    """Run the measurements `names` over `indices` (this rank's shard: indices[rank::world_size]),
    gather every rank's per-example results and let each measurement summarise them: accuracy per
    column, settings, seconds, and the fields a measurement adds (per corruption, who broke what,
    the expected-robustness curve, the fp32 recheck)."""
    measurements = build_measurements(names, model, settings)
    shard = indices[rank::world_size]
    results, seconds = per_example(
        model, dataset, shard, measurements, device, batch_size, progress=rank_zero_info if rank == 0 else None
    )
    results, seconds = gather(results, seconds)
    report: dict = {"accuracy": {}, "seconds": {}, "settings": {}, "num_images": len(indices)}
    for name, measurement in measurements.items():
        rows = results[name]
        if len(rows) != len(indices):
            rank_zero_warn(f"{name}: {len(rows)} results for {len(indices)} images")
        report["settings"][name] = measurement.described
        report["seconds"][name] = round(seconds[name], 3)
        for key, value in measurement.summarise(rows).items():
            report.setdefault(key, {}).update(value)
    examples = collect_examples(measurements, dataset, shard, settings)
    if examples:
        report["_examples"] = examples
    return report
