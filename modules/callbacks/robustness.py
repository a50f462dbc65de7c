"""Epoch-end robustness: attack a fixed subset of the validation set and log the accuracies."""

from __future__ import annotations

import torch
from lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, Subset

from modules.attacks import AttackConfig, build_attack
from modules.evaluation import count_correct


class RobustnessCallback(Callback):
    """Logs `val/clean_acc`, `val/linf_acc`, `val/l2_acc` on a fixed validation subset, and
    the same figures over the whole test set at test time (`test/...`).

    The subset (the first `subset_size` images of a seeded permutation) is the same every
    epoch. Under DDP each rank attacks every world_size-th image of it and the counts are
    summed, so the figure is over the whole subset. Attacks need input gradients: they run
    outside Lightning's inference mode (see `attack_mode`).

    Args:
        subset_size: validation images attacked each epoch (0 disables the callback).
        steps: APGD steps of both attacks (cheaper than the AutoAttack of the final test).
        linf_eps, l2_eps: the attacks' radii (the study: 4/255 and 2.0).
        every_n_epochs: run every n-th validation epoch.
    """

    def __init__(self, subset_size: int = 256, steps: int = 10, linf_eps: float = 4 / 255, l2_eps: float = 2.0,
                 batch_size: int = 64, every_n_epochs: int = 1, seed: int = 0) -> None:
        for name, value in (("linf_eps", linf_eps), ("l2_eps", l2_eps)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"RobustnessCallback {name} must be a number >= 0, got {value!r}")
        self.subset_size, self.steps, self.batch_size = subset_size, steps, batch_size
        self.linf_eps, self.l2_eps = float(linf_eps), float(l2_eps)
        self.every_n_epochs, self.seed = every_n_epochs, seed

    def subset_indices(self, size: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(size, generator=generator)[: self.subset_size].sort().values.tolist()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.subset_size <= 0 or trainer.current_epoch % self.every_n_epochs:
            return
        self.measure(trainer, pl_module, "val", self.subset_indices(len(trainer.datamodule.datasets["val"])))

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.measure(trainer, pl_module, "test", list(range(len(trainer.datamodule.datasets["test"]))))

    def measure(self, trainer: Trainer, pl_module: LightningModule, split: str, indices: list[int]) -> None:
        dataset = trainer.datamodule.datasets[split]
        shard = indices[trainer.global_rank :: trainer.world_size]
        loader = DataLoader(Subset(dataset, shard), batch_size=self.batch_size)
        model = pl_module.model
        perturbations = {
            "clean_acc": None,
            "linf_acc": build_attack(AttackConfig("apgd", "Linf", self.linf_eps, self.steps), model, "eval"),
            "l2_acc": build_attack(AttackConfig("apgd", "L2", self.l2_eps, self.steps), model, "eval"),
        }
        correct, total = count_correct(model, loader, perturbations, pl_module.device, trainer.precision_plugin.forward_context)
        counts = torch.tensor([total, *correct.values()], dtype=torch.float64, device=pl_module.device)
        counts = trainer.strategy.reduce(counts, reduce_op="sum")
        for name, value in zip(correct, counts[1:] / counts[0].clamp(min=1)):
            pl_module.log(f"{split}/{name}", value.item(), prog_bar=name != "clean_acc", sync_dist=False)
