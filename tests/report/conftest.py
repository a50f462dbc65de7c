"""Fixtures for the report tests: the paper's CSV and the report built over it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.report import build_report

# The test files import `report_helpers` from this folder; pytest's importlib mode (set in
# pyproject.toml so same-named test files in different folders do not clash) does not add it.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def paper_report(paper_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """The report over the paper's full CSV, built once per session."""
    out = tmp_path_factory.mktemp("paper_report")
    return build_report([paper_csv], out), out
