"""What a sweep's cells will cost before they run, part by part (search, final training, validation,
test measurements), in device-hours, and the wall-clock on a cluster holding K cells in flight.

Prices come per backbone from the best source at hand, and the dry-run says which:
1. bench: `python -m app bench --json` (or `--suite`) output given with `--bench FILE` (its backbones);
2. measured: this sweep's complete cells with that backbone (their results.json `cost`);
3. guessed: an adversarial-training throughput per size class (GUESSED_IMAGES_PER_S).

Where a part is not measured, it is counted in attack passes (a forward pass with an input
gradient, per image; a forward pass costs FORWARD_RATIO of one): training runs the robust loss
(TRAIN_PASSES); validation runs that loss on the validation set and APGD-CE on the measured subset
each epoch; the test runs, on the correctly classified images, APGD-CE and, on those it cannot
break (the robust accuracy), the rest of the standard AutoAttack: APGD-T on 9 targets (5 in L1),
FAB-T on 9 targets and Square's queries. Accuracies are the paper's medians for the protocol.
"""

from __future__ import annotations

import csv
import inspect
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.sweep.cells import Cell
from app.sweep.folders import device_seconds, final_results
from app.sweep.spec import Protocol, Sweep, setting
from modules.vocabulary import PAPER_COLUMN_OF, paper_protocol

# (train, validation, test) images of the study's datasets under the paper's splits (BENCHMARK.md;
# test sets cut to 1,000), and digits as this app splits it.
DATASET_IMAGES = {
    "caltech101": (5900, 1041, 1000),
    "fgvc-aircraft-2013b": (3334, 3333, 1000),
    "flowers-102": (1020, 1020, 1000),
    "oxford-iiit-pet": (3128, 552, 1000),
    "stanford_cars": (6922, 1222, 1000),
    "uc-merced-land-use-dataset": (1428, 252, 420),
    "digits": (1221, 216, 360),
}
# Adversarial-training throughput guessed per size class (images/s on one recent GPU, 224x224,
# APGD-10 TRADES), used only until a bench file or this sweep's own runs say better.
GUESSED_IMAGES_PER_S = {"small": 400.0, "medium": 150.0, "large": 60.0}
TRAIN_PASSES = 14.0  # a robust training step per image: the attack's 11 gradients + the update (about 3)
FORWARD_RATIO = 1 / 3  # a forward pass against a forward pass with an input gradient
FAB_PASSES = 2.0  # a FAB step: the forward pass and the gradients of two logits
HOUR = 3600.0


@dataclass(frozen=True)
class Prices:
    """Device-seconds per image: a training step (per epoch), an attack pass, and, when measured,
    validation (per validation image and epoch) and the whole test (per test image)."""

    source: str  # bench, measured or guessed
    train: float
    gradient: float
    validation: float | None = None
    test: float | None = None


@dataclass
class Estimate:
    """Device-hours left by part, each cell's wall-seconds, and where the prices came from."""

    hours: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    cell_seconds: list[float] = field(default_factory=list)  # wall time of each cell still to run
    sources: dict[str, str] = field(default_factory=dict)  # backbone -> source
    unestimated: list[str] = field(default_factory=list)  # datasets of unknown size

    def wall_seconds(self, in_flight: int) -> float:
        """The cells' wall time with `in_flight` of them side by side: the greater of the total
        shared out and the longest cell."""
        if not self.cell_seconds or in_flight < 1:
            return 0.0
        return max(sum(self.cell_seconds) / in_flight, max(self.cell_seconds))


PARTS = ("search", "training", "validation", "test")


def bench_prices(bench: dict[str, Any]) -> Prices:
    seconds = bench["steps"]["seconds"]
    return Prices(
        f"bench ({bench.get('device', 'unknown device')}, {bench.get('precision', '?')}, "
        f"{bench.get('image_size', '?')}px)",
        train=1.0 / float(bench["train_images_per_s"]),
        gradient=float(seconds["gradient"]) / int(bench["batch_size"]),
    )


def guessed_prices(backbone: str) -> Prices:
    from modules.model.backbone_zoo import backbone_info

    info = backbone_info(backbone)
    size = info.size if info else "medium"
    train = 1.0 / GUESSED_IMAGES_PER_S[size]
    return Prices(f"guessed ({size})", train=train, gradient=train / TRAIN_PASSES)


def measured_prices(sweep: Sweep, cells: list[Cell], out: Path) -> dict[str, Prices]:
    """Per backbone, the mean rates of this sweep's complete cells (images from DATASET_IMAGES)."""
    rates: dict[str, list[tuple[float, float, float]]] = {}
    for cell in cells:
        record = final_results(cell.folder(out))
        images = DATASET_IMAGES.get(cell.dataset)
        epochs = int(record.get("epochs") or 0)
        if record.get("status") != "complete" or images is None or not epochs:
            continue
        spent = device_seconds(cell.folder(out))
        train_images = float(record.get("cost", {}).get("fit", {}).get("train_images") or images[0] * epochs)
        rates.setdefault(cell.backbone, []).append(
            (spent["train"] / train_images, spent["validation"] / (images[1] * epochs), spent["test"] / images[2])
        )
    prices = {}
    for backbone, values in rates.items():
        train, validation, test = (statistics.fmean(column) for column in zip(*values))
        prices[backbone] = Prices(
            f"measured ({len(values)} cells)", train, train / TRAIN_PASSES, validation=validation, test=test
        )
    return prices


