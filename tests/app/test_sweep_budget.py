"""A cell's search budget on a real Ray Tune: device time counted from the trials' own reports (time
queued for a device is not), the search stopped when it is spent, and what was spent kept across a
killed driver and Tune's restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_runs import ROOT, environment

pytest.importorskip("ray")

# Trials report every 0.2 s (a "epoch"), each to its log; the search stops when the budget is spent.
SEARCH = """
import json, sys, time
from pathlib import Path
import ray
from ray import tune
from app.sweep.search import SearchBudget

experiment, budget, log, hold = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])

def trainable(config):
    for epoch in range(1, 1000):
        time.sleep(0.2)
        with log.open("a") as handle:
            handle.write(f"{time.time()}\\n")
        tune.report({"robust_loss": config["x"] / epoch, "epoch": epoch})

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
started = time.time()
if hold:  # another cell's run holds the only CPU for `hold` seconds before the search can start a trial
    ray.remote(num_cpus=1)(lambda seconds: time.sleep(seconds)).remote(hold)
if tune.Tuner.can_restore(str(experiment)):
    tuner = tune.Tuner.restore(str(experiment), tune.with_resources(trainable, {"cpu": 1}), resume_unfinished=True)
else:
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="robust_loss", mode="min", num_samples=-1, max_concurrent_trials=1),
        run_config=tune.RunConfig(
            name=experiment.name,
            storage_path=str(experiment.parent),
            verbose=0,
            stop=SearchBudget(str(experiment), budget, 1.0, "robust_loss", "min"),
        ),
    )
tuner.fit()
spent = SearchBudget.LIVE[str(experiment)]
print(json.dumps({"used": spent.used, "trials": len(spent.trials), "best": spent.best, "wall": time.time() - started}))
"""


def search(tmp_path: Path, ray_env: dict, budget: float, hold: float = 0.0, **popen):
    experiment, log = tmp_path / "tune" / "search-test", tmp_path / "reports.log"
    command = [sys.executable, "-c", SEARCH, str(experiment), str(budget), str(log), str(hold)]
    env = environment(**ray_env, TUNE_GLOBAL_CHECKPOINT_S="0.5", RAY_AIR_NEW_OUTPUT="0")
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, **popen), log


def reports(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.is_file() else 0


def test_the_budget_counts_trial_time_not_time_queued_and_stops_the_search(tmp_path, ray_env):
    process, log = search(tmp_path, ray_env, budget=2.0, hold=4.0)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    # stopped at the first report past 2 s of trial time (reports come every 0.2 s)
    assert 2.0 <= result["used"] < 2.0 + 0.6 and reports(log) <= 2.0 / 0.2 + 3
    assert result["wall"] > 4.0 + result["used"]  # the 4 s queued behind another run were not counted
    assert result["best"] is not None and result["trials"] >= 1


def test_what_was_spent_survives_a_killed_driver_and_the_restore(tmp_path, ray_env):
    process, log = search(tmp_path, ray_env, budget=6.0, start_new_session=True)
    deadline = time.monotonic() + 240
    while reports(log) < 20 and time.monotonic() < deadline:  # 4 s of the 6 s budget spent
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the search's driver and its Ray
    process.wait()
    before = reports(log)
    assert before >= 20

    resumed, _ = search(tmp_path, ray_env, budget=6.0)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    after = reports(log) - before
    # the restored search spent only what the first had left (less the last checkpoint's lag), not 6 s anew
    assert result["used"] >= 6.0 and after * 0.2 < 6.0 * 0.6, (before, after, result)
