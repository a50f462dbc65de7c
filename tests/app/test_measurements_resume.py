"""A test stopped part-way (SIGKILL, SIGTERM; one process or two) resumes where it stopped, in the
same folder, measuring only the examples not yet measured, and ends with the uninterrupted test's
figures; other weights or settings start over."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from app_runs import COLUMNS, ROOT, environment, results, run_app, run_until, short_fit, the_run

from modules.evaluation.outcomes import read

SAME = (*COLUMNS, "broken_by", "per_corruption", "num_test_images")  # what a resumed test must equal
NAMES = ("clean", "linf", "l2", "l1", "common")
DDP = ("--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The short run (3 epochs of 10 steps), not tested."""
    save_dir = tmp_path_factory.mktemp("trained")
    done = run_app(short_fit(save_dir, "--test_after_fit", "false"))
    assert done.returncode == 0, done.stderr[-3000:]
    return the_run(save_dir)


def measure_args(run: Path, save_dir: Path, *extra: str) -> list[str]:
    """`app test` of the run's last checkpoint, 23 batches of 16 digits, into its own folder under save_dir."""
    checkpoint = run / "checkpoints" / "last.ckpt"
    return [
        "test", "--config", str(run / "config.yaml"), "--ckpt_path", str(checkpoint), "--robustness.batch_size", "16",
        "--trainer.logger.init_args.save_dir", str(save_dir), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory) -> dict:
    """The uninterrupted test's results.json."""
    save_dir = tmp_path_factory.mktemp("reference")
    done = run_app(measure_args(trained, save_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return results(the_run(save_dir))


def measured(save_dir: Path, rank: int | None = None) -> dict[str, int]:
    """Examples held in the outcome files of the one test folder under save_dir (of one rank, or all)."""
    files = (save_dir / "quickstart").glob(f"*/measurements/*.rank{'*' if rank is None else rank}.jsonl")
    counts = dict.fromkeys(NAMES, 0)
    for path in files:
        counts[path.name.split(".")[0]] += len(read(path)[1])
    return counts


def after_batches(save_dir: Path, batches: int, rank: int | None = None):
    """Ready once every measurement has recorded `batches` batches of 16 (in one rank's files)."""
    return lambda: min(measured(save_dir, rank).values()) >= 16 * batches


def same(record: dict, reference: dict) -> None:
    assert record["status"] == "complete"
    assert {key: record[key] for key in SAME} == {key: reference[key] for key in SAME}


def test_a_killed_test_measures_only_what_remains_and_ends_with_the_same_figures(trained, reference, tmp_path):
    killed = run_until(measure_args(trained, tmp_path), after_batches(tmp_path, 3), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    run = the_run(tmp_path)
    assert (results(run)["status"], results(run)["phase"]) == ("running", "test")  # as the kill left it
    (linf,) = (run / "measurements").glob("linf.*.jsonl")  # killed in the middle of writing a batch:
    data = linf.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    linf.write_bytes(data[: start + (len(data) - start) // 2])  # its last line cut in half
    kept = measured(tmp_path)
    assert all(0 < n < 360 and n % 16 == 0 for n in kept.values()) and kept["linf"] < kept["clean"]

    resumed = run_app(measure_args(trained, tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert the_run(tmp_path) == run  # the same folder: no second version
    record = results(run)
    same(record, reference)
    (session,) = record["test_sessions"]  # the killed start recorded nothing; this one:
    assert session["examples"] == {name: {"kept": kept[name], "measured": 360 - kept[name]} for name in NAMES}


def test_sigterm_stops_after_a_batch_and_the_printed_command_resumes_the_test(trained, reference, tmp_path):
    stopped = run_until(measure_args(trained, tmp_path), after_batches(tmp_path, 2), signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    line = stopped.stderr.strip().splitlines()[-1]
    run = the_run(tmp_path)
    assert line.startswith("interrupted by SIGTERM during the test (stopped after ")
    assert line.endswith(
        f"resume with: python -m app test --config {run / 'config.yaml'} --ckpt_path "
        f"{trained / 'checkpoints' / 'last.ckpt'}"
    )
    record = results(run)
    assert (record["status"], record["phase"], record["reason"], record["error"]) == (
        "interrupted",
        "test",
        "SIGTERM",
        line,
    )
    kept = measured(tmp_path)
    assert record["test_sessions"][0]["examples"] == {name: {"kept": 0, "measured": kept[name]} for name in NAMES}

    resumed = run_app(line.split("resume with: python -m app ")[1].split())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert the_run(tmp_path) == run
    record = results(run)
    same(record, reference)
    assert "phase" not in record and "error" not in record
    assert [s["status"] for s in record["test_sessions"]] == ["interrupted", "complete"]
    assert record["test_sessions"][1]["examples"]["l2"] == {"kept": kept["l2"], "measured": 360 - kept["l2"]}


def test_other_settings_or_other_weights_start_over_what_they_change(trained, tmp_path):
    stopped = run_until(measure_args(trained, tmp_path), after_batches(tmp_path, 2), signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    run, kept = the_run(tmp_path), measured(tmp_path)
    other_eps = run_app(measure_args(trained, tmp_path, "--robustness.linf_eps", "0.02"))
    assert other_eps.returncode == 0, other_eps.stderr[-3000:]
    assert "measured with other settings: linf starts over" in other_eps.stderr
    examples = results(run)["test_sessions"][-1]["examples"]
    assert examples["linf"] == {"kept": 0, "measured": 360}
    assert examples["l2"] == {"kept": kept["l2"], "measured": 360 - kept["l2"]}

    # the same checkpoint file with other weights (say, rewritten by more training): everything starts over
    checkpoint = trained.parent / "changed" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    state = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    torch.save(state, checkpoint)
    first = measure_args(trained, tmp_path / "changed")
    first[first.index("--ckpt_path") + 1] = str(checkpoint)
    stopped = run_until(first, after_batches(tmp_path / "changed", 2), signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    next(iter(v for k, v in state["state_dict"].items() if v.is_floating_point())).add_(0.01)
    torch.save(state, checkpoint)
    again = run_app(first)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(f"measured with other weights: {name} starts over" in again.stderr for name in NAMES)
    examples = results(the_run(tmp_path / "changed"))["test_sessions"][-1]["examples"]
    assert examples == {name: {"kept": 0, "measured": 360} for name in NAMES}


def test_two_processes_stopped_by_sigterm_resume_to_the_uninterrupted_figures(trained, tmp_path):
    uninterrupted = run_app(measure_args(trained, tmp_path / "whole", *DDP), timeout=400)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    cut = tmp_path / "cut"
    stopped = run_until(measure_args(trained, cut, *DDP), after_batches(cut, 2, rank=0), signal.SIGTERM, timeout=400)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    run = the_run(cut)
    assert sorted(path.name.split(".")[-2] for path in (run / "measurements").glob("linf.*")) == ["rank0", "rank1"]
    assert results(run)["status"] == "interrupted" and len(list(run.glob("results*.json"))) == 1
    kept = measured(cut)
    resumed = run_app(stopped.stderr.strip().splitlines()[-1].split("resume with: python -m app ")[1].split())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = results(run)
    same(record, results(the_run(tmp_path / "whole")))
    assert record["test_sessions"][-1]["examples"]["linf"] == {"kept": kept["linf"], "measured": 360 - kept["linf"]}


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to take root's override of permissions away")
def test_an_unwritable_run_folder_is_one_line_before_anything_starts(trained, tmp_path):
    """A test to resume in a run folder it cannot write into (root without CAP_DAC_OVERRIDE, as a user)."""
    run = tmp_path / "quickstart" / "version_0"
    shutil.copytree(trained, run)
    record = results(run) | {"status": "interrupted", "phase": "test"}
    (run / "results.json").write_text(
        json.dumps(record | {"tested_checkpoint": str(run / "checkpoints" / "last.ckpt")})
    )
    before = sorted(path.name for path in run.iterdir())
    run.chmod(0o555)
    try:
        args = ["test", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
        done = subprocess.run(
            ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", sys.executable, "-m", "app", *args],
            cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        run.chmod(0o755)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: run folder {run} is not writable: the test keeps its measured examples there (so that a stopped "
        "test resumes); make it writable, or copy the checkpoint elsewhere and test the copy"
    )
    assert sorted(path.name for path in run.iterdir()) == before
