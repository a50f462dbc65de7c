"""The base of the app's attacks: torchattacks' `atk(x, y)` interface, with safe model handling."""

from __future__ import annotations

import torch
from torchattacks.attack import Attack

from modules.attacks.mode import as_attack_input, attack_mode, eval_mode

# Per-example outcome codes of `RobustAttack.run`: robust, misclassified clean, then 2 + the index of
# the attack (or ensemble component, see `breakers`) that broke the example.
ROBUST, MISCLASSIFIED, BROKEN = 0, 1, 2


class RobustAttack(Attack):
    """An attack whose call leaves the model exactly as it found it.

    torchattacks restores training mode with `model.train()`, which would wake a backbone
    that a protocol keeps frozen in eval mode; here every module keeps its own flag.
    Inputs must be [0, 1] images (normalization lives inside the model).
    """

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if inputs.numel() and (inputs.min() < 0 or inputs.max() > 1):
            raise ValueError(
                f"{self.attack} expects images in [0, 1]; got values in "
                f"[{inputs.min().item():.3f}, {inputs.max().item():.3f}]"
            )
        with attack_mode(self.model):
            adversarial = self.forward(as_attack_input(inputs), as_attack_input(labels))
        return adversarial.detach()

    def breakers(self) -> list[str]:
        """The names of outcome codes 2, 3, ...: this attack alone (an ensemble names its components)."""
        return [self.attack.lower()]

    def run(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adversarial images and each example's outcome code (ROBUST, MISCLASSIFIED, BROKEN)."""
        adversarial = self(inputs, labels)
        with torch.no_grad(), eval_mode(self.model):
            clean = self.get_logits(inputs).argmax(1) == labels
            robust = self.get_logits(adversarial).argmax(1) == labels
        return adversarial, torch.where(clean, torch.where(robust, ROBUST, BROKEN), MISCLASSIFIED)
