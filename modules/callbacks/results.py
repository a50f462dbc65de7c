"""The run's `results.json`, under the paper's column names, and the terminal summary."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modules.callbacks.interruption import Interruption
from modules.callbacks.robustness import RobustnessCallback
from modules.evaluation.cost import fit_cost, test_cost
from modules.evaluation.summary import paper_figures, results_fields
from modules.model.protocols import study_protocol
from modules.runs import run_dir, slurm_job_id, write_json_atomic


class ResultsWriter(Callback):
    """Keeps `<run dir>/results.json` current: `status` is running, trained, complete, interrupted
    (a signal or Ctrl-C; `reason` says which), stopped (a clean exit asked for from inside, as a
    search's scheduler ends a trial) or failed (`error` says why). A resumed run appends
    to `resumes` and keeps counting `fit_seconds` from where its checkpoint left them. `cost` records
    the device, training images per second, device-seconds of the fit and of each measurement, and
    the peak memory.

    Args:
        filename: the record's name in the run folder.
        hparams: log the run's hyper-parameters with its test figures for TensorBoard's HParams tab
            (a sweep turns this off: it writes one session per run with the cell's axes itself).
    """

    def __init__(self, filename: str = "results.json", hparams: bool = True) -> None:
        self.filename, self.hparams = filename, hparams
        self.directory: Path | None = None
        self._fit_started = 0.0
        self._seconds_before = 0.0  # fit time of the sessions before a resume (from the checkpoint)
        self._images = 0  # training images this rank has seen, over every session

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.directory = run_dir(trainer)

    def path(self) -> Path:
        if self.directory is None:
            raise RuntimeError("ResultsWriter.path() before setup(): the run directory is not known yet")
        return self.directory / self.filename

    def read(self) -> dict[str, Any]:
        path = self.path()
        return json.loads(path.read_text()) if path.is_file() else {}

    @rank_zero_only
    def update(self, trainer: Trainer, pl_module: LightningModule, clear: tuple[str, ...] = (), **fields: Any) -> None:
        """Merge `fields` into results.json (dropping the keys in `clear`)."""
        if self.directory is None:  # failed before the run had a directory: nothing to record into
            return
        h = pl_module.hparams
        data = (
            {key: value for key, value in self.read().items() if key not in clear}
            | {
                "backbone": h.backbone,
                "dataset": getattr(trainer.datamodule, "dataset_name", type(trainer.datamodule).__name__),
                "loss": h.loss,
                "protocol": study_protocol(h.protocol, trainer.max_epochs),
                "adaptation": h.protocol,
                "epochs": trainer.max_epochs,
                "loss_settings": h.loss_settings.get(h.loss, {}),
                "train_attack": h.attack,
                "precision": str(trainer.precision),
            }
            | fields
        )
        write_json_atomic(self.path(), data)

    def fit_seconds(self) -> float:
        return round(self._seconds_before + time.time() - self._fit_started, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"fit_seconds": self.fit_seconds(), "train_images": self._images}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._seconds_before = float(state_dict.get("fit_seconds", 0.0))
        self._images = int(state_dict.get("train_images", 0))

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += len(batch[0])

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_started = time.time()
        job = slurm_job_id()
        self.update(
            trainer,
            pl_module,
            status="running",
            clear=("error", "reason", "phase", "resume_checkpoint"),
            **({"slurm_job_id": job} if job else {}),
        )

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.ckpt_path:  # the training state is restored by now
            resumes = self.read().get("resumes", [])
            resumes.append(
                {
                    "checkpoint": str(trainer.ckpt_path),
                    "epoch": trainer.current_epoch,
                    "global_step": trainer.global_step,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
            self.update(trainer, pl_module, resumes=resumes)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        val = {
            key.removeprefix("val/"): float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith("val/")
        }
        validation = sum(cb.validation_seconds for cb in trainer.callbacks if isinstance(cb, RobustnessCallback))
        cost = self.read().get("cost", {}) | {"fit": fit_cost(trainer, self.fit_seconds(), self._images, validation)}
        self.update(
            trainer,
            pl_module,
            status="trained",
            val=val,
            fit_seconds=self.fit_seconds(),
            cost=cost,
            best_checkpoint=getattr(checkpoint, "best_model_path", None) or None,
            last_checkpoint=getattr(checkpoint, "last_model_path", None) or None,
        )

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A test that is killed leaves `running` in phase `test`: the same command finds and resumes it."""
        self.update(trainer, pl_module, status="running", phase="test", **self.tested(trainer, pl_module))

    @staticmethod
    def tested(trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """What the test measures: the checkpoint, or (none given) the backbone with the head its weights bring."""
        if trainer.ckpt_path:
            return {"tested_checkpoint": trainer.ckpt_path}
        return {"tested_checkpoint": None, "tested_model": pl_module.hparams.backbone}

    def test_sessions(self, trainer: Trainer) -> list[dict[str, Any]]:
        """results.json's `test_sessions` with this start of the test added: how it ended and, per
        measurement, the examples it kept from earlier starts and the ones it measured."""
        session = next((cb.session for cb in trainer.callbacks if isinstance(cb, RobustnessCallback)), {})
        return [*self.read().get("test_sessions", []), {"at": time.strftime("%Y-%m-%dT%H:%M:%S")} | session]

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        figures = paper_figures(trainer.callback_metrics)
        details = self.measurement_details(trainer)
        figures |= details.pop("figures", {})
        cost = self.read().get("cost", {}) | {"test": test_cost(trainer, details.get("seconds", {}))}
        self.update(
            trainer,
            pl_module,
            status="complete",
            clear=("error", "reason", "phase", "resume_checkpoint"),
            **self.tested(trainer, pl_module),
            cost=cost,
            test_sessions=self.test_sessions(trainer),
            **figures,
            **details,
        )
        self.log_hparams(trainer, pl_module, figures)
        self.print_summary(trainer, figures, details.get("seconds", {}), details.get("warnings", []))

    @rank_zero_only
    def log_hparams(self, trainer: Trainer, pl_module: LightningModule, figures: dict[str, float]) -> None:
        """The run's hyper-parameters with its test figures, for TensorBoard's HParams tab (which then
        compares runs side by side); jsonargparse's own entries (`_class_path`, `_instantiator`) left out."""
        loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not loggers or not self.hparams:
            return
        params = {key: value for key, value in pl_module.hparams.items() if not key.startswith("_")} | {
            "dataset": getattr(trainer.datamodule, "dataset_name", ""),
            "epochs": trainer.max_epochs,
        }
        for logger in loggers:
            logger.log_hyperparams(params, metrics={f"hparams/{column}": value for column, value in figures.items()})

    @staticmethod
    def measurement_details(trainer: Trainer) -> dict[str, Any]:
        """The RobustnessCallback's test report as results.json fields (`figures` among them)."""
        report = next((cb.report.get("test") for cb in trainer.callbacks if isinstance(cb, RobustnessCallback)), None)
        return results_fields(report) if report else {}

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A stop by signal or Ctrl-C is `interrupted`, a clean SystemExit `stopped`, anything else `failed`.
        Interruption comes before this callback: its checkpoint is written and its note (how to resume) added."""
        error = (
            getattr(exception, "__notes__", None) or ["".join(traceback.format_exception_only(exception)).strip()]
        )[-1]
        if isinstance(exception, SystemExit) and not isinstance(exception, SIGTERMException) and not exception.code:
            # a clean exit requested from inside (e.g. a hyper-parameter search's scheduler ending a trial)
            self.update(trainer, pl_module, status="stopped", reason="stopped by its caller (e.g. a search scheduler)")
            return
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            self.update(trainer, pl_module, status="failed", error=error)
            return
        interruption = next((cb for cb in trainer.callbacks if isinstance(cb, Interruption)), None)
        received = getattr(interruption, "signal", None)
        resume = getattr(interruption, "checkpoint", None)
        testing = trainer.state.fn == TrainerFn.TESTING
        self.update(
            trainer,
            pl_module,
            status="interrupted",
            error=error,
            reason=received.name if received else type(exception).__name__,
            phase="test" if testing else "fit",
            **({"resume_checkpoint": str(resume)} if resume else {}),
            **(self.tested(trainer, pl_module) | {"test_sessions": self.test_sessions(trainer)} if testing else {}),
        )

    @rank_zero_only
    def print_summary(
        self,
        trainer: Trainer,
        figures: dict[str, float],
        seconds: dict[str, float] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        """The figures as a table, and a warning line per check that tripped (results.json `checks`)."""
        table = Table(title=f"Robustness on the test set ({self.path()})")
        for column in figures:
            table.add_column(column, justify="right")
        table.add_row(*(f"{value:.4f}" for value in figures.values()))
        if seconds:
            table.caption = "seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())
        console = Console()
        console.print(table)
        for line in warnings or []:
            console.print(Text.assemble(("warning: ", "bold yellow"), line))
