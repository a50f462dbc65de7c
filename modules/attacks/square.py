"""Square Attack (Andriushchenko et al., ECCV 2020) in Linf, L2 and L1 (the L1 version from Croce & Hein,
"Mind the box: l1-APGD for sparse adversarial attacks on image classifiers", ICML 2021), as a
torchattacks-style attack.

A faithful port of the reference `SquareAttack` (fra31/auto-attack, packaged as `pyautoattack`),
untargeted with the margin loss, with the settings the standard AutoAttack gives it: `p_init` 0.8,
5,000 queries, one restart, no rescaling of the p schedule. Per norm:

- Linf: start from vertical stripes (a random sign per example, channel and column, times eps);
  each query adds 2 * eps times a random sign per channel on a window of side s (from the p
  schedule; window and signs the same for the whole batch), clipped back to the eps ball and the
  [0, 1] box;
- L2 and L1: start from a 5 x 5 grid of (h // 5)-sized windows, each filled per channel with a
  random sign times the "eta" pattern (two rectangles of opposite sign made of concentric rings,
  ring k weighted 1 / (k + 1)^2 in L2, 1 / (k + 1)^4 in L1); each query, a window of side s (odd,
  at least 3) gets the eta pattern with a random per-channel sign plus its old (normalised)
  content, rescaled per channel to the free budget plus the mass of it and of a second random
  window, which is zeroed; the result is mapped back to the eps sphere (L2) or projected onto the
  eps ball (L1), intersected with the box.

A candidate is kept if the margin decreased or the example is misclassified.

It avoids two defects of torchattacks' `Square`: it has no L1, and its L2 branch measures the mass
of the two windows over all channels at once (`lp_norm(delta_curr * mask_image)`) where the
reference takes one norm per channel (`window_mass` here), so the new window gets about 3x the mass
and the rest of the perturbation is shrunk.

Random draws are taken from a private CPU generator seeded with `seed`, in the reference's order, and
the arithmetic follows its order of operations and memory layouts (which decide float32 round-off), so
on CPU the run is the reference's run, bit for bit (the final `clip_to_ball` safety net may move a
coordinate by a float32 ulp), and the global RNG is left untouched. Only examples the model still
classifies correctly are attacked; it returns a misclassified point where one was found, the clean
image elsewhere.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from modules.attacks.base import RobustAttack
from modules.attacks.norms import NORMS, NormName, broadcast, clip_to_ball, l1_projection, lp_norm, normalize

WindowNorm = Literal["L2", "L1"]


def p_selection(p_init: float, it: int, n_queries: int, rescale_schedule: bool = False) -> float:
    """The reference schedule of the fraction p of pixels a window covers."""
    if rescale_schedule:
        it = int(it / n_queries * 10000)
    for bound, divisor in (
        (10, 1),
        (50, 2),
        (200, 4),
        (500, 8),
        (1000, 16),
        (2000, 32),
        (4000, 64),
        (6000, 128),
        (8000, 256),
    ):
        if it <= bound:
            return p_init / divisor
    return p_init / 512


def channel_norm(t: torch.Tensor, norm: WindowNorm) -> torch.Tensor:
    """The norm of each channel over its last two (spatial) dims, shape (..., 1, 1)."""
    if norm == "L2":
        return (t**2).sum(dim=(-2, -1), keepdim=True).sqrt()
    return t.abs().sum(dim=(-2, -1), keepdim=True)


def window_mass(delta_curr: torch.Tensor, mask_image: torch.Tensor, norm: WindowNorm) -> torch.Tensor:
    """The mass of the perturbation under the windows, one norm per example and channel, shape (n, c, 1, 1):
    the reference rescales each channel of the new window by its own channel's mass."""
    return channel_norm(delta_curr * mask_image, norm)


def _eta_rectangles(x: int, y: int, norm: WindowNorm) -> torch.Tensor:
    """An x-by-y rectangle of concentric rings, ring k weighted 1 / (k + 1)^2 (L2) or ^4 (L1), normalised."""
    power = 2 if norm == "L2" else 4
    delta = torch.zeros(x, y)
    x_c, y_c = x // 2 + 1, y // 2 + 1
    top, left = x_c - 1, y_c - 1
    for counter in range(max(x_c, y_c)):
        delta[max(top, 0) : min(top + 2 * counter + 1, x), max(0, left) : min(left + 2 * counter + 1, y)] += (
            1.0 / torch.tensor([[counter + 1.0]]) ** power
        )  # in float32, as the reference
        top, left = top - 1, left - 1
    return delta / channel_norm(delta, norm)


