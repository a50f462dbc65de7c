"""Which run a command continues, decided before any work.

- `--ckpt_path RUN/checkpoints/last.ckpt`: `fit` continues RUN in its own folder (same
  TensorBoard version, same `checkpoints/`, same results.json).
- `--ckpt_path last`: the latest run of the config's logger (`<save_dir>/<name>/version_N`)
  that has a `checkpoints/last.ckpt`.
- A SLURM job requeued after a preemption or time limit (`SLURM_RESTART_COUNT` >= 1) runs the
  same command again: `fit` finds the run of this job and this config and continues it.
- `test` of a checkpoint (or of a model with its own head, `model.keep_head`) whose test was
  interrupted (by a signal, in a run of this config or in the checkpoint's own run) continues in
  that run's folder, where the examples it measured are kept (modules/evaluation/outcomes.py):
  only the others are measured.
- A checkpoint that is truncated, not a checkpoint of this app, or (for `fit`) without its
  training state, is one line naming the file.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace

from modules.model.export import read_lightning_checkpoint
from modules.registry import ConfigError
from modules.runs import read_record, slurm_job_id, tested_in

LAST = "last.ckpt"


class AlreadyComplete(Exception):
    """A requeued SLURM job whose run had already finished: nothing to do."""


@dataclass
class Checkpoint:
    path: Path
    global_step: int


def read_checkpoint(path: str | Path, resumable: bool) -> Checkpoint:
    """Check a checkpoint without loading its tensors (memory-mapped): readable, written by this
    app's `fit`, and with the training state (optimizer, loops) when it is to be resumed."""
    checkpoint = read_lightning_checkpoint(path, mmap=True)
    if resumable and not ("loops" in checkpoint and "optimizer_states" in checkpoint):
        raise ConfigError(
            f"checkpoint {path} holds weights only, not the training state: it can be tested "
            "(`python -m app test`), not resumed"
        )
    return Checkpoint(Path(path), int(checkpoint.get("global_step", 0)))


def versioned_loggers(config: Namespace) -> list[Namespace]:
    """The configured loggers that keep runs in `<save_dir>/<name>/version_N` (TensorBoard, CSV)."""
    logger = config.get("trainer", Namespace()).get("logger")
    loggers = logger if isinstance(logger, list) else [logger]
    return [
        entry
        for entry in loggers
        if isinstance(entry, Namespace)
        and isinstance(entry.get("init_args"), Namespace)
        and "version" in entry.init_args
    ]


def logger_root(config: Namespace) -> Path:
    """`<save_dir>/<name>`: where the config's runs are (the first versioned logger's)."""
    loggers = versioned_loggers(config)
    if not loggers:
        raise ConfigError(
            "resuming needs a TensorBoardLogger or CSVLogger in trainer.logger (runs are `<save_dir>/<name>/version_N`)"
        )
    args = loggers[0].init_args
    return Path(args.get("save_dir") or config.trainer.get("default_root_dir") or ".") / str(args.get("name") or "")


