"""The run's `results.json`, under the paper's column names, and the terminal summary."""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table

from modules.protocols import study_protocol

# logged metric suffix -> the paper's column name
PAPER_COLUMNS = {"clean_acc": "clean_acc", "linf_acc": "Linf_acc", "l2_acc": "L2_acc", "l1_acc": "L1_acc",
                 "common_acc": "common_acc"}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; a results file is as readable as any other
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def run_dir(trainer: Trainer) -> Path:
    """The run a checkpoint belongs to (`<run>/checkpoints/x.ckpt`), else the trainer's log dir."""
    ckpt = trainer.ckpt_path
    if ckpt and Path(ckpt).parent.name == "checkpoints":
        return Path(ckpt).parent.parent
    return Path(trainer.log_dir or trainer.default_root_dir)


class ResultsWriter(Callback):
    """Keeps `<run dir>/results.json` current: `status` is running, trained, complete or failed."""

    def __init__(self, filename: str = "results.json") -> None:
        self.filename = filename
        self._fit_started = 0.0

    def path(self, trainer: Trainer) -> Path:
        return run_dir(trainer) / self.filename

    def read(self, trainer: Trainer) -> dict[str, Any]:
        path = self.path(trainer)
        return json.loads(path.read_text()) if path.is_file() else {}

    @rank_zero_only
    def update(self, trainer: Trainer, pl_module: LightningModule, **fields: Any) -> None:
        h = pl_module.hparams
        data = self.read(trainer) | {
            "backbone": h.backbone,
            "dataset": getattr(trainer.datamodule, "dataset_name", type(trainer.datamodule).__name__),
            "loss": h.loss,
            "protocol": study_protocol(h.protocol, trainer.max_epochs),
            "adaptation": h.protocol,
            "epochs": trainer.max_epochs,
            "beta": h.beta,
            "train_attack": h.attack,
            "precision": str(trainer.precision),
        } | fields
        write_json_atomic(self.path(trainer), data)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_started = time.time()
        self.update(trainer, pl_module, status="running")

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        val = {key.removeprefix("val/"): float(value) for key, value in trainer.callback_metrics.items()
               if key.startswith("val/")}
        self.update(trainer, pl_module, status="trained", val=val, fit_seconds=round(time.time() - self._fit_started, 1),
                    best_checkpoint=getattr(checkpoint, "best_model_path", None) or None,
                    last_checkpoint=getattr(checkpoint, "last_model_path", None) or None)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        figures = {PAPER_COLUMNS[key.removeprefix("test/")]: float(value) for key, value in trainer.callback_metrics.items()
                   if key.startswith("test/") and key.removeprefix("test/") in PAPER_COLUMNS}
        details = self.measurement_details(trainer)
        figures |= details.pop("figures", {})
        self.update(trainer, pl_module, status="complete", tested_checkpoint=trainer.ckpt_path, **figures, **details)
        self.print_summary(trainer, figures, details.get("seconds", {}))

    @staticmethod
    def measurement_details(trainer: Trainer) -> dict[str, Any]:
        """The test report of the RobustnessCallback: paper columns, per-corruption accuracies,
        attack settings, number of test images, seconds per measurement, fp32 recheck counts
        and the expected-robustness curve (when measured)."""
        from modules.callbacks.robustness import RobustnessCallback

        report = next((cb.report.get("test") for cb in trainer.callbacks if isinstance(cb, RobustnessCallback)), None)
        if not report:
            return {}
        details: dict[str, Any] = {
            "figures": {PAPER_COLUMNS[k]: float(v) for k, v in report["accuracy"].items() if k in PAPER_COLUMNS},
            "attacks": report["settings"],
            "num_test_images": report["num_images"],
            "seconds": report["seconds"],
        }
        for key in ("per_corruption", "fp32_recheck", "expected_robustness"):
            if key in report:
                details[key] = report[key]
        return details

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self.update(trainer, pl_module, status=status, error="".join(traceback.format_exception_only(exception)).strip())

    @rank_zero_only
    def print_summary(self, trainer: Trainer, figures: dict[str, float], seconds: dict[str, float] | None = None) -> None:
        table = Table(title=f"Robustness on the test set ({self.path(trainer)})")
        for column in figures:
            table.add_column(column, justify="right")
        table.add_row(*(f"{value:.4f}" for value in figures.values()))
        if seconds:
            table.caption = "seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())
        Console().print(table)
