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


def is_paper_results(path: Path) -> bool:
    """Whether `path` holds the published table (the shipped file or a copy of it)."""
    return path.resolve() == PAPER_RESULTS.resolve() or (
        path.is_file()
        and path.stat().st_size == PAPER_RESULTS.stat().st_size
        and path.read_bytes() == PAPER_RESULTS.read_bytes()
    )
