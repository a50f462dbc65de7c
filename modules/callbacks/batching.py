"""Gradient accumulation derived from an effective batch size (the study: 1,024)."""

from __future__ import annotations

import math

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class EffectiveBatchSize(Callback):
    """Sets `accumulate_grad_batches` = effective_batch_size / (per-device batch x devices)."""

    def __init__(self, effective_batch_size: int = 1024) -> None:
        if effective_batch_size < 1:
            raise ValueError(f"effective_batch_size must be >= 1, got {effective_batch_size}")
        self.effective_batch_size = effective_batch_size

    def accumulation(self, batch_size: int, world_size: int) -> int:
        return max(1, math.ceil(self.effective_batch_size / (batch_size * world_size)))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        batch_size, world = trainer.datamodule.batch_size, trainer.world_size
        steps = self.accumulation(batch_size, world)
        trainer.accumulate_grad_batches = steps
        actual = steps * batch_size * world
        message = f"effective batch {actual} = {batch_size} per device x {world} devices x {steps} accumulated"
        if actual != self.effective_batch_size:
            rank_zero_warn(f"{message} (asked for {self.effective_batch_size})")
        else:
            rank_zero_info(message)
