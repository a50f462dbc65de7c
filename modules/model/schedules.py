"""Epsilon schedules for the training attack (the follow-up paper, arXiv 2509.23325).

eps(epoch) = alpha(epoch) * eps_target. A schedule is one registry entry: a function
(epoch, EpsSchedule) -> alpha in [0, 1].

- `constant`: alpha = 1 (the study's setting).
- `linear_warmup`: alpha = 0 before epoch `t1`, rises linearly from 0 to 1 between `t1` and
  `t2`, then 1 (the follow-up paper: t1 = 12, t2 = 37 of 50 epochs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modules.registry import ConfigError, Registry

SCHEDULES: Registry[Callable[[int, EpsSchedule], float]] = Registry("eps schedule")


@dataclass
class EpsSchedule:
    """How the training attack's eps grows over the epochs (`name`: constant | linear_warmup).

    `t1`, `t2`: epochs (0-based) where linear_warmup starts and reaches the target eps.
    """

    name: str = "constant"
    t1: int = 12
    t2: int = 37

    def __post_init__(self) -> None:
        SCHEDULES.get(self.name)  # an unknown name fails before any training
        if self.t1 < 0 or self.t2 < self.t1:
            raise ConfigError(f"eps schedule needs 0 <= t1 <= t2, got t1={self.t1}, t2={self.t2}")

    def alpha(self, epoch: int) -> float:
        return float(SCHEDULES.get(self.name)(epoch, self))


@SCHEDULES.register("constant")
def constant(epoch: int, schedule: EpsSchedule) -> float:
    return 1.0


@SCHEDULES.register("linear_warmup")
def linear_warmup(epoch: int, schedule: EpsSchedule) -> float:
    if epoch < schedule.t1:
        return 0.0
    if epoch >= schedule.t2:
        return 1.0
    return (epoch - schedule.t1) / (schedule.t2 - schedule.t1)
