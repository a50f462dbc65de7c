"""The sweep driver: the cells still to run, as many in flight as the cluster holds (scheduler.py),
each in its own controller (cell.py); the ledger and the live table kept from their events.

Re-running the same command continues: complete cells are skipped (their final results.json
says so), a search resumes from its Tune experiment, a final run from its last.ckpt."""

from __future__ import annotations

import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import ray

from app.sweep.cell import CellController, Outcome
from app.sweep.cells import Cell
from app.sweep.cluster import HEAD, capacity, check_fits, connect, namespace, run_resources, slots_in_use
from app.sweep.folders import FINAL, device_seconds, final_results, read_best
from app.sweep.hparams import write_experiment
from app.sweep.ledger import DEVICE_SECONDS, FIGURES, Ledger
from app.sweep.plan import status
from app.sweep.progress import Progress
from app.sweep.scheduler import Lost, schedule
from app.sweep.spec import Sweep
from modules.registry import first_line
from modules.runs import tripped_checks

NAME_WAIT_SECONDS = 60  # a controller of a killed driver ends within seconds; a live driver's does not
PHASES = {"searching": "tuning", "training": "training"}  # a controller's phase -> the ledger's status


def record_complete(ledger: Ledger, cell: Cell, cell_dir: Path) -> None:
    """A complete cell's row: the final run's figures, the chosen values, its device-seconds by part."""
    record, chosen = final_results(cell_dir), read_best(cell_dir)
    spent = device_seconds(cell_dir)
    parts = dict(zip(DEVICE_SECONDS, [*(round(v, 1) for v in spent.values()), round(sum(spent.values()), 1)]))
    searched = (
        {"best": chosen.values, "best_trial": chosen.trial, "best_metric": round(chosen.metric, 6)} if chosen else {}
    )
    ledger.set(
        cell,
        status="complete",
        run=str(cell_dir / FINAL),
        error="",
        **searched,
        **parts,
        **{column: record.get(column) for column in FIGURES},
        checks=tripped_checks(record),
    )


class RayRunner:
    """The scheduler's Runner on Ray: a cell is a named controller actor on the head node."""

    def __init__(self, sweep: Sweep, out: Path, resources: dict[str, float]) -> None:
        self.sweep, self.out, self.resources = sweep, out, resources
        self.controller = ray.remote(CellController)
        self.actors: dict[Hashable, Any] = {}  # the run() reference -> its actor

    def capacity(self) -> int:
        runs = capacity(self.resources)
        return max(1, runs // self.sweep.search.concurrent_trials) if runs else 0

    def slots(self) -> tuple[int, int]:
        return slots_in_use(self.resources)

    def start(self, cell: Cell) -> Hashable:
        deadline = time.monotonic() + NAME_WAIT_SECONDS
        while True:
            try:
                actor = self.controller.options(
                    name=f"cell-{cell.id()}",
                    num_cpus=0,
                    resources={HEAD: 0.001},
                    max_concurrency=2,
                    max_restarts=0,
                ).remote(self.sweep, cell, self.out, self.resources)
                break
            except ValueError as error:  # the name is taken: that cell is in flight elsewhere
                if "already taken" not in str(error) or time.monotonic() > deadline:
                    return ray.put(
                        Outcome("failed", f"not started: another driver of this sweep runs it ({first_line(error)})")
                    )
                time.sleep(1)
        ref = actor.run.remote()
        self.actors[ref] = actor
        return ref

    def wait(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, Any]]:
        if not handles:
            time.sleep(timeout)
            return []
        ready, _ = ray.wait(handles, num_returns=len(handles), timeout=timeout)
        ended = []
        for ref in ready:
            try:
                outcome = ray.get(ref)
            except (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError) as error:
                outcome = Lost(first_line(error))
            except ray.exceptions.RayError as error:
                outcome = Outcome("failed", first_line(error))
            actor = self.actors.pop(ref, None)
            if actor is not None:
                ray.kill(actor)
            ended.append((ref, outcome))
        return ended

    def progress(self) -> dict[Hashable, dict[str, Any]]:
        """The in-flight controllers' progress() (those that answer within two seconds)."""
        asked = {actor.progress.remote(): ref for ref, actor in self.actors.items()}
        ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=2.0) if asked else ([], [])
        states = {}
        for answer in ready:
            try:
                states[asked[answer]] = ray.get(answer)
            except ray.exceptions.RayError:
                continue
        return states


