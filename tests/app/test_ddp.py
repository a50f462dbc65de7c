"""`fit` + `test` on 2 processes (DDP, gloo, CPU), end to end, as a user starts it."""

from __future__ import annotations

import pytest
from app_runs import COLUMNS, results, run_app, short_fit, the_run


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
    assert {column: results(run)[column] for column in COLUMNS} == measured
