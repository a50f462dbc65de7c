"""The threat models: norms of perturbations, and projection onto the eps ball intersected with [0, 1].

One place for what every attack must guarantee; the arithmetic follows the reference AutoAttack
(fra31/auto-attack, packaged as `pyautoattack`) so that ported attacks follow its trajectories.
"""

from __future__ import annotations

import math

import torch

from modules.registry import ConfigError
from modules.vocabulary import Norm, NormName

NORMS: tuple[str, ...] = tuple(norm.value for norm in Norm)


def check_eps(name: str, value: object) -> float:
    """A radius from the user: a number >= 0 (not a bool, not NaN), or one ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r} ({type(value).__name__})")
    return float(value)


def broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor viewed as (B, 1, 1, ...) to broadcast against `like`."""
    return t.view(-1, *([1] * (like.dim() - 1)))


def lp_norm(t: torch.Tensor, norm: NormName) -> torch.Tensor:
    """Each example's norm, shape (B,)."""
    flat = t.flatten(1)
    if norm == "Linf":
        return flat.abs().amax(1)
    if norm == "L2":
        return (flat**2).sum(1).sqrt()
    return flat.abs().sum(1)


def normalize(t: torch.Tensor, norm: NormName) -> torch.Tensor:
    """Each example divided by its norm (the reference's `normalize`)."""
    return t / (broadcast(lp_norm(t, norm), t) + 1e-12)


def l1_projection(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The correction `d` such that ||y + d||_1 <= eps and 0 <= x + y + d <= 1 (the reference's
    `L1_projection`: an exact projection onto the L1 ball intersected with the box, by bisection
    over the sorted breakpoints)."""
    shape = x.shape
    x, y = x.float().flatten(1), y.float().flatten(1)
    sigma = y.sign()
    u = torch.minimum(torch.zeros_like(y), torch.minimum(1 - x - y, x + y))
    lower = -y.abs()
    bs, order = torch.sort(-torch.cat((u, lower), 1), dim=1)
    bs2 = torch.cat((bs[:, 1:], torch.zeros(bs.shape[0], 1, device=bs.device)), 1)
    inu = 2 * (order < u.shape[1]).float() - 1
    size1 = inu.cumsum(dim=1)
    s1 = -u.sum(dim=1)
    c = eps - y.abs().sum(dim=1)
    active = s1 + c < 0  # the rows outside the ball: every row runs the bisection, masks keep it sync-free
    s = s1.unsqueeze(-1) + torch.cumsum((bs2 - bs) * size1, dim=1)
    lb = torch.zeros(len(x), device=x.device)
    ub = torch.full_like(lb, bs.shape[1] - 1)
    for _ in range(math.ceil(math.log2(bs.shape[1]))):
        mid = torch.floor((lb + ub) / 2)
        below = _at(s, mid) + c < 0
        lb = torch.where(below, mid, lb)
        ub = torch.where(below, ub, mid)
    alpha = (-_at(s, lb) - c) / _at(size1, lb + 1) + _at(bs2, lb)  # lb < ub <= n - 1: lb + 1 is in range
    d = torch.where(active.unsqueeze(-1), -torch.minimum(torch.maximum(-u, alpha.unsqueeze(-1)), -lower), u)
    return (sigma * d).view(shape)


def _at(t: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """t[i, column[i]] for every row i."""
    return t.gather(1, column.long().unsqueeze(1)).squeeze(1)


def project(x_adv: torch.Tensor, x: torch.Tensor, norm: NormName, eps: float) -> torch.Tensor:
    """Project onto the eps ball around x intersected with the [0, 1] box.

    Linf and L2 as the reference's APGD steps (clamp to the ball, then to the box: clamping only
    moves coordinates towards x, so the result stays in both sets); L1 by the exact projection.
    """
    delta = x_adv - x
    if norm == "Linf":
        return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)
    if norm == "L2":
        radius = torch.minimum(torch.full_like(x, eps), broadcast(lp_norm(delta, "L2"), x))
        return torch.clamp(x + normalize(delta, "L2") * radius, 0.0, 1.0)
    return x + delta + l1_projection(x, delta, eps)


def clip_to_ball(x_adv: torch.Tensor, x: torch.Tensor, norm: NormName, eps: float) -> torch.Tensor:
    """A safety net against float round-off, applied to what an attack returns: shrink any
    perturbation that exceeds eps towards x (which keeps the point in [0, 1])."""
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * broadcast(torch.clamp(eps / (lp_norm(delta, norm) + 1e-12), max=1.0), delta)
    return (x + delta).clamp(0.0, 1.0)
