"""A run killed or stopped, then resumed in place, is the same run as one never stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
import yaml
from app_runs import (
    COLUMNS,
    ROOT,
    checkpoint_epoch,
    results,
    run_app,
    run_until_checkpoint,
    scalars,
    short_fit,
    the_run,
    weights,
)
from jsonargparse import Namespace

from app.resume import latest_checkpoint
from modules.registry import ConfigError


def assert_same_final_weights(last: Path, uninterrupted: Path) -> None:
    """Bit for bit the weights after the last step (3 epochs of 10 steps) of the uninterrupted run."""
    theirs = uninterrupted / "checkpoints" / "last.ckpt"
    assert checkpoint_epoch(last) == checkpoint_epoch(theirs) == 2
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 30
    ours, theirs = weights(last), weights(theirs)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_sigkill_then_resume_ends_as_the_uninterrupted_run(uninterrupted, tmp_path):
    run = tmp_path / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    killed = run_until_checkpoint(short_fit(tmp_path), last, signal.SIGKILL)  # during the second epoch
    assert killed.returncode == -signal.SIGKILL
    assert results(run)["status"] == "running"  # a SIGKILL leaves no chance to write anything
    first_config = (run / "config.yaml").read_text()

    resumed = run_app(["fit", "--config", str(run / "config.yaml"), "--ckpt_path", str(last)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert the_run(tmp_path) == run  # the same folder: no version_1
    record, reference = results(run), results(uninterrupted)
    assert record["status"] == "complete"
    assert {c: record[c] for c in COLUMNS} == {c: reference[c] for c in COLUMNS}
    assert record["resumes"][0]["epoch"] == 1 and record["resumes"][0]["checkpoint"] == str(last)
    assert_same_final_weights(last, uninterrupted)
    # TensorBoard: every curve in one folder, point for point the uninterrupted run's (no gap, no repeat)
    assert scalars(run) == scalars(uninterrupted)
    # config.yaml stays the run's config as a user reruns it: no checkpoint, no pinned version
    assert (run / "config.yaml").read_text() == first_config
    saved = yaml.safe_load(first_config)
    assert saved["ckpt_path"] is None and saved["trainer"]["logger"]["init_args"]["version"] is None
    assert "exists and is not empty" not in resumed.stderr

    # the same config without --ckpt_path is a new run (a new version), as Lightning users expect
    again = run_app(
        ["fit", "--config", str(run / "config.yaml"), "--trainer.max_epochs", "1", "--test_after_fit", "false"]
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(path.name for path in run.parent.iterdir()) == ["version_0", "version_1"]
    assert results(run)["status"] == "complete"


def test_sigkill_part_way_through_an_epoch_resumes_from_the_timed_checkpoint(uninterrupted, tmp_path):
    """`checkpoint.train_time_interval` (here 0: after every step) writes last.ckpt part-way through
    epochs, and only last.ckpt; a run killed there and resumed trains exactly the same steps."""
    run = tmp_path / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    every_step = ("--checkpoint.train_time_interval", "0:00:00")

    def part_way() -> bool:  # a step-end checkpoint of the second epoch
        try:
            position = torch.load(last, map_location="cpu", weights_only=True, mmap=True)["DigitsDataModule"]
        except Exception:  # being replaced this very moment
            return False
        return position["train_sampler"]["epoch"] == 1 and position["train_sampler"]["batches"] > 0

    killed = run_until_checkpoint(short_fit(tmp_path, *every_step), last, signal.SIGKILL, until=part_way)
    assert killed.returncode == -signal.SIGKILL
    resumed = run_app(["fit", "--config", str(run / "config.yaml"), "--ckpt_path", str(last)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record, reference = results(run), results(uninterrupted)
    assert {c: record[c] for c in COLUMNS} == {c: reference[c] for c in COLUMNS}
    assert record["best_checkpoint"].endswith("best.ckpt") and checkpoint_epoch(
        run / "checkpoints" / "best.ckpt"
    ) == checkpoint_epoch(uninterrupted / "checkpoints" / "best.ckpt")  # chosen at validation, not by the clock
    assert_same_final_weights(last, uninterrupted)
    ours, theirs = scalars(run), scalars(uninterrupted)
    assert {tag: [step for step, _ in points] for tag, points in ours.items()} == {
        tag: [step for step, _ in points] for tag, points in theirs.items()
    }  # no gap, no repeat
    averaged = {"train/loss_epoch", "train/acc"}  # the resumed epoch's averages cover the steps after the resume
    assert {tag: points for tag, points in ours.items() if tag not in averaged} == {
        tag: points for tag, points in theirs.items() if tag not in averaged
    }


def test_sigterm_mid_epoch_leaves_a_resumable_run_that_a_slurm_requeue_continues(uninterrupted, tmp_path):
    """SIGTERM (a preemption): the step finishes, last.ckpt is written part-way through the epoch,
    results.json says interrupted; the requeued job (same command) continues it in place."""
    run = tmp_path / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    job = {"SLURM_JOB_ID": "4242"}
    stopped = run_until_checkpoint(short_fit(tmp_path), last, signal.SIGTERM, after=0.5, **job)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    message = stopped.stderr.strip().splitlines()[-1]
    assert message.startswith("interrupted by SIGTERM at epoch 1, step ")
    assert message.endswith(f"resume with: python -m app fit --config {run / 'config.yaml'} --ckpt_path {last}")
    record = results(run)
    assert (record["status"], record["reason"], record["slurm_job_id"]) == ("interrupted", "SIGTERM", "4242")
    assert record["resume_checkpoint"] == str(last) and record["error"] == message
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    position = checkpoint["DigitsDataModule"]["train_sampler"]
    assert position["epoch"] == 1 and 0 < position["batches"] < 10  # part-way through the second epoch
    assert checkpoint["global_step"] == 10 + position["batches"]

    requeued = run_app(short_fit(tmp_path), SLURM_RESTART_COUNT="1", **job)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert the_run(tmp_path) == run
    record, reference = results(run), results(uninterrupted)
    assert record["status"] == "complete" and "reason" not in record and "error" not in record
    assert {c: record[c] for c in COLUMNS} == {c: reference[c] for c in COLUMNS}
    assert_same_final_weights(last, uninterrupted)

    again = run_app(short_fit(tmp_path), SLURM_RESTART_COUNT="2", **job)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert the_run(tmp_path) == run


def test_sigusr1_outside_slurm_stops_the_run_like_sigterm(tmp_path):
    run = tmp_path / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    stopped = run_until_checkpoint(short_fit(tmp_path, "--test_after_fit", "false"), last, signal.SIGUSR1, after=0.5)
    assert stopped.returncode == 128 + signal.SIGUSR1, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1].startswith("interrupted by SIGUSR1 at epoch 1, step ")
    record = results(run)
    assert (record["status"], record["reason"]) == ("interrupted", "SIGUSR1")
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] > 10  # saved at the stop


def test_sigusr1_on_slurm_stops_the_run_requeues_the_job_and_leaves_no_hpc_checkpoint(uninterrupted, tmp_path):
    """Lightning's SLURM handler would save `hpc_ckpt_1.ckpt` into the working directory and go on;
    here SIGUSR1 stops the run at the step (last.ckpt in the run folder), the job is requeued with
    scontrol, and the requeued job continues the run to the uninterrupted figures."""
    run = tmp_path / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    scontrol, said = tmp_path / "bin" / "scontrol", tmp_path / "scontrol.args"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {said}\n')
    scontrol.chmod(0o755)
    slurm = {  # a batch job as Lightning detects one (SLURMEnvironment, auto-requeue on), one task
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
        "PATH": f"{scontrol.parent}:{os.environ['PATH']}",
    }
    stopped = run_until_checkpoint(short_fit(tmp_path), last, signal.SIGUSR1, after=0.5, **slurm)
    assert stopped.returncode == 128 + signal.SIGUSR1, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1].startswith("interrupted by SIGUSR1 at epoch 1, step ")
    assert said.read_text() == "requeue 4242\n"
    assert (results(run)["status"], results(run)["reason"]) == ("interrupted", "SIGUSR1")
    assert not list(ROOT.glob("hpc_ckpt_*")) and not list(tmp_path.rglob("hpc_ckpt_*"))
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]

    requeued = run_app(short_fit(tmp_path), SLURM_RESTART_COUNT="1", **slurm)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    record, reference = results(run), results(uninterrupted)
    assert record["status"] == "complete" and {c: record[c] for c in COLUMNS} == {c: reference[c] for c in COLUMNS}
    assert_same_final_weights(last, uninterrupted)


def test_ckpt_path_last_is_the_latest_run_that_has_a_last_checkpoint(tmp_path):
    for version, has_last in ((0, True), (2, True), (10, True), (11, False)):
        folder = tmp_path / "runs" / "quickstart" / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        if has_last:
            (folder / "last.ckpt").write_bytes(b"")
    config = Namespace(
        trainer=Namespace(
            logger=Namespace(
                class_path="lightning.pytorch.loggers.TensorBoardLogger",
                init_args=Namespace(save_dir=str(tmp_path / "runs"), name="quickstart", version=None),
            )
        )
    )
    assert latest_checkpoint(config) == tmp_path / "runs" / "quickstart" / "version_10" / "checkpoints" / "last.ckpt"
    config.trainer.logger.init_args.name = "other"
    with pytest.raises(ConfigError, match=r"--ckpt_path last: no run under .*other has checkpoints/last.ckpt"):
        latest_checkpoint(config)


def test_a_named_run_folder_is_used_as_is_and_continued_from_its_last_checkpoint(tmp_path):
    """What the sweep asks of a run: this folder, even when its name reads as a number."""
    from app.cli import run_cli

    run = tmp_path / "trials" / "87447_00000"
    args = short_fit(
        tmp_path / "elsewhere",
        "--trainer.max_epochs",
        "1",
        "--test_after_fit",
        "false",
        "--trainer.limit_train_batches",
        "2",
    )
    assert run_cli(args, run_folder=run) == 0
    assert results(run)["status"] == "trained" and (run / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "elsewhere").exists()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["logger"]["init_args"]["version"] is None  # config.yaml as a user reruns it
    assert run_cli([*args, "--trainer.max_epochs", "2"], run_folder=run) == 0  # continued, not restarted
    record = results(run)
    assert record["resumes"][0]["epoch"] == 1 and record["epochs"] == 2
    assert sorted(path.name for path in run.parent.iterdir()) == ["87447_00000"]
