"""`<out>/sweep.csv`: one row per cell (its axes, status, the paper's figures and the checks that flag
them, the chosen values, device-seconds by part, run folder, error), rewritten whole and atomically by
the driver only."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from app.sweep.cells import Cell
from app.sweep.spec import AXES
from modules.runs import write_text_atomic

FIGURES = ("clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc")
STATUSES = ("pending", "tuning", "training", "complete", "failed")
# device-seconds (GPU-seconds; on CPUs, seconds of one run's device): the search (every trial), the
# final run's training, its validation, its test measurements, and their sum
DEVICE_SECONDS = ("search_device_s", "train_device_s", "validation_device_s", "test_device_s", "device_seconds")
# checks: the final run's measurements whose robustness checks tripped (masked gradients, ...), "" when none
COLUMNS = (
    *AXES,
    "axes",
    "status",
    *FIGURES,
    "checks",
    "best",
    "best_trial",
    "best_metric",
    *DEVICE_SECONDS,
    "run",
    "error",
)


def row_key(cell: Cell) -> str:
    return json.dumps(cell.key(), sort_keys=True)


class Ledger:
    """The rows of sweep.csv by cell; `set` changes a row and rewrites the file."""

    def __init__(self, out: Path) -> None:
        self.path = out / "sweep.csv"
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            with self.path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    key = json.dumps(
                        {axis: row[axis] for axis in AXES} | json.loads(row["axes"] or "{}"), sort_keys=True
                    )
                    self.rows[key] = row

    def get(self, cell: Cell) -> dict[str, Any]:
        return self.rows.get(row_key(cell), {})

    def set(self, cell: Cell, **fields: Any) -> None:
        row = self.rows.setdefault(row_key(cell), {column: "" for column in COLUMNS})
        row |= {axis: cell.value(axis) for axis in AXES} | {"axes": json.dumps(dict(cell.extra)) if cell.extra else ""}
        row |= {key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in fields.items()}
        self.write()

    def write(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows.values())
        write_text_atomic(self.path, buffer.getvalue())

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows.values():
            counts[row.get("status") or "pending"] += 1
        return counts
