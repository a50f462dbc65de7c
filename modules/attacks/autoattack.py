"""AutoAttack, standard version (Croce & Hein, ICML 2020; L1: ICML 2021), on torchattacks' interface.

`torchattacks.AutoAttack(version="standard")` runs the right four attacks for Linf and L2 but
with torchattacks' defaults of 10 steps for APGD, APGD-T and FAB, not the 100 of the
reference, and Square with a rescaled schedule; and it has no L1. So the ensemble is
assembled here with the reference's settings (pyautoattack `AutoAttack._set_version("standard")`):

- Linf / L2: APGD-CE (100 steps, 1 restart), APGD-T (100 steps, 9 target classes),
  FAB-T (100 steps, 9 target classes), Square (5,000 queries, p_init 0.8, no rescaling).
- L1: L1-APGD-CE (100 steps, 5 restarts, large-eps schedule), L1-APGD-T (5 target classes,
  large-eps schedule), FAB-T in L1 (torchattacks' FAB supports L1), and Square in L1
  (5,000 queries, p_init 0.8, no rescaling; torchattacks' Square has no L1 version, so it is
  the port of the reference's in `modules.attacks.square_l1`).

Each attack only sees the examples that all previous attacks failed to break. Returns a
misclassified point where one was found, the clean image elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torchattacks
from torch import nn

from modules.attacks.base import RobustAttack
from modules.attacks.apgd import project
from modules.attacks.l1_apgd import L1APGD, clip_l1
from modules.attacks.square_l1 import SquareL1

Norm = Literal["Linf", "L2", "L1"]


class FABTargeted(torchattacks.FAB):
    """torchattacks' multi-targeted FAB, with its `perturb` loop rewritten because the original
    fails for L1 (it measures the found perturbation only for Linf and L2). Same algorithm:
    one targeted run per target class, on the examples not yet broken within eps."""

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
                    delta = (adv_curr - x[index]).flatten(1)
                    size = {"Linf": lambda d: d.abs().amax(1), "L2": lambda d: d.norm(dim=1),
                            "L1": lambda d: d.abs().sum(1)}[self.norm](delta)
                    broken = (self.get_logits(adv_curr).argmax(1) != y[index]) & (size <= self.eps)
                    acc[index[broken]] = False
                    adv[index[broken]] = adv_curr[broken]
        return adv


class AutoAttack(RobustAttack):
    """The standard AutoAttack ensemble at radius `eps` in `norm`.

    `steps` and `square_queries` default to the standard version (100, 5,000); smaller values
    make a cheaper, weaker evaluation (the report records the settings used)."""

    def __init__(self, model: nn.Module, norm: Norm = "Linf", eps: float = 4 / 255, n_classes: int | None = None,
                 seed: int = 0, steps: int = 100, square_queries: int = 5000) -> None:
        super().__init__("AutoAttack", model)
        if norm not in ("Linf", "L2", "L1"):
            raise ValueError(f"AutoAttack norm must be 'Linf', 'L2' or 'L1', got {norm!r}")
        self.norm, self.eps, self.seed = norm, float(eps), seed
        self.n_classes = None if n_classes is None else int(n_classes)  # None: read off the logits
        self.steps, self.square_queries = int(steps), int(square_queries)
        self.supported_mode = ["default"]
        self.last_counts: dict[str, int] = {}

    def components(self) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
        m, eps, seed, steps = self.model, self.eps, self.seed, self.steps
        targets = max(min(9, self.n_classes - 1), 1)
        fab = FABTargeted(m, norm=self.norm, eps=eps, steps=steps, n_restarts=1, seed=seed,
                               multi_targeted=True, n_classes=self.n_classes)
        fab.n_target_classes = targets
        if self.norm == "L1":
            return self._dlr_needs_four_classes({
                "apgd-ce": L1APGD(m, eps, steps, restarts=5, loss="ce", use_largereps=True, seed=seed).forward,
                "apgd-t": L1APGD(m, eps, steps, restarts=1, loss="dlr-targeted", n_target_classes=min(5, targets),
                                 use_largereps=True, seed=seed).forward,
                "fab-t": fab,
                "square": SquareL1(m, eps, n_queries=self.square_queries, p_init=0.8, n_restarts=1, seed=seed).forward,
            })
        apgdt = torchattacks.APGDT(m, norm=self.norm, eps=eps, steps=steps, n_restarts=1, seed=seed,
                                   n_classes=self.n_classes)
        apgdt.n_target_classes = targets
        attacks = {
            "apgd-ce": torchattacks.APGD(m, norm=self.norm, eps=eps, steps=steps, n_restarts=1, seed=seed, loss="ce"),
            "apgd-t": apgdt,
            "fab-t": fab,
            "square": torchattacks.Square(m, norm=self.norm, eps=eps, n_queries=self.square_queries, n_restarts=1,
                                          p_init=0.8, seed=seed, resc_schedule=False),
        }
        return self._dlr_needs_four_classes(attacks)

    def _dlr_needs_four_classes(self, attacks: dict) -> dict:
        """The targeted DLR loss reads the 4 largest logits (as in the reference)."""
        if self.n_classes < 4:
            attacks.pop("apgd-t")
        return attacks

    def settings(self) -> dict:
        return {"algorithm": "autoattack-standard", "norm": self.norm, "eps": self.eps, "steps": self.steps,
                "square_queries": self.square_queries,
                "components": ["apgd-ce", "apgd-t", "fab-t", "square"],
                "seed": self.seed}

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.detach()
        adversarial = x.clone()
        if self.eps == 0 or len(x) == 0:
            return adversarial
        with torch.no_grad():
            logits = self.get_logits(x)
        robust = logits.argmax(1) == labels
        if self.n_classes is None:
            self.n_classes = logits.shape[1]
        self.last_counts = {}
        for name, attack in self.components().items():
            index = robust.nonzero().flatten()
            if len(index) == 0:
                break
            if isinstance(attack, torchattacks.attack.Attack) and not isinstance(attack, RobustAttack):
                attack.set_device(x.device)
            adv = attack(x[index], labels[index]).detach()
            with torch.no_grad():
                broken = self.get_logits(adv).argmax(1) != labels[index]
            adversarial[index[broken]] = adv[broken].to(adversarial.dtype)
            robust[index[broken]] = False
            self.last_counts[name] = int(broken.sum())
        return clip_to_ball(adversarial, x, self.norm, self.eps)


def clip_to_ball(x_adv: torch.Tensor, x: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    """Guarantee the threat model whatever a component returned (float round-off included)."""
    if norm == "L1":
        return clip_l1(x_adv, x, eps)
    return project(x_adv, x, norm, eps)
