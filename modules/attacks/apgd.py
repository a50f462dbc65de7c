"""Auto-PGD (Croce & Hein, ICML 2020; L1: "Mind the box", ICML 2021) in Linf, L2 and L1, with
the untargeted cross-entropy loss (APGD-CE) or the targeted DLR loss (APGD-T): one loop.

A port of the reference's `APGDAttack` / `APGDAttack_targeted` (fra31/auto-attack, packaged as
`pyautoattack`): the same step-size schedule (checkpoints, oscillation test, restarts from the best
point), momentum 0.75 in Linf and L2, the sparse step with adaptive sparsity in L1, the large-eps
schedule of the standard L1 AutoAttack, and random draws from a private generator in the
reference's order (so that on a CPU a run follows the reference's run). Written here because
torchattacks' APGD only attacks correctly classified examples and always starts from noise
(training needs every example attacked, from the clean image in the paper's setting), its APGD-T
moves every example in L2 by example 0's step size, and neither has L1.

`keep="max_loss"` (training) returns each example's highest-loss iterate over all runs;
`keep="misclassified"` (evaluation) attacks only the examples not yet misclassified, run after
run, and returns a misclassified point where one was found and the clean image elsewhere.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from modules.attacks.base import RobustAttack
from modules.attacks.norms import NORMS, NormName, broadcast, clip_to_ball, l1_projection, normalize, project

Loss = Literal["ce", "dlr-targeted"]
Keep = Literal["max_loss", "misclassified"]


def dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The targeted difference-of-logits-ratio loss (needs at least 4 classes)."""
    ordered = logits.sort(dim=1).values
    u = torch.arange(len(y), device=y.device)
    return -(logits[u, y] - logits[u, target]) / (ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + 1e-12)


