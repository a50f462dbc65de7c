"""One cell's lifecycle: its search (Tune), best.yaml, its final run, and how it ended.

Each cell in flight has its own controller, a Ray actor on the head node (the node a cluster cannot
lose without losing itself), so that a lost worker node costs only the runs it held, which Tune and
Ray start again elsewhere; a controller is named after its cell, so that no cell runs twice at once.
The controller answers `progress()` while it works (phase, trials, best value, budget spent)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sweep.cells import Cell, fit_args
from app.sweep.folders import read_best, write_best
from app.sweep.runs import final
from app.sweep.search import LOST_NODE_RETRIES, CellFailed, SearchBudget, experiment_folder, search_cell
from app.sweep.spec import Sweep
from modules.registry import first_line


@dataclass(frozen=True)
class Outcome:
    status: str  # complete or failed
    error: str = ""


class CellController:
    """Runs one cell (as a Ray actor: `ray.remote(CellController)`, threaded so that `progress`
    answers while `run` works)."""

    def __init__(self, sweep: Sweep, cell: Cell, out: Path, resources: dict[str, float]) -> None:
        self.sweep, self.cell, self.resources = sweep, cell, resources
        self.cell_dir = cell.folder(out)
        self.phase = "starting"

    def run(self) -> Outcome:
        import ray

        try:
            chosen = read_best(self.cell_dir)
            if chosen is None:
                self.phase = "searching"
                chosen = search_cell(self.sweep, self.cell, self.cell_dir, self.resources)
                write_best(self.cell_dir, chosen, self.sweep.search.metric)
            self.phase = "training"
            task = ray.remote(final).options(
                num_cpus=self.resources["cpu"], num_gpus=self.resources["gpu"], max_retries=LOST_NODE_RETRIES
            )
            axes = self.cell.axes()
            error = ray.get(
                task.remote(fit_args(self.sweep, self.cell, chosen.values), str(self.cell_dir), axes, chosen.values)
            )
            if error is not None:
                raise CellFailed(error)
        except CellFailed as error:
            return Outcome("failed", str(error))
        except Exception as error:  # Tune's or Ray's own failure (e.g. a final run lost more often than retried)
            return Outcome("failed", f"{type(error).__name__}: {first_line(error)}")
        return Outcome("complete")

    def progress(self) -> dict[str, Any]:
        """Phase, trials so far, the best value of the search metric so far, device-seconds spent of the budget."""
        budget = SearchBudget.LIVE.get(str(experiment_folder(self.cell, self.cell_dir)))
        if budget is None:
            return {"phase": self.phase}
        return {
            "phase": self.phase,
            "trials": len(budget.trials),
            "best": budget.best,
            "used": budget.used,
            "budget": budget.device_seconds,
        }
