"""FAB-T, the targeted FAB attack of the standard AutoAttack (Croce & Hein, ICML 2020), on torchattacks' FAB.

torchattacks' FAB follows the reference's algorithm (the agreement test of the standard AutoAttack
compares the examples it breaks); its multi-targeted `perturb` is rewritten here because the
original fails for L1 (it measures the found perturbation only in Linf and L2).
"""

from __future__ import annotations

import torch
import torchattacks
from torch import nn

from modules.attacks.base import RobustAttack
from modules.attacks.mode import frozen_parameters
from modules.attacks.norms import NormName, clip_to_ball, lp_norm


class _MultiTargetedFAB(torchattacks.FAB):
    """One targeted run per target class, on the examples not yet broken within eps."""

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = x.clone()
        with torch.no_grad():
            acc = self.get_logits(x).argmax(1) == y
            torch.random.manual_seed(self.seed)
            for target_class in range(2, self.n_target_classes + 2):
                self.target_class = target_class
                for counter in range(self.n_restarts):
                    index = acc.nonzero().flatten()
                    if len(index) == 0:
                        return adv
                    adv_curr = self.attack_single_run_targeted(x[index], y[index], use_rand_start=counter > 0)
                    size = lp_norm(adv_curr - x[index], self.norm)
                    broken = (self.get_logits(adv_curr).argmax(1) != y[index]) & (size <= self.eps)
                    acc[index[broken]] = False
                    adv[index[broken]] = adv_curr[broken]
        return adv


class FAB(RobustAttack):
    """FAB-T at radius `eps` in `norm`: `n_target_classes` targets (the standard: 9), one restart each."""

    def __init__(
        self,
        model: nn.Module,
        norm: NormName = "Linf",
        eps: float = 4 / 255,
        steps: int = 100,
        n_target_classes: int = 9,
        seed: int = 0,
    ) -> None:
        super().__init__("FAB", model)
        self.norm, self.eps, self.steps = norm, float(eps), int(steps)
        self.n_target_classes, self.seed = int(n_target_classes), int(seed)
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.detach()
        if self.eps == 0 or self.steps == 0 or len(x) == 0:
            return x.clone()
        with torch.no_grad():
            classes = self.get_logits(x[:1]).shape[1]
        fab = _MultiTargetedFAB(
            self.model,
            norm=self.norm,
            eps=self.eps,
            steps=self.steps,
            n_restarts=1,
            seed=self.seed,
            multi_targeted=True,
            n_classes=classes,
        )
        fab.n_target_classes = max(min(self.n_target_classes, classes - 1), 1)
        fab.set_device(x.device)
        with frozen_parameters(self.model):
            return clip_to_ball(fab.perturb(x, labels), x, self.norm, self.eps)
