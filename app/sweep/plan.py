"""What a sweep has left to do, and what it needs, before anything is launched: each cell's status
from its folder, the missing dataset folders and pretrained weights, an estimate of GPU-hours."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.sweep.cells import Cell
from app.sweep.ledger import Ledger
from app.sweep.runs import FINAL
from app.sweep.spec import Sweep, setting
from datamodules import DATAMODULES, FileImageDataModule

BEST = "best.yaml"
# Training images of the study's datasets under the paper's splits (BENCHMARK.md), for estimates.
TRAIN_IMAGES = {
    "caltech101": 5900,
    "fgvc-aircraft-2013b": 3334,
    "flowers-102": 1020,
    "oxford-iiit-pet": 3128,
    "stanford_cars": 6922,
    "uc-merced-land-use-dataset": 1428,
    "digits": 1221,
}
# Adversarial-training throughput guessed per size class (images/s on one recent GPU, 224x224, APGD-10),
# used only until this sweep has measured its own.
GUESSED_IMAGES_PER_S = {"small": 400.0, "medium": 150.0, "large": 60.0}


def final_results(cell_dir: Path) -> dict:
    path = cell_dir / FINAL / "results.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def status(cell_dir: Path, ledger: Ledger, cell: Cell) -> str:
    """complete (its final run is), failed (the ledger says so), training (its search is done),
    tuning (its search started) or pending. The folders decide; the ledger only remembers failures."""
    if final_results(cell_dir).get("status") == "complete":
        return "complete"
    if ledger.get(cell).get("status") == "failed":
        return "failed"
    if (cell_dir / BEST).is_file():
        return "training"
    return "tuning" if (cell_dir / "tune").exists() else "pending"


def pretrained(sweep: Sweep, protocol: str) -> bool:
    """Whether a protocol's runs start from pretrained weights (as the CLI would resolve it)."""
    found = setting(
        "model.init_args.pretrained",
        [sweep.overrides, sweep.protocols[protocol].overrides],
        sweep.protocols[protocol].configs,
    )
    return True if found is None else bool(found)


@dataclass
class Plan:
    statuses: dict[Cell, str]
    missing_roots: list[str] = field(default_factory=list)
    missing_weights: list[str] = field(default_factory=list)
    gpu_hours: float = 0.0
    unestimated: list[str] = field(default_factory=list)  # datasets of unknown size

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for value in self.statuses.values():
            counts[value] = counts.get(value, 0) + 1
        return counts

    def blockers(self) -> list[str]:
        return [*self.missing_roots, *self.missing_weights]


def seconds_per_image(cell_dir: Path) -> float | None:
    """Measured: a complete final run's fit seconds per training image and epoch."""
    record = final_results(cell_dir)
    images = TRAIN_IMAGES.get(str(record.get("dataset")))
    if record.get("status") != "complete" or not images or not record.get("epochs"):
        return None
    return float(record["fit_seconds"]) / (images * int(record["epochs"]))


def plan(sweep: Sweep, selected: list[Cell], out: Path, ledger: Ledger) -> Plan:
    """Statuses, blockers (dataset folders, uncached weights of cells still to run) and GPU-hours left."""
    from modules.model.backbone_zoo import backbone_info
    from modules.model.backbones import resolve_timm_name
    from modules.model.pretrained import cached_file, hub_weights

    result = Plan({cell: status(cell.folder(out), ledger, cell) for cell in selected})
    todo = [cell for cell, value in result.statuses.items() if value not in ("complete", "failed")]
    for dataset in sorted({cell.dataset for cell in todo}):
        root = sweep.data_roots.get(dataset)
        if issubclass(DATAMODULES.get(dataset), FileImageDataModule) and (root is None or not root.is_dir()):
            result.missing_roots.append(
                f"dataset {dataset}: folder {root or '(none: give data_roots.' + dataset + ')'} not found"
            )
    for backbone in sorted({cell.backbone for cell in todo if pretrained(sweep, cell.protocol)}):
        info = backbone_info(backbone)
        if backbone in sweep.weights or (info is not None and info.checkpoint_format):
            path = sweep.weights.get(backbone)
            if path is None or not path.is_file():
                result.missing_weights.append(
                    f"backbone {backbone}: checkpoint file {path or '(none: give weights.' + backbone + ')'} not found"
                )
            continue
        weights = hub_weights(resolve_timm_name(backbone))
        if weights is not None and cached_file(weights) is None:
            result.missing_weights.append(
                f"backbone {backbone}: pretrained weights not in the cache (python -m app weights fetch {backbone})"
            )
    measured = {cell.backbone: s for cell in selected if (s := seconds_per_image(cell.folder(out))) is not None}
    for cell in todo:
        images = TRAIN_IMAGES.get(cell.dataset)
        if images is None:
            result.unestimated.append(cell.dataset)
            continue
        info = backbone_info(cell.backbone)
        per_image = measured.get(cell.backbone) or 1 / GUESSED_IMAGES_PER_S[info.size if info else "medium"]
        searching = sweep.search.time_budget_minutes * 60 if result.statuses[cell] in ("pending", "tuning") else 0
        result.gpu_hours += (searching + per_image * images * sweep.protocols[cell.protocol].epochs) / 3600
    result.unestimated = sorted(set(result.unestimated))
    return result
