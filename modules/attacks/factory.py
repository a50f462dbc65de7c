"""Attack settings as configuration, and the registry that turns them into attacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torchattacks
from torch import nn

from modules.attacks.apgd import APGD
from modules.attacks.mode import as_attack_input, attack_mode
from modules.registry import ConfigError, Registry

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class AttackConfig:
    """One attack's settings. Defaults: the paper's training attack (APGD-CE, Linf, 4/255, 10 steps)."""

    algorithm: str = "apgd"
    norm: Literal["Linf", "L2"] = "Linf"
    eps: float = 4 / 255
    steps: int = 10
    step_size: float | None = None  # PGD: the step (default 2.5 eps / steps); APGD: the initial step (default 2 eps)
    random_start: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.eps, bool) or not isinstance(self.eps, int | float) or self.eps < 0:
            raise ConfigError(f"attack eps must be a number >= 0, got {self.eps!r}")
        if self.norm not in ("Linf", "L2"):
            raise ConfigError(f"attack norm must be 'Linf' or 'L2', got {self.norm!r}")
        if self.steps < 0:
            raise ConfigError(f"attack steps must be >= 0, got {self.steps!r}")
        ATTACKS.get(self.algorithm)  # an unknown algorithm fails here, before any training


ATTACKS: Registry[Callable[[AttackConfig, nn.Module, str], Attack]] = Registry("attack algorithm")


@ATTACKS.register("apgd")
def _apgd(config: AttackConfig, model: nn.Module, purpose: str) -> Attack:
    keep = "max_loss" if purpose == "train" else "misclassified"
    return APGD(model, config.norm, config.eps, config.steps, config.random_start, keep=keep, step_size=config.step_size)


@ATTACKS.register("pgd")
def _pgd(config: AttackConfig, model: nn.Module, purpose: str) -> Attack:
    step = config.step_size if config.step_size is not None else 2.5 * config.eps / max(config.steps, 1)
    cls = torchattacks.PGD if config.norm == "Linf" else torchattacks.PGDL2
    return _guarded(cls(model, eps=config.eps, alpha=step, steps=config.steps, random_start=config.random_start))


def _guarded(attack) -> Attack:
    """A torchattacks attack called in the app's attack mode (see `attack_mode`)."""

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with attack_mode(attack.model):
            attack.set_device(x.device)
            return attack(as_attack_input(x), as_attack_input(y)).detach()

    return run


def build_attack(config: AttackConfig, model: nn.Module, purpose: Literal["train", "eval"] = "train") -> Attack:
    """Build the attack `config` describes. Training attacks maximize every example's loss;
    evaluation attacks look for a misclassification."""
    return ATTACKS.get(config.algorithm)(config, model, purpose)
