"""A run stopped by a signal (preemption, a time limit) leaves a checkpoint it can resume from."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from modules.callbacks.checkpoint import last_checkpoint
from modules.runs import run_dir, slurm_job_id


def resume_command(checkpoint: Path) -> str:
    """The command that continues the run a `<run>/checkpoints/*.ckpt` file belongs to."""
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return f"python -m app fit --config {run / 'config.yaml'} --ckpt_path {checkpoint}"


def resume_test_command(run: Path, checkpoint: str) -> str:
    """The command that continues an interrupted test of `checkpoint` in `run` (app/resume.py finds it)."""
    return f"python -m app test --config {run / 'config.yaml'} --ckpt_path {checkpoint}"


class Interruption(Callback):
    """SIGTERM (a cluster's preemption or time limit) or SIGUSR1 during fit: the current step
    finishes, a resumable `last.ckpt` is written beside the run's other checkpoints, and the run
    ends with exit status 128 + the signal number (Lightning raises `SIGTERMException`; the CLI
    turns it into that status and one line). During test the current batch of measurements
    finishes (the measured examples are kept in the run folder, see RobustnessCallback) and the
    line names the command that resumes the test.

    Lightning already turns SIGTERM into a stop at the next step, on every rank; this callback
    records which signal came, treats SIGUSR1 the same way (on SLURM with auto-requeue it then
    requeues the job, where Lightning would have saved an `hpc_ckpt_N.ckpt` outside the run folder
    and gone on), writes the checkpoint, and flushes the loggers whenever a checkpoint is written and at each
    epoch start, so that the TensorBoard events of everything a checkpoint covers are on disk.
    """

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.checkpoint: Path | None = None
        self.run: Path | None = None
        self.requeue = False  # SIGUSR1 requeues the SLURM job (Lightning's SLURM auto-requeue is on)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.run = run_dir(trainer)  # every rank (a broadcast under DDP)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._wrap_handlers()

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._wrap_handlers()

    def _wrap_handlers(self) -> None:
        # Lightning installs its handlers when the run starts (before these hooks): wrap them.
        self.signal, self.checkpoint = None, None
        if threading.current_thread() is not threading.main_thread():
            return
        stop = signal.getsignal(signal.SIGTERM)  # Lightning's: stop after the current step, on every rank
        # Lightning's SLURM requeue handler, if it set one: it would save `hpc_ckpt_N.ckpt` outside the run
        # folder and let the run go on. SIGUSR1 stops the run like SIGTERM instead (its own last.ckpt in the
        # run folder), and the job is requeued once it has (`on_exception`).
        self.requeue = callable(signal.getsignal(signal.SIGUSR1))
        if not callable(stop):
            return
        signal.signal(signal.SIGTERM, self._recording(stop))
        signal.signal(signal.SIGUSR1, self._recording(lambda _, frame: stop(signal.SIGTERM, frame)))

    def _recording(self, handler: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
        def handle(received: int, frame: FrameType | None) -> None:
            self.signal = self.signal or signal.Signals(received)
            handler(received, frame)

        return handle

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        flush(trainer)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        flush(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        received = self.signal or signal.SIGTERM
        exception.code = 128 + int(received)
        if received == signal.SIGUSR1 and self.requeue and trainer.is_global_zero:
            requeue_slurm_job()
        if trainer.state.fn == TrainerFn.TESTING and trainer.ckpt_path and self.run is not None:
            exception.add_note(
                f"interrupted by {received.name} during the test ({exception}; the measured examples are kept); "
                f"resume with: {resume_test_command(self.run, trainer.ckpt_path)}"
            )
            return
        if trainer.state.fn != TrainerFn.FITTING:
            exception.add_note(f"interrupted by {received.name}")
            return
        checkpointer = trainer.checkpoint_callback
        if not isinstance(checkpointer, ModelCheckpoint) or checkpointer.dirpath is None:
            rank_zero_warn(
                f"interrupted by {received.name}, but the run has no checkpoint directory: nothing to resume from"
            )
            return
        self.checkpoint = last_checkpoint(checkpointer)
        trainer.save_checkpoint(self.checkpoint, weights_only=False)
        checkpointer.last_model_path = str(self.checkpoint)
        exception.add_note(
            f"interrupted by {received.name} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"resume with: {resume_command(self.checkpoint)}"
        )


def requeue_slurm_job() -> None:
    """`scontrol requeue` this job (Lightning's SLURM handler's command), once the run has stopped."""
    job = slurm_job_id()
    if job is None:
        return
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        rank_zero_warn(f"could not requeue SLURM job {job}: {error}")
        return
    if done.returncode != 0:
        rank_zero_warn(f"could not requeue SLURM job {job}: scontrol says {done.stderr.strip() or done.returncode}")


def flush(trainer: Trainer) -> None:
    for logger in trainer.loggers:
        logger.save()  # rank zero only; TensorBoard: writes the pending events
