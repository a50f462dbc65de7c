"""The training losses: `ce` (baseline), `classic_at` and `trades` (BENCHMARK.md, "Losses")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modules.registry import Registry

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class LossOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # what the training accuracy is measured on
    adversarial_logits: torch.Tensor | None = None


class Loss:
    needs_attack = True

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None) -> LossOutput:
        raise NotImplementedError


class CrossEntropy(Loss):
    """Standard fine-tuning on clean images: the non-robust baseline."""

    needs_attack = False

    def __call__(self, model, x, y, attack=None):
        logits = model(x)
        return LossOutput(F.cross_entropy(logits.float(), y), logits)


class ClassicAT(Loss):
    """Madry et al.: cross-entropy on the adversarial example only."""

    def __call__(self, model, x, y, attack):
        x_adv = attack(x, y)
        logits = model(x_adv)
        return LossOutput(F.cross_entropy(logits.float(), y), logits, logits)


class Trades(Loss):
    """Zhang et al.: CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv))."""

    def __init__(self, beta: float = 1.0) -> None:
        if beta < 0:
            raise ValueError(f"TRADES beta must be >= 0, got {beta}")
        self.beta = beta

    def __call__(self, model, x, y, attack):
        x_adv = attack(x, y)
        logits = model(x)
        adversarial_logits = model(x_adv)
        natural = F.cross_entropy(logits.float(), y)
        robust = F.kl_div(F.log_softmax(adversarial_logits.float(), 1), F.log_softmax(logits.float(), 1),
                          reduction="batchmean", log_target=True)
        return LossOutput(natural + self.beta * robust, logits, adversarial_logits)


LOSSES: Registry[Callable[..., Loss]] = Registry("loss")
LOSSES.register("ce")(lambda beta: CrossEntropy())
LOSSES.register("classic_at")(lambda beta: ClassicAT())
LOSSES.register("trades")(lambda beta: Trades(beta))


def build_loss(name: str, beta: float = 1.0) -> Loss:
    return LOSSES.get(name)(beta=beta)
