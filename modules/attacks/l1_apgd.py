"""L1-APGD (Croce & Hein, "Mind the box: l1-APGD for sparse adversarial attacks on image
classifiers", ICML 2021), untargeted cross-entropy and targeted DLR, as a torchattacks-style attack.

Ported from the reference AutoAttack (fra31/auto-attack, packaged as `pyautoattack`):
the L1 projection onto the ball intersected with the [0, 1] box, the sparse step on the
top-k gradient coordinates with an adaptive sparsity and step size, and the "large eps"
schedule of the standard L1 AutoAttack (30% of the steps at 3 eps, 30% at 2 eps, 40% at eps,
from a random start). Only adversarial examples found at the target eps count.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from modules.attacks.base import RobustAttack

Loss = Literal["ce", "dlr-targeted"]


def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def l1_norm(t: torch.Tensor) -> torch.Tensor:
    return t.abs().flatten(1).sum(1)


def l1_projection(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The correction `d` such that ||y + d||_1 <= eps and 0 <= x + y + d <= 1 (the reference's
    `L1_projection`: an exact projection onto the L1 ball intersected with the box, by bisection
    over the sorted breakpoints)."""
    shape = x.shape
    x, y = x.float().flatten(1), y.float().flatten(1)
    sigma = y.sign()
    u = torch.minimum(torch.zeros_like(y), torch.minimum(1 - x - y, x + y))
    lower = -y.abs()
    d = u.clone()
    bs, order = torch.sort(-torch.cat((u, lower), 1), dim=1)
    bs2 = torch.cat((bs[:, 1:], torch.zeros(bs.shape[0], 1, device=bs.device)), 1)
    inu = 2 * (order < u.shape[1]).float() - 1
    size1 = inu.cumsum(dim=1)
    s1 = -u.sum(dim=1)
    c = eps - y.abs().sum(dim=1)
    rows = (s1 + c < 0).nonzero().squeeze(1)
    s = s1.unsqueeze(-1) + torch.cumsum((bs2 - bs) * size1, dim=1)
    if rows.numel():
        lb = torch.zeros(len(rows), device=x.device)
        ub = torch.full_like(lb, bs.shape[1] - 1)
        for _ in range(math.ceil(math.log2(bs.shape[1]))):
            mid = torch.floor((lb + ub) / 2)
            below = s[rows, mid.long()] + c[rows] < 0
            lb = torch.where(below, mid, lb)
            ub = torch.where(below, ub, mid)
        lb2 = lb.long()
        alpha = (-s[rows, lb2] - c[rows]) / size1[rows, lb2 + 1] + bs2[rows, lb2]
        d[rows] = -torch.minimum(torch.maximum(-u[rows], alpha.unsqueeze(-1)), -lower[rows])
    return (sigma * d).view(shape)


def dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ordered = logits.sort(dim=1).values
    u = torch.arange(len(y), device=y.device)
    return -(logits[u, y] - logits[u, target]) / (ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + 1e-12)


