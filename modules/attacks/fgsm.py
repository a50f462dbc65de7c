"""Single-step training attacks: FGSM with a random start (Wong et al., "Fast is better than free",
ICLR 2020) and N-FGSM (de Jorge et al., "Make some noise", NeurIPS 2022). One gradient each, against
APGD-10's eleven: the cheap end of the cost / robustness trade-off.

- FGSM-RS: start uniformly in the eps ball, step 1.25 eps along the gradient's sign, project back.
- N-FGSM: start uniformly in a ball of 2 eps, step eps, and do not project: the perturbation may
  reach 3 eps (the authors show that clipping it brings catastrophic overfitting back).

The noise comes from the global generator, so a seeded run draws fresh noise at every batch and a
resumed run draws the same noise as an uninterrupted one (the generators are checkpointed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modules.attacks.base import RobustAttack


class FGSM(RobustAttack):
    """One signed-gradient step of `step` x eps from uniform noise of `noise` x eps (Linf).

    `project`: bring the result back into the eps ball (FGSM-RS) or leave it within (noise + step) x eps
    (N-FGSM). Always within [0, 1]."""

    def __init__(
        self, model: nn.Module, eps: float = 4 / 255, step: float = 1.25, noise: float = 1.0, project: bool = True
    ) -> None:
        super().__init__("FGSM", model)
        self.eps, self.step, self.noise, self.project = float(eps), float(step), float(noise), project
        self.supported_mode = ["default"]

    def reach(self) -> float:
        """The largest Linf perturbation this attack can return, as a multiple of eps."""
        return 1.0 if self.project else self.noise + self.step

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.detach()
        if self.eps == 0:
            return x.clone()
        delta = (2 * torch.rand(x.shape, device=x.device, dtype=x.dtype) - 1) * self.noise * self.eps
        x_adv = (x + delta).clamp(0.0, 1.0).requires_grad_(True)
        loss = F.cross_entropy(self.get_logits(x_adv).float(), labels)
        (grad,) = torch.autograd.grad(loss, [x_adv])
        delta = x_adv.detach() - x + self.step * self.eps * grad.sign()
        if self.project:
            delta = delta.clamp(-self.eps, self.eps)
        return (x + delta).clamp(0.0, 1.0)
