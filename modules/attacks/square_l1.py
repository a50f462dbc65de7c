"""Square Attack in L1 (Andriushchenko et al., ECCV 2020; L1 version from Croce & Hein, "Mind the
box: l1-APGD for sparse adversarial attacks on image classifiers", ICML 2021), as a
torchattacks-style attack. torchattacks' `Square` has only Linf and L2.

Ported from the `norm == 'L1'` branches of the reference `SquareAttack` (fra31/auto-attack,
packaged as `pyautoattack`), with the settings the standard AutoAttack gives it: margin loss,
`p_init` 0.8, 5,000 queries, one restart, no rescaling of the p schedule. The algorithm:

- start: a 5 x 5 grid of (h // 5)-sized windows, each filled per channel with a random sign times
  the L1 "eta" pattern (two rectangles of opposite sign, mass decaying as 1 / (ring + 1)^4),
  projected onto the L1 ball of radius eps intersected with the [0, 1] box;
- each query: a window of side s (from the p schedule; odd, at least 3) gets the eta pattern with
  a random per-channel sign plus its old (normalised) content, rescaled to the free budget plus
  the mass of it and of a second random window, which is zeroed; the result is projected back
  onto the L1 ball and the box; the candidate is kept if the margin decreased or the example is
  misclassified.

Random draws are taken from a private CPU generator seeded with `seed`, in the reference's order,
so on CPU the run is the reference's run (and the global RNG is left untouched). Only examples
the model still classifies correctly are attacked; it returns a misclassified point where one
was found, the clean image elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from modules.attacks.base import RobustAttack
from modules.attacks.l1_apgd import clip_l1, l1_norm, l1_projection


def p_selection(p_init: float, it: int, n_queries: int, rescale_schedule: bool = False) -> float:
    """The reference schedule of the fraction p of pixels a window covers."""
    if rescale_schedule:
        it = int(it / n_queries * 10000)
    for bound, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
                           (6000, 128), (8000, 256)):
        if it <= bound:
            return p_init / divisor
    return p_init / 512


def _eta_rectangles(x: int, y: int) -> torch.Tensor:
    """An x-by-y rectangle of concentric rings, ring k weighted 1 / (k + 1)^4, L1-normalised."""
    delta = torch.zeros(x, y)
    x_c, y_c = x // 2 + 1, y // 2 + 1
    top, left = x_c - 1, y_c - 1
    for counter in range(max(x_c, y_c)):
        delta[max(top, 0):min(top + 2 * counter + 1, x), max(0, left):min(left + 2 * counter + 1, y)] += \
            1.0 / torch.tensor([[counter + 1.0]]) ** 4  # in float32, as the reference
        top, left = top - 1, left - 1
    return delta / delta.abs().sum()


class SquareL1(RobustAttack):
    """Untargeted Square Attack in L1 at radius `eps`, margin loss, `n_queries` queries per restart."""

    def __init__(self, model: nn.Module, eps: float = 12.0, n_queries: int = 5000, p_init: float = 0.8,
                 n_restarts: int = 1, seed: int = 0, rescale_schedule: bool = False) -> None:
        super().__init__("SquareL1", model)
        self.eps, self.n_queries, self.p_init = float(eps), int(n_queries), float(p_init)
        self.n_restarts, self.seed, self.rescale_schedule = int(n_restarts), int(seed), bool(rescale_schedule)
        self.supported_mode = ["default"]

    # --- the reference's random primitives, on a private generator -------------------------------
    def _rand(self, shape) -> torch.Tensor:
        return torch.rand(shape, generator=self._generator).to(self._device)

    def _random_choice(self, shape) -> torch.Tensor:
        return torch.sign(2 * self._rand(shape) - 1)

    def _random_int(self, low: int, high: int) -> int:
        return int((low + (high - low) * self._rand([1])).long())

    def _eta(self, s: int) -> torch.Tensor:
        delta = torch.zeros(s, s)
        delta[:s // 2] = _eta_rectangles(s // 2, s)
        delta[s // 2:] = -1.0 * _eta_rectangles(s - s // 2, s)
        delta = delta / delta.abs().sum()
        if self._rand([1]) > 0.5:
            delta = delta.permute(1, 0)
        return delta.to(self._device)

    def _margin(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.get_logits(x).float()
        u = torch.arange(len(y), device=y.device)
        y_corr = logits[u, y].clone()
        logits[u, y] = -float("inf")
        return y_corr - logits.max(dim=-1).values

    def _project(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return x + delta + l1_projection(x, delta, self.eps * (1.0 - 1e-6))

    # --- one run ----------------------------------------------------------------------------------
    def _single_run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        n_features = c * h * w

        s = h // 5
        if s == 0:
            raise ValueError(f"SquareL1 needs images of at least 5 x 5 pixels, got {h} x {w}")
        delta_init = torch.zeros_like(x)
        vh = (h - s * 5) // 2
        for _ in range(h // s):
            vw = (h - s * 5) // 2
            for _ in range(w // s):
                delta_init[:, :, vh:vh + s, vw:vw + s] += (self._eta(s).view(1, 1, s, s)
                                                           * self._random_choice([len(x), c, 1, 1]))
                vw += s
            vh += s
        x_best = self._project(x, delta_init)
        margin_min = self._margin(x_best, y)
        if (margin_min < 0).all():
            return x_best

        for i_iter in range(self.n_queries):
            idx = (margin_min > 0).nonzero().flatten()
            x_curr, x_best_curr, y_curr = x[idx], x_best[idx], y[idx]
            margin_min_curr = margin_min[idx]
            n = len(idx)

            delta_curr = x_best_curr - x_curr
            p = p_selection(self.p_init, i_iter, self.n_queries, self.rescale_schedule)
            s = max(int(round(math.sqrt(p * n_features / c))), 3)
            if s % 2 == 0:
                s += 1
            s = min(s, min(h, w))

            vh, vw = self._random_int(0, h - s), self._random_int(0, w - s)
            mask = torch.zeros_like(x_curr)
            mask[:, :, vh:vh + s, vw:vw + s] = 1.0
            norms_window_1 = delta_curr[:, :, vh:vh + s, vw:vw + s].abs().sum(dim=(-2, -1), keepdim=True)

            vh2, vw2 = self._random_int(0, h - s), self._random_int(0, w - s)
            mask_2 = torch.zeros_like(x_curr)
            mask_2[:, :, vh2:vh2 + s, vw2:vw2 + s] = 1.0

            norms_image = l1_norm(x_best_curr - x_curr).view(-1, 1, 1, 1)
            norms_windows = (delta_curr * torch.maximum(mask, mask_2)).abs().sum(dim=(-2, -1), keepdim=True)

            new_deltas = torch.ones(n, c, s, s, device=x.device)
            new_deltas *= self._eta(s).view(1, 1, s, s) * self._random_choice([n, c, 1, 1])
            new_deltas += delta_curr[:, :, vh:vh + s, vw:vw + s] / (1e-12 + norms_window_1)
            new_deltas = (new_deltas / (1e-12 + new_deltas.abs().sum(dim=(-2, -1), keepdim=True))
                          * (torch.clamp(self.eps - norms_image, min=0) / c + norms_windows) * c)
            delta_curr[:, :, vh2:vh2 + s, vw2:vw2 + s] = 0.0
            delta_curr[:, :, vh:vh + s, vw:vw + s] = new_deltas

            x_new = self._project(x_curr, delta_curr)
            margin = self._margin(x_new, y_curr)

            # keep the candidate if the margin (= the loss) decreased or the example is misclassified
            improved = (margin < margin_min_curr) | (margin <= 0)
            margin_min[idx] = torch.where(improved, margin, margin_min_curr)
            x_best[idx] = torch.where(improved.view(-1, 1, 1, 1), x_new, x_best_curr)

            if (margin_min <= 0).all():
                break
        return x_best

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y = images.detach().float(), labels.detach().long()
        adversarial = x.clone()
        if self.eps == 0 or self.n_queries == 0 or len(x) == 0:
            return adversarial
        self._device = x.device
        self._generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            robust = self.get_logits(x).argmax(1) == y
            for _ in range(self.n_restarts):
                index = robust.nonzero().flatten()
                if len(index) == 0:
                    break
                adv = self._single_run(x[index], y[index])
                broken = self.get_logits(adv).argmax(1) != y[index]
                adversarial[index[broken]] = adv[broken]
                robust[index[broken]] = False
        return clip_l1(adversarial, x, self.eps).to(images.dtype)
