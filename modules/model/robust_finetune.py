"""RobustFineTuneModule: a timm backbone fine-tuned with a robust loss under a protocol."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torchmetrics.classification import MulticlassAccuracy

from modules.attacks import AttackConfig, build_attack, check_training_attack
from modules.attacks.factory import Attack
from modules.model.backbones import create_classifier
from modules.model.losses import build_loss, settings_of
from modules.model.optimizers import parameter_groups
from modules.model.protocols import ProtocolOptions, apply_protocol, build_protocol, freeze_modes, head_parameters
from modules.model.schedules import EpsSchedule
from modules.registry import ConfigError


class RobustFineTuneModule(LightningModule):
    """Takes [0, 1] images; the backbone's normalization is inside `self.model`.

    Args:
        backbone: a study backbone (`python -m app backbones`) or any timm model name.
        num_classes: linked from the data module by the CLI.
        pretrained: fetch timm's pretrained weights (needs the network) or start from random.
        weights: a local weights file for the backbone (overrides `pretrained`).
        keep_head: the backbone's pretrained weights with their own head (its classes must be the
            dataset's; implies `pretrained`) instead of a new head: `python -m app test` measures such a
            model without a checkpoint (e.g. `local-dir:DIR`, a model exported or shared on the hub).
        loss: `ce`, `classic_at` or `trades` (`modules/model/losses.py`).
        loss_settings: each loss's own settings, by loss: `{trades: {beta: 6.0}}` (default: its defaults).
        attack: the training attack (default: the paper's APGD-CE, Linf, 4/255, 10 steps).
        eps_schedule: how the training eps grows to `attack.eps` over the epochs (`constant`, or
            `linear_warmup` with `t1`, `t2`: the follow-up paper's 0 -> 1 ramp between those epochs).
        protocol: `full`, `linear_probe`, `partial` or `lp_ft` (options below).
        lr_backbone, lr_head, wd_backbone, wd_head, betas: AdamW's two parameter groups.
        cosine: cosine annealing of both learning rates over `trainer.max_epochs`.
        val_robust_loss: log `val/robust_loss`, the training loss with its attack on the validation
            images (the hyper-parameter search's metric; one attack per validation batch).
        compile: `torch.compile` the classifier (used by training and by every attack; compiled
            lazily at its first call, and again when the mode or shapes change; the weights' names
            do not change, so checkpoints load either way). `python -m app bench --compare` measures it.
        channels_last: the classifier's weights and the batches in channels-last memory format
            (faster convolutions on recent GPUs; measured by `bench --compare` too).
    """

    def __init__(
        self,
        backbone: str = "resnet50.a1_in1k",
        num_classes: int = 10,
        pretrained: bool = True,
        weights: str | None = None,
        keep_head: bool = False,
        loss: str = "trades",
        loss_settings: dict[str, dict[str, Any]] | None = None,
        attack: AttackConfig | None = None,
        eps_schedule: EpsSchedule | None = None,
        protocol: str = "full",
        partial_blocks: int = 1,
        partial_unit: Literal["block", "stage"] = "block",
        lp_epochs: int = 5,
        lr_backbone: float = 1e-4,
        lr_head: float = 1e-3,
        wd_backbone: float = 0.05,
        wd_head: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.95),
        cosine: bool = True,
        val_robust_loss: bool = True,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        attack = AttackConfig(**attack) if isinstance(attack, dict) else attack or AttackConfig()
        check_training_attack(attack)
        # Names are checked before the (possibly large) backbone is built.
        self.loss_fn = build_loss(loss, **settings_of(loss, loss_settings))
        self.protocol = build_protocol(protocol, ProtocolOptions(partial_blocks, partial_unit, lp_epochs))
        eps_schedule = EpsSchedule(**eps_schedule) if isinstance(eps_schedule, dict) else eps_schedule or EpsSchedule()
        self.save_hyperparameters(ignore=["attack", "eps_schedule"])
        self.hparams["attack"] = asdict(attack)
        self.hparams["eps_schedule"] = asdict(eps_schedule)
        self.hparams["loss_settings"] = (loss_settings or {}) | {loss: self.loss_fn.settings()}
        self.attack_config = attack
        self.eps_schedule = eps_schedule
        self.model = create_classifier(backbone, num_classes, pretrained, weights, keep_head)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        if compile:
            self.model.compile()
        self.head_names = head_parameters(self.model.net)
        self.apply_protocol(epoch=0)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.hparams.channels_last and batch[0].dim() == 4:
            return (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
        return batch

    def apply_protocol(self, epoch: int) -> None:
        apply_protocol(self.model.net, self.protocol(self.model.net, epoch))
        if self.training:
            freeze_modes(self.model)

    def train(self, mode: bool = True) -> RobustFineTuneModule:
        super().train(mode)
        if mode:
            freeze_modes(self.model)
        return self

    def training_attack_config(self) -> AttackConfig:
        """The training attack at the current epoch: eps = alpha(epoch) x the target eps."""
        alpha = self.eps_schedule.alpha(self.current_epoch)
        return self.attack_config if alpha == 1 else replace(self.attack_config, eps=self.attack_config.eps * alpha)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.protocol == "lp_ft" and self.trainer.world_size > 1:
            # DDP registers gradient hooks only for the parameters that need gradients when it
            # wraps the model, so a backbone unfrozen mid-run would train without being synced.
            raise ConfigError(
                "protocol lp_ft cannot run on several devices (DDP cannot follow parameters "
                "unfrozen mid-run): run it on one device, or run linear_probe then full "
                "from its checkpoint"
            )

    def on_train_start(self) -> None:
        # A run resumed part-way through an epoch skips that epoch's start: its protocol state
        # (e.g. lp_ft's unfrozen backbone) is set here, once the epoch is restored.
        self.apply_protocol(self.current_epoch)

    def on_train_epoch_start(self) -> None:
        self.apply_protocol(self.current_epoch)

    def training_attack(self) -> Attack | None:
        """The attack the loss calls at this epoch (None for a loss that needs none)."""
        config = self.training_attack_config()
        if not self.loss_fn.needs_attack:
            return None
        if config.eps == 0:  # the start of a warm-up: the clean images, no attack run
            return lambda images, labels: images.detach()
        return build_attack(config, self.model)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.log("train/eps", self.training_attack_config().eps, on_step=False, on_epoch=True)
        out = self.loss_fn(self.model, x, y, self.training_attack())
        self.train_acc(out.logits.detach().argmax(1), y)
        self.log("train/loss", out.loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/acc", self.train_acc, prog_bar=True, on_step=False, on_epoch=True)
        return out.loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        metric = self.val_acc if stage == "val" else self.test_acc
        metric(logits.argmax(1), y)
        self.log(f"{stage}/loss", F.cross_entropy(logits.float(), y), prog_bar=stage == "val", sync_dist=True)
        self.log(f"{stage}/acc", metric, prog_bar=stage == "val")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")
        if self.hparams.val_robust_loss:
            # The training loss with its attack on validation images: what the hyper-parameter
            # search minimises (TRADES: CE + beta KL; classic AT: CE on the adversarial images).
            x, y = batch
            loss = self.loss_fn(self.model, x, y, self.training_attack()).loss
            self.log("val/robust_loss", loss, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What an export needs besides the weights: the dataset's name, class names and image size."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if data is not None:
            checkpoint["dataset"] = {
                "name": getattr(data, "dataset_name", "") or type(data).__name__,
                "class_names": list(getattr(data, "class_names", None) or []),
                "image_size": getattr(data, "image_size", None),
            }

    def configure_optimizers(self):
        h = self.hparams
        groups = parameter_groups(self.model.net, self.head_names, h.lr_backbone, h.lr_head, h.wd_backbone, h.wd_head)
        optimizer = torch.optim.AdamW(groups, betas=tuple(h.betas))
        if not h.cosine:
            return optimizer
        epochs = max(self.trainer.max_epochs or 1, 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
