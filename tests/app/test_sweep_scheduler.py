"""The sweep's scheduler without Ray: N cells in flight, refilled as cells end, capacity read again
every turn (nodes joining and leaving), --max-cells, and lost cells started again; and the check
that keeps two cells in flight from mixing their arguments."""

from __future__ import annotations

import itertools

import pytest

from app.sweep.cells import Cell
from app.sweep.scheduler import LOST_CELL_RETRIES, Lost, schedule


def grid(n: int) -> list[Cell]:
    return [Cell("fft2", "digits", "test_resnet", "trades", (("seed", i),)) for i in range(n)]


class FakeCluster:
    """Each cell runs `turns` turns; capacity follows `capacity_at(turn)`; `lose` cells are lost
    the first `times` they run."""

    def __init__(self, capacity_at, turns: int = 3, lose: dict[Cell, int] | None = None) -> None:
        self.capacity_at, self.turns, self.lose = capacity_at, turns, dict(lose or {})
        self.turn, self.ids = 0, itertools.count()
        self.running: dict[int, tuple[Cell, int]] = {}  # handle -> (cell, turn it started)
        self.starts: list[tuple[int, Cell]] = []

    def capacity(self) -> int:
        return self.capacity_at(self.turn)

    def start(self, cell: Cell) -> int:
        handle = next(self.ids)
        self.running[handle] = (cell, self.turn)
        self.starts.append((self.turn, cell))
        return handle

    def wait(self, handles, timeout):
        self.turn += 1
        ended = []
        for handle in handles:
            cell, since = self.running[handle]
            if self.lose.get(cell, 0) > 0 and self.turn - since == 1:
                self.lose[cell] -= 1
                ended.append((handle, Lost("node died")))
            elif self.turn - since >= self.turns:
                ended.append((handle, "complete"))
        for handle, _ in ended:
            del self.running[handle]
        return ended


class Log:
    """The scheduler's events as they came."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.flying: list[tuple[int, int, int]] = []  # (turn, cells in flight, limit)
        self.outcomes: dict[Cell, object] = {}
        self.losses: list[tuple[Cell, int]] = []

    def started(self, cell: Cell) -> None:
        assert cell not in self.outcomes, "a cell started after it ended"

    def ended(self, cell: Cell, outcome) -> None:
        assert cell not in self.outcomes, "a cell ended twice"
        self.outcomes[cell] = outcome

    def lost(self, cell: Cell, reason: str, attempt: int) -> None:
        self.losses.append((cell, attempt))

    def turn(self, in_flight, limit: int) -> None:
        assert len(in_flight) <= limit or limit == 0
        self.flying.append((self.cluster.turn, len(in_flight), limit))


def test_n_cells_in_flight_refilled_as_soon_as_one_ends():
    cells = grid(7)
    cluster = FakeCluster(lambda turn: 2, turns=3)
    log = Log(cluster)
    schedule(cells, cluster, log, turn_seconds=0)
    assert set(log.outcomes) == set(cells) and all(outcome == "complete" for outcome in log.outcomes.values())
    assert max(n for _, n, _ in log.flying) == 2
    # two at a time from the start, the next pair the turn the first pair ends: 7 cells in 4 rounds
    assert [turn for turn, _ in cluster.starts] == [0, 0, 3, 3, 6, 6, 9]
    assert [cell for _, cell in cluster.starts] == cells  # in the sweep's order


def test_capacity_is_read_again_as_nodes_join_and_leave_and_max_cells_caps_it():
    cells = grid(8)
    capacity = {0: 1, 1: 1, 2: 3, 3: 3, 4: 3}  # a node joins at turn 2, two leave at turn 5
    cluster = FakeCluster(lambda turn: capacity.get(turn, 1), turns=2)
    log = Log(cluster)
    schedule(cells, cluster, log, turn_seconds=0)
    assert set(log.outcomes) == set(cells)
    starts = [turn for turn, _ in cluster.starts]
    assert starts[:4] == [0, 2, 2, 2]  # one in flight, then three as soon as the cluster holds them
    assert max(n for turn, n, _ in log.flying if turn >= 6) == 1  # back to one once nodes left and cells ended

    capped = FakeCluster(lambda turn: 16, turns=2)
    log = Log(capped)
    schedule(cells, capped, log, max_cells=3, turn_seconds=0)
    assert max(n for _, n, _ in log.flying) == 3 and {limit for _, _, limit in log.flying} == {3}


def test_a_lost_cell_is_started_again_and_one_lost_too_often_ends_lost():
    cells = grid(3)
    cluster = FakeCluster(lambda turn: 2, turns=2, lose={cells[1]: 2, cells[2]: LOST_CELL_RETRIES + 1})
    log = Log(cluster)
    schedule(cells, cluster, log, turn_seconds=0)
    assert log.outcomes[cells[0]] == "complete" and log.outcomes[cells[1]] == "complete"
    assert isinstance(log.outcomes[cells[2]], Lost)  # lost once more than it is retried: its end is the loss
    assert [attempt for cell, attempt in log.losses if cell == cells[1]] == [1, 2]
    assert sum(1 for _, cell in cluster.starts if cell == cells[2]) == LOST_CELL_RETRIES + 1


def test_no_capacity_waits_until_a_node_joins():
    cells = grid(2)
    cluster = FakeCluster(lambda turn: 0 if turn < 5 else 1, turns=1)
    log = Log(cluster)
    schedule(cells, cluster, log, turn_seconds=0)
    assert [turn for turn, _ in cluster.starts] == [5, 6] and set(log.outcomes) == set(cells)


def test_a_trial_given_another_cells_arguments_refuses_to_train():
    from app.sweep.runs import check_own_cell

    mine, other = grid(2)
    check_own_cell(mine.id(), {"cell_id": mine.id()}, f"search-{mine.id()}")
    with pytest.raises(RuntimeError, match="was given the arguments of cell"):
        check_own_cell(mine.id(), {"cell_id": other.id(), "cell_dir": "/sweeps/x"}, f"search-{mine.id()}")
    with pytest.raises(RuntimeError, match="refusing to train another cell's run"):
        check_own_cell(mine.id(), {"cell_id": mine.id()}, f"search-{other.id()}")
