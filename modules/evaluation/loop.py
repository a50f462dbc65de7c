"""The evaluation loop: measurements run batch by batch (the batches shared out over ranks), gathered over
ranks by dataset index, summarised."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from modules.attacks.mode import eval_mode
from modules.evaluation.checks import measurement_checks, model_checks, warnings_of
from modules.evaluation.figures import collect_examples
from modules.evaluation.measurements import EvaluationSettings, Measurement, batch_seed, build_measurements
from modules.evaluation.outcomes import OutcomeStore
from modules.vocabulary import ADVERSARIAL_MEASUREMENTS

CHECKED = (*ADVERSARIAL_MEASUREMENTS, "expected_linf")  # the measurements an attack can fail


class IndexedSubset(torch.utils.data.Dataset):
    """`dataset` restricted to `indices`, yielding (x, y, dataset index)."""

    def __init__(self, dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.dataset[self.indices[i]][:2]
        return x, y, self.indices[i]


class Stopped(Exception):
    """The measurements stopped between two batches because a stop was asked for (a signal): every
    batch measured so far is recorded. `examples`: this process's examples kept and measured."""

    def __init__(self, message: str, examples: dict[str, dict[str, int]]) -> None:
        super().__init__(message)
        self.examples = examples


Record = Callable[[str, list[int], list[object]], None]  # (measurement, dataset indices, outcomes)


