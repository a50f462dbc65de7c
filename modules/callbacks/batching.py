"""Gradient accumulation derived from an effective batch size (the study: 1,024)."""

from __future__ import annotations

import math

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from modules.registry import ConfigError


class EffectiveBatchSize(Callback):
    """Sets `accumulate_grad_batches` = effective_batch_size / (per-device batch x devices).

    None (the default) leaves the trainer's own `accumulate_grad_batches`; the paper's
    experiment configs set 1,024.
    """

    def __init__(self, effective_batch_size: int | None = None) -> None:
        if effective_batch_size is not None and effective_batch_size < 1:
            raise ConfigError(f"effective_batch_size must be >= 1, got {effective_batch_size}")
        self.effective_batch_size = effective_batch_size

    def accumulation(self, batch_size: int, world_size: int) -> int:
        return max(1, math.ceil(self.effective_batch_size / (batch_size * world_size)))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.effective_batch_size is None:
            return
        batch_size, world = trainer.datamodule.batch_size, trainer.world_size
        steps = self.accumulation(batch_size, world)
        trainer.accumulate_grad_batches = steps
        actual = steps * batch_size * world
        message = f"effective batch {actual} = {batch_size} per device x {world} devices x {steps} accumulated"
        if actual != self.effective_batch_size:
            rank_zero_warn(f"{message} (asked for {self.effective_batch_size})")
        else:
            rank_zero_info(message)
