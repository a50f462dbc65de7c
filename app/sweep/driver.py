"""The sweep driver: cell after cell, the search and then the final training, each on Ray; the
ledger rewritten at every change; a live table on a terminal (a line per change elsewhere).

Re-running the same command continues: complete cells are skipped (their final results.json
says so), a search resumes from its Tune experiment, a final run from its last.ckpt.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path

import yaml

from app.sweep.cells import Cell, fit_args
from app.sweep.ledger import FIGURES, Ledger
from app.sweep.plan import BEST, final_results, status
from app.sweep.runs import FINAL, TRIALS, final
from app.sweep.search import CellFailed, Chosen, search_cell
from app.sweep.spec import Sweep
from modules.registry import ConfigError
from modules.runs import write_text_atomic


def check_address(address: str) -> None:
    """An address of a cluster must answer before Ray is asked to join it (Ray would wait)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({error}); start one with "
            "`ray start --head` and give its address (or `auto` on one of its nodes)"
        ) from None


def connect(address: str | None) -> None:
    """Embedded Ray on this machine by default (`local`: never a stale cluster's), else the cluster."""
    import ray

    env = {"RAY_CHDIR_TO_TRIAL_DIR": "0"}  # trials keep the driver's working directory
    os.environ.update(env)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console output off (verbose=0): the driver reports
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    try:
        ray.init(
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
            ignore_reinit_error=True,
        )
    except ConnectionError as error:
        raise ConfigError(f"--address {address}: {str(error).strip().splitlines()[0]}") from None


def run_resources(sweep: Sweep) -> dict[str, float]:
    """One CPU, and one GPU where the cluster has any (a run given no GPU would see them all)."""
    import ray

    gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return {"cpu": 1.0, "gpu": gpus} | sweep.resources


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


class Progress:
    """Cells by status, the cell at work with its trials, elapsed time and an estimate of what is left."""

    def __init__(self, ledger: Ledger, out: Path, total: int) -> None:
        self.ledger, self.out, self.total = ledger, out, total
        self.current: Cell | None = None
        self.started, self.done_here = time.monotonic(), 0
        self.live = None

    def table(self):
        from rich.table import Table

        counts = self.ledger.counts()
        table = Table(title=f"sweep {self.out}", show_header=False)
        table.add_row("cells", ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {self.total})")
        if self.current is not None:
            trials = list((self.current.folder(self.out) / TRIALS).glob("*/results.json"))
            table.add_row("now", f"{'/'.join(map(str, self.current.key().values()))} ({len(trials)} trials so far)")
        elapsed = time.monotonic() - self.started
        left = self.total - counts["complete"] - counts["failed"]
        eta = f", about {elapsed / self.done_here * left / 60:.0f} min left" if self.done_here else ""
        table.add_row("time", f"{elapsed / 60:.1f} min{eta}")
        return table

    def __enter__(self) -> Progress:
        from rich.console import Console
        from rich.live import Live

        if Console().is_terminal:
            self.live = Live(get_renderable=self.table, refresh_per_second=1)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def say(self, cell: Cell, what: str) -> None:
        if self.live is None:
            print(f"{'/'.join(map(str, cell.key().values()))}: {what}", flush=True)


def record_complete(ledger: Ledger, cell: Cell, cell_dir: Path, devices: float) -> None:
    """A complete cell's row: the final run's figures, the chosen values, the device-seconds of
    its search and final run (GPU-seconds; on CPUs, seconds of one device)."""
    record, chosen = final_results(cell_dir), read_best(cell_dir)
    seconds = float(record.get("fit_seconds", 0)) + sum(record.get("seconds", {}).values())
    searched = (
        {
            "best": chosen.values,
            "best_trial": chosen.trial,
            "best_metric": round(chosen.metric, 6),
            "device_seconds": round(chosen.device_seconds + seconds * devices, 1),
        }
        if chosen
        else {}
    )
    ledger.set(
        cell,
        status="complete",
        run=str(cell_dir / FINAL),
        error="",
        **searched,
        **{column: record.get(column) for column in FIGURES},
    )


def run_sweep(sweep: Sweep, selected: list[Cell], out: Path, address: str | None, retry_failed: bool) -> int:
    """Run every selected cell that is not complete (nor failed, unless `retry_failed`); returns 1
    when a cell failed, else 0."""
    import ray

    ledger = Ledger(out)
    todo = []
    for cell in selected:  # every cell's row, as its folder says (the folders are the truth)
        state = status(cell.folder(out), ledger, cell)
        if state == "complete" and ledger.get(cell).get("status") != "complete":
            record_complete(ledger, cell, cell.folder(out), devices=1.0)  # finished as the driver was stopped
        elif state != "complete":
            ledger.set(cell, status=state)
        if state != "complete" and (state != "failed" or retry_failed):
            todo.append(cell)
    if not todo:  # nothing to launch: Ray is not even started
        return report_counts(ledger, out)
    connect(address)
    resources = run_resources(sweep)
    devices = max(resources["gpu"], 1.0)
    final_task = ray.remote(final).options(num_cpus=resources["cpu"], num_gpus=resources["gpu"])
    with Progress(ledger, out, len(selected)) as progress:
        for cell in todo:
            cell_dir = cell.folder(out)
            progress.current = cell
            try:
                chosen = read_best(cell_dir)
                if chosen is None:
                    ledger.set(cell, status="tuning", error="")
                    progress.say(cell, "searching")
                    chosen = search_cell(sweep, cell, cell_dir, resources)
                    write_best(cell_dir, chosen, sweep.search.metric)
                ledger.set(
                    cell,
                    status="training",
                    best=chosen.values,
                    best_trial=chosen.trial,
                    best_metric=round(chosen.metric, 6),
                    error="",
                )
                progress.say(cell, f"final training with {chosen.values}")
                error = ray.get(final_task.remote(fit_args(sweep, cell, chosen.values), str(cell_dir)))
                if error is not None:
                    raise CellFailed(error)
            except CellFailed as error:
                ledger.set(cell, status="failed", error=str(error))
                progress.say(cell, f"failed: {error}")
            else:
                record_complete(ledger, cell, cell_dir, devices)
                progress.say(cell, "complete")
            progress.done_here += 1
    return report_counts(ledger, out)


def report_counts(ledger: Ledger, out: Path) -> int:
    """One line of cells by status; 1 when a cell failed, else 0."""
    counts = ledger.counts()
    print(
        f"sweep {out}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; ledger {ledger.path}",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0
