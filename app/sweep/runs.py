"""The runs of a cell, as Ray executes them: a search trial and the final training. Each is a
normal `app fit` (the same CLI, callbacks, results.json) in a run folder of the cell, resumed in
place from its last.ckpt when it was interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer

from app.sweep.cells import option

TRIALS, FINAL = "trials", "final"


class ReportToTune(Callback):
    """After each epoch's validation: the search metric (`val/<metric>`) and the epoch, to Tune."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from ray import tune

        value = trainer.callback_metrics.get(f"val/{self.metric}")
        if value is not None:
            tune.report({self.metric: float(value), "epoch": trainer.current_epoch + 1})


def run_folder_args(cell_dir: Path, name: str, version: str) -> list[str]:
    """Log into `<cell_dir>/<name>/<version>` (name "" for `<cell_dir>/<version>`) on one device, no
    progress bar (nobody watches a worker's terminal), resuming what is there."""
    args = [*option("trainer.logger.init_args.save_dir", str(cell_dir)), *option("trainer.logger.init_args.name", name),
            *option("trainer.logger.init_args.version", version), *option("trainer.devices", 1),
            *option("trainer.enable_progress_bar", False)]
    last = Path(cell_dir, name, version, "checkpoints", "last.ckpt")
    return args + (["--ckpt_path", str(last)] if last.is_file() else [])


def device_args() -> list[str]:
    """A run given no GPU by Ray trains on the CPU (it would otherwise see, and take, every GPU)."""
    import ray

    return [] if ray.get_gpu_ids() else option("trainer.accelerator", "cpu")


def failure(run: Path, code: int) -> str:
    """Why a run ended with a non-zero exit: the error results.json recorded, else the exit code."""
    results = run / "results.json"
    recorded = json.loads(results.read_text()).get("error") if results.is_file() else None
    return recorded or f"app fit exited with status {code}"


def trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: `config` holds the cell's fit arguments, its folder, the metric and
    the sampled values (keys `model.*`)."""
    from ray import tune

    from app.cli import run_cli

    cell_dir, trial_id = Path(config["cell_dir"]), tune.get_context().get_trial_id()
    values = {key: value for key, value in config.items() if key.startswith("model.")}
    args = [*config["args"], *[text for key, value in values.items() for text in option(key, value)],
            *device_args(), *option("test_after_fit", False), *run_folder_args(cell_dir, TRIALS, trial_id)]
    code = run_cli(args, callbacks=[ReportToTune(config["metric"])])
    if code != 0:
        raise RuntimeError(failure(cell_dir / TRIALS / trial_id, code))


def final(args: list[str], cell_dir: str) -> tuple[int, str]:
    """The final training of a cell with the chosen values: (exit status, error or "")."""
    from app.cli import run_cli

    code = run_cli([*args, *device_args(), *run_folder_args(Path(cell_dir), "", FINAL)])
    return code, "" if code == 0 else failure(Path(cell_dir) / FINAL, code)
