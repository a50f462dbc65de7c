"""The study's five measurements (and expected robustness) as a registry of name -> builder.

A measurement maps a batch (x, y, dataset indices) to per-example correctness: a bool tensor
of shape (B,) (or (B, G) for a curve over an eps grid). `evaluation.per_example` runs them
over a dataset shard; sharded results are gathered by dataset index, so the figure does
not depend on the number of ranks.

| name          | column            | perturbation (budget "autoattack" = the paper's test setting) |
|---------------|-------------------|----------------------------------------------------------------|
| clean         | clean_acc         | none                                                           |
| linf          | linf_acc          | AutoAttack standard, Linf eps 4/255 (budget "apgd": APGD-CE)   |
| l2            | l2_acc            | AutoAttack standard, L2 eps 2.0                                |
| l1            | l1_acc            | AutoAttack standard, L1 eps 75                                 |
| common        | common_acc        | 11 ImageNet-C corruptions, severity 3, contiguous blocks       |
| expected_linf | expected_linf_acc | APGD-CE accuracy over eps in {0, 1/255, ..., eps}, area / eps   |
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from modules.attacks.apgd import APGD
from modules.attacks.autoattack import AutoAttack
from modules.attacks.l1_apgd import L1APGD
from modules.corruptions import corrupt_batch
from modules.registry import ConfigError, Registry

BUDGETS = ("apgd", "autoattack")
NORM_OF = {"linf": "Linf", "l2": "L2", "l1": "L1"}
PAPER_EPS = {"linf": 4 / 255, "l2": 2.0, "l1": 75.0}


def check_eps(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r} ({type(value).__name__})")
    return float(value)


@dataclass
class Settings:
    """Everything a measurement needs besides the model."""

    budget: str = "autoattack"  # "apgd" (APGD-CE only, cheap) or "autoattack" (standard)
    eps: dict[str, float] = field(default_factory=lambda: dict(PAPER_EPS))
    steps: int = 100
    square_queries: int = 5000
    severity: int = 3
    seed: int = 0
    num_examples: int = 0  # the size of the dataset (the corruption block rule needs it)
    recheck_fp32: bool = False
    grid_step: float = 1 / 255
    precision: Callable[[], AbstractContextManager] = nullcontext


@dataclass
class Measurement:
    name: str
    column: str
    run: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (x, y, idx) -> correct
    settings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # counters filled while running (fp32 recheck)
    grid: list[float] | None = None
    last_inputs: torch.Tensor | None = None  # the last batch's perturbed inputs, for image grids


MEASUREMENTS: Registry[Callable[[nn.Module, Settings], Measurement]] = Registry("measurement")


def _predict(model: nn.Module, x: torch.Tensor, settings: Settings) -> torch.Tensor:
    with torch.no_grad(), settings.precision():
        return model(x).argmax(1)


@MEASUREMENTS.register("clean")
def clean(model: nn.Module, settings: Settings) -> Measurement:
    m = Measurement("clean", "clean_acc", lambda x, y, idx: None, {"perturbation": "none"})

    def run(x, y, idx):
        m.last_inputs = x
        return _predict(model, x, settings) == y

    m.run = run
    return m


def _attack(model: nn.Module, norm: str, eps: float, settings: Settings, budget: str | None = None):
    budget = budget or settings.budget
    if budget == "autoattack":
        attack = AutoAttack(model, norm, eps, steps=settings.steps, square_queries=settings.square_queries, seed=settings.seed)
        return attack, attack.settings()
    if norm == "L1":
        attack = L1APGD(model, eps, settings.steps, restarts=1, loss="ce", seed=settings.seed)
    else:
        attack = APGD(model, norm, eps, settings.steps, keep="misclassified", seed=settings.seed)
    return attack, {"algorithm": "apgd-ce", "norm": norm, "eps": eps, "steps": settings.steps, "seed": settings.seed}


def _adversarial(name: str) -> Callable[[nn.Module, Settings], Measurement]:
    def build(model: nn.Module, settings: Settings) -> Measurement:
        norm, eps = NORM_OF[name], settings.eps[name]
        attack, described = _attack(model, norm, eps, settings)
        m = Measurement(name, f"{name}_acc", lambda *a: None, described)

        def run(x, y, idx):
            with settings.precision():
                adv = attack(x, y)
            m.last_inputs = adv
            correct = _predict(model, adv, settings) == y
            if settings.recheck_fp32 and correct.any():
                # Mixed precision can hide gradients: attack the survivors again in fp32.
                keep = correct.nonzero().flatten()
                with torch.autocast(device_type=x.device.type, enabled=False):
                    adv32 = attack(x[keep].float(), y[keep])
                    with torch.no_grad():
                        still = model(adv32).argmax(1) == y[keep]
                m.extra["fp32_rechecked"] = m.extra.get("fp32_rechecked", 0) + len(keep)
                m.extra["fp32_broken"] = m.extra.get("fp32_broken", 0) + int((~still).sum())
                correct[keep] = still
            return correct

        m.run = run
        return m

    return build


for _name in NORM_OF:
    MEASUREMENTS.register(_name)(_adversarial(_name))


@MEASUREMENTS.register("common")
def common(model: nn.Module, settings: Settings) -> Measurement:
    m = Measurement("common", "common_acc", lambda *a: None,
                    {"corruptions": "imagenet-c (11, contiguous blocks: image i of n gets floor(11 i / n))",
                     "severity": settings.severity, "seed": settings.seed})
    m.extra["per_corruption"] = {}

    def run(x, y, idx):
        if settings.num_examples <= 0:
            raise ValueError("the common measurement needs Settings.num_examples (the dataset size)")
        corrupted, names = corrupt_batch(x, idx.tolist(), settings.num_examples, settings.severity, settings.seed)
        m.last_inputs = corrupted
        correct = _predict(model, corrupted, settings) == y
        m.extra.setdefault("names", {}).update({int(i): n for i, n in zip(idx.tolist(), names)})
        return correct

    m.run = run
    return m


def eps_grid(eps: float, step: float) -> list[float]:
    n = max(int(round(eps / step)), 1)
    return [eps * k / n for k in range(n + 1)]


@MEASUREMENTS.register("expected_linf")
def expected_linf(model: nn.Module, settings: Settings) -> Measurement:
    eps = settings.eps["linf"]
    grid = eps_grid(eps, settings.grid_step)
    attacks = [_attack(model, "Linf", e, settings, budget="apgd")[0] for e in grid]
    m = Measurement("expected_linf", "expected_linf_acc", lambda *a: None,
                    {"algorithm": "apgd-ce", "norm": "Linf", "eps_max": eps, "grid": grid, "steps": settings.steps},
                    grid=grid)

    def run(x, y, idx):
        columns = []
        for attack in attacks:
            with settings.precision():
                adv = attack(x, y)
            columns.append(_predict(model, adv, settings) == y)
        return torch.stack(columns, 1)

    m.run = run
    return m


def area(grid: list[float], accuracy: list[float]) -> float:
    """Normalized area under accuracy(eps) on [0, eps_max]: trapezoidal rule / eps_max."""
    if len(grid) < 2 or grid[-1] == 0:
        return float(accuracy[0])
    total = sum((grid[i + 1] - grid[i]) * (accuracy[i] + accuracy[i + 1]) / 2 for i in range(len(grid) - 1))
    return total / grid[-1]


def build_measurements(names: list[str], model: nn.Module, settings: Settings) -> dict[str, Measurement]:
    return {name: MEASUREMENTS.get(name)(model, settings) for name in names}
