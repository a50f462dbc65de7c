"""A non-finite training loss stops the run at that step, before it reaches the weights."""

from __future__ import annotations

import torch
from lightning import Callback, LightningModule, Trainer


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the epoch, step and value."""


class FiniteLoss(Callback):
    """Checks the loss before each backward pass. A NaN or infinite loss (a learning rate too
    large, an overflow in mixed precision, a broken image) raises `NonFiniteLossError` naming the
    epoch, step, value and the last checkpoint, which is left as it was: nothing after the last
    good step is saved. Under DDP the ranks agree first (one all-reduce of a flag), so they all
    stop at the same step instead of waiting on each other."""

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        here = bool(torch.isfinite(loss.detach()).all())
        everywhere = trainer.strategy.reduce_boolean_decision(here, all=True) if trainer.world_size > 1 else here
        if everywhere:
            return
        shown = "finite on this rank, not on another" if here else f"{loss.detach().float().sum().item():g}"
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
        raise NonFiniteLossError(
            f"non-finite training loss ({shown}) at epoch {trainer.current_epoch}, step "
            f"{trainer.global_step}: the run stopped; last good checkpoint: {last}"
        )
