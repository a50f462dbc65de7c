"""The paper's 1,440 published results, shipped with the app (data/README.md says where from)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

PAPER_RESULTS = Path(str(files("app.report").joinpath("data", "paper_results.csv")))
# benchmarks/placement.py's measurement of the placement from fewer datasets on PAPER_RESULTS
PLACEMENT_VALIDATION = Path(str(files("app.report").joinpath("data", "placement_validation.csv")))


def validation_figures() -> pd.DataFrame:
    """Per protocol and k: the chosen datasets, the model's and the baseline's held-out rank errors, coverage."""
    return pd.read_csv(PLACEMENT_VALIDATION)


def is_paper_results(path: Path, table: Path = PAPER_RESULTS) -> bool:
    """Whether `path` holds the published table `table` (the file itself or a copy of it)."""
    return path.resolve() == table.resolve() or (
        path.is_file() and path.stat().st_size == table.stat().st_size and path.read_bytes() == table.read_bytes()
    )
