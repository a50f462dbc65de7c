"""What each of the five measurements costs per image, and the standard AutoAttack against the
reference implementation (`pyautoattack`, when installed) on the same model and images.

The labels are the model's own predictions, so that every image is attacked (a randomly initialised
model gets most labels wrong, and attacks skip misclassified images): the worst case of the cost."""

from __future__ import annotations

import importlib.util
import logging
import time

import torch

from app.bench.steps import Setup, batch, build_model
from modules.attacks import AutoAttack
from modules.callbacks.robustness import autocast
from modules.evaluation import Settings, evaluate
from modules.evaluation.measurements import PAPER_EPS

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
    settings = Settings(attack="autoattack", eps=eps, steps=steps, square_queries=queries, num_examples=images,
                        precision=autocast(device.type, "32"), precision_name="32")
    dataset = list(zip(x.cpu(), y.cpu()))
    report = evaluate(model, dataset, list(range(images)), MEASURED, settings, device, batch_size=images)
    result: dict[str, object] = {
        "images": images, "autoattack_steps": steps, "square_queries": queries, "eps": eps,
        "seconds_per_image": {name: report["seconds"][name] / images for name in MEASURED},
    }
    if reference and importlib.util.find_spec("pyautoattack") is not None:
        result["reference"] = {norm: against_reference(model, x, y, norm, eps[name], steps, queries)
                               for name, norm in (("linf", "Linf"), ("l2", "L2"))}
    return result


def against_reference(model, x, y, norm: str, eps: float, steps: int, queries: int) -> dict[str, float]:
    """Our standard AutoAttack and the reference's, same model, images and budget, side by side."""
    from pyautoattack import AutoAttack as Reference
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    started = time.perf_counter()
    _, outcome = AutoAttack(model, norm, eps, steps=steps, square_queries=queries).run(x, y)
    ours = time.perf_counter() - started
    attack = Reference(model, norm=norm, eps=eps, version="standard", seed=0, device=x.device)
    # APGD sets its step-size checkpoints from n_iter when built: rebuild with the same budget as ours
    attack.apgd = APGDAttack(model, n_iter=steps, norm=norm, n_restarts=1, eps=eps, seed=0, device=x.device,
                             logger=attack.logger)
    attack.apgd_targeted = APGDAttack_targeted(model, n_iter=steps, norm=norm, n_restarts=1, eps=eps, seed=0,
                                               device=x.device, n_target_classes=9, logger=attack.logger)
    attack.fab.n_iter = steps
    attack.square.n_queries = queries
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        _, y_adv = attack.run_standard_evaluation(x, y, batch_size=len(x))
    theirs = time.perf_counter() - started
    return {"ours_seconds": ours, "reference_seconds": theirs, "time_ratio": ours / theirs,
            "ours_accuracy": float((outcome == 0).float().mean()),
            "reference_accuracy": float((y_adv == y).float().mean())}
