"""`python -m app sweep` on an embedded Ray (2 CPUs): every cell searched then trained, a re-run
that launches nothing, a driver killed and run again, a failing cell among good ones."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from app_runs import ROOT, environment

pytest.importorskip("ray")


def sweep_file(tmp_path: Path) -> Path:
    """Digits on timm's test ResNet, 2 epochs of 4 batches: `ft2` (searched over the head's learning
    rate, 2 samples) and `broken` (a learning rate that makes the loss NaN at once)."""
    quickstart = str(ROOT / "configs" / "quickstart.yaml")
    spec = {
        "protocols": {
            "ft2": {
                "configs": [quickstart],
                "set": {"model.protocol": "full", "trainer.max_epochs": 2},
                "space": "head",
            },
            "broken": {
                "configs": [quickstart],
                "space": "none",
                "set": {"model.protocol": "full", "trainer.max_epochs": 2, "model.lr_backbone": 1e30},
            },
        },
        "datasets": ["digits"],
        "backbones": ["test_resnet"],
        "losses": ["trades", "classic_at"],
        "set": {
            "data.init_args.image_size": 16,
            "trainer.limit_train_batches": 4,
            "trainer.limit_val_batches": 2,
            "robustness.subset_size": 16,
            "robustness.steps": 2,
            "robustness.test_steps": 2,
            "test_checkpoint": "last",
        },
        "resources": {"cpu": 1},
        "search": {
            "num_samples": 2,
            "time_budget_minutes": 10,
            "space": {"head": {"model.lr_head": ["loguniform", 1e-3, 1e-2]}, "none": {}},
        },
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def ray_env(tmp_path):
    """Ray's settings for a test (no auth token, a private HOME, a short temp dir: socket paths are
    limited to 107 bytes); the Ray processes left behind (a killed driver's) are ended by id."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    home = tmp_path / "home"
    home.mkdir()
    yield {"RAY_AUTH_MODE": "disabled", "HOME": str(home), "RAY_TMPDIR": temp}
    for pid in ray_processes(temp):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["rm", "-rf", temp], check=False)


def ray_processes(temp: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and temp in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def sweep(spec: Path, out: Path, env: dict, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "sweep", "--config", str(spec), "--out", str(out), *extra],
        cwd=ROOT,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ledger(out: Path) -> dict[tuple, dict]:
    with (out / "sweep.csv").open() as handle:
        return {(row["protocol"], row["loss"]): row for row in csv.DictReader(handle)}


def trial_ids(cell: Path) -> set[str]:
    return {path.name for path in (cell / "trials").iterdir()} if (cell / "trials").is_dir() else set()


def test_every_cell_is_searched_then_trained_a_failing_one_recorded_and_a_rerun_launches_nothing(tmp_path, ray_env):
    spec, out = sweep_file(tmp_path), tmp_path / "out"
    done = sweep(spec, out, ray_env)
    assert done.returncode == 1, done.stderr[-3000:]  # one cell failed, the others completed
    rows = ledger(out)
    for loss in ("trades", "classic_at"):
        cell = out / "ft2" / "digits" / "test_resnet" / loss
        assert rows[("ft2", loss)]["status"] == "complete"
        assert len(trial_ids(cell)) == 2 and all(
            (cell / "trials" / t / "config.yaml").is_file() for t in trial_ids(cell)
        )
        best = yaml.safe_load((cell / "best.yaml").read_text())
        assert set(best["values"]) == {"model.lr_head"} and best["trial"] in trial_ids(cell)
        assert best["metric"]["name"] == "robust_loss" and best["metric"]["value"] == pytest.approx(
            float(rows[("ft2", loss)]["best_metric"]), rel=1e-5
        )
        final = json.loads((cell / "final" / "results.json").read_text())
        assert final["status"] == "complete" and final["tested_checkpoint"].endswith("final/checkpoints/last.ckpt")
        assert (
            float(rows[("ft2", loss)]["clean_acc"]) == final["clean_acc"]
            and float(rows[("ft2", loss)]["device_seconds"]) > 0
        )
        config = yaml.safe_load((cell / "final" / "config.yaml").read_text())
        assert config["model"]["init_args"]["lr_head"] == pytest.approx(best["values"]["model.lr_head"])
    for loss in ("trades", "classic_at"):
        failed = rows[("broken", loss)]
        assert failed["status"] == "failed" and "no trial finished an epoch" in failed["error"]
        assert "non-finite training loss" in failed["error"]

    started = time.perf_counter()
    again = sweep(spec, out, ray_env)
    assert again.returncode == 1 and time.perf_counter() - started < 60
    assert "Started a local Ray instance" not in again.stderr  # nothing to launch: Ray not even started
    assert {key: row["status"] for key, row in ledger(out).items()} == {key: row["status"] for key, row in rows.items()}

    retried = sweep(spec, out, ray_env, "--retry-failed", "--only", "protocol=broken", "--only", "loss=trades")
    assert retried.returncode == 1 and "broken/digits/test_resnet/trades: searching" in retried.stdout
    assert "classic_at: searching" not in retried.stdout and ledger(out)[("broken", "trades")]["status"] == "failed"

    report = subprocess.run(
        [sys.executable, "-m", "app", "report", "--results", str(out), "--out", str(tmp_path / "r")],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "r" / "report.md").is_file()


def test_a_killed_driver_is_continued_by_the_same_command_each_cell_trained_once(tmp_path, ray_env):
    spec, out = sweep_file(tmp_path), tmp_path / "out"
    first, second = (out / "ft2" / "digits" / "test_resnet" / loss for loss in ("trades", "classic_at"))
    command = [sys.executable, "-m", "app", "sweep", "--config", str(spec), "--out", str(out), "--only", "protocol=ft2"]
    driver = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment(**ray_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not trial_ids(second) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # until the second cell's search has started
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and whatever it started in its session
    driver.wait()
    before = {cell: trial_ids(cell) for cell in (first, second)}
    assert (first / "final" / "results.json").is_file() and before[second]

    done = sweep(spec, out, ray_env, "--only", "protocol=ft2")
    assert done.returncode == 0, done.stderr[-3000:]
    for cell in (first, second):
        assert trial_ids(cell) >= before[cell] and len(trial_ids(cell)) == 2  # the same search, continued
        final = json.loads((cell / "final" / "results.json").read_text())
        assert final["status"] == "complete" and not final.get("resumes")  # trained once, from its start
        assert sorted(path.name for path in cell.iterdir()) == ["best.yaml", "final", "trials", "tune"]
    assert {row["status"] for row in ledger(out).values()} == {"complete"}
