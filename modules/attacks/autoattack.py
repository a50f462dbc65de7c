"""AutoAttack, standard version (Croce & Hein, ICML 2020; L1: ICML 2021), on torchattacks' interface.

The ensemble of the reference (pyautoattack `AutoAttack(version="standard")`), with its settings:

- Linf / L2: APGD-CE (100 steps, 1 run), APGD-T (100 steps, 9 target classes),
  FAB-T (100 steps, 9 target classes), Square (5,000 queries, p_init 0.8, no rescaling).
- L1: APGD-CE (5 restarts) and APGD-T (5 target classes) with the large-eps schedule,
  FAB-T in L1, Square in L1.

APGD, APGD-T and Square are the project's own ports (see their modules for why: torchattacks'
APGD-T uses example 0's step size for every example in L2, its Square takes the L2 window norm
over all channels at once, and it has no L1); FAB-T is torchattacks'. Each attack only sees the
examples that all previous attacks failed to break, and the robust flags are the ensemble's own
(a component breaks an example when the model misclassifies the point it returned), as the
reference reports them.
"""

from __future__ import annotations

import torch
from torch import nn

from modules.attacks.apgd import APGD
from modules.attacks.base import BROKEN, MISCLASSIFIED, ROBUST, RobustAttack
from modules.attacks.fab import FAB
from modules.attacks.norms import NORMS, NormName, clip_to_ball
from modules.attacks.square import Square

COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


class AutoAttack(RobustAttack):
    """The standard AutoAttack ensemble at radius `eps` in `norm`.

    `steps` and `square_queries` default to the standard version (100, 5,000); smaller values
    make a cheaper, weaker evaluation (the settings are recorded with the figures). `run` gives
    each example's outcome: robust, misclassified clean, or broken by `COMPONENTS[k]` (code 2 + k)."""

    def __init__(
        self,
        model: nn.Module,
        norm: NormName = "Linf",
        eps: float = 4 / 255,
        seed: int = 0,
        steps: int = 100,
        square_queries: int = 5000,
    ) -> None:
        super().__init__("AutoAttack", model)
        if norm not in NORMS:
            raise ValueError(f"AutoAttack norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.norm, self.eps, self.seed = norm, float(eps), seed
        self.steps, self.square_queries = int(steps), int(square_queries)
        self.supported_mode = ["default"]
        self.outcome = torch.zeros(0, dtype=torch.long)

    def components(self, n_classes: int) -> dict[str, RobustAttack]:
        m, norm, eps, seed, steps = self.model, self.norm, self.eps, self.seed, self.steps
        l1 = norm == "L1"
        attacks = {
            "apgd-ce": APGD(
                m,
                norm,
                eps,
                steps,
                random_start=True,
                restarts=5 if l1 else 1,
                keep="misclassified",
                use_largereps=l1,
                seed=seed,
            ),
            "apgd-t": APGD(
                m,
                norm,
                eps,
                steps,
                random_start=True,
                keep="misclassified",
                loss="dlr-targeted",
                n_target_classes=5 if l1 else 9,
                use_largereps=l1,
                seed=seed,
            ),
            "fab-t": FAB(m, norm, eps, steps=steps, n_target_classes=9, seed=seed),
            "square": Square(m, norm, eps, n_queries=self.square_queries, p_init=0.8, n_restarts=1, seed=seed),
        }
        if n_classes < 4:  # the targeted DLR loss reads the 4 largest logits (as in the reference)
            attacks.pop("apgd-t")
        return attacks

    def settings(self) -> dict:
        return {
            "algorithm": "autoattack-standard",
            "norm": self.norm,
            "eps": self.eps,
            "steps": self.steps,
            "square_queries": self.square_queries,
            "components": list(COMPONENTS),
            "seed": self.seed,
        }

    def breakers(self) -> list[str]:
        return list(COMPONENTS)

    def run(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ensemble's own flags, as the reference reports them (not a new prediction of the clipped output)."""
        adversarial = self(inputs, labels)
        return adversarial, self.outcome.clone()

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.detach()
        adversarial = x.clone()
        with torch.no_grad():
            logits = self.get_logits(x)
        robust = logits.argmax(1) == labels
        self.outcome = torch.where(robust, ROBUST, MISCLASSIFIED)
        if self.eps == 0 or len(x) == 0:
            return adversarial
        for name, attack in self.components(logits.shape[1]).items():
            index = robust.nonzero().flatten()
            if len(index) == 0:
                break
            adv = attack(x[index], labels[index])
            with torch.no_grad():
                broken = self.get_logits(adv).argmax(1) != labels[index]
            adversarial[index[broken]] = adv[broken].to(adversarial.dtype)
            robust[index[broken]] = False
            self.outcome[index[broken]] = BROKEN + COMPONENTS.index(name)
        return clip_to_ball(adversarial, x, self.norm, self.eps)
