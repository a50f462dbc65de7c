"""Fixtures for the tests that run the app in subprocesses (helpers: app_runs.py, ray_cluster.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# The test files import `app_runs` from this folder; pytest's importlib mode does not add it.
sys.path.insert(0, str(Path(__file__).parent))

from app_runs import run_app, short_fit, the_run  # noqa: E402
from ray_cluster import FAST_FAILURE_DETECTION, LocalCluster, kill, ray_processes, ray_settings  # noqa: E402


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> Path:
    """The short run, start to end, never stopped: what every interrupted run must end as."""
    save_dir = tmp_path_factory.mktemp("uninterrupted")
    done = run_app(short_fit(save_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return the_run(save_dir)


@pytest.fixture
def ray_env(tmp_path):
    """Ray's settings for a test (no auth token, a private HOME, a short temp dir: socket paths are
    limited to 107 bytes); the Ray processes left behind (a killed driver's) are ended by id."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    home = tmp_path / "home"
    home.mkdir()
    yield ray_settings(temp, home)
    kill(ray_processes(temp, home))
    subprocess.run(["rm", "-rf", temp], check=False)


@pytest.fixture
def cluster(tmp_path):
    """A real Ray cluster on this machine: a head that runs no training (0 CPUs: the sweep's
    controllers live there) and two worker nodes of one CPU, each with its own ports; every
    process of it ended by id afterwards."""
    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    home = tmp_path / "home"
    home.mkdir()
    env = ray_settings(temp, home) | FAST_FAILURE_DETECTION
    local = LocalCluster(temp, home, os.environ | env)
    try:
        local.start_node(cpus=0)
        local.start_node()
        local.start_node()
        yield local
    finally:
        local.stop()
        subprocess.run(["rm", "-rf", temp], check=False)
