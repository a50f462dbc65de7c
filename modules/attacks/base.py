"""The base of the app's attacks: torchattacks' `atk(x, y)` interface, with safe model handling."""

from __future__ import annotations

import torch
from torchattacks.attack import Attack
from torch import nn

from modules.attacks.mode import as_attack_input, attack_mode


class RobustAttack(Attack):
    """An attack whose call leaves the model exactly as it found it.

    torchattacks restores training mode with `model.train()`, which would wake a backbone
    that a protocol keeps frozen in eval mode; here every module keeps its own flag.
    Inputs must be [0, 1] images (normalization lives inside the model).
    """

    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__(name, model)

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if inputs.numel() and (inputs.min() < 0 or inputs.max() > 1):
            raise ValueError(
                f"{self.attack} expects images in [0, 1]; got values in "
                f"[{inputs.min().item():.3f}, {inputs.max().item():.3f}]"
            )
        with attack_mode(self.model):
            adversarial = self.forward(as_attack_input(inputs), as_attack_input(labels))
        return adversarial.detach()
