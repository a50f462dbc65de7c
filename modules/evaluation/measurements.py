"""The study's five measurements (and expected robustness) as a registry of name -> builder.

A measurement is the unit of evaluation: it runs on a batch (x, y, dataset indices) and returns
per-example results, a tensor of shape (B,) or (B, K); it summarises the per-example results of
the whole set (gathered over ranks by dataset index, so the figure does not depend on the number
of ranks) into accuracies and report fields. Adding one is one class or builder and one
registration.

| name          | column            | perturbation (attack "autoattack" = the paper's test setting)        |
|---------------|-------------------|-----------------------------------------------------------------------|
| clean         | clean_acc         | none                                                                  |
| linf          | linf_acc          | AutoAttack standard, Linf eps 4/255 (or any attack of the registry)   |
| l2            | l2_acc            | AutoAttack standard, L2 eps 2.0                                       |
| l1            | l1_acc            | AutoAttack standard, L1 eps 75                                        |
| common        | common_acc        | 11 ImageNet-C corruptions, severity 3 (blocks of images, or all)     |
| expected_linf | expected_linf_acc | APGD-CE accuracy over eps in {0, 1/255, ..., eps}, area / eps         |
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from modules.attacks.base import BROKEN, MISCLASSIFIED, ROBUST
from modules.attacks.factory import ATTACKS, AttackConfig, build_attack
from modules.attacks.mode import eval_mode
from modules.evaluation.corruptions import CORRUPTIONS, corrupt_batch, corruption_of
from modules.registry import ConfigError, Registry
from modules.vocabulary import ADVERSARIAL_MEASUREMENTS, PAPER_EPS, Norm

DTYPES = {"32": torch.float32, "bf16": torch.bfloat16}  # what attacks and predictions may run in
PRECISIONS = tuple(DTYPES)
CORRUPTION_ASSIGNMENTS = ("blocks", "all")
Rows = dict[int, object]  # dataset index -> one example's result (a bool, or a list)


def autocast(device_type: str, precision: str) -> Callable[[], AbstractContextManager]:
    """The context attacks and predictions run in: fp32 (autocast off, whatever the training precision) or bf16."""
    if precision == "32":
        return lambda: torch.autocast(device_type=device_type, enabled=False)
    return lambda: torch.autocast(device_type=device_type, dtype=DTYPES[precision])


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")
    return str(value)


@dataclass
class EvaluationSettings:
    """What the measurements of one evaluation share besides the model."""

    attack: str = "autoattack"  # an ATTACKS name: "autoattack" (the standard), "apgd" (cheap), ...
    eps: dict[str, float] = field(default_factory=lambda: dict(PAPER_EPS))
    steps: int = 100
    square_queries: int = 5000
    severity: int = 3
    seed: int = 0
    num_examples: int = 0  # the size of the dataset (the corruption block rule needs it)
    recheck_fp32: bool = False
    grid_step: float = 1 / 255
    corruption_assignment: str = "blocks"
    precision: Callable[[], AbstractContextManager] = nullcontext  # the autocast the model runs in
    precision_name: str = "32"  # recorded with every measurement

    def attack_config(self, norm: str, eps: float, attack: str | None = None) -> AttackConfig:
        return AttackConfig(
            algorithm=attack or self.attack,
            norm=norm,
            eps=eps,
            steps=self.steps,
            queries=self.square_queries,
            seed=self.seed,
        )


class Measurement:
    """Accuracy under one perturbation: `run` gives per-example correctness, `summarise` the mean."""

    def __init__(self, name: str, model: nn.Module, settings: EvaluationSettings, described: dict) -> None:
        self.name, self.column, self.model, self.settings = name, f"{name}_acc", model, settings
        self.described = described | {"precision": settings.precision_name}
        self.last_inputs: torch.Tensor | None = None  # the last batch's perturbed inputs, for image grids
        self.last_indices: list[int] = []  # and their dataset indices (set by the evaluation loop)

    def reseed(self, seed: int) -> None:
        """Seed this measurement's attacks for the next batch (they draw from their own generators)."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions in eval mode, whatever the model's (its BatchNorm statistics are never updated)."""
        with torch.no_grad(), self.settings.precision(), eval_mode(self.model):
            return self.model(x).argmax(1)

    def run(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.last_inputs = x
        return self.predict(x) == y

    def summarise(self, rows: Rows) -> dict:
        return {"accuracy": {self.column: sum(bool(v) for v in rows.values()) / max(len(rows), 1)}}


class Adversarial(Measurement):
    """Robust accuracy under an attack of the registry. Per example: [robust, outcome code] (who broke it).

    With `recheck_fp32` (for attacks run in reduced precision), the survivors are attacked again in
    fp32, since rounding can hide successful attacks."""

    def __init__(self, name: str, model: nn.Module, settings: EvaluationSettings, attack: str | None = None) -> None:
        norm, eps = Norm.of_measurement(name).value, settings.eps[name]
        config = settings.attack_config(norm, eps, attack)
        self.attack = build_attack(config, model, "eval")
        self.recheck = settings.recheck_fp32 and settings.precision_name != "32"
        self.breakers = self.attack.breakers() + (["fp32_recheck"] if self.recheck else [])
        super().__init__(
            name,
            model,
            settings,
            {
                "algorithm": config.algorithm,
                "norm": norm,
                "eps": eps,
                "steps": config.steps,
                "square_queries": config.queries,
                "components": self.attack.breakers(),
                "seed": config.seed,
            },
        )

    def reseed(self, seed: int) -> None:
        if hasattr(self.attack, "seed"):
            self.attack.seed = seed

    def run(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        with self.settings.precision():
            adv, outcome = self.attack.run(x, y)
        self.last_inputs = adv
        if self.recheck and (outcome == ROBUST).any():
            keep = (outcome == ROBUST).nonzero().flatten()
            with torch.autocast(device_type=x.device.type, enabled=False):
                _, again = self.attack.run(x[keep].float(), y[keep])
            outcome[keep] = torch.where(again == ROBUST, ROBUST, BROKEN + len(self.breakers) - 1)
        return torch.stack([outcome == ROBUST, outcome], 1).long()

    def summarise(self, rows: Rows) -> dict:
        outcomes = [int(row[1]) for row in rows.values()]
        broken_by = {name: outcomes.count(BROKEN + k) for k, name in enumerate(self.breakers)}
        summary = {
            "accuracy": {self.column: outcomes.count(ROBUST) / max(len(outcomes), 1)},
            "broken_by": {self.name: {"misclassified_clean": outcomes.count(MISCLASSIFIED)} | broken_by},
        }
        if self.recheck:
            summary["fp32_recheck"] = {
                self.name: {
                    "rechecked": outcomes.count(ROBUST) + broken_by["fp32_recheck"],
                    "broken_in_fp32": broken_by["fp32_recheck"],
                }
            }
        return summary


class Common(Measurement):
    """Accuracy under the 11 ImageNet-C corruptions.

    `blocks` (the paper's rule, for comparability): image i of n gets corruption floor(11 i / n).
    As the test set is ordered by dataset index, a class-ordered source makes each block a group of
    classes, so per-corruption figures are confounded with class difficulty. `all`: every corruption
    on every image (11 x the cost); per-corruption accuracy over all images, common_acc their mean."""

    def __init__(self, model: nn.Module, settings: EvaluationSettings) -> None:
        rule = {
            "blocks": "contiguous blocks: image i of n gets corruption floor(11 i / n)",
            "all": "all: each of the 11 corruptions on every image",
        }[settings.corruption_assignment]
        super().__init__(
            "common",
            model,
            settings,
            {
                "corruptions": f"imagenet-c (11, {rule})",
                "assignment": settings.corruption_assignment,
                "severity": settings.severity,
                "seed": settings.seed,
            },
        )

    def _correct(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, name: str | None) -> torch.Tensor:
        s = self.settings
        self.last_inputs, _ = corrupt_batch(x, idx, s.num_examples, s.severity, s.seed, name)
        return self.predict(self.last_inputs) == y

    def run(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.settings.corruption_assignment == "all":
            return torch.stack([self._correct(x, y, idx, name) for name in CORRUPTIONS], 1)
        if self.settings.num_examples <= 0:
            raise ValueError("the common measurement needs EvaluationSettings.num_examples (the dataset size)")
        return self._correct(x, y, idx, None)

    def summarise(self, rows: Rows) -> dict:
        per: dict[str, list[bool]] = {}
        if self.settings.corruption_assignment == "all":
            for row in rows.values():
                for name, ok in zip(CORRUPTIONS, row):
                    per.setdefault(name, []).append(bool(ok))
        else:
            for i, ok in rows.items():
                per.setdefault(corruption_of(i, self.settings.num_examples), []).append(bool(ok))
        per_corruption = {name: sum(v) / len(v) for name, v in per.items()}
        if self.settings.corruption_assignment == "all":
            accuracy = sum(per_corruption.values()) / max(len(per_corruption), 1)
        else:
            accuracy = super().summarise(rows)["accuracy"][self.column]
        return {"accuracy": {self.column: accuracy}, "per_corruption": per_corruption}


def batch_seed(seed: int, measurement: str, indices: list[int]) -> int:
    """The random state of one measurement on one batch: from (seed, measurement, the batch's dataset
    indices) only, so a batch gives the same outcomes whatever ran before it (a resumed test)."""
    text = f"{seed}|{measurement}|{','.join(map(str, indices))}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def eps_grid(eps: float, step: float) -> list[float]:
    n = max(int(round(eps / step)), 1)
    return [eps * k / n for k in range(n + 1)]


def area(grid: list[float], accuracy: list[float]) -> float:
    """Normalized area under accuracy(eps) on [0, eps_max]: trapezoidal rule / eps_max."""
    if len(grid) < 2 or grid[-1] == 0:
        return float(accuracy[0])
    total = sum((grid[i + 1] - grid[i]) * (accuracy[i] + accuracy[i + 1]) / 2 for i in range(len(grid) - 1))
    return total / grid[-1]


class ExpectedLinf(Measurement):
    """Expected robustness: APGD-CE accuracy over a grid of Linf radii, summarised as the area / eps."""

    def __init__(self, model: nn.Module, settings: EvaluationSettings) -> None:
        eps = settings.eps["linf"]
        self.grid = eps_grid(eps, settings.grid_step)
        self.attacks = [
            build_attack(settings.attack_config(Norm.LINF.value, e, "apgd"), model, "eval") for e in self.grid
        ]
        super().__init__(
            "expected_linf",
            model,
            settings,
            {
                "algorithm": "apgd-ce",
                "norm": Norm.LINF.value,
                "eps_max": eps,
                "grid": self.grid,
                "steps": settings.steps,
            },
        )

    def reseed(self, seed: int) -> None:
        for attack in self.attacks:
            attack.seed = seed

    def run(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        columns = []
        for attack in self.attacks:
            with self.settings.precision():
                self.last_inputs = attack(x, y)
            columns.append(self.predict(self.last_inputs) == y)
        return torch.stack(columns, 1)

    def summarise(self, rows: Rows) -> dict:
        table = torch.tensor([rows[i] for i in sorted(rows)], dtype=torch.float64)
        accuracy = table.mean(0).tolist() if len(table) else [0.0] * len(self.grid)
        curve = {"eps": self.grid, "accuracy": accuracy, "area": area(self.grid, accuracy)}
        return {"accuracy": {self.column: curve["area"]}, "expected_robustness": curve}


MEASUREMENTS: Registry[Callable[[nn.Module, EvaluationSettings], Measurement]] = Registry("measurement")
MEASUREMENTS.register("clean")(lambda model, settings: Measurement("clean", model, settings, {"perturbation": "none"}))
for _name in ADVERSARIAL_MEASUREMENTS:
    MEASUREMENTS.register(_name)(lambda model, settings, name=_name: Adversarial(name, model, settings))
MEASUREMENTS.register("common")(Common)
MEASUREMENTS.register("expected_linf")(ExpectedLinf)


def check_settings(names: list[str], settings: EvaluationSettings) -> None:
    """Every bad name or value as one ConfigError, before any model or data is touched."""
    for name in names:
        MEASUREMENTS.get(name)
        if name in ADVERSARIAL_MEASUREMENTS:
            settings.attack_config(Norm.of_measurement(name).value, settings.eps[name])  # the attack supports this norm
    ATTACKS.get(settings.attack)
    check_choice("corruption_assignment", settings.corruption_assignment, CORRUPTION_ASSIGNMENTS)


def build_measurements(names: list[str], model: nn.Module, settings: EvaluationSettings) -> dict[str, Measurement]:
    check_settings(names, settings)
    return {name: MEASUREMENTS.get(name)(model, settings) for name in names}
