"""`python -m app sweep` on an embedded Ray (2 CPUs): two cells side by side, a driver killed and run
again, every cell searched then trained, a failing cell among good ones, TensorBoard's view of the
sweep, a re-run that launches nothing, and a run too large for the cluster refused."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from app_runs import ROOT, environment, tiny_sweep
from ray_cluster import free_ports

from modules.runs import tripped_checks

pytest.importorskip("ray")


def sweep_file(tmp_path: Path) -> Path:
    """`ft2` (2 epochs, searched over the head's learning rate, 2 samples) and `broken` (a learning
    rate that makes the loss NaN at once)."""
    return tiny_sweep(
        tmp_path / "sweep.yaml",
        {
            "ft2": {"epochs": 2, "space": "head"},
            "broken": {"epochs": 2, "space": "none", "set": {"model.lr_backbone": 1e30}},
        },
        {
            "num_samples": 2,
            "time_budget_minutes": 10,
            "space": {"head": {"model.lr_head": ["loguniform", 1e-3, 1e-2]}, "none": {}},
        },
    )


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


def tensorboard_hparams(logdir: Path) -> tuple[dict, list[dict], list[str]]:
    """What a user's TensorBoard shows of `logdir`: the HParams experiment, its sessions, the runs
    (a real server on 127.0.0.1, asked through the HParams plugin's HTTP API)."""
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
        ],  # fmt: skip
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ask(path: str, body: dict | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/data/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                runs = ask("runs")
                experiment = ask("plugin/hparams/experiment", {"experimentName": ""})
                if experiment.get("hparamInfos"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "TensorBoard did not answer"
            time.sleep(0.5)
        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        request = {
            "experimentName": "",
            "allowedStatuses": statuses,
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 1000,
        }
        sessions = ask("plugin/hparams/session_groups", request)["sessionGroups"]
        return experiment, sessions, runs
    finally:
        server.kill()
        server.wait()


def test_cells_run_side_by_side_a_killed_driver_continues_and_a_failing_cell_is_recorded(tmp_path, ray_env):
    spec, out = sweep_file(tmp_path), tmp_path / "out"
    good = [out / "ft2" / "digits" / "test_resnet" / loss for loss in ("trades", "classic_at")]
    # the driver (and its embedded Ray) SIGKILLed while both ft2 cells search, side by side
    command = [sys.executable, "-m", "app", "sweep", "--config", str(spec), "--out", str(out)]
    driver = subprocess.Popen(
        command, cwd=ROOT, env=environment(**ray_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not all(list(cell.glob("trials/*/checkpoints/last.ckpt")) for cell in good):
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended before both cells searched"
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    before = {cell: trial_ids(cell) for cell in good}

    done = sweep(spec, out, ray_env)
    assert done.returncode == 1, done.stderr[-3000:]  # the broken cells failed, the others completed
    rows = ledger(out)
    for loss, cell in zip(("trades", "classic_at"), good):
        assert rows[("ft2", loss)]["status"] == "complete"
        assert trial_ids(cell) >= before[cell] and len(trial_ids(cell)) == 2  # the search continued
        # two cells searched side by side: every trial trained its own cell
        trial_configs = [yaml.safe_load((cell / "trials" / t / "config.yaml").read_text()) for t in trial_ids(cell)]
        assert {config["model"]["init_args"]["loss"] for config in trial_configs} == {loss}
        assert sorted(path.name for path in cell.iterdir()) == ["best.yaml", "final", "trials", "tune"]
        best = yaml.safe_load((cell / "best.yaml").read_text())
        assert set(best["values"]) == {"model.lr_head"} and best["trial"] in trial_ids(cell)
        assert best["metric"]["name"] == "robust_loss" and best["metric"]["value"] == pytest.approx(
            float(rows[("ft2", loss)]["best_metric"]), rel=1e-5
        )
        final = json.loads((cell / "final" / "results.json").read_text())
        assert final["status"] == "complete" and final["tested_checkpoint"].endswith("final/checkpoints/last.ckpt")
        row = rows[("ft2", loss)]
        assert float(row["clean_acc"]) == final["clean_acc"]
        assert set(final["checks"]) == {"linf", "l2", "l1"} and row["checks"] == tripped_checks(final)
        parts = [
            float(row[column])
            for column in ("search_device_s", "train_device_s", "validation_device_s", "test_device_s")
        ]
        assert all(part > 0 for part in parts) and float(row["device_seconds"]) == pytest.approx(sum(parts), abs=0.2)
        assert float(row["search_device_s"]) == pytest.approx(best["device_seconds"], abs=0.1)
        config = yaml.safe_load((cell / "final" / "config.yaml").read_text())
        assert config["model"]["init_args"]["lr_head"] == pytest.approx(best["values"]["model.lr_head"])
    for loss in ("trades", "classic_at"):
        failed = rows[("broken", loss)]
        assert failed["status"] == "failed" and "no trial finished an epoch" in failed["error"]
        assert "non-finite training loss" in failed["error"]
        # a run that fails is not started again (only a lost node is retried)
        trials = out / "broken" / "digits" / "test_resnet" / loss / "trials"
        assert all(len(json.loads((t / "results.json").read_text())["nodes"]) == 1 for t in trials.iterdir())

    # TensorBoard: one run per trial and final run (none of Tune's), one HParams experiment with the
    # cell's axes and the searched option as columns, the search metric and the test figures as metrics
    experiment, sessions, runs = tensorboard_hparams(out)
    finals, trials = [f"ft2/digits/test_resnet/{loss}/final" for loss in ("trades", "classic_at")], []
    for cell in out.glob("*/digits/test_resnet/*"):
        trials += [str(t.relative_to(out)) for t in (cell / "trials").iterdir()]
    assert set(runs) - {"."} == set(finals) | set(trials) and not any("tune" in run for run in runs)
    assert {info["name"] for info in experiment["hparamInfos"]} == {
        "protocol",
        "dataset",
        "backbone",
        "loss",
        "lr_head",
    }
    metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert metrics == [
        "val/robust_loss",
        "test/clean_acc",
        "test/linf_acc",
        "test/l2_acc",
        "test/l1_acc",
        "test/common_acc",
    ]
    by_run = {group["sessions"][0]["name"]: group for group in sessions}
    assert set(by_run) == set(finals) | set(trials)
    for run in finals:
        values = {m["name"]["tag"]: m["value"] for m in by_run[run]["metricValues"]}
        final = json.loads((out / run / "results.json").read_text())
        assert set(values) == set(metrics) and values["test/linf_acc"] == pytest.approx(final["Linf_acc"])
        hparams = by_run[run]["hparams"]
        assert hparams["protocol"] == "ft2" and hparams["loss"] == run.split("/")[3] and "lr_head" in hparams
    for run in trials:
        assert set(by_run[run]["hparams"]) >= {"protocol", "dataset", "backbone", "loss"}

    started = time.perf_counter()
    again = sweep(spec, out, ray_env)
    assert again.returncode == 1 and time.perf_counter() - started < 60
    assert "Started a local Ray instance" not in again.stderr  # nothing to launch: Ray not even started
    assert {key: row["status"] for key, row in ledger(out).items()} == {key: row["status"] for key, row in rows.items()}

    retried = sweep(spec, out, ray_env, "--retry-failed", "--only", "protocol=broken", "--only", "loss=trades")
    assert retried.returncode == 1 and "broken/digits/test_resnet/trades: started" in retried.stdout
    assert "broken/digits/test_resnet/trades: failed: no trial finished an epoch" in retried.stdout
    assert "classic_at: started" not in retried.stdout and ledger(out)[("broken", "trades")]["status"] == "failed"

    report = subprocess.run(
        [sys.executable, "-m", "app", "report", "--results", str(out), "--out", str(tmp_path / "r")],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    # the sweep's own protocol is a study of its own: both complete cells ranked, nothing skipped
    ranked = pd.read_csv(tmp_path / "r" / "study" / "rankings.csv")
    assert sorted(zip(ranked["protocol"], ranked["loss"])) == [
        ("FFT (2 epochs)", "Classic AT"),
        ("FFT (2 epochs)", "TRADES"),
    ]
    assert pd.read_csv(tmp_path / "r" / "skipped.csv").empty
    assert "## Your study" in (tmp_path / "r" / "report.md").read_text()


def test_a_run_larger_than_every_node_is_one_line_before_any_cell_starts(tmp_path, ray_env):
    spec = yaml.safe_load(sweep_file(tmp_path).read_text()) | {"resources": {"cpu": 8}}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    done = sweep(tmp_path / "big.yaml", out, ray_env, timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert (
        errors == [errors[-1]]
        and "a run needs cpu 8, more than any node of the cluster has (cpu 2, gpu 0)" in errors[0]
    )
    assert not list(out.glob("*/*/*/*/trials"))  # no cell started