class Square(RobustAttack):
    """Untargeted Square Attack at radius `eps` in `norm`, margin loss, `n_queries` queries per restart."""

    def __init__(
        self,
        model: nn.Module,
        norm: NormName = "Linf",
        eps: float = 4 / 255,
        n_queries: int = 5000,
        p_init: float = 0.8,
        n_restarts: int = 1,
        seed: int = 0,
        rescale_schedule: bool = False,
    ) -> None:
        super().__init__("Square", model)
        if norm not in NORMS:
            raise ValueError(f"Square: unknown norm {norm!r}, choose one of {NORMS}")
        self.norm: NormName = norm
        self.eps, self.n_queries, self.p_init = float(eps), int(n_queries), float(p_init)
        self.n_restarts, self.seed, self.rescale_schedule = int(n_restarts), int(seed), bool(rescale_schedule)
        self.supported_mode = ["default"]

    # --- the reference's random primitives, on a private generator -------------------------------
    def _rand(self, shape: list[int]) -> torch.Tensor:
        """Drawn on the CPU, as the reference draws; scalars stay there (no device synchronisation)."""
        return torch.rand(shape, generator=self._generator)

    def _random_choice(self, shape: list[int]) -> torch.Tensor:
        return torch.sign(2 * self._rand(shape) - 1).to(self._device)

    def _random_int(self, low: int, high: int) -> int:
        return int((low + (high - low) * self._rand([1])).long())

    def _eta(self, s: int) -> torch.Tensor:
        """The s-by-s window pattern: two rectangles of opposite sign, randomly transposed."""
        delta = torch.zeros(s, s)
        delta[: s // 2] = _eta_rectangles(s // 2, s, self.norm)
        delta[s // 2 :] = -1.0 * _eta_rectangles(s - s // 2, s, self.norm)
        delta = delta / channel_norm(delta, self.norm)
        if self._rand([1]) > 0.5:
            delta = delta.permute(1, 0)
        return delta.to(self._device)

    def _margin(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.get_logits(x).float()
        u = torch.arange(len(y), device=y.device)
        y_corr = logits[u, y].clone()
        logits[u, y] = -float("inf")
        return y_corr - logits.max(dim=-1).values

    def _window_side(self, i_iter: int, n_features: int, c: int, h: int, w: int) -> int:
        p = p_selection(self.p_init, i_iter, self.n_queries, self.rescale_schedule)
        if self.norm == "Linf":
            return min(max(int(round(math.sqrt(p * n_features / c))), 1), h, w)
        s = max(int(round(math.sqrt(p * n_features / c))), 3)
        return min(s + 1 if s % 2 == 0 else s, h, w)

    def _to_ball(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """x + delta mapped into the ball and the box as the reference does: scaled to the eps sphere
        and clipped (L2), projected onto the L1 ball of a radius just under eps and the box (L1)."""
        if self.norm == "L2":
            return torch.clamp(x + normalize(delta, "L2") * self.eps, 0.0, 1.0)
        return x + delta + l1_projection(x, delta, self.eps * (1.0 - 1e-6))

    # --- the starting point and the candidates ---------------------------------------------------
    def _init(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.norm == "Linf":
            return torch.clamp(x + self.eps * self._random_choice([n, c, 1, w]), 0.0, 1.0)
        s = h // 5
        if s == 0:
            raise ValueError(f"Square in {self.norm} needs images of at least 5 x 5 pixels, got {h} x {w}")
        delta_init = torch.zeros_like(x)
        vh = (h - s * 5) // 2
        for _ in range(h // s):
            vw = (h - s * 5) // 2  # sic: the reference offsets the columns by the rows' margin
            for _ in range(w // s):
                delta_init[:, :, vh : vh + s, vw : vw + s] += self._eta(s).view(1, 1, s, s) * self._random_choice(
                    [n, c, 1, 1]
                )
                vw += s
            vh += s
        return self._to_ball(x, delta_init)

    def _linf_candidate(self, x_curr: torch.Tensor, x_best_curr: torch.Tensor, s: int) -> torch.Tensor:
        c, h, w = x_curr.shape[1:]
        vh, vw = self._random_int(0, h - s), self._random_int(0, w - s)
        new_deltas = torch.zeros(c, h, w, device=x_curr.device)
        new_deltas[:, vh : vh + s, vw : vw + s] = 2.0 * self.eps * self._random_choice([c, 1, 1])
        x_new = torch.minimum(torch.maximum(x_best_curr + new_deltas, x_curr - self.eps), x_curr + self.eps)
        return torch.clamp(x_new, 0.0, 1.0)

    def _window_candidate(self, x_curr: torch.Tensor, x_best_curr: torch.Tensor, s: int) -> torch.Tensor:
        n, c, h, w = x_curr.shape
        norm: WindowNorm = "L2" if self.norm == "L2" else "L1"
        delta_curr = x_best_curr - x_curr

        vh, vw = self._random_int(0, h - s), self._random_int(0, w - s)
        mask = torch.zeros_like(x_curr)
        mask[:, :, vh : vh + s, vw : vw + s] = 1.0
        norms_window_1 = channel_norm(delta_curr[:, :, vh : vh + s, vw : vw + s], norm)

        vh2, vw2 = self._random_int(0, h - s), self._random_int(0, w - s)
        mask_2 = torch.zeros_like(x_curr)
        mask_2[:, :, vh2 : vh2 + s, vw2 : vw2 + s] = 1.0

        norms_image = broadcast(lp_norm(delta_curr, norm), x_curr)
        norms_windows = window_mass(delta_curr, torch.maximum(mask, mask_2), norm)

        # filled in place in a contiguous tensor as the reference: a transposed eta would give the sums below
        # another memory layout, hence another order of summation and other round-off
        new_deltas = torch.ones(n, c, s, s, device=x_curr.device)
        new_deltas *= self._eta(s).view(1, 1, s, s) * self._random_choice([n, c, 1, 1])
        new_deltas += delta_curr[:, :, vh : vh + s, vw : vw + s] / (1e-12 + norms_window_1)
        # each channel gets an equal share of the free budget plus its windows' old mass (in L1, times c: the
        # reference's; multiplied last, in its order of operations, for the same round-off)
        eps = torch.full_like(norms_image, self.eps)
        new_deltas = new_deltas / (1e-12 + channel_norm(new_deltas, norm))
        if norm == "L2":
            new_deltas = new_deltas * (torch.clamp(eps**2 - norms_image**2, min=0.0) / c + norms_windows**2).sqrt()
        else:
            new_deltas = new_deltas * (torch.clamp(eps - norms_image, min=0.0) / c + norms_windows) * c
        delta_curr[:, :, vh2 : vh2 + s, vw2 : vw2 + s] = 0.0
        delta_curr[:, :, vh : vh + s, vw : vw + s] = new_deltas
        return self._to_ball(x_curr, delta_curr)

    # --- one run ----------------------------------------------------------------------------------
    def _single_run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        x_best = self._init(x)
        margin_min = self._margin(x_best, y)
        if (margin_min < 0).all():
            return x_best

        for i_iter in range(self.n_queries):
            idx = (margin_min > 0).nonzero().flatten()
            x_curr, x_best_curr, y_curr = x[idx], x_best[idx], y[idx]
            margin_min_curr = margin_min[idx]

            s = self._window_side(i_iter, c * h * w, c, h, w)
            if self.norm == "Linf":
                x_new = self._linf_candidate(x_curr, x_best_curr, s)
            else:
                x_new = self._window_candidate(x_curr, x_best_curr, s)
            margin = self._margin(x_new, y_curr)

            # keep the candidate if the margin (= the loss) decreased or the example is misclassified
            improved = (margin < margin_min_curr) | (margin <= 0)
            margin_min[idx] = torch.where(improved, margin, margin_min_curr)
            x_best[idx] = torch.where(improved.view(-1, 1, 1, 1), x_new, x_best_curr)

            if (margin_min <= 0).all():
                break
        return x_best

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.eps == 0 or len(images) == 0:
            return images.detach().clone()
        x, y = images.detach().float(), labels.detach().long()
        adversarial = x.clone()
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
        return clip_to_ball(adversarial, x, self.norm, self.eps).to(images.dtype)