def version_number(run: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", run.name)
    return int(match.group(1)) if match else -1


def runs_of(config: Namespace) -> list[Path]:
    root = logger_root(config)
    return sorted((run for run in root.glob("version_*") if run.is_dir()), key=version_number) if root.is_dir() else []


def latest_checkpoint(config: Namespace) -> Path:
    """`--ckpt_path last`: the last.ckpt of the config's latest run that has one."""
    runs = [run for run in runs_of(config) if (run / "checkpoints" / LAST).is_file()]
    if not runs:
        raise ConfigError(f"--ckpt_path last: no run under {logger_root(config)} has checkpoints/{LAST}")
    return runs[-1] / "checkpoints" / LAST


def requeued_checkpoint(config: Namespace, dumped: dict[str, Any]) -> Path | None:
    """A requeued SLURM job: the last.ckpt of the run this job started with this same config."""
    job = slurm_job_id()
    if job is None or int(os.environ.get("SLURM_RESTART_COUNT") or 0) < 1 or not versioned_loggers(config):
        return None
    for run in reversed(runs_of(config)):
        results, saved = run / "results.json", run / "config.yaml"
        if not (results.is_file() and saved.is_file()):
            continue
        record = json.loads(results.read_text())
        if record.get("slurm_job_id") != job or yaml.safe_load(saved.read_text()) != dumped:
            continue
        if record.get("status") == "complete":
            raise AlreadyComplete(f"{run} is already complete (SLURM job {job}, requeued): nothing to do")
        if (run / "checkpoints" / LAST).is_file():
            return run / "checkpoints" / LAST
    return None


def folder_version(name: str) -> str:
    """The logger version that names folder `name`. jsonargparse reads a version that looks like an
    integer (a Tune trial id such as 87447_00000) as one, and the logger then writes into
    version_8744700000; a trailing separator keeps it a string, and the folder the same."""
    try:
        int(name)
    except ValueError:
        return name
    return name + os.sep


def pin_to_run(config: Namespace, run: Path, purge_step: int | None) -> None:
    """Make the loggers of `config` write into `run` (`<save_dir>/<name>/<version>`).

    Resuming (`purge_step`: the checkpoint's step), TensorBoard drops the events the interrupted
    session wrote at or after that step, so the curves have neither gaps nor repeats."""
    for logger in versioned_loggers(config):
        args = logger.init_args
        save_dir, name = args.get("save_dir") or config.trainer.get("default_root_dir") or ".", args.get("name") or ""
        if Path(save_dir, str(name), run.name).resolve() != run.resolve():
            args.save_dir, args.name = str(run.parent.parent), run.parent.name
        args.version = folder_version(run.name)
        if purge_step is not None and "purge_step" in args:
            args.purge_step = purge_step
            args.default_hp_metric = False  # already logged at step 0 by the first session
    if not versioned_loggers(config):
        config.trainer.default_root_dir = str(run)  # logger: false keeps checkpoints in <root>/checkpoints


@dataclass
class Resume:
    """The run folder `fit` writes into instead of a new version; `saved_config` is the config to
    keep in its config.yaml (as a user would rerun it: no checkpoint, no pinned version)."""

    run: Path
    saved_config: Namespace


def resolve(config: Namespace, subcommand: str) -> Checkpoint | None:
    """`--ckpt_path last` -> the file; any checkpoint is checked before the CLI reads it."""
    if config.get("ckpt_path") == "last":
        config.ckpt_path = str(latest_checkpoint(config))
    return read_checkpoint(config.ckpt_path, resumable=subcommand == "fit") if config.get("ckpt_path") else None


def prepare_fit(
    config: Namespace, checkpoint: Checkpoint | None, dumped: dict[str, Any], run: Path | None = None
) -> Resume | None:
    """The run folder `fit` writes into, if not a new version, with the loggers pinned to it: the
    checkpoint's run (a checkpoint in `<run>/checkpoints/`), the `run` a caller names (the sweep;
    continued from its last.ckpt when there is one), or this SLURM job's run after a requeue.
    `dumped`: the config as a run's config.yaml holds it."""
    if checkpoint is None:
        found = run / "checkpoints" / LAST if run is not None else requeued_checkpoint(config, dumped)
        if found is not None and found.is_file():
            config.ckpt_path = str(found)
            checkpoint = read_checkpoint(found, resumable=True)
    if checkpoint is not None and checkpoint.path.parent.name == "checkpoints":
        run = checkpoint.path.parent.parent
    if run is None:
        return None  # a new version (a checkpoint from elsewhere: its weights and state start a new run)
    saved = copy.deepcopy(config)
    saved.ckpt_path = None
    pin_to_run(config, run, checkpoint.global_step if checkpoint is not None else None)
    return Resume(run, saved)


def tested(config: Namespace, checkpoint: Checkpoint | None) -> str:
    """What a test measures: its checkpoint, or (without one) the backbone with its own head."""
    if checkpoint is not None:
        return str(checkpoint.path.resolve())
    return str(config.model.init_args.backbone)


def interrupted_test(config: Namespace, checkpoint: Checkpoint | None) -> Path | None:
    """The run whose test of this checkpoint (or of this backbone, tested with its own head) was
    interrupted (a signal: `interrupted`; killed: still `running`): among the config's runs (a test
    of its own) and the checkpoint's run (the test after fit), the one recorded last."""
    runs = runs_of(config) if versioned_loggers(config) else []
    if checkpoint is not None and checkpoint.path.parent.name == "checkpoints":
        runs.append(checkpoint.path.parent.parent)
    measured = tested(config, checkpoint)
    for run in reversed(sorted(set(runs), key=_recorded_at)):
        record = read_record(run)
        if (
            record.get("status") in ("interrupted", "running")
            and record.get("phase") == "test"
            and tested_in(record) == measured
        ):
            return run
    return None


def _recorded_at(run: Path) -> float:
    path = run / "results.json"
    return path.stat().st_mtime if path.is_file() else 0.0


def check_writable(folder: Path) -> None:
    """A test keeps its measured examples in its run folder: one that exists (or whose nearest existing
    parent is) not writable is one line before anything starts."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"run folder {folder} is not writable: the test keeps its measured examples there (so that a "
            "stopped test resumes); make it writable, or copy the checkpoint elsewhere and test the copy"
        )


def prepare_test(config: Namespace, checkpoint: Checkpoint | None) -> Resume | None:
    """The run folder a test continues in (its loggers pinned to it), if its test was interrupted;
    the folder the test will write into is checked first."""
    run = interrupted_test(config, checkpoint)
    if run is None:
        if versioned_loggers(config):
            check_writable(logger_root(config))
        return None
    check_writable(run)
    saved = copy.deepcopy(config)
    pin_to_run(config, run, None)
    return Resume(run, saved)