def seeded_run(measurement: Measurement, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """`measurement.run` on one batch with the random state of (seed, measurement, batch indices): its
    attacks' own generators and torch's (for attacks that draw from it), which is restored afterwards,
    so that a measurement never shifts the random stream of the training around it."""
    seed = batch_seed(measurement.settings.seed, measurement.name, idx.tolist())
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        measurement.reseed(seed)
        return measurement.run(x, y, idx)


def rank_batches(count: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """The positions (into a list of `count` examples) of rank `rank`'s batches: every batch is
    `batch_size` consecutive examples, the batches dealt out to the ranks in turn."""
    batches = [list(range(start, min(start + batch_size, count))) for start in range(0, count, batch_size)]
    return batches[rank::world_size]


def per_example(
    model: nn.Module,
    dataset,
    indices: list[int],
    measurements: dict,
    device: torch.device,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 30.0,
    done: dict[str, dict[int, object]] | None = None,
    record: Record | None = None,
    should_stop: Callable[[], bool] | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[dict[str, dict[int, list[bool] | bool]], dict[str, float]]:
    """Per-example correctness of every measurement over this rank's batches of `indices` of
    `dataset`, keyed by dataset index, and the seconds each measurement took. The model is
    evaluated in eval mode; attacks restore every module's mode themselves.

    The batches are fixed: consecutive runs of `batch_size` of `indices`, whatever the number of
    ranks (rank r takes batches r, r + world_size, ...). Each batch is measured with its own random
    state (`seeded_run`), so its outcomes depend on nothing else: the figures are the same on any
    number of processes, and a resumed test's are an uninterrupted one's. A measurement skips a
    batch whose examples are all in `done` (its earlier results); every batch it measures goes to
    `record`. `should_stop` is asked after every batch; when it says so, `Stopped` is raised.

    `progress` receives a line at most every `progress_every` seconds (a standard AutoAttack
    on a CPU takes many minutes; a short run stays silent)."""
    done = done or {}
    batches = rank_batches(len(indices), batch_size, rank, world_size)
    mine = [indices[p] for positions in batches for p in positions]
    results: dict[str, dict[int, list[bool] | bool]] = {
        name: {i: done[name][i] for i in mine if i in done.get(name, {})} for name in measurements
    }
    todo = [
        (positions, [name for name in measurements if any(indices[p] not in results[name] for p in positions)])
        for positions in batches
    ]
    todo = [(positions, names) for positions, names in todo if names]
    loader = torch.utils.data.DataLoader(
        IndexedSubset(dataset, indices), batch_sampler=[positions for positions, _ in todo]
    )
    seconds = dict.fromkeys(measurements, 0.0)
    new = dict.fromkeys(measurements, 0)
    total = sum(len(positions) for positions, _ in todo)
    measured, last_report = 0, time.perf_counter()
    with eval_mode(model):
        for (x, y, idx), (_, names) in zip(loader, todo):
            x, y = x.to(device), y.to(device)
            for name in names:
                started = time.perf_counter()
                correct = seeded_run(measurements[name], x, y, idx).cpu()
                seconds[name] += time.perf_counter() - started
                rows = [c.tolist() for c in correct]
                results[name].update(zip(idx.tolist(), rows))
                measurements[name].last_indices = idx.tolist()
                new[name] += len(rows)
                if record is not None:
                    record(name, idx.tolist(), rows)
            measured += len(y)
            if progress is not None and time.perf_counter() - last_report >= progress_every:
                spent = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
                progress(f"robustness measurements: {measured}/{total} images done ({spent})")
                last_report = time.perf_counter()
            if should_stop is not None and should_stop():
                examples = {name: {"kept": len(results[name]) - n, "measured": n} for name, n in new.items()}
                raise Stopped(f"stopped after {measured} of {total} images", examples)
    return results, seconds


def robustness_checks(model: nn.Module, dataset, indices: list[int], report: dict, settings, device) -> dict:
    """`checks` per adversarial measurement of `report` and the `warnings` of those that tripped."""
    measured = [name for name in report["settings"] if name in CHECKED]
    if not measured or not indices:
        return {}
    items = [dataset[i] for i in indices]
    x = torch.stack([item[0] for item in items]).to(device)
    y = torch.tensor([int(item[1]) for item in items], device=device)
    with settings.precision():
        verdicts, classes = model_checks(model, x, y)
    found = {name: measurement_checks(verdicts, report, name, classes) for name in measured}
    return {"checks": found, "warnings": warnings_of(found)}


def every_rank(value: object) -> list:
    """`value` from every rank, in rank order ([value] without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    everything: list = [None] * dist.get_world_size()
    dist.all_gather_object(everything, value)
    return everything


def gather(
    results: dict[str, dict[int, object]], seconds: dict[str, float], kept: dict[str, int]
) -> tuple[dict, dict, dict]:
    """Union of every rank's per-example results (keyed by dataset index, so exact whatever the
    sharding); seconds are the maximum over ranks (the wall time); the examples kept from earlier
    starts, added over ranks."""
    merged = {name: {} for name in results}
    wall = dict.fromkeys(seconds, 0.0)
    total = dict.fromkeys(kept, 0)
    for part, part_seconds, part_kept in every_rank((results, seconds, kept)):
        for name, rows in part.items():
            merged[name].update(rows)
        for name, value in part_seconds.items():
            wall[name] = max(wall[name], value)
        for name, value in part_kept.items():
            total[name] += value
    return merged, wall, total


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
    store: OutcomeStore | None = None,
    should_stop: Callable[[], bool] | None = None,
    outcomes: bool = False,
    checks: bool = False,
) -> dict:
    """Run the measurements `names` over this rank's batches of `indices` (see `per_example`),
    gather every rank's per-example results and let each measurement summarise them: accuracy per
    column, settings, seconds, and the fields a measurement adds (per corruption, who broke what,
    the expected-robustness curve, the fp32 recheck).

    With a `store`, the examples it already holds for these weights and settings are not measured
    again and every batch measured is recorded in it (see outcomes.py); `report["examples"]` says
    how many examples this call kept and measured, per measurement. `outcomes`: the per-example
    results too, `report["outcomes"][measurement][dataset index]`. `checks`: the reference
    AutoAttack's checks of every adversarial measurement (`report["checks"]`, `report["warnings"]`,
    see checks.py), the model's on the first batch of `indices` (the same on every rank)."""
    measurements = build_measurements(names, model, settings)
    done = {name: store.load(name, m.described) for name, m in measurements.items()} if store else {}
    stopped: Stopped | None = None
    results: dict = {name: {} for name in measurements}
    seconds: dict = dict.fromkeys(measurements, 0.0)
    try:
        results, seconds = per_example(
            model,
            dataset,
            indices,
            measurements,
            device,
            batch_size,
            progress=rank_zero_info if rank == 0 else None,
            done=done,
            record=store.append if store else None,
            should_stop=should_stop,
            rank=rank,
            world_size=world_size,
        )
    except Stopped as error:
        stopped = error
    finally:
        if store is not None:
            store.close()
    # Every rank stops if one did: a rank done with its batches would otherwise wait in the gather below.
    if any(every_rank(stopped is not None)):
        kept = {name: sum(i in done.get(name, {}) for i in rows) for name, rows in results.items()}
        examples = {name: {"kept": n, "measured": len(results[name]) - n} for name, n in kept.items()}
        raise stopped or Stopped("stopped: another process was stopped", examples)
    kept = {name: sum(i in done.get(name, {}) for i in results[name]) for name in measurements}
    results, seconds, kept = gather(results, seconds, kept)
    report: dict = {
        "accuracy": {},
        "seconds": {},
        "settings": {},
        "num_images": len(indices),
        "examples": {name: {"kept": kept[name], "measured": len(indices) - kept[name]} for name in measurements},
    }
    for name, measurement in measurements.items():
        rows = results[name]
        if len(rows) != len(indices):
            rank_zero_warn(f"{name}: {len(rows)} results for {len(indices)} images")
        report["settings"][name] = measurement.described
        report["seconds"][name] = round(seconds[name], 3)
        for key, value in measurement.summarise(rows).items():
            report.setdefault(key, {}).update(value)
    if outcomes:
        report["outcomes"] = results
    if checks:
        report |= robustness_checks(model, dataset, indices[:batch_size], report, settings, device)
    examples = collect_examples(measurements, dataset)
    if examples:
        report["_examples"] = examples
    return report
