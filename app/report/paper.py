"""The paper's 1,440 published results, shipped with the app (data/README.md says where from)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PAPER_RESULTS = Path(str(files("app.report").joinpath("data", "paper_results.csv")))


def is_paper_results(path: Path) -> bool:
    """Whether `path` holds the published table (the shipped file or a copy of it)."""
    return path.resolve() == PAPER_RESULTS.resolve() or (
        path.is_file()
        and path.stat().st_size == PAPER_RESULTS.stat().st_size
        and path.read_bytes() == PAPER_RESULTS.read_bytes()
    )
