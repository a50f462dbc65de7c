"""Keeping a cluster full: as many cells in flight as its live nodes hold (or `--max-cells`), the next
one started as soon as one ends, capacity read again at every turn as nodes join or leave, and a
cell whose controller was lost (its node died, it was killed) started again.

No Ray here: a `Runner` starts cells and reports their ends (driver.py gives the Ray one), so that
the policy is tested on its own."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.sweep.cells import Cell

LOST_CELL_RETRIES = 3  # a cell lost more often than this is recorded failed


@dataclass(frozen=True)
class Lost:
    """What a cell ends with when its controller is gone: it is started again (it resumes)."""

    reason: str


class Runner(Protocol):
    def capacity(self) -> int:
        """Cells that may be in flight now (the live nodes' run slots / a cell's concurrent trials)."""

    def start(self, cell: Cell) -> Hashable:
        """Start a cell; a handle that `wait` reports."""

    def wait(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, Any]]:
        """The handles that ended within `timeout` seconds, each with its outcome (or Lost)."""


class Events(Protocol):
    def started(self, cell: Cell) -> None: ...

    def ended(self, cell: Cell, outcome: Any) -> None: ...

    def lost(self, cell: Cell, reason: str, attempt: int) -> None: ...

    def turn(self, in_flight: dict[Hashable, Cell], limit: int) -> None:
        """After every turn: the cells in flight by handle, and how many may be."""


def cells_in_flight(capacity: int, max_cells: int | None) -> int:
    return capacity if max_cells is None else min(capacity, max_cells)


def schedule(
    cells: Iterable[Cell],
    runner: Runner,
    events: Events,
    max_cells: int | None = None,
    turn_seconds: float = 1.0,
    retries: int = LOST_CELL_RETRIES,
) -> None:
    """Run every cell to its end, keeping `cells_in_flight(capacity, max_cells)` of them in flight."""
    pending: deque[Cell] = deque(cells)
    running: dict[Hashable, Cell] = {}
    losses: Counter[Cell] = Counter()
    while pending or running:
        limit = cells_in_flight(runner.capacity(), max_cells)
        while pending and len(running) < limit:
            cell = pending.popleft()
            running[runner.start(cell)] = cell
            events.started(cell)
        for handle, outcome in runner.wait(list(running), turn_seconds):
            cell = running.pop(handle)
            if isinstance(outcome, Lost) and losses[cell] < retries:
                losses[cell] += 1
                events.lost(cell, outcome.reason, losses[cell])
                pending.appendleft(cell)
            else:
                events.ended(cell, outcome)
        events.turn(dict(running), limit)
