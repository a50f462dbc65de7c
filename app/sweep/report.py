"""What a search trial tells Tune: after each epoch's validation, the search metric and the epoch
(ASHA counts our own epochs, so a trial resumed after a restore reports where it really is)."""

from __future__ import annotations

from lightning import Callback, LightningModule, Trainer


class ReportToTune(Callback):
    """After each epoch's validation: the search metric (`val/<metric>`) and the epoch, to Tune."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from ray import tune

        value = trainer.callback_metrics.get(f"val/{self.metric}")
        if value is not None:
            tune.report({self.metric: float(value), "epoch": trainer.current_epoch + 1})
