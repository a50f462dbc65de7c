"""Auto-PGD (Croce & Hein, ICML 2020) with cross-entropy, Linf and L2.

Written here rather than taken from torchattacks because training needs two things its
APGD lacks: a start without random noise (the paper's setting), and attacking every
example. torchattacks only attacks the examples the model classifies correctly, which is
right for measuring accuracy but silently weakens training while the model is still
inaccurate. The step-size schedule follows the reference implementation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from modules.attacks.base import RobustAttack

Norm = Literal["Linf", "L2"]
Keep = Literal["max_loss", "misclassified"]


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    """Project onto the eps ball around x intersected with the [0, 1] box.

    Clamping to [0, 1] after the ball projection only shrinks each coordinate of the
    perturbation towards x, so the result stays inside both sets.
    """
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * torch.clamp(eps / (_flat_norm(delta) + 1e-12), max=1.0)
    return (x + delta).clamp(0.0, 1.0)


class APGD(RobustAttack):
    """APGD-CE; `step_size` is the initial step (default 2 eps), which APGD then adapts.

    `keep="max_loss"` returns each example's highest-loss iterate (training);
    `keep="misclassified"` returns a misclassified iterate wherever one was found
    (evaluation), and restarts only attack the examples not yet broken."""

    def __init__(
        self,
        model: nn.Module,
        norm: Norm = "Linf",
        eps: float = 4 / 255,
        steps: int = 10,
        random_start: bool = False,
        restarts: int = 1,
        keep: Keep = "max_loss",
        step_size: float | None = None,
        rho: float = 0.75,
        seed: int = 0,
    ) -> None:
        super().__init__("APGD", model)
        if norm not in ("Linf", "L2"):
            raise ValueError(f"APGD norm must be 'Linf' or 'L2', got {norm!r}")
        self.norm, self.eps, self.steps = norm, float(eps), int(steps)
        self.random_start, self.restarts, self.keep = random_start, int(restarts), keep
        self.initial_step = 2 * self.eps if step_size is None else float(step_size)
        self.rho, self.seed = rho, seed
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.eps == 0 or self.steps == 0:
            return images.clone()
        generator = torch.Generator(device=images.device).manual_seed(self.seed)
        adversarial = images.clone()
        todo = torch.ones(len(images), dtype=torch.bool, device=images.device)
        for _ in range(max(self.restarts, 1)):
            index = todo.nonzero().flatten()
            if len(index) == 0:
                break
            best, robust = self._run(images[index], labels[index], generator)
            adversarial[index] = best
            if self.keep == "misclassified":
                todo[index] = robust
        return adversarial

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        logits = self.get_logits(x)
        loss = F.cross_entropy(logits.float(), y, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), [x])
        return loss.detach(), torch.nan_to_num(grad.detach().float()), logits.detach().argmax(1) == y

    def _step(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.sign() if self.norm == "Linf" else grad / (_flat_norm(grad) + 1e-12)

    def _start(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        noise = 2 * torch.rand(x.shape, generator=generator, device=x.device) - 1
        if self.norm == "L2":
            noise = noise / (_flat_norm(noise) + 1e-12)
        return project(x + self.eps * noise, x, self.norm, self.eps)

    def _run(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, shape = len(x), [-1] + [1] * (x.dim() - 1)
        period = max(int(0.22 * self.steps), 1)
        period_min, period_decrease = max(int(0.06 * self.steps), 1), max(int(0.03 * self.steps), 1)

        x_adv = self._start(x, generator)
        loss, grad, correct = self._loss(x_adv, y)
        robust = correct.clone()
        x_best, grad_best, loss_best = x_adv.clone(), grad.clone(), loss.clone()
        x_misclassified = x_adv.clone()
        step_size = torch.full((n,), self.initial_step, device=x.device).view(shape)
        x_previous = x_adv.clone()
        loss_history = [loss]
        increases = torch.zeros(n, device=x.device)
        loss_best_at_check, reduced_at_check = loss_best.clone(), torch.ones(n, dtype=torch.bool, device=x.device)
        next_check = period

        for i in range(self.steps):
            momentum = 0.75 if i > 0 else 1.0
            z = project(x_adv + step_size * self._step(grad), x, self.norm, self.eps)
            x_next = project(x_adv + momentum * (z - x_adv) + (1 - momentum) * (x_adv - x_previous), x, self.norm, self.eps)
            x_previous, x_adv = x_adv, x_next

            loss, grad, correct = self._loss(x_adv, y)
            x_misclassified[~correct] = x_adv[~correct]
            robust &= correct
            increases += (loss > loss_history[-1]).float()
            loss_history.append(loss)
            improved = loss > loss_best
            x_best[improved], grad_best[improved], loss_best[improved] = x_adv[improved], grad[improved], loss[improved]

            if i + 1 == next_check:
                # Halve the step where the loss rose too rarely since the last checkpoint, or
                # where it neither improved nor had the step reduced last time; restart there from the best point.
                oscillating = increases <= self.rho * period
                stalled = ~reduced_at_check & (loss_best_at_check >= loss_best)
                reduce = oscillating | stalled
                step_size[reduce] /= 2
                x_adv[reduce], grad[reduce] = x_best[reduce], grad_best[reduce]
                reduced_at_check, loss_best_at_check = reduce, loss_best.clone()
                increases.zero_()
                period = max(period - period_decrease, period_min)
                next_check = i + 1 + period

        if self.keep == "misclassified":
            x_best = torch.where(robust.view(shape), x_best, x_misclassified)
        return x_best, robust
