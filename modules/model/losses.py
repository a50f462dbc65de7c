"""The training losses: `ce` (baseline), `classic_at` and `trades` (BENCHMARK.md, "Losses").

A loss is a dataclass: its fields are its own settings (`model.loss_settings: {trades: {beta: 6.0}}`,
keyed by loss so that switching `--model.loss` keeps a config valid); its `batch_factor` is what the
per-device batch is multiplied by when the experiment configs leave `data.batch_size` null (TRADES
runs two forward passes per example: half the batch). Adding a loss is one class and one
registration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from modules.attacks.factory import Attack
from modules.registry import ConfigError, Registry


@dataclass
class LossOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # what the training accuracy is measured on
    adversarial_logits: torch.Tensor | None = None


@dataclass
class Loss:
    needs_attack: ClassVar[bool] = True
    batch_factor: ClassVar[float] = 1.0

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None) -> LossOutput:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The loss's own settings, as results.json and the hyper-parameters record them."""
        return asdict(self)


@dataclass
class CrossEntropy(Loss):
    """Standard fine-tuning on clean images: the non-robust baseline."""

    needs_attack: ClassVar[bool] = False

    def __call__(self, model, x, y, attack=None):
        logits = model(x)
        return LossOutput(F.cross_entropy(logits.float(), y), logits)


@dataclass
class ClassicAT(Loss):
    """Madry et al.: cross-entropy on the adversarial example only."""

    def __call__(self, model, x, y, attack):
        x_adv = attack(x, y)
        logits = model(x_adv)
        return LossOutput(F.cross_entropy(logits.float(), y), logits, logits)


@dataclass
class Trades(Loss):
    """Zhang et al.: CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv))."""

    batch_factor: ClassVar[float] = 0.5
    beta: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.beta, bool) or not isinstance(self.beta, int | float) or not self.beta >= 0:
            raise ConfigError(f"TRADES beta must be a number >= 0, got {self.beta!r}")

    def __call__(self, model, x, y, attack):
        x_adv = attack(x, y)
        logits = model(x)
        adversarial_logits = model(x_adv)
        natural = F.cross_entropy(logits.float(), y)
        robust = F.kl_div(
            F.log_softmax(adversarial_logits.float(), 1),
            F.log_softmax(logits.float(), 1),
            reduction="batchmean",
            log_target=True,
        )
        return LossOutput(natural + self.beta * robust, logits, adversarial_logits)


LOSSES: Registry[type[Loss]] = Registry("loss")
LOSSES.register("ce")(CrossEntropy)
LOSSES.register("classic_at")(ClassicAT)
LOSSES.register("trades")(Trades)


def build_loss(name: str, **settings: Any) -> Loss:
    """The loss `name` with its own settings; a setting it does not have is an error naming the ones it has."""
    cls = LOSSES.get(name)
    known = [field.name for field in fields(cls)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(
            f"loss {name!r} has no setting {', '.join(map(repr, unknown))}; its settings: {', '.join(known) or 'none'}"
        )
    return cls(**settings)


def settings_of(name: str, by_loss: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Loss `name`'s settings from `{loss: {setting: value}}`. Every entry is checked, so that a typo
    under a loss that is not run now is caught all the same."""
    by_loss = by_loss or {}
    if not isinstance(by_loss, dict) or not all(isinstance(entry, dict) for entry in by_loss.values()):
        raise ConfigError(
            f"model.loss_settings must map loss names to their settings, e.g. {{trades: {{beta: 6.0}}}}; "
            f"got {by_loss!r}"
        )
    for other, entry in by_loss.items():
        build_loss(other, **entry)
    return dict(by_loss.get(name, {}))
