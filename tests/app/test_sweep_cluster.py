"""`python -m app sweep --address` on a real Ray cluster of this machine (a head and two one-CPU
worker nodes), through the drills a cluster puts a sweep to: the driver SIGKILLed with two cells
searching and started again; a worker node lost (its raylet SIGKILLed) while a search trial runs on
it, then while a final run does; the driver SIGKILLed again during a final run. Every run is
retried on a live node from its last checkpoint, every cell completes once, the driver never hangs."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from app_runs import ROOT, environment, tiny_sweep
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytest.importorskip("ray")

DRILL_SECONDS = 600  # each wait of the drill; the whole test stays well under pytest's timeout


def drill_sweep(tmp_path: Path) -> Path:
    """Two cells (TRADES, classic AT): 3 short epochs, 2 trials each, every trial running its 3
    epochs (ASHA's grace period): time for the drills."""
    search = {
        "num_samples": 2,
        "time_budget_minutes": 30,
        "scheduler": {"type": "asha", "grace_period": 3},
        "space": {"head": {"model.lr_head": ["loguniform", 1e-3, 1e-2]}},
    }
    return tiny_sweep(tmp_path / "sweep.yaml", {"ft3": {"epochs": 3, "space": "head"}}, search)


def wait_for(what: str, condition: Callable[[], object], driver: subprocess.Popen | None = None):
    deadline = time.monotonic() + DRILL_SECONDS
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if driver is not None and driver.poll() is not None:
            pytest.fail(f"the driver ended (status {driver.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def running_on(out: Path, kind: str, cluster, since: str) -> list[tuple]:
    """The runs of `kind` (trials or final) that worker nodes are training now, past their first
    epoch (they have a last.ckpt to resume from): (node, run folder) each. The run records where it runs
    (results.json `nodes`: node and process); that process is alive on that node, started at
    `since` or later (a killed driver's runs take a moment to end) and is training."""
    by_id = {node.node_id: node for node in cluster.nodes[1:]}
    found = []
    for results in out.glob(f"*/*/*/*/{'trials/*' if kind == 'trials' else 'final'}/results.json"):
        run = results.parent
        with contextlib.suppress(OSError, json.JSONDecodeError):
            now = record(run)
            where = (now.get("nodes") or [{}])[-1]
            node = by_id.get(where.get("node"))
            if node and where["at"] >= since and cluster.runs_process(node, where["pid"]) and training(run, now):
                found.append((node, run))
    return found


def training(run: Path, now: dict) -> bool:
    """Whether the run's latest start is training with a checkpoint behind it: it resumed from its
    last.ckpt, or wrote one, since it started."""
    started = time.mktime(time.strptime(now["nodes"][-1]["at"], "%Y-%m-%dT%H:%M:%S"))
    checkpoint = run / "checkpoints" / "last.ckpt"
    resumed = [r for r in now.get("resumes", []) if r["at"] >= now["nodes"][-1]["at"]]
    return (
        now.get("status") == "running"
        and checkpoint.is_file()
        and (bool(resumed) or checkpoint.stat().st_mtime >= started)
    )


def record(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_a_lost_node_and_a_killed_driver_cost_nothing(tmp_path, cluster):
    spec, out = drill_sweep(tmp_path), tmp_path / "out"
    cells = [out / "ft3" / "digits" / "test_resnet" / loss for loss in ("trades", "classic_at")]
    command = [
        sys.executable,
        "-m",
        "app",
        "sweep",
        "--config",
        str(spec),
        "--out",
        str(out),
        "--address",
        cluster.address,
    ]
    env = environment(**cluster.env)
    since = ""  # when the current driver started

    def start_driver(log: str) -> subprocess.Popen:
        nonlocal since
        since = time.strftime("%Y-%m-%dT%H:%M:%S")
        handle = (tmp_path / log).open("w")
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    # 1. the driver SIGKILLed while both cells search (each with a trial past its first epoch)
    driver = start_driver("driver1.log")
    in_flight = lambda: all(list(cell.glob("trials/*/checkpoints/last.ckpt")) for cell in cells)  # noqa: E731
    wait_for("both cells' searches to have a checkpointed trial", in_flight, driver)
    trials_before = {cell: {run.name for run in (cell / "trials").iterdir()} for cell in cells}
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    rows = {row["loss"]: row["status"] for row in csv.DictReader((out / "sweep.csv").open())}
    assert rows == {"trades": "tuning", "classic_at": "tuning"}

    driver = start_driver("driver2.log")
    # 2. a worker node lost while a search trial runs on it (past its first epoch)
    node, lost_trial = wait_for(
        "a checkpointed trial on a worker node", lambda: running_on(out, "trials", cluster, since), driver
    )[0]
    cluster.kill_node(node)
    lost_trial_node = node
    cluster.start_node()  # a node joins: the cluster holds two runs again
    # 3. a worker node lost while a final run runs on it (past its first epoch)
    node, lost_final = wait_for(
        "a checkpointed final run on a worker node", lambda: running_on(out, "final", cluster, since), driver
    )[0]
    cluster.kill_node(node)
    lost_final_node = node
    cluster.start_node()
    # 4. the lost final run started again on a live node; the driver SIGKILLed while it runs
    wait_for(
        "the lost final run to run again on another node",
        lambda: lost_final in [run for _, run in running_on(out, "final", cluster, since)],
        driver,
    )
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    driver = start_driver("driver3.log")
    assert driver.wait(timeout=DRILL_SECONDS) == 0, (tmp_path / "driver3.log").read_text()[-3000:]

    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert sorted((row["loss"], row["status"]) for row in rows) == [("classic_at", "complete"), ("trades", "complete")]
    for cell in cells:
        trials = {run.name for run in (cell / "trials").iterdir()}
        assert trials >= trials_before[cell] and len(trials) == 2  # the searches restored, not started anew
        # every trial ran to its end (a trial that reports its last epoch is stopped there by Tune)
        assert all(record(cell / "trials" / t)["status"] in ("trained", "stopped") for t in trials)
        assert record(cell / "final")["status"] == "complete"
        tests = EventAccumulator(str(cell / "final")).Reload().Scalars("test/clean_acc")
        assert len(tests) == 1  # measured once: the final run completed exactly once
    # the lost trial and the lost final run were started again on another node (Tune's and Ray's
    # retries) and resumed from their own last.ckpt; the final run again after the driver's kill
    for lost, node, starts in ((lost_trial, lost_trial_node, 2), (lost_final, lost_final_node, 3)):
        moved = record(lost)
        started_on = [n["node"] for n in moved["nodes"]]
        assert node.node_id in started_on[:-1] and started_on[-1] != node.node_id, started_on
        assert len(started_on) >= starts, started_on
        resumes = moved.get("resumes", [])
        assert len(resumes) >= starts - 1, resumes
        assert {r["checkpoint"] for r in resumes} == {str(lost / "checkpoints" / "last.ckpt")}, resumes
    log = (tmp_path / "driver3.log").read_text().splitlines()
    assert any(line.startswith(f"sweep {out}: 2 complete; ledger") for line in log)