def robustness_settings(sweep: Sweep, protocol: Protocol) -> dict[str, Any]:
    """The robustness options a protocol's runs get (their defaults where nothing sets them)."""
    from modules.callbacks.robustness import RobustnessCallback

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(RobustnessCallback).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    defaults |= {
        "val_measurements": ["clean", "linf", "l2"],
        "test_measurements": ["clean", "linf", "l2", "l1", "common"],
    }
    found = {
        name: setting(f"robustness.{name}", [sweep.overrides, protocol.overrides], protocol.configs)
        for name in defaults
    }
    return {name: defaults[name] if value is None else value for name, value in found.items()}


def paper_medians() -> dict[str, dict[str, float]]:
    """The paper's median accuracy per protocol (its display name) and overall ("")."""
    from app.report.paper import PAPER_RESULTS

    with PAPER_RESULTS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    groups = {"": rows} | {p: [r for r in rows if r["ft_strategy"] == p] for p in {r["ft_strategy"] for r in rows}}
    return {
        name: {logged: statistics.median(float(r[paper]) for r in group) for logged, paper in PAPER_COLUMN_OF.items()}
        for name, group in groups.items()
    }


def attack_passes(attack: str, norm: str, steps: int, queries: int, clean: float, robust: float) -> float:
    """Passes per test image of one adversarial measurement (see the module's docstring)."""
    l1 = norm == "l1"
    first = (steps + 1) * (5 if l1 else 1)  # APGD-CE (5 restarts in L1)
    if attack != "autoattack":
        return clean * first
    rest = (5 if l1 else 9) * (steps + 1) + 9 * steps * FAB_PASSES + queries * FORWARD_RATIO
    return clean * first + robust * rest


def derived_validation(prices: Prices, settings: dict[str, Any], accuracy: dict[str, float], images: tuple) -> float:
    """Device-seconds of one epoch's validation: the robust loss on the validation set, the subset's measurements."""
    subset = min(int(settings["subset_size"]), images[1])
    passes = images[1] * (TRAIN_PASSES + FORWARD_RATIO)
    for name in settings["val_measurements"]:
        adversarial = name in ("linf", "l2", "l1")
        steps = int(settings["steps"])
        passes += subset * (
            attack_passes("apgd", name, steps, 0, accuracy["clean_acc"], 0) if adversarial else FORWARD_RATIO
        )
    return passes * prices.gradient


def derived_test(prices: Prices, settings: dict[str, Any], accuracy: dict[str, float], images: tuple) -> float:
    """Device-seconds of the test measurements on the test set."""
    passes = 0.0
    for name in settings["test_measurements"]:
        if name in ("linf", "l2", "l1"):
            passes += attack_passes(
                str(settings["test_attack"]),
                name,
                int(settings["test_steps"]),
                int(settings["square_queries"]),
                accuracy["clean_acc"],
                accuracy[f"{name}_acc"],
            )
        else:  # clean, common (11 corruptions of every image with assignment `all`)
            passes += FORWARD_RATIO * (11 if name == "common" and settings["corruption_assignment"] == "all" else 1)
    return images[2] * passes * prices.gradient


def estimate(
    sweep: Sweep,
    todo: dict[Cell, str],
    out: Path,
    everything: list[Cell],
    benches: list[dict[str, Any]],
    devices_per_run: float,
) -> Estimate:
    """Price the cells of `todo` (cell -> status: a cell in `training` has its search behind it)."""
    measured = measured_prices(sweep, everything, out)
    benched = {bench["backbone"]: bench_prices(bench) for bench in benches}
    medians = paper_medians()
    settings_of = {name: robustness_settings(sweep, protocol) for name, protocol in sweep.protocols.items()}
    result = Estimate()
    for cell, state in todo.items():
        images = DATASET_IMAGES.get(cell.dataset)
        if images is None:
            result.unestimated.append(cell.dataset)
            continue
        prices = benched.get(cell.backbone) or measured.get(cell.backbone) or guessed_prices(cell.backbone)
        result.sources[cell.backbone] = prices.source
        protocol, settings = sweep.protocols[cell.protocol], settings_of[cell.protocol]
        accuracy = medians.get(paper_protocol(cell.protocol) or "", medians[""])
        epochs = protocol.epochs
        validation = (
            prices.validation * images[1]
            if prices.validation is not None
            else derived_validation(prices, settings, accuracy, images)
        )
        test = prices.test * images[2] if prices.test is not None else derived_test(prices, settings, accuracy, images)
        training = prices.train * images[0] * epochs
        search = 0.0
        if state in ("pending", "tuning"):  # its whole budget, or all its samples run to the end if fewer
            search = sweep.search.budget_device_seconds(devices_per_run)
            if sweep.search.num_samples > 0:
                search = min(search, sweep.search.num_samples * (training + validation * epochs))
        parts = {"search": search, "training": training, "validation": validation * epochs, "test": test}
        for part, seconds in parts.items():
            result.hours[part] += seconds / HOUR
        search_wall = search / (devices_per_run * sweep.search.concurrent_trials)
        result.cell_seconds.append(search_wall + sum(v for k, v in parts.items() if k != "search") / devices_per_run)
    result.unestimated = sorted(set(result.unestimated))
    return result
