"""`measure`: the study's measurements of any classifier, from a notebook or another training loop.

    from modules.evaluation import measure

    result = measure(model, test_loader, ("clean", "linf", "l2", "l1", "common"), device="cuda")
    result.accuracy              # {"clean_acc": 0.87, "Linf_acc": 0.53, ...}: the paper's columns
    result.outcomes["linf"][i]   # dataset example i: [robust, code] (code: which attack broke it)
    result.report                # results.json's fields: settings, seconds, per corruption, checks, ...
    result.report["warnings"]    # the reference AutoAttack's checks that tripped (masked gradients, ...)

It is the code `python -m app test` runs (`modules.evaluation.evaluate`: the same fixed batches,
each with its own seed, attacks and predictions in fp32 unless told otherwise), on one process:
the same model and images give the same figures. The model takes images in [0, 1]; a model that
expects normalized images is given its `mean` and `std`, and the normalization is put inside it
(attacks and corruptions work in pixel space). Attacks run in eval mode, with gradients on even
under `torch.no_grad()`, and every module's mode is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from modules.evaluation.loop import evaluate
from modules.evaluation.measurements import PRECISIONS, EvaluationSettings, autocast, check_choice, check_settings
from modules.evaluation.summary import results_fields
from modules.registry import ConfigError
from modules.vocabulary import PAPER_EPS

STUDY_MEASUREMENTS = ("clean", "linf", "l2", "l1", "common")


@dataclass
class Measured:
    accuracy: dict[str, float]  # the paper's columns: clean_acc, Linf_acc, L2_acc, L1_acc, common_acc, ...
    outcomes: dict[str, dict[int, Any]]  # measurement -> dataset index -> that example's outcome
    report: dict[str, Any]  # as results.json: attacks (settings), num_test_images, seconds, per_corruption, ...


def check_pixel_range(dataset: Dataset) -> None:
    """The measurements perturb pixels in [0, 1]: normalized images are one clear error."""
    image = dataset[0][0]
    if not torch.is_tensor(image) or image.dim() != 3:
        raise ConfigError(
            f"measure: the dataset's items must be (image tensor C x H x W, label), got {type(image).__name__}"
        )
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:
        raise ConfigError(
            f"measure: images must be in [0, 1], the first is in [{low:.3g}, {high:.3g}]: give unnormalized "
            "images and the model's normalization (measure(..., mean=..., std=...))"
        )


def measure(
    model: nn.Module,
    data: DataLoader | Dataset,
    measurements: Sequence[str] = STUDY_MEASUREMENTS,
    device: str | torch.device | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    eps: dict[str, float] | None = None,
    attack: str = "autoattack",
    steps: int = 100,
    square_queries: int = 5000,
    severity: int = 3,
    corruption_assignment: str = "blocks",
    precision: str = "32",
    seed: int = 0,
    batch_size: int | None = None,
) -> Measured:
    """Measure `model` on every example of `data` (a DataLoader, whose dataset and batch size are
    used, or a Dataset of (image in [0, 1], label)).

    `measurements`: names of the registry (`modules.evaluation.MEASUREMENTS`): clean, linf, l2,
    l1, common, expected_linf. `eps`: radii by norm, default the study's at 224x224 (Linf 4/255,
    L2 2.0, L1 75). `attack`: "autoattack" (the standard version, the paper's), "apgd", ...
    `precision`: "32" or "bf16" for attacks and predictions. `device`: where to run (the model is
    moved there; default: CUDA when available). Bad names or values raise `ConfigError` before any
    work."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    batch = batch_size or (data.batch_size if isinstance(data, DataLoader) else None) or 64
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = check_choice("measure precision", str(precision), PRECISIONS)
    settings = EvaluationSettings(
        attack=attack,
        eps=dict(PAPER_EPS) | (eps or {}),
        steps=steps,
        square_queries=square_queries,
        severity=severity,
        seed=seed,
        num_examples=len(dataset),
        corruption_assignment=corruption_assignment,
        precision=autocast(device.type, precision),
        precision_name=precision,
    )
    check_settings(list(measurements), settings)
    if (mean is None) != (std is None):
        raise ConfigError("measure: give both mean and std (the model's normalization), or neither")
    check_pixel_range(dataset)
    if mean is not None:
        from modules.model.backbones import NormalizedClassifier

        model = NormalizedClassifier(model, tuple(mean), tuple(std))
    model = model.to(device)
    indices = list(range(len(dataset)))
    report = evaluate(model, dataset, indices, list(measurements), settings, device, batch, outcomes=True, checks=True)
    outcomes = report.pop("outcomes")
    report.pop("_examples", None)
    fields = results_fields(report)
    return Measured(accuracy=fields.pop("figures"), outcomes=outcomes, report=fields)