class APGD(RobustAttack):
    """APGD at radius `eps` in `norm`.

    Args:
        steps: iterations per run (the standard AutoAttack: 100).
        random_start: start the first run from random noise (the reference always does; the
            paper's training attack does not). Later runs always start from noise, or they
            would repeat the first.
        restarts: runs per example (per target class for APGD-T).
        keep: "max_loss" (training) or "misclassified" (evaluation), see the module docstring.
        step_size: the initial step (default: 2 eps in Linf and L2, eps in L1), which APGD adapts.
        loss: "ce" or "dlr-targeted" (one run per target among the `n_target_classes` most likely
            wrong classes).
        use_largereps: the L1 schedule of the standard AutoAttack (30% of the steps at 3 eps, 30% at
            2 eps, 40% at eps, from noise); only points found at eps count.
    """

    def __init__(
        self,
        model: nn.Module,
        norm: NormName = "Linf",
        eps: float = 4 / 255,
        steps: int = 10,
        random_start: bool = False,
        restarts: int = 1,
        keep: Keep = "max_loss",
        step_size: float | None = None,
        loss: Loss = "ce",
        n_target_classes: int = 9,
        use_largereps: bool = False,
        rho: float = 0.75,
        seed: int = 0,
    ) -> None:
        super().__init__("APGD" if loss == "ce" else "APGDT", model)
        if norm not in NORMS:
            raise ValueError(f"APGD norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if loss not in ("ce", "dlr-targeted"):
            raise ValueError(f"APGD loss must be 'ce' or 'dlr-targeted', got {loss!r}")
        self.norm, self.eps, self.steps, self.loss = norm, float(eps), int(steps), loss
        self.random_start, self.restarts, self.keep = random_start, max(int(restarts), 1), keep
        self.step_size = None if step_size is None else float(step_size)
        self.n_target_classes, self.use_largereps = int(n_target_classes), use_largereps and norm == "L1"
        self.rho, self.seed = rho, seed
        self.supported_mode = ["default"]

    # --- one run (the reference's `attack_single_run`) ------------------------------------------
    def _loss_grad(self, x_adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
        x_adv = x_adv.detach().requires_grad_(True)
        logits = self.get_logits(x_adv).float()
        loss = F.cross_entropy(logits, y, reduction="none") if target is None else dlr_targeted(logits, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), [x_adv])
        return loss.detach(), torch.nan_to_num(grad.detach().float()), logits.detach().argmax(1) == y

    def _start(self, x, eps: float, x_init, random: bool, generator) -> torch.Tensor:
        """The reference's random start, drawn on the CPU as the reference draws it (always, to keep its
        order of draws) and moved to the device only when used."""
        shape = x.shape
        if self.norm == "Linf":
            t = 2 * torch.rand(shape, generator=generator) - 1
        else:
            t = torch.randn(shape, generator=generator)
        if x_init is not None:
            start = x_init.clone()
        elif not random:
            start = x.clone()
        elif self.norm == "L1":
            t = t.to(x.device)
            start = x + t + l1_projection(x, t, eps)
        else:
            start = x + eps * normalize(t.to(x.device), self.norm)
        return start.clamp(0.0, 1.0)

    def _single_run(self, x, y, target, eps: float, steps: int, x_adv: torch.Tensor, resumed: bool):
        """From the start `x_adv` (`resumed`: an earlier stage's point): (highest-loss point, still robust,
        its loss, a misclassified point where found). No host synchronisation: masks, not indexing."""
        n, n_fts = len(x), x[0].numel()
        loss, grad, robust = self._loss_grad(x_adv, y, target)
        x_best, x_best_adv, grad_best, loss_best = x_adv.clone(), x_adv.clone(), grad.clone(), loss.clone()
        alpha = 1.0 if self.norm == "L1" else 2.0
        initial = alpha * eps if self.step_size is None else self.step_size
        step_size = torch.full((n,), initial, device=x.device)
        if self.norm == "L1":
            period = max(int(0.04 * steps), 1)
            sparsity = (
                ((x_adv - x) != 0).flatten(1).sum(1).float()
                if resumed
                else torch.full((n,), float(n_fts), device=x.device)
            )
            topk = sparsity / n_fts / 1.5 if resumed else torch.full((n,), 0.2, device=x.device)
        else:
            period = max(int(0.22 * self.steps), 1)
            period_min, period_decrease = max(int(0.06 * self.steps), 1), max(int(0.03 * self.steps), 1)
        loss_steps = torch.zeros(steps, n, device=x.device)  # the reference's history, zeros not yet written
        loss_best_at_check, reduced_at_check = loss_best.clone(), torch.ones(n, dtype=torch.bool, device=x.device)
        x_previous, counter = x_adv.clone(), 0
        u = torch.arange(n, device=x.device)

        for i in range(steps):
            with torch.no_grad():
                if self.norm == "L1":
                    magnitude = grad.abs().flatten(1).sort(-1).values
                    index = torch.clamp((1.0 - topk) * n_fts, min=0, max=n_fts - 1).long()
                    sparse = grad * (grad.abs() >= broadcast(magnitude[u, index], x)).float()
                    direction = sparse.sign() / (broadcast(sparse.sign().abs().flatten(1).sum(1), x) + 1e-10)
                    x_next = project(x_adv + broadcast(step_size, x) * direction, x, "L1", eps)
                else:
                    a = 0.75 if i > 0 else 1.0
                    direction = grad.sign() if self.norm == "Linf" else normalize(grad, "L2")
                    z = project(x_adv + broadcast(step_size, x) * direction, x, self.norm, eps)
                    x_next = project(x_adv + (z - x_adv) * a + (x_adv - x_previous) * (1 - a), x, self.norm, eps)
                x_previous, x_adv = x_adv, x_next

            loss, grad, correct = self._loss_grad(x_adv, y, target)
            robust &= correct
            x_best_adv = torch.where(broadcast(~correct, x), x_adv, x_best_adv)
            loss_steps[i] = loss
            improved = loss > loss_best
            x_best = torch.where(broadcast(improved, x), x_adv, x_best)
            grad_best = torch.where(broadcast(improved, x), grad, grad_best)
            loss_best = torch.where(improved, loss, loss_best)

            counter += 1
            if counter < period:
                continue
            counter = 0
            if self.norm == "L1":
                # Reset to the best point with a full step where the sparsity fell, else shrink the step.
                sparsity_now = ((x_best - x) != 0).flatten(1).sum(1).float()
                reduce = sparsity_now / sparsity < 0.95
                topk, sparsity = sparsity_now / n_fts / 1.5, sparsity_now
                step_size = torch.where(reduce, torch.full_like(step_size, alpha * eps), step_size / 1.5)
                step_size = step_size.clamp(alpha * eps / 10.0, alpha * eps)
            else:
                # Halve the step where the loss rose too rarely in the last `period` steps (compared
                # as the reference does, with not-yet-written history as zeros), or where it neither
                # improved nor had the step halved at the last check; restart there from the best point.
                rises = sum((loss_steps[i - c] > loss_steps[i - c - 1]).float() for c in range(period))
                reduce = (rises <= period * self.rho) | (~reduced_at_check & (loss_best_at_check >= loss_best))
                reduced_at_check, loss_best_at_check = reduce, loss_best.clone()
                step_size = torch.where(reduce, step_size / 2, step_size)
                period = max(period - period_decrease, period_min)
            x_adv = torch.where(broadcast(reduce, x), x_best, x_adv)
            grad = torch.where(broadcast(reduce, x), grad_best, grad)
        return x_best, robust, loss_best, x_best_adv

    def _run(self, x, y, target, random: bool, generator):
        """One run, or for L1 with `use_largereps` the reference's `decr_eps_pgd` schedule."""
        if not self.use_largereps:
            start = self._start(x, self.eps, None, random, generator)
            return self._single_run(x, y, target, self.eps, self.steps, start, resumed=False)
        epss = [3 * self.eps, 2 * self.eps, self.eps]
        iters = [math.ceil(0.3 * self.steps), math.ceil(0.3 * self.steps)]
        iters.append(self.steps - sum(iters))
        x_init = x + torch.randn(x.shape, generator=generator).to(x.device)
        x_init = x_init + l1_projection(x, x_init - x, epss[0])
        for eps, steps in zip(epss, iters):
            x_init = x_init + l1_projection(x, x_init - x, eps)
            start = self._start(x, eps, x_init, random, generator)
            x_init, robust, loss, adv = self._single_run(x, y, target, eps, steps, start, resumed=True)
        return x_init, robust, loss, adv

    def _targets(self, x: torch.Tensor) -> list[int | None]:
        if self.loss == "ce":
            return [None] * self.restarts
        with torch.no_grad():
            classes = self.get_logits(x[:1]).shape[1]
        if classes < 4:
            raise ValueError(f"APGD-T's targeted DLR loss reads the 4 largest logits; the model has {classes} classes")
        return [rank for rank in range(2, min(self.n_target_classes, classes - 1) + 2) for _ in range(self.restarts)]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y = images.detach(), labels
        if self.eps == 0 or self.steps == 0 or len(x) == 0:
            return x.clone()
        generator = torch.Generator().manual_seed(self.seed)
        if self.keep == "max_loss":
            return self._max_loss(x, y, generator)
        adversarial = x.clone()
        with torch.no_grad():
            robust = self.get_logits(x).argmax(1) == y
        for run, target_rank in enumerate(self._targets(x)):
            index = robust.nonzero().flatten()
            if len(index) == 0:
                break
            target = self._target(x[index], target_rank)
            _, still, _, adv = self._run(x[index], y[index], target, self.random_start or run > 0, generator)
            broken = index[~still]
            adversarial[broken] = adv[~still]
            robust[broken] = False
        return clip_to_ball(adversarial, x, self.norm, self.eps)

    def _max_loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        best, best_loss = x.clone(), torch.full((len(x),), -float("inf"), device=x.device)
        for run, target_rank in enumerate(self._targets(x)):
            target = self._target(x, target_rank)
            x_best, _, loss, _ = self._run(x, y, target, self.random_start or run > 0, generator)
            better = loss > best_loss
            best, best_loss = torch.where(broadcast(better, x), x_best, best), torch.where(better, loss, best_loss)
        return clip_to_ball(best, x, self.norm, self.eps)

    def _target(self, x: torch.Tensor, rank: int | None) -> torch.Tensor | None:
        """The `rank`-th most likely class at the clean image (2: the most likely wrong one, mostly)."""
        if rank is None:
            return None
        with torch.no_grad():
            return self.get_logits(x).sort(dim=1).indices[:, -rank]
