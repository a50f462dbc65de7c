"""What each of the five measurements costs per image, and the standard AutoAttack against the
reference implementation (`pyautoattack`, when installed) on the same model and images.

The labels are the model's own predictions, so that every image is attacked (a randomly initialised
model gets most labels wrong, and attacks skip misclassified images): the worst case of the cost."""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from dataclasses import dataclass

import torch

from app.bench.steps import Setup, batch, build_model
from modules.attacks import AutoAttack
from modules.attacks.autoattack import COMPONENTS
from modules.attacks.base import BROKEN, ROBUST
from modules.evaluation import EvaluationSettings, evaluate
from modules.evaluation.measurements import autocast
from modules.vocabulary import PAPER_EPS, Norm

MEASURED = ["clean", "linf", "l2", "l1", "common"]


def radii(image_size: int) -> dict[str, float]:
    """The paper's radii (for 224 x 224) at another image size: the same change per pixel."""
    scale = image_size / 224
    return {"linf": PAPER_EPS["linf"], "l2": PAPER_EPS["l2"] * scale, "l1": PAPER_EPS["l1"] * scale**2}


def measurement_cost(setup: Setup, images: int, steps: int, queries: int, reference: bool) -> dict[str, object]:
    device = torch.device(setup.device)
    model = build_model(setup).eval()
    x, _ = batch(setup, images)
    with torch.no_grad():
        y = model(x).argmax(1)
    eps = radii(setup.image_size)
    settings = EvaluationSettings(
        attack="autoattack",
        eps=eps,
        steps=steps,
        square_queries=queries,
        num_examples=images,
        precision=autocast(device.type, "32"),
        precision_name="32",
    )
    dataset = list(zip(x.cpu(), y.cpu()))
    report = evaluate(model, dataset, list(range(images)), MEASURED, settings, device, batch_size=images)
    result: dict[str, object] = {
        "images": images,
        "autoattack_steps": steps,
        "square_queries": queries,
        "eps": eps,
        "seconds_per_image": {name: report["seconds"][name] / images for name in MEASURED},
    }
    if reference and importlib.util.find_spec("pyautoattack") is not None:
        result["reference"] = {
            norm.value: against_reference(model, x, y, norm.value, eps[norm.measurement], steps, queries)
            for norm in (Norm.LINF, Norm.L2)
        }
    return result


@dataclass
class AutoAttackRun:
    robust: torch.Tensor  # per example
    broken_by: dict[str, int]  # examples each component broke
    seconds: float


def ours_autoattack(
    model, x, y, norm: str, eps: float, steps: int = 100, queries: int = 5000, bf16: bool = False
) -> AutoAttackRun:
    """This project's standard AutoAttack (under bf16 autocast with `bf16`)."""
    started = time.perf_counter()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        _, outcome = AutoAttack(model, norm, eps, steps=steps, square_queries=queries).run(x, y)
    seconds = time.perf_counter() - started
    return AutoAttackRun(
        outcome == ROBUST, {name: int((outcome == BROKEN + k).sum()) for k, name in enumerate(COMPONENTS)}, seconds
    )


class _AccuracyLog(logging.Handler):
    """Collects the reference's "robust accuracy after <ATTACK>: xx.xx%" lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.after: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = re.match(r"robust accuracy after ([A-Z-]+): ([\d.]+)%", record.getMessage())
        if found:
            self.after[found[1].lower()] = float(found[2]) / 100


def reference_autoattack(model, x, y, norm: str, eps: float, steps: int = 100, queries: int = 5000) -> AutoAttackRun:
    """`pyautoattack`'s standard AutoAttack with the same budget; what each component broke is read off its log."""
    from pyautoattack import AutoAttack as Reference
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    attack = Reference(model, norm=norm, eps=eps, version="standard", seed=0, device=x.device)
    if steps != attack.apgd.n_iter:  # APGD sets its step-size checkpoints from n_iter when built: rebuild
        apgd, targeted = attack.apgd, attack.apgd_targeted
        common = {"n_iter": steps, "norm": norm, "eps": eps, "seed": 0, "device": x.device, "logger": attack.logger}
        attack.apgd = APGDAttack(model, n_restarts=apgd.n_restarts, use_largereps=apgd.use_largereps, **common)
        attack.apgd_targeted = APGDAttack_targeted(
            model,
            n_restarts=targeted.n_restarts,
            n_target_classes=targeted.n_target_classes,
            use_largereps=targeted.use_largereps,
            **common,
        )
        attack.fab.n_iter = steps
    attack.square.n_queries = queries
    log, logger = _AccuracyLog(), logging.getLogger("auto-attack")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    started = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):  # it reseeds them
            _, y_adv = attack.run_standard_evaluation(x, y, batch_size=len(x))
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        before = int((model(x).argmax(1) == y).sum())
    broken_by = {}
    for name in COMPONENTS:
        after = round(log.after.get(name, before / len(y)) * len(y))
        broken_by[name], before = before - after, after
    return AutoAttackRun(y_adv == y, broken_by, seconds)


def against_reference(model, x, y, norm: str, eps: float, steps: int, queries: int) -> dict[str, float]:
    """Our standard AutoAttack and the reference's, same model, images and budget, side by side."""
    ours = ours_autoattack(model, x, y, norm, eps, steps, queries)
    theirs = reference_autoattack(model, x, y, norm, eps, steps, queries)
    return {
        "ours_seconds": ours.seconds,
        "reference_seconds": theirs.seconds,
        "time_ratio": ours.seconds / theirs.seconds,
        "ours_accuracy": float(ours.robust.float().mean()),
        "reference_accuracy": float(theirs.robust.float().mean()),
    }
