"""Robustness measurements at validation epoch end (cheap) and at test time (the paper's five).

The callback only hooks Lightning: the measurements and their loop live in `modules.evaluation`."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from modules.attacks.norms import check_eps
from modules.evaluation import EvaluationSettings, evaluate
from modules.evaluation.figures import log_figures
from modules.evaluation.loop import Stopped
from modules.evaluation.measurements import (
    CORRUPTION_ASSIGNMENTS,
    PRECISIONS,
    autocast,
    check_choice,
    check_settings,
)
from modules.evaluation.outcomes import OutcomeStore, weights_digest
from modules.evaluation.summary import selection_score
from modules.registry import ConfigError
from modules.runs import run_dir


class RobustnessCallback(Callback):
    """Logs `val/<column>` on a fixed validation subset each epoch and `test/<column>` over the
    whole test set (columns: clean_acc, linf_acc, l2_acc, l1_acc, common_acc, expected_linf_acc).

    The validation subset (the first `subset_size` images of a seeded permutation) is the same
    every epoch. Under DDP the fixed batches of `batch_size` images are dealt out to the ranks, each
    batch measured with the random state of its own images, and the per-example correctness is
    gathered by dataset index, so the figure equals the single-process one.
    Attacks run outside Lightning's inference mode (see `attack_mode`). Test attacks and predictions
    run in fp32 by default whatever the training precision (the reference AutoAttack's setting:
    rounding the logits can only hide successful attacks); validation attacks keep the training
    precision (they only steer checkpoint selection). The test report (per corruption accuracies,
    settings with the precision of each measurement, seconds, who broke what, fp32 recheck,
    expected-robustness curve) is kept in `self.report["test"]` for `ResultsWriter`.

    The test's per-example outcomes are kept in the run folder as they are measured
    (`<run>/measurements/`, see modules/evaluation/outcomes.py): a test stopped by a signal (it
    stops after the current batch) or killed resumes where it stopped, in the same folder, with the
    same figures. `self.session` counts what each start of the test kept and measured.

    Args:
        subset_size: validation images measured each epoch (0 disables validation measurements).
        steps: attack steps at validation (APGD-CE by default).
        linf_eps, l2_eps, l1_eps: the radii (the study: 4/255, 2.0, 75 at 224x224).
        val_measurements, test_measurements: names among clean, linf, l2, l1, common, expected_linf.
        val_attack, test_attack: an attack of the registry: "apgd" (APGD-CE only, cheap), "autoattack"
            (the standard version), "apgd-t", "square", "fab", ...
        test_steps, square_queries: AutoAttack budget at test (the standard version: 100, 5000).
        attack_precision: what test attacks and predictions run in: "32" (default) or "bf16" (faster,
            recorded with the figures; rounding can hide successful attacks, see recheck_fp32).
        severity: corruption severity (the study: 3).
        corruption_assignment: "blocks" (the paper's: image i of n gets corruption floor(11 i / n)) or
            "all" (every corruption on every image; no confounding with classes, 11x the cost).
        recheck_fp32: with bf16 test attacks, attack again in fp32 the examples bf16 failed to break.
        expected_robustness: add expected_linf (accuracy over eps in [0, linf_eps], step grid_step).
        log_images: an image grid of clean / adversarial / corrupted examples in TensorBoard.
    """

    def __init__(
        self,
        subset_size: int = 256,
        steps: int = 10,
        linf_eps: float = 4 / 255,
        l2_eps: float = 2.0,
        batch_size: int = 64,
        every_n_epochs: int = 1,
        seed: int = 0,
        l1_eps: float = 75.0,
        val_measurements: list[str] | None = None,
        test_measurements: list[str] | None = None,
        val_attack: str = "apgd",
        test_attack: str = "autoattack",
        test_steps: int = 100,
        square_queries: int = 5000,
        severity: int = 3,
        recheck_fp32: bool = False,
        expected_robustness: bool = False,
        grid_step: float = 1 / 255,
        log_images: bool = True,
        attack_precision: str | int = "32",
        corruption_assignment: str = "blocks",
    ) -> None:
        self.eps = {
            "linf": check_eps("robustness linf_eps", linf_eps),
            "l2": check_eps("robustness l2_eps", l2_eps),
            "l1": check_eps("robustness l1_eps", l1_eps),
        }
        self.attack_precision = check_choice("robustness attack_precision", str(attack_precision), PRECISIONS)
        self.corruption_assignment = check_choice(
            "robustness corruption_assignment", corruption_assignment, CORRUPTION_ASSIGNMENTS
        )
        self.val_measurements = list(val_measurements if val_measurements is not None else ["clean", "linf", "l2"])
        self.test_measurements = list(
            test_measurements if test_measurements is not None else ["clean", "linf", "l2", "l1", "common"]
        )
        if isinstance(self.val_measurements, str) or isinstance(self.test_measurements, str):
            raise ConfigError("robustness val_measurements / test_measurements must be lists of names")
        if expected_robustness:
            for names in (self.val_measurements, self.test_measurements):
                if "expected_linf" not in names:
                    names.append("expected_linf")
        for label, value in (
            ("steps", steps),
            ("test_steps", test_steps),
            ("square_queries", square_queries),
            ("subset_size", subset_size),
            ("batch_size", batch_size),
            ("every_n_epochs", every_n_epochs),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (1 if label in ("batch_size", "every_n_epochs") else 0)
            ):
                raise ConfigError(f"robustness {label} must be a non-negative integer, got {value!r}")
        if isinstance(severity, bool) or severity not in (1, 2, 3, 4, 5):
            raise ConfigError(f"robustness severity must be an integer 1-5, got {severity!r}")
        if check_eps("robustness grid_step", grid_step) == 0:
            raise ConfigError("robustness grid_step must be > 0")
        self.subset_size, self.steps, self.batch_size = subset_size, steps, batch_size
        self.every_n_epochs, self.seed = every_n_epochs, seed
        self.val_attack, self.test_attack, self.test_steps, self.square_queries = (
            val_attack,
            test_attack,
            test_steps,
            square_queries,
        )
        self.severity, self.recheck_fp32, self.grid_step, self.log_images = (
            severity,
            recheck_fp32,
            float(grid_step),
            log_images,
        )
        self.report: dict[str, dict] = {}
        self.directory: Path | None = None
        self.session: dict[str, object] = {}  # this start of the test: examples kept and measured, how it ended
        # wall time of validation (the loop and these measurements), over every session of a fit
        self.validation_seconds, self._validation_started = 0.0, time.perf_counter()
        check_settings(self.val_measurements, self.settings("val", 0, EvaluationSettings().precision, "32"))
        check_settings(
            self.test_measurements, self.settings("test", 0, EvaluationSettings().precision, self.attack_precision)
        )

    def state_dict(self) -> dict[str, float]:
        return {"validation_seconds": self.validation_seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.validation_seconds = float(state_dict.get("validation_seconds", 0.0))

    def subset_indices(self, size: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(size, generator=generator)[: self.subset_size].sort().values.tolist()

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._validation_started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.subset_size > 0 and not trainer.current_epoch % self.every_n_epochs:
            self.measure(trainer, pl_module, "val", self.subset_indices(len(trainer.datamodule.datasets["val"])))
        self.validation_seconds += time.perf_counter() - self._validation_started

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.directory, self.session = run_dir(trainer), {}  # every rank (a broadcast under DDP)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.measure(trainer, pl_module, "test", list(range(len(trainer.datamodule.datasets["test"]))))

    def outcome_store(self, trainer: Trainer, model: torch.nn.Module) -> OutcomeStore | None:
        if self.directory is None:
            return None
        about = {
            "dataset": getattr(trainer.datamodule, "dataset_name", "") or type(trainer.datamodule).__name__,
            "split": "test",
            "num_examples": len(trainer.datamodule.datasets["test"]),
            "weights": weights_digest(model),
        }
        return OutcomeStore(self.directory, trainer.global_rank, about, rank_zero_warn)

    def settings(
        self, split: str, num_examples: int, precision: Callable[[], AbstractContextManager], precision_name: str
    ) -> EvaluationSettings:
        test = split == "test"
        return EvaluationSettings(
            attack=self.test_attack if test else self.val_attack,
            eps=dict(self.eps),
            steps=self.test_steps if test else self.steps,
            square_queries=self.square_queries,
            severity=self.severity,
            seed=self.seed,
            num_examples=num_examples,
            recheck_fp32=self.recheck_fp32,
            grid_step=self.grid_step,
            corruption_assignment=self.corruption_assignment,
            precision=precision,
            precision_name=precision_name,
        )

    def measure(self, trainer: Trainer, pl_module: LightningModule, split: str, indices: list[int]) -> dict:
        dataset = trainer.datamodule.datasets[split]
        names = self.test_measurements if split == "test" else self.val_measurements
        model = pl_module.model
        if split == "test":
            precision, name = autocast(pl_module.device.type, self.attack_precision), self.attack_precision
            if name == "32" and any(p.dtype != torch.float32 for p in model.parameters()):
                model = copy.deepcopy(model).float()  # a model trained in bf16-true: measured in fp32 all the same
        else:  # the training precision, e.g. "bf16-mixed" -> "bf16"
            precision, name = trainer.precision_plugin.forward_context, str(trainer.precision).split("-")[0]
        test = split == "test"
        try:
            report = evaluate(
                model,
                dataset,
                indices,
                names,
                self.settings(split, len(dataset), precision, name),
                pl_module.device,
                self.batch_size,
                trainer.global_rank,
                trainer.world_size,
                store=self.outcome_store(trainer, model) if test else None,
                should_stop=(lambda: trainer.received_sigterm) if test else None,
                checks=test,
            )
        except Stopped as stopped:
            self.session = {"status": "interrupted", "examples": stopped.examples}
            raise SIGTERMException(str(stopped)) from None
        if test:
            self.session = {"status": "complete", "examples": report["examples"]}
        # Every rank holds the same gathered figures: "max" over ranks is exact (a mean need not be).
        for column, value in report["accuracy"].items():
            pl_module.log(
                f"{split}/{column}", value, prog_bar=column in ("linf_acc", "l2_acc"), sync_dist=True, reduce_fx="max"
            )
        if split == "val":
            pl_module.log("val/selection_score", selection_score(report["accuracy"]), sync_dist=True, reduce_fx="max")
        self.report[split] = report
        if not self.log_images:
            report.pop("_examples", None)
        if trainer.is_global_zero and isinstance(trainer.logger, TensorBoardLogger):
            log_figures(trainer.logger, split, report, trainer.global_step)
        return report
