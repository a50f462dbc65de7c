"""The run's checkpoints: the best epoch (chosen at validation) and `last.ckpt`, written at the end
of every epoch and every `train_time_interval` of training."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


def last_checkpoint(checkpointer: ModelCheckpoint) -> Path:
    """`<dirpath>/last.ckpt`: the checkpoint a run resumes from."""
    return Path(checkpointer.dirpath) / f"{checkpointer.CHECKPOINT_NAME_LAST}{checkpointer.FILE_EXTENSION}"


def relocated(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A ModelCheckpoint record whose paths under folder `old` now name the same files under `new`."""

    def move(path: Any) -> Any:
        return new + path[len(old) :] if isinstance(path, str) and path.startswith(old) else path

    moved = {key: move(value) for key, value in state.items()}
    moved["best_k_models"] = {move(path): score for path, score in state.get("best_k_models", {}).items()}
    return moved


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint for the best checkpoint; `last.ckpt` is written here.

    Two behaviours of Lightning's (2.6) would lose or mislabel work:
    - `save_last` rewrites last.ckpt only at steps where a top-k checkpoint was saved, so after an
      epoch that did not improve, last.ckpt is an older epoch and a resumed run repeats epochs.
      Here last.ckpt is the state at the end of every epoch (after its validation).
    - `train_time_interval` also runs the best-checkpoint selection on the score of the previous
      validation, and a save on an epoch's last batch makes Lightning skip the epoch-end save that
      has the fresh score: best.ckpt then holds weights of a later step, by how the clock fell.
      Here the timed save writes last.ckpt only (from the first epoch on); all ranks save
      together, on rank zero's clock.

    A run resumed in place from another working directory names its folder differently than the
    checkpoint does; Lightning would then drop the best-checkpoint record (and take the next epoch
    as the best). The record's paths are moved to this folder instead.
    """

    def __init__(
        self,
        *args: Any,
        save_last: bool | Literal["link"] | None = None,
        train_time_interval: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, save_last=False, **kwargs)
        self.keep_last = bool(save_last)
        self.last_every = train_time_interval
        self._last_saved = 0.0
        self._resumed_here = False

    def save_last_checkpoint(self, trainer: Trainer) -> None:
        if not self.keep_last or self.dirpath is None or trainer.fast_dev_run:
            return
        path = last_checkpoint(self)
        self.last_model_path = str(path)  # before saving: it is part of the saved state
        trainer.save_checkpoint(path, weights_only=False)
        self._last_saved = time.monotonic()

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # called before load_state_dict: is the checkpoint one of this folder's own?
        self._resumed_here = bool(
            trainer.ckpt_path
            and self.dirpath
            and Path(trainer.ckpt_path).parent.resolve() == Path(self.dirpath).resolve()
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("dirpath")
        if self._resumed_here and saved and saved != self.dirpath:
            state_dict = relocated(state_dict, str(saved), str(self.dirpath))
        super().load_state_dict(state_dict)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_saved = time.monotonic()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.last_every is not None and trainer.strategy.broadcast(
            time.monotonic() - self._last_saved >= self.last_every.total_seconds()
        ):
            self.save_last_checkpoint(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)  # the best checkpoint, when validation improved
        self.save_last_checkpoint(trainer)
