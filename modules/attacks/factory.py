"""Attack settings as configuration, and the registry that turns them into attacks (training and evaluation).

Each entry names the norms it supports and whether it can be a training attack; adding an attack
is one `@attack(...)` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torchattacks
from torch import nn

from modules.attacks.apgd import APGD
from modules.attacks.autoattack import AutoAttack
from modules.attacks.base import RobustAttack
from modules.attacks.fab import FAB
from modules.attacks.fgsm import FGSM
from modules.attacks.norms import NORMS, NormName, check_eps
from modules.attacks.square import Square
from modules.registry import ConfigError, Registry

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Purpose = Literal["train", "eval"]


@dataclass
class AttackConfig:
    """One attack's settings. Defaults: the paper's training attack (APGD-CE, Linf, 4/255, 10 steps)."""

    algorithm: str = "apgd"
    norm: NormName = "Linf"
    eps: float = 4 / 255
    steps: int = 10
    # PGD: the step (default 2.5 eps / steps); APGD: the initial step (default 2 eps); FGSM-RS / N-FGSM: the
    # step (default 1.25 eps / eps)
    step_size: float | None = None
    random_start: bool = False  # evaluation attacks always start from noise, as the reference
    restarts: int = 1
    queries: int = 5000  # Square (and Square inside AutoAttack)
    seed: int = 0

    def __post_init__(self) -> None:
        check_eps("attack eps", self.eps)
        if self.norm not in NORMS:
            raise ConfigError(f"unknown attack norm {self.norm!r}; valid choices: {', '.join(NORMS)}")
        for name in ("steps", "restarts", "queries"):
            value, least = getattr(self, name), 1 if name == "restarts" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"attack {name} must be an integer >= {least}, got {value!r}")
        spec = ATTACKS.get(self.algorithm)  # an unknown algorithm fails here, before any training
        if self.norm not in spec.norms:
            raise ConfigError(
                f"attack {self.algorithm!r} does not support norm {self.norm!r}; "
                f"valid norms for {self.algorithm!r}: {', '.join(spec.norms)}"
            )


@dataclass(frozen=True)
class AttackSpec:
    build: Callable[[AttackConfig, nn.Module, Purpose], RobustAttack]
    norms: tuple[str, ...]
    trains: bool  # a training attack returns each example's highest-loss point, not only misclassified ones
    reach: float = 1.0  # the largest perturbation it returns, in units of eps (N-FGSM: 3)


ATTACKS: Registry[AttackSpec] = Registry("attack algorithm")


def attack(name: str, norms: tuple[str, ...] = NORMS, trains: bool = False, reach: float = 1.0):
    """Register `build(config, model, purpose) -> attack` as attack `name`."""

    def add(build: Callable[[AttackConfig, nn.Module, Purpose], RobustAttack]):
        ATTACKS.register(name)(AttackSpec(build, norms, trains, reach))
        return build

    return add


def check_training_attack(config: AttackConfig) -> None:
    if not ATTACKS.get(config.algorithm).trains:
        raise ConfigError(
            f"attack {config.algorithm!r} is an evaluation attack; training attacks: "
            f"{', '.join(name for name in ATTACKS if ATTACKS.get(name).trains)}"
        )


def build_attack(config: AttackConfig, model: nn.Module, purpose: Purpose = "train") -> RobustAttack:
    """Build the attack `config` describes. Training attacks maximize every example's loss;
    evaluation attacks look for a misclassification (and start from noise, as the reference)."""
    if purpose == "train":
        check_training_attack(config)
    return ATTACKS.get(config.algorithm).build(config, model, purpose)


class NoAttack(RobustAttack):
    """The clean images (a measurement or loss without perturbation)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__("NoAttack", model)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return images.clone()


class TorchAttack(RobustAttack):
    """A torchattacks attack run in the app's attack mode (see `attack_mode`)."""

    def __init__(self, inner: torchattacks.attack.Attack) -> None:
        super().__init__(type(inner).__name__, inner.model)
        self.inner = inner

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.inner.set_device(images.device)
        return self.inner(images, labels)


@attack("none", trains=True)
def _none(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    return NoAttack(model)


def _apgd(config: AttackConfig, model: nn.Module, purpose: Purpose, **options: object) -> APGD:
    """APGD with `config`'s settings for `purpose`: evaluation attacks start from noise (as the reference)
    and keep misclassified points; training attacks keep each example's highest loss."""
    evaluation = purpose == "eval"
    options = {"random_start": config.random_start or evaluation} | options
    return APGD(
        model,
        config.norm,
        config.eps,
        config.steps,
        restarts=config.restarts,
        keep="misclassified" if evaluation else "max_loss",
        step_size=config.step_size,
        seed=config.seed,
        **options,
    )


attack("apgd", trains=True)(_apgd)


@attack("apgd-t", trains=True)
def _apgd_t(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    """APGD on the targeted DLR loss, as in the standard AutoAttack (9 targets; L1: 5 and the large-eps schedule)."""
    l1 = config.norm == "L1"
    return _apgd(config, model, purpose, loss="dlr-targeted", n_target_classes=5 if l1 else 9, use_largereps=l1)


@attack("l1-apgd", norms=("L1",), trains=True)
def _l1_apgd(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    """L1-APGD-CE with the large-eps schedule of the standard L1 AutoAttack (which runs it with 5 restarts)."""
    return _apgd(config, model, purpose, random_start=True, use_largereps=True)


@attack("pgd", norms=("Linf", "L2"), trains=True)
def _pgd(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    step = config.step_size if config.step_size is not None else 2.5 * config.eps / max(config.steps, 1)
    cls = torchattacks.PGD if config.norm == "Linf" else torchattacks.PGDL2
    return TorchAttack(cls(model, eps=config.eps, alpha=step, steps=config.steps, random_start=config.random_start))


def _step_in_eps(config: AttackConfig, default: float) -> float:
    """A single-step attack's step as a multiple of eps: `step_size` when given, else the authors' `default`."""
    return default if config.step_size is None else config.step_size / max(config.eps, 1e-12)


@attack("fgsm-rs", norms=("Linf",), trains=True)
def _fgsm_rs(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    """FGSM from a random start (Wong et al. 2020): noise eps, step 1.25 eps (or `step_size`), projected."""
    return FGSM(model, config.eps, step=_step_in_eps(config, 1.25), noise=1.0, project=True)


@attack("n-fgsm", norms=("Linf",), trains=True, reach=3.0)
def _n_fgsm(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    """N-FGSM (de Jorge et al. 2022): noise 2 eps, step eps (or `step_size`), not projected (reaches 3 eps)."""
    return FGSM(model, config.eps, step=_step_in_eps(config, 1.0), noise=2.0, project=False)


@attack("square")
def _square(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    return Square(
        model,
        config.norm,
        config.eps,
        n_queries=config.queries,
        p_init=0.8,
        n_restarts=config.restarts,
        seed=config.seed,
    )


@attack("fab")
def _fab(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    return FAB(model, config.norm, config.eps, steps=config.steps, seed=config.seed)


@attack("autoattack")
def _autoattack(config: AttackConfig, model: nn.Module, purpose: Purpose) -> RobustAttack:
    """The standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square); `steps` 100 and `queries` 5,000 are the standard."""
    return AutoAttack(
        model, config.norm, config.eps, steps=config.steps, square_queries=config.queries, seed=config.seed
    )
