"""The runs of a cell, as Ray executes them: a search trial and the final training. Each is a
normal `app fit` (the same CLI, callbacks, results.json) in a run folder of the cell, resumed in
place from its last.ckpt when it was interrupted."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any, TextIO

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


def run_args() -> list[str]:
    """One device, no progress bar (nobody watches a worker's terminal), and the CPU for a run Ray
    gave no GPU (it would otherwise see, and take, every GPU of its node)."""
    import ray

    cpu = [] if ray.get_gpu_ids() else option("trainer.accelerator", "cpu")
    return [*option("trainer.devices", 1), *option("trainer.enable_progress_bar", False), *cpu]


class _Tee(io.TextIOBase):
    """Writes through to `stream` and keeps a copy."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def fit(args: list[str], run: Path, **options: Any) -> str | None:
    """`app fit` into folder `run`: None when it succeeds, else why it failed (the error its
    results.json recorded, else the one line the CLI printed, else its exit status)."""
    from app.cli import run_cli

    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        code = run_cli(args, run_folder=run, **options)
    if code == 0:
        return None
    results = run / "results.json"
    recorded = json.loads(results.read_text()).get("error") if results.is_file() else None
    printed = [line.removeprefix("error: ") for line in tee.copy.getvalue().splitlines() if line.startswith("error: ")]
    return recorded or (printed[-1] if printed else f"app fit exited with status {code}")


def trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: `config` holds the cell's fit arguments, its folder, the metric and
    the sampled values (keys `model.*`)."""
    from ray import tune

    values = {key: value for key, value in config.items() if key.startswith("model.")}
    args = [
        *config["args"],
        *[text for key, value in values.items() for text in option(key, value)],
        *run_args(),
        *option("test_after_fit", False),
    ]
    run = Path(config["cell_dir"]) / TRIALS / tune.get_context().get_trial_id()
    error = fit(args, run, callbacks=[ReportToTune(config["metric"])])
    if error is not None:
        raise RuntimeError(error)


def final(args: list[str], cell_dir: str) -> str | None:
    """The final training of a cell with the chosen values: None, or why it failed."""
    return fit([*args, *run_args()], Path(cell_dir) / FINAL)
