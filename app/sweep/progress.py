"""The sweep's live table on a terminal (a line per change elsewhere): the cells in flight, each with
its phase, trials so far, best value so far and device-minutes of its search budget spent; the cells
by status; cells in flight of how many the cluster holds; elapsed time and an estimate of what is
left from the cells that ended in this session."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from app.sweep.cells import Cell


def duration(seconds: float) -> str:
    """Seconds as a person reads them: minutes, hours or days."""
    for unit, size in (("days", 86400.0), ("h", 3600.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds / 60:,.1f} min"


def describe(state: dict[str, Any]) -> tuple[str, str, str, str]:
    """A controller's progress() as the table's columns: phase, trials, best so far, budget spent."""
    if "trials" not in state:
        return state.get("phase", "starting"), "-", "-", "-"
    best = "-" if state["best"] is None else f"{state['best']:.4f}"
    spent = f"{state['used'] / 60:,.1f} / {state['budget'] / 60:,.0f} device-min"
    return state["phase"], str(state["trials"]), best, spent


class Progress:
    def __init__(self, out: Path, total: int, counts) -> None:
        self.out, self.total, self.counts = out, total, counts  # counts(): the ledger's cells by status
        self.started = time.monotonic()
        self.flying: dict[Cell, float] = {}  # in flight since
        self.states: dict[Cell, dict[str, Any]] = {}
        self.durations: list[float] = []  # of the cells that ended in this session
        self.limit = 0
        self.slots = (0, 0)  # run slots busy, all
        self.live = None

    def table(self):
        from rich.table import Table

        table = Table(title=f"sweep {self.out}")
        for name in ("cell", "phase", "trials", "best so far", "search budget spent", "in flight"):
            table.add_column(name)
        now = time.monotonic()
        for cell, since in self.flying.items():
            table.add_row(cell.name(), *describe(self.states.get(cell, {})), duration(now - since))
        counts = self.counts()
        table.caption = (
            ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + f" (of {self.total}); {len(self.flying)} cells in flight of {self.limit} the cluster holds; "
            + f"run slots {self.slots[0]} busy of {self.slots[1]}; "
            + f"{duration(now - self.started)} elapsed{self.eta(counts)}"
        )
        return table

    def eta(self, counts: dict[str, int]) -> str:
        left = self.total - counts.get("complete", 0) - counts.get("failed", 0)
        if not self.durations or not left:
            return ""
        return f", about {duration(statistics.fmean(self.durations) * left / max(self.limit, 1))} left"

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
        """A line for a change of a cell, where no live table shows it."""
        self.note(f"{cell.name()}: {what}")

    def note(self, line: str) -> None:
        """A line for a change, where no live table shows it."""
        if self.live is None:
            print(line, flush=True)

    def start(self, cell: Cell) -> None:
        self.flying[cell] = time.monotonic()

    def end(self, cell: Cell, counted: bool = True) -> None:
        since = self.flying.pop(cell, None)
        self.states.pop(cell, None)
        if since is not None and counted:
            self.durations.append(time.monotonic() - since)
