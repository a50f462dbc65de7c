"""Run bookkeeping shared by the callbacks, resuming, the sweep and the report: files written whole
or not at all, the directory a run writes into, and the SLURM job it runs in."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning import Trainer


def public_mode(mode: int) -> int:
    """`mode` less the process's umask: what an ordinary file or folder would get. mkstemp and mkdtemp
    make private ones, and results are as readable as any other file."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, public_mode(0o666))
    with os.fdopen(fd, "w", newline="") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def read_record(run: Path) -> dict[str, Any]:
    """A run folder's results.json ({} when it has none, or an unreadable or non-object one)."""
    try:
        record = json.loads((run / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def tested_in(record: dict[str, Any]) -> str | None:
    """What the test recorded in a results.json measured: its checkpoint (the resolved path) or, without one,
    the backbone it measured with its own head (`tested_model`)."""
    if isinstance(record.get("tested_checkpoint"), str):
        return str(Path(record["tested_checkpoint"]).resolve())
    return record.get("tested_model")


def tripped_checks(run: dict[str, Any]) -> str:
    """The checks of a results.json that tripped ("linf: square; l2: zero_gradients"; modules/evaluation/checks.py),
    "" when none did."""
    checks = run.get("checks")
    if not isinstance(checks, dict):
        return ""
    return "; ".join(
        f"{measurement}: {name}"
        for measurement, verdicts in checks.items()
        if isinstance(verdicts, dict)
        for name, verdict in verdicts.items()
        if isinstance(verdict, dict) and verdict.get("status") == "tripped"
    )


def slurm_job_id() -> str | None:
    """The SLURM job this process runs in (`<array job>_<task>` for array jobs); a requeued job keeps it."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array is not None:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def run_dir(trainer: Trainer) -> Path:
    """The run a checkpoint belongs to (`<run>/checkpoints/x.ckpt`), else the trainer's log dir.

    Under DDP `trainer.log_dir` is a broadcast: call this on every rank (`setup`), never from
    rank-zero-only code."""
    ckpt = trainer.ckpt_path
    if ckpt and Path(ckpt).parent.name == "checkpoints":
        return Path(ckpt).parent.parent
    return Path(trainer.log_dir or trainer.default_root_dir)
