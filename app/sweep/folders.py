"""What a cell's folder holds, read and written in one place: the folders are the truth of a sweep
(a cell is complete when its final results.json says so; the ledger and the table are views).

    <cell>/trials/<trial id>/   an `app fit` run folder per search trial
    <cell>/tune/                Tune's own experiment state
    <cell>/best.yaml            the chosen values, written when the search ends
    <cell>/final/               the final run's folder (results.json, checkpoints/, TensorBoard)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modules.runs import read_record, write_json_atomic, write_text_atomic

TRIALS, FINAL, BEST, EXPERIMENTS = "trials", "final", "best.yaml", "tune"


@dataclass
class Chosen:
    values: dict[str, Any]  # dotted option -> value
    trial: str
    metric: float
    device_seconds: float  # of all the cell's trials


def read_best(cell_dir: Path) -> Chosen | None:
    path = cell_dir / BEST
    if not path.is_file():
        return None
    best = yaml.safe_load(path.read_text())
    return Chosen(best["values"], best["trial"], float(best["metric"]["value"]), float(best["device_seconds"]))


def write_best(cell_dir: Path, chosen: Chosen, metric: str) -> None:
    write_text_atomic(
        cell_dir / BEST,
        yaml.safe_dump(
            {
                "values": chosen.values,
                "trial": chosen.trial,
                "trial_folder": str(cell_dir / TRIALS / chosen.trial),
                "metric": {"name": metric, "value": chosen.metric},
                "device_seconds": round(chosen.device_seconds, 1),
            },
            sort_keys=False,
        ),
    )


def update_record(run: Path, **fields: Any) -> None:
    """Merge `fields` into a run folder's results.json (made with the folder when it has none)."""
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "results.json", read_record(run) | fields)


def final_results(cell_dir: Path) -> dict[str, Any]:
    return read_record(cell_dir / FINAL)


def folder_status(cell_dir: Path) -> str:
    """complete (its final run is), training (its search is done), tuning (its search started) or pending."""
    if final_results(cell_dir).get("status") == "complete":
        return "complete"
    if (cell_dir / BEST).is_file():
        return "training"
    return "tuning" if (cell_dir / EXPERIMENTS).exists() else "pending"


def device_seconds(cell_dir: Path) -> dict[str, float]:
    """What a cell has cost, in device-seconds (GPU-seconds; on CPUs, seconds of one run's device):
    its search (every trial), its final training, the validation measurements within it, and the
    test measurements."""
    chosen, record = read_best(cell_dir), final_results(cell_dir)
    cost = record.get("cost", {})
    fit, test = cost.get("fit", {}), cost.get("test", {})
    validation = float(fit.get("validation_device_seconds", 0.0))
    return {
        "search": chosen.device_seconds if chosen else 0.0,
        "train": max(float(fit.get("fit_device_seconds", 0.0)) - validation, 0.0),
        "validation": validation,
        "test": float(sum(test.get("measurement_device_seconds", {}).values())),
    }
