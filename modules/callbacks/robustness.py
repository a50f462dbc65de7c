"""Robustness measurements at validation epoch end (cheap) and at test time (the paper's five)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from modules.corruptions import corruption_of
from modules.evaluation import gather, per_example
from modules.measurements import BUDGETS, MEASUREMENTS, Settings, area, build_measurements, check_eps
from modules.registry import ConfigError


def selection_score(accuracy: dict[str, float]) -> float:
    """What the best checkpoint maximizes: the sum of the accuracies measured at validation (the
    paper's `sum` aggregate over the measurements taken). Robust accuracy alone would hand a
    non-robust baseline's "best" checkpoint to whichever early epoch had a stray robust hit."""
    return float(sum(accuracy.values()))


class RobustnessCallback(Callback):
    """Logs `val/<column>` on a fixed validation subset each epoch and `test/<column>` over the
    whole test set (columns: clean_acc, linf_acc, l2_acc, l1_acc, common_acc, expected_linf_acc).

    The validation subset (the first `subset_size` images of a seeded permutation) is the same
    every epoch. Under DDP each rank measures indices[rank::world] and the per-example
    correctness is gathered by dataset index, so the figure equals the single-process one.
    Attacks run outside Lightning's inference mode (see `attack_mode`). The test report (per
    corruption accuracies, settings, seconds, fp32 recheck, expected-robustness curve) is kept
    in `self.report["test"]` for `ResultsWriter`.

    Args:
        subset_size: validation images measured each epoch (0 disables validation measurements).
        steps: attack steps at validation (APGD-CE by default).
        linf_eps, l2_eps, l1_eps: the radii (the study: 4/255, 2.0, 75 at 224x224).
        val_measurements, test_measurements: names among clean, linf, l2, l1, common, expected_linf.
        val_attack, test_attack: "apgd" (APGD-CE only) or "autoattack" (standard version).
        test_steps, square_queries: AutoAttack budget at test (the standard version: 100, 5000).
        severity: corruption severity (the study: 3).
        recheck_fp32: attack again in fp32 the examples a mixed-precision attack failed to break.
        expected_robustness: add expected_linf (accuracy over eps in [0, linf_eps], step grid_step).
        log_images: an image grid of clean / adversarial / corrupted examples in TensorBoard.
    """

    def __init__(self, subset_size: int = 256, steps: int = 10, linf_eps: float = 4 / 255, l2_eps: float = 2.0,
                 batch_size: int = 64, every_n_epochs: int = 1, seed: int = 0, l1_eps: float = 75.0,
                 val_measurements: list[str] | None = None, test_measurements: list[str] | None = None,
                 val_attack: str = "apgd", test_attack: str = "autoattack", test_steps: int = 100,
                 square_queries: int = 5000, severity: int = 3, recheck_fp32: bool = False,
                 expected_robustness: bool = False, grid_step: float = 1 / 255, log_images: bool = True) -> None:
        self.eps = {"linf": check_eps("robustness linf_eps", linf_eps), "l2": check_eps("robustness l2_eps", l2_eps),
                    "l1": check_eps("robustness l1_eps", l1_eps)}
        self.linf_eps, self.l2_eps, self.l1_eps = self.eps["linf"], self.eps["l2"], self.eps["l1"]
        self.val_measurements = list(val_measurements if val_measurements is not None else ["clean", "linf", "l2"])
        self.test_measurements = list(test_measurements if test_measurements is not None
                                      else ["clean", "linf", "l2", "l1", "common"])
        if isinstance(self.val_measurements, str) or isinstance(self.test_measurements, str):
            raise ConfigError("robustness val_measurements / test_measurements must be lists of names")
        if expected_robustness:
            for names in (self.val_measurements, self.test_measurements):
                if "expected_linf" not in names:
                    names.append("expected_linf")
        for name in (*self.val_measurements, *self.test_measurements):
            MEASUREMENTS.get(name)  # unknown name: ConfigError with the valid choices
        for label, budget in (("val_attack", val_attack), ("test_attack", test_attack)):
            if budget not in BUDGETS:
                raise ConfigError(f"robustness {label} must be one of {', '.join(BUDGETS)}, got {budget!r}")
        for label, value in (("steps", steps), ("test_steps", test_steps), ("square_queries", square_queries),
                             ("subset_size", subset_size), ("batch_size", batch_size), ("every_n_epochs", every_n_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if label in ("batch_size", "every_n_epochs") else 0):
                raise ConfigError(f"robustness {label} must be a non-negative integer, got {value!r}")
        if isinstance(severity, bool) or severity not in (1, 2, 3, 4, 5):
            raise ConfigError(f"robustness severity must be an integer 1-5, got {severity!r}")
        if check_eps("robustness grid_step", grid_step) == 0:
            raise ConfigError("robustness grid_step must be > 0")
        self.subset_size, self.steps, self.batch_size = subset_size, steps, batch_size
        self.every_n_epochs, self.seed = every_n_epochs, seed
        self.val_attack, self.test_attack, self.test_steps, self.square_queries = val_attack, test_attack, test_steps, square_queries
        self.severity, self.recheck_fp32, self.grid_step, self.log_images = severity, recheck_fp32, float(grid_step), log_images
        self.report: dict[str, dict] = {}

    def subset_indices(self, size: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(size, generator=generator)[: self.subset_size].sort().values.tolist()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.subset_size <= 0 or trainer.current_epoch % self.every_n_epochs:
            return
        self.measure(trainer, pl_module, "val", self.subset_indices(len(trainer.datamodule.datasets["val"])))

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.measure(trainer, pl_module, "test", list(range(len(trainer.datamodule.datasets["test"]))))

    def settings(self, split: str, num_examples: int, precision) -> Settings:
        test = split == "test"
        return Settings(budget=self.test_attack if test else self.val_attack, eps=dict(self.eps),
                        steps=self.test_steps if test else self.steps, square_queries=self.square_queries,
                        severity=self.severity, seed=self.seed, num_examples=num_examples,
                        recheck_fp32=self.recheck_fp32, grid_step=self.grid_step, precision=precision)

    def measure(self, trainer: Trainer, pl_module: LightningModule, split: str, indices: list[int]) -> dict:
        dataset = trainer.datamodule.datasets[split]
        names = self.test_measurements if split == "test" else self.val_measurements
        precision = trainer.precision_plugin.forward_context
        report = evaluate(pl_module.model, dataset, indices, names, self.settings(split, len(dataset), precision),
                          pl_module.device, self.batch_size, trainer.global_rank, trainer.world_size)
        # Every rank holds the same gathered figures: "max" over ranks is exact (a mean need not be).
        for column, value in report["accuracy"].items():
            pl_module.log(f"{split}/{column}", value, prog_bar=column in ("linf_acc", "l2_acc"), sync_dist=True,
                          reduce_fx="max")
        if split == "val":
            pl_module.log("val/selection_score", selection_score(report["accuracy"]), sync_dist=True, reduce_fx="max")
        self.report[split] = report
        if trainer.is_global_zero:
            self.log_figures(trainer, pl_module, split, report)
        return report

    def log_figures(self, trainer: Trainer, pl_module: LightningModule, split: str, report: dict) -> None:
        logger = trainer.logger
        if not isinstance(logger, TensorBoardLogger):
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover
            return
        step = trainer.global_step
        curve = report.get("expected_robustness")
        if curve:
            fig, ax = plt.subplots(figsize=(4, 3))
            ax.plot([e * 255 for e in curve["eps"]], curve["accuracy"], marker="o")
            ax.set(xlabel="Linf eps (x 1/255)", ylabel="accuracy", title=f"expected robustness {curve['area']:.3f}")
            logger.experiment.add_figure(f"{split}/expected_robustness", fig, step)
            plt.close(fig)
        examples = report.pop("_examples", None)
        if examples:
            rows = len(examples)
            count = min(len(examples[0][1]), 8)
            fig, axes = plt.subplots(rows, count, figsize=(1.4 * count, 1.6 * rows), squeeze=False)
            for r, (name, images, predictions, labels) in enumerate(examples):
                for c in range(count):
                    ax = axes[r][c]
                    ax.imshow(images[c].permute(1, 2, 0).float().clamp(0, 1).numpy())
                    ok = predictions[c] == labels[c]
                    ax.set_title(f"{name}: {predictions[c]}", fontsize=7, color="green" if ok else "red")
                    ax.axis("off")
            fig.tight_layout()
            logger.experiment.add_figure(f"{split}/examples", fig, step)
            plt.close(fig)


def evaluate(model, dataset, indices: list[int], names: list[str], settings: Settings, device,
             batch_size: int = 64, rank: int = 0, world_size: int = 1) -> dict:
    """Run `names` over `indices` (this rank's shard: indices[rank::world_size]), gather the
    per-example results of all ranks and summarize: accuracy per column, per corruption,
    settings, seconds, fp32 recheck counts, the expected-robustness curve."""
    measurements = build_measurements(names, model, settings)
    shard = indices[rank::world_size]
    results, seconds = per_example(model, dataset, shard, measurements, device, batch_size,
                                   progress=rank_zero_info if rank == 0 else None)
    results, seconds = gather(results, seconds)
    report: dict = {"accuracy": {}, "seconds": {}, "settings": {}, "num_images": len(indices)}
    for name, m in measurements.items():
        rows = results[name]
        if len(rows) != len(indices):
            rank_zero_warn(f"{name}: {len(rows)} results for {len(indices)} images")
        report["settings"][name] = m.settings
        report["seconds"][name] = round(seconds[name], 3)
        if m.grid is not None:
            table = torch.tensor([rows[i] for i in sorted(rows)], dtype=torch.float64)
            accuracy = table.mean(0).tolist() if len(table) else [0.0] * len(m.grid)
            report["expected_robustness"] = {"eps": m.grid, "accuracy": accuracy, "area": area(m.grid, accuracy)}
            report["accuracy"][m.column] = report["expected_robustness"]["area"]
            continue
        report["accuracy"][m.column] = sum(bool(v) for v in rows.values()) / max(len(rows), 1)
        if name == "common":
            per: dict[str, list[int]] = {}
            for i, ok in rows.items():
                per.setdefault(corruption_of(i, settings.num_examples), []).append(bool(ok))
            report["per_corruption"] = {k: sum(v) / len(v) for k, v in per.items()}
        if "fp32_rechecked" in m.extra:
            counts = torch.tensor([m.extra["fp32_rechecked"], m.extra["fp32_broken"]], dtype=torch.float64)
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(counts)
            report.setdefault("fp32_recheck", {})[name] = {"rechecked": int(counts[0]), "broken_in_fp32": int(counts[1])}
    examples = []
    for name, m in measurements.items():
        if m.last_inputs is not None:
            with torch.no_grad(), settings.precision():
                x = m.last_inputs[:8]
                predictions = model(x).argmax(1).tolist()
            labels = [int(dataset[i][1]) for i in shard[-len(m.last_inputs):][:8]] if shard else []
            examples.append((name, x.detach().cpu(), predictions, labels))
    if examples:
        report["_examples"] = examples
    return report
