"""The runs of a cell, as Ray executes them: a search trial and the final training. Each is a
normal `app fit` (the same CLI, callbacks, results.json) in a run folder of the cell, resumed in
place from its last.ckpt when it was interrupted (a lost node, a killed driver).

Torch and Lightning are imported inside the runs only: a cell's controller imports this module and
stays a small process (one per cell in flight, all on the head node)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from app.sweep.cells import Cell, option
from app.sweep.folders import FINAL, TRIALS, read_record, update_record
from app.sweep.hparams import write_session


def run_args() -> list[str]:
    """One device, no progress bar (nobody watches a worker's terminal), the sweep's own HParams
    sessions instead of the run's (see hparams.py), and the CPU for a run Ray gave no GPU (it would
    otherwise see, and take, every GPU of its node)."""
    import ray

    cpu = [] if ray.get_gpu_ids() else option("trainer.accelerator", "cpu")
    return [
        *option("trainer.devices", 1),
        *option("trainer.enable_progress_bar", False),
        *option("results.hparams", False),
        *cpu,
    ]


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
    results.json recorded, else the one line the CLI printed, else its exit status). A run that
    failed before it could record anything gets a results.json saying so."""
    from app.cli import run_cli

    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        code = run_cli(args, run_folder=run, **options)
    if code == 0:
        return None
    recorded = read_record(run).get("error")
    printed = [line.removeprefix("error: ") for line in tee.copy.getvalue().splitlines() if line.startswith("error: ")]
    error = recorded or (printed[-1] if printed else f"app fit exited with status {code}")
    if not recorded:
        update_record(run, status="failed", error=error)
    return error


def record_node(run: Path) -> None:
    """Where this attempt of the run is (Ray node, host, process): results.json `nodes` lists one
    entry per start (a run started again after its node was lost lists both)."""
    import ray

    here = {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}
    nodes = [*read_record(run).get("nodes", []), here | {"at": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    update_record(run, nodes=nodes)


def check_own_cell(cell_id: str, config: dict[str, Any], experiment: str) -> None:
    """A trial runs only with its own cell's arguments: Tune keeps trainables in a registry by name,
    and a mix-up there would silently train one cell with another's settings."""
    if config.get("cell_id") != cell_id or not experiment.endswith(cell_id):
        raise RuntimeError(
            f"the trial of cell {cell_id} (experiment {experiment}) was given the arguments of cell "
            f"{config.get('cell_id')} ({config.get('cell_dir')}): refusing to train another cell's run"
        )


def trial_for(cell: Cell) -> Callable[[dict[str, Any]], None]:
    """Tune's function trainable for `cell`, named after it (see check_own_cell)."""

    def trial(config: dict[str, Any]) -> None:
        """`config` holds the cell's id, fit arguments, folder, metric, axes and the sampled values
        (keys `model.*`). A run that fails records why in its results.json and ends; only a
        lost worker raises, so that Tune starts the trial again (from its last checkpoint)."""
        from ray import tune

        from app.sweep.report import ReportToTune

        context = tune.get_context()
        check_own_cell(cell.id(), config, context.get_experiment_name())
        values = {key: value for key, value in config.items() if key.startswith("model.")}
        args = [
            *config["args"],
            *[text for key, value in values.items() for text in option(key, value)],
            *run_args(),
            *option("test_after_fit", False),
        ]
        run = Path(config["cell_dir"]) / TRIALS / context.get_trial_id()
        write_session(run, config["axes"], values)
        record_node(run)
        fit(args, run, callbacks=[ReportToTune(config["metric"])])

    trial.__name__ = trial.__qualname__ = f"trial_{cell.id()}"
    return trial


def final(args: list[str], cell_dir: str, axes: dict[str, str], values: dict[str, Any]) -> str | None:
    """The final training of a cell with the chosen values: None, or why it failed. A final run that
    is already complete (a retry after its node was lost at the very end) is not run again."""
    run = Path(cell_dir) / FINAL
    if read_record(run).get("status") == "complete":
        return None
    write_session(run, axes, values)
    record_node(run)
    return fit([*args, *run_args()], run)
