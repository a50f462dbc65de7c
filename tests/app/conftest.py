"""Fixtures for the tests that run the app in subprocesses (helpers: app_runs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test files import `app_runs` from this folder; pytest's importlib mode does not add it.
sys.path.insert(0, str(Path(__file__).parent))

from app_runs import run_app, short_fit, the_run  # noqa: E402


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> Path:
    """The short run, start to end, never stopped: what every interrupted run must end as."""
    save_dir = tmp_path_factory.mktemp("uninterrupted")
    done = run_app(short_fit(save_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return the_run(save_dir)