class SweepEvents:
    """The scheduler's events -> the ledger (statuses, figures, costs) and the table."""

    def __init__(self, ledger: Ledger, progress: Progress, runner: RayRunner, out: Path) -> None:
        self.ledger, self.progress, self.runner, self.out = ledger, progress, runner, out
        self.limit: int | None = None  # cells the cluster held at the last turn

    def started(self, cell: Cell) -> None:
        self.progress.start(cell)
        self.progress.say(cell, "started")

    def ended(self, cell: Cell, outcome: Any) -> None:
        self.progress.end(cell)
        if isinstance(outcome, Outcome) and outcome.status == "complete":
            record_complete(self.ledger, cell, cell.folder(self.out))
            self.progress.say(cell, "complete")
            return
        error = (
            outcome.error if isinstance(outcome, Outcome) else f"its controller was lost too often ({outcome.reason})"
        )
        self.ledger.set(cell, status="failed", error=error)
        self.progress.say(cell, f"failed: {error}")

    def lost(self, cell: Cell, reason: str, attempt: int) -> None:
        self.progress.end(cell, counted=False)
        self.progress.say(cell, f"its controller was lost ({reason}); starting it again (attempt {attempt + 1})")

    def turn(self, in_flight: dict[Hashable, Cell], limit: int) -> None:
        if self.limit is not None and limit != self.limit:  # a node joined or left
            self.progress.note(f"the cluster now holds {limit} cell{'s' if limit != 1 else ''} at once")
        self.limit = self.progress.limit = limit
        self.progress.slots = self.runner.slots()
        for handle, state in self.runner.progress().items():
            cell = in_flight.get(handle)
            if cell is None:
                continue
            self.progress.states[cell] = state
            phase = PHASES.get(state.get("phase", ""))
            if phase and self.ledger.get(cell).get("status") != phase:
                self.ledger.set(cell, status=phase, error="")
                self.progress.say(cell, "searching" if phase == "tuning" else "final training")


def run_sweep(
    sweep: Sweep, selected: list[Cell], out: Path, address: str | None, retry_failed: bool, max_cells: int | None
) -> int:
    """Run every selected cell that is not complete (nor failed, unless `retry_failed`); returns 1
    when a cell failed, else 0."""
    ledger = Ledger(out)
    todo = []
    for cell in selected:  # every cell's row, as its folder says (the folders are the truth)
        state = status(cell.folder(out), ledger, cell)
        if state == "complete" and ledger.get(cell).get("status") != "complete":
            record_complete(ledger, cell, cell.folder(out))  # finished as the driver was stopped
        elif state != "complete":
            ledger.set(cell, status=state)
        if state != "complete" and (state != "failed" or retry_failed):
            todo.append(cell)
    if not todo:  # nothing to launch: Ray is not even started
        return report_counts(ledger, out)
    connect(address, namespace(out))
    resources = run_resources(sweep.resources, ray.cluster_resources().get("GPU", 0))
    check_fits(resources)
    write_experiment(out, sweep)
    runner = RayRunner(sweep, out, resources)
    try:
        with Progress(out, len(selected), ledger.counts) as progress:
            schedule(todo, runner, SweepEvents(ledger, progress, runner, out), max_cells)
    except KeyboardInterrupt:
        print(f"interrupted: run the same command again to continue (ledger {ledger.path})", file=sys.stderr)
        return 130
    return report_counts(ledger, out)


def report_counts(ledger: Ledger, out: Path) -> int:
    """One line of cells by status; 1 when a cell failed, else 0."""
    counts = ledger.counts()
    print(
        f"sweep {out}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; ledger {ledger.path}",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0