class L1APGD(RobustAttack):
    """APGD in the L1 ball (radius `eps`) intersected with [0, 1].

    loss="ce": APGD-CE with `restarts` restarts (standard L1 AutoAttack: 5);
    loss="dlr-targeted": APGD-T, one run per target class among the `n_target_classes` most
    likely wrong classes (standard L1 AutoAttack: 5). Restarts and targets only attack the
    examples not yet misclassified. Returns a misclassified point where one was found, the
    clean image elsewhere (evaluation semantics, as the reference).
    """

    def __init__(self, model: nn.Module, eps: float = 75.0, steps: int = 100, restarts: int = 5,
                 loss: Loss = "ce", n_target_classes: int = 5, use_largereps: bool = True, seed: int = 0) -> None:
        super().__init__("L1APGD" if loss == "ce" else "L1APGDT", model)
        if loss not in ("ce", "dlr-targeted"):
            raise ValueError(f"L1APGD loss must be 'ce' or 'dlr-targeted', got {loss!r}")
        self.eps, self.steps, self.restarts, self.loss = float(eps), int(steps), int(restarts), loss
        self.n_target_classes, self.use_largereps, self.seed = int(n_target_classes), use_largereps, seed
        self.supported_mode = ["default"]

    # --- one run ---------------------------------------------------------------------------------
    def _loss_grad(self, x_adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
        x_adv = x_adv.detach().requires_grad_(True)
        logits = self.get_logits(x_adv).float()
        loss = F.cross_entropy(logits, y, reduction="none") if target is None else dlr_targeted(logits, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), [x_adv])
        return loss.detach(), torch.nan_to_num(grad.detach().float()), logits.detach().argmax(1) == y

    def _single_run(self, x, y, target, eps: float, steps: int, x_init: torch.Tensor | None, generator):
        n, n_fts = len(x), x[0].numel()
        if x_init is None:
            t = torch.randn(x.shape, generator=generator, device=x.device)
            x_adv = x + t + l1_projection(x, t, eps)
        else:
            x_adv = x_init.clone()
        x_adv = x_adv.clamp(0, 1)
        x_best, x_best_adv = x_adv.clone(), x_adv.clone()
        loss, grad, acc = self._loss_grad(x_adv, y, target)
        grad_best, loss_best = grad.clone(), loss.clone()
        alpha = 1.0
        step_size = torch.full((n,), alpha * eps, device=x.device)
        k = max(int(0.04 * steps), 1)
        if x_init is None:
            topk = torch.full((n,), 0.2, device=x.device)
            sp_old = torch.full((n,), float(n_fts), device=x.device)
        else:
            sp_old = ((x_adv - x) != 0).flatten(1).sum(1).float()
            topk = sp_old / n_fts / 1.5
        counter = 0
        x_adv_old = x_adv.clone()
        u = torch.arange(n, device=x.device)
        for i in range(steps):
            with torch.no_grad():
                x_adv_old = x_adv.clone()
                flat = grad.abs().flatten(1).sort(-1).values
                index = torch.clamp((1.0 - topk) * n_fts, min=0, max=n_fts - 1).long()
                threshold = _view(flat[u, index], x)
                sparse = grad * (grad.abs() >= threshold).float()
                sign = sparse.sign()
                x_step = x_adv + _view(step_size, x) * sign / (_view(l1_norm(sign), x) + 1e-10)
                delta_u = x_step - x
                x_adv = x + delta_u + l1_projection(x, delta_u, eps)
            loss, grad, pred = self._loss_grad(x_adv, y, target)
            acc = acc & pred
            x_best_adv[~pred] = x_adv[~pred]
            improved = loss > loss_best
            x_best[improved], grad_best[improved], loss_best[improved] = x_adv[improved], grad[improved], loss[improved]
            counter += 1
            if counter == k:
                sp_curr = ((x_best - x) != 0).flatten(1).sum(1).float()
                reduce_topk = (sp_curr / sp_old) < 0.95
                topk = sp_curr / n_fts / 1.5
                step_size = torch.where(reduce_topk, torch.full_like(step_size, alpha * eps), step_size / 1.5)
                step_size = step_size.clamp(alpha * eps / 10.0, alpha * eps)
                sp_old = sp_curr
                x_adv[reduce_topk], grad[reduce_topk] = x_best[reduce_topk], grad_best[reduce_topk]
                counter = 0
        del x_adv_old
        return x_best, acc, x_best_adv

    def _run(self, x, y, target, generator):
        if not self.use_largereps:
            _, acc, adv = self._single_run(x, y, target, self.eps, self.steps, None, generator)
            return acc, adv
        epss = [3 * self.eps, 2 * self.eps, self.eps]
        iters = [math.ceil(0.3 * self.steps), math.ceil(0.3 * self.steps)]
        iters.append(self.steps - sum(iters))
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        x_init = x + noise
        x_init = x_init + l1_projection(x, x_init - x, epss[0])
        for eps, steps in zip(epss, iters):
            x_init = x_init + l1_projection(x, x_init - x, eps)
            x_init, acc, adv = self._single_run(x, y, target, eps, steps, x_init, generator)
        return acc, adv

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y = images.detach().float(), labels
        adversarial = x.clone()
        if self.eps == 0 or self.steps == 0 or len(x) == 0:
            return adversarial
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        with torch.no_grad():
            logits = self.get_logits(x)
        robust = logits.argmax(1) == y
        if self.loss == "ce":
            runs = [None] * self.restarts
        else:
            runs = list(range(2, min(self.n_target_classes, logits.shape[1] - 1) + 2))
        for target_rank in runs:
            index = robust.nonzero().flatten()
            if len(index) == 0:
                break
            target = None
            if target_rank is not None:
                with torch.no_grad():
                    target = self.get_logits(x[index]).sort(dim=1).indices[:, -target_rank]
            acc, adv = self._run(x[index], y[index], target, generator)
            broken = index[~acc]
            adversarial[broken] = adv[~acc]
            robust[broken] = False
        return clip_l1(adversarial, x, self.eps)


def clip_l1(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """A safety net against float round-off: shrink any perturbation whose L1 norm exceeds eps
    (shrinking towards x keeps the point in [0, 1])."""
    delta = x_adv - x
    norm = _view(l1_norm(delta), x)
    return (x + delta * torch.clamp(eps / (norm + 1e-12), max=1.0)).clamp(0, 1)
