"""`fit` + `test` on 2 processes (DDP, gloo, CPU), end to end, as a user starts it."""

from __future__ import annotations

import signal

import pytest
import torch
from app_runs import COLUMNS, results, run_app, run_until_checkpoint, short_fit, the_run, weights


def test_two_process_fit_and_test_write_one_complete_run_equal_to_a_single_process_test(tmp_path):
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    done = run_app(short_fit(tmp_path, *ddp, "--trainer.max_epochs", "2"), timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    run = the_run(tmp_path)  # one TensorBoard folder
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len(list(run.glob("results*.json"))) == 1
    record = results(run)
    assert record["status"] == "complete" and record["num_test_images"] == 360
    measured = {column: record[column] for column in COLUMNS}
    assert all(0.0 <= value <= 1.0 for value in measured.values())
    assert record["tested_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    fit = record["cost"]["fit"]  # what the run cost, counted over both processes
    assert fit["devices"] == 2 and fit["fit_device_seconds"] == pytest.approx(2 * record["fit_seconds"], abs=0.2)
    assert abs(fit["train_images"] - 2 * 1221) <= 2  # two epochs of the 1,221 training digits
    assert record["cost"]["test"]["measurement_device_seconds"].keys() == record["seconds"].keys()

    single = run_app(
        [
            "test",
            "--config",
            str(run / "config.yaml"),
            "--ckpt_path",
            record["tested_checkpoint"],
            "--trainer.devices",
            "1",
            "--trainer.strategy",
            "auto",
        ]
    )
    assert single.returncode == 0, single.stderr[-3000:]
    (tested,) = [folder for folder in (tmp_path / "quickstart").iterdir() if folder != run]  # the test's own run
    assert results(tested)["tested_checkpoint"] == record["tested_checkpoint"]
    # the same batches, each with the random state of its own images: the same figures on 1 process as on 2
    assert {column: results(tested)[column] for column in COLUMNS} == measured
    assert results(tested)["broken_by"] == record["broken_by"]


def test_sigterm_stops_both_processes_of_a_fit_at_one_step_and_the_resume_equals_the_uninterrupted_run(tmp_path):
    """SIGTERM to the launching process (Lightning forwards it to the other): both stop after the same
    step (rank 0's decision is broadcast each step), one last.ckpt and one `interrupted` record; the
    resume trains the remaining steps to the uninterrupted run's weights, bit for bit."""
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    args = [*ddp, "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    whole = run_app(short_fit(tmp_path / "whole", *args), timeout=400)
    assert whole.returncode == 0, whole.stderr[-3000:]
    run = tmp_path / "cut" / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    stopped = run_until_checkpoint(short_fit(tmp_path / "cut", *args), last, signal.SIGTERM, after=1.0, timeout=400)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    line = stopped.stderr.strip().splitlines()[-1]
    assert (
        line.startswith("interrupted by SIGTERM at epoch 1, step ") and "[rank: 1] Received SIGTERM" in stopped.stderr
    )
    step = int(line.split("step ")[1].split(";")[0])
    assert 10 < step < 20 and torch.load(last, map_location="cpu", weights_only=True)["global_step"] == step
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert results(run)["status"] == "interrupted" and len(list(run.glob("results*.json"))) == 1
    assert not list(tmp_path.rglob("hpc_ckpt_*"))

    resumed = run_app(["fit", "--config", str(run / "config.yaml"), "--ckpt_path", str(last)], timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert results(run)["status"] == "trained"
    ours, theirs = weights(last), weights(the_run(tmp_path / "whole") / "checkpoints" / "last.ckpt")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
