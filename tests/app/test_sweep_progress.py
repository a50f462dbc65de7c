"""The sweep's live table as a user reads it: each cell in flight with its phase, trials, best value
and search budget spent; the cells by status, slots, and an estimate of the time left."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from app.sweep.cells import Cell
from app.sweep.progress import Progress


def test_the_table_shows_each_cell_in_flight_the_slots_and_what_is_left():
    searching, training, done = (Cell("fft50", "flowers-102", b, "trades") for b in ("vit_small", "resnet50", "deit"))
    counts = {"pending": 5, "tuning": 1, "training": 1, "complete": 1, "failed": 0}
    progress = Progress(Path("/sweeps/paper"), 8, lambda: counts)
    for cell in (done, searching, training):
        progress.start(cell)
    progress.flying[done] -= 600  # it ran ten minutes
    progress.end(done)
    progress.limit, progress.slots = 2, (2, 2)
    progress.states[searching] = {"phase": "searching", "trials": 7, "best": 1.23456, "used": 3000.0, "budget": 8400.0}
    progress.states[training] = {"phase": "training"}
    console = Console(record=True, width=200)
    console.print(progress.table())
    text = console.export_text()
    row = next(line for line in text.splitlines() if "vit_small" in line)
    for shown in ("fft50/flowers-102/vit_small/trades", "searching", " 7 ", "1.2346", "50.0 / 140 device-min"):
        assert shown in row, (shown, row)
    assert "training" in next(line for line in text.splitlines() if "resnet50" in line)
    assert "deit" not in text  # ended: no longer in flight
    caption = " ".join(text.split())
    assert "5 pending, 1 tuning, 1 training, 1 complete (of 8)" in caption
    assert "2 cells in flight of 2 the cluster holds; run slots 2 busy of 2" in caption
    # 7 cells not ended, at the 10 minutes a cell took, 2 at a time: about 35 minutes
    assert "about 35.0 min left" in caption
    assert time.monotonic() - progress.started < 60
