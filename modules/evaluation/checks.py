"""The reference AutoAttack's checks for a robustness figure that cannot be trusted (fra31/auto-attack,
`autoattack/checks.py`, explained in its `flags_doc.md`), with its thresholds, run on every
adversarial measurement of a test, and a sixth of the app's own for the robustness curve.

| check          | trips when (the reference's threshold)                                                   |
|----------------|-------------------------------------------------------------------------------------------|
| randomized     | 5 forward passes of the same batch differ: L2 distance of the L2-normalized outputs > 1e-4, |
|                | or a different number of correct predictions                                              |
| probabilities  | the outputs look like probabilities, not logits: all in (-1e-5, 1 + 1e-5), rows sum to 1   |
| zero_gradients | an example's input gradient of the loss is exactly zero (any: the figure is how many)     |
| dynamic        | the forward pass calls autograd itself (`grad`, `backward`, `_make_grads`)                |
| n_classes      | more target classes than the model has (APGD-T, FAB-T) or too few for the DLR loss        |
| square         | Square (black-box) broke more than 0.2% of the examples the white-box attacks could not   |
| monotone_curve | (app) expected robustness: accuracy rises by more than one example with a larger eps     |

The model-level checks (randomized, probabilities, zero gradients, dynamic) run on the first batch
of the test set (a few forward passes: they cost little); `n_classes` and `square` read the
attack's settings and who broke what. Each result is `passed`, `tripped` (with the figure and the
threshold) or `skipped` (with why): a check that cannot run is never recorded as passed.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

RANDOMIZED_RUNS, RANDOMIZED_ALPHA = 5, 1e-4
PROBABILITY_ALPHA = 1e-5
SQUARE_ALPHA = 0.002
AUTOGRAD_CALLS = ("grad", "backward", "_make_grads")  # what the reference counts inside a forward pass


@dataclass
class Verdict:
    status: str  # passed | tripped | skipped
    figure: float | str | None = None
    threshold: float | str | None = None
    why: str = ""


def passed(figure: float | str | None = None, threshold: float | str | None = None) -> Verdict:
    return Verdict("passed", figure, threshold)


def l2_normalized(output: torch.Tensor) -> torch.Tensor:
    return output / (output.flatten(1).norm(dim=1).view(-1, 1) + 1e-10)


def randomized(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Verdict:
    with torch.no_grad():
        outputs = [model(x).float() for _ in range(RANDOMIZED_RUNS)]
    correct = [int((output.argmax(1) == y).sum()) for output in outputs]
    normalized = [l2_normalized(output) for output in outputs]
    difference = max(
        float((normalized[a] - normalized[b]).flatten(1).norm(dim=1).max())
        for a in range(RANDOMIZED_RUNS)
        for b in range(a + 1, RANDOMIZED_RUNS)
    )
    if difference > RANDOMIZED_ALPHA or len(set(correct)) > 1:
        return Verdict(
            "tripped",
            difference,
            RANDOMIZED_ALPHA,
            f"{RANDOMIZED_RUNS} forward passes of the same images differ (normalized outputs up to {difference:.2g} "
            f"apart, correct {min(correct)}-{max(correct)}): a randomized model; AutoAttack's figure may be too high",
        )
    return passed(difference, RANDOMIZED_ALPHA)


def probabilities(output: torch.Tensor) -> Verdict:
    sums = float((output.sum(-1) - 1).abs().max())
    looks = float(output.max()) < 1 + PROBABILITY_ALPHA and float(output.min()) > -PROBABILITY_ALPHA
    if looks and sums < PROBABILITY_ALPHA:
        return Verdict(
            "tripped",
            sums,
            PROBABILITY_ALPHA,
            "the outputs are probabilities (in [0, 1], rows sum to 1), not logits: the attacks' losses are weakened",
        )
    return passed(sums, PROBABILITY_ALPHA)


def zero_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Verdict:
    """The input gradient of the cross-entropy, as the first step of APGD-CE takes it."""
    with torch.inference_mode(False), torch.enable_grad():  # Lightning tests under inference mode
        inputs, labels = x.detach().clone().requires_grad_(True), y.detach().clone()
        loss = F.cross_entropy(model(inputs).float(), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, [inputs])
    zero = int((gradient.flatten(1).abs().sum(1) == 0).sum())
    if zero:
        return Verdict(
            "tripped",
            zero / len(x),
            0,
            f"{zero} of {len(x)} examples have a zero input gradient: gradient-based attacks cannot move them "
            "(masked gradients)",
        )
    return passed(0.0, 0)


def dynamic(model: nn.Module, x: torch.Tensor) -> Verdict:
    calls = dict.fromkeys(AUTOGRAD_CALLS, 0)

    def trace(frame, event, arg) -> None:
        if event == "call" and frame.f_code.co_name in calls:
            calls[frame.f_code.co_name] += 1

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        with torch.no_grad():
            model(x)
    finally:
        sys.settrace(previous)
    count = sum(calls.values())
    if count:
        return Verdict(
            "tripped",
            count,
            0,
            f"the forward pass calls autograd itself ({count} calls): a dynamic defense, which AutoAttack may not "
            "evaluate fully",
        )
    return passed(0, 0)


def n_classes(settings: dict[str, Any], classes: int) -> Verdict:
    """The targeted attacks against the model's classes, for AutoAttack (APGD-T, FAB-T)."""
    components = settings.get("components") or []
    if not any(name in components for name in ("apgd-t", "fab-t")):
        return Verdict("skipped", why=f"{settings.get('algorithm')} runs no targeted attack")
    if classes < 4:
        return Verdict(
            "skipped",
            classes,
            4,
            f"{classes} classes: the targeted DLR loss of APGD-T needs 4, so APGD-T is left out",
        )
    targets = 5 if settings.get("norm") == "L1" else 9
    if targets + 1 > classes:
        return Verdict(
            "tripped",
            classes - 1,
            targets,
            f"the targeted attacks use {targets} target classes but the model has {classes - 1} other classes",
        )
    return passed(classes - 1, targets)


def square(broken_by: dict[str, int] | None, examples: int) -> Verdict:
    if not broken_by or "square" not in broken_by:
        return Verdict("skipped", why="no Square attack in this measurement")
    share = broken_by["square"] / max(examples, 1)
    if share > SQUARE_ALPHA:
        return Verdict(
            "tripped",
            share,
            SQUARE_ALPHA,
            f"Square (black-box) broke {broken_by['square']} examples ({share:.1%}) that the white-box attacks "
            "could not: the gradients may be masked and the robust figure too high",
        )
    return passed(share, SQUARE_ALPHA)


def monotone_curve(curve: dict[str, Any] | None, examples: int) -> Verdict:
    if not curve:
        return Verdict("skipped", why="no expected-robustness curve measured")
    accuracy = curve["accuracy"]
    rise = max((later - earlier for earlier, later in zip(accuracy, accuracy[1:])), default=0.0)
    if rise > 1 / max(examples, 1):
        return Verdict(
            "tripped",
            rise,
            1 / max(examples, 1),
            f"the accuracy rises by {rise:.1%} with a larger eps: the attack is failing at some radii",
        )
    return passed(rise, 1 / max(examples, 1))


def model_checks(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, Verdict], int]:
    """The checks of the model itself on one batch (in eval mode, as the attacks see it), and its
    number of classes (from the same forward pass that the probabilities check reads)."""
    from modules.attacks.mode import eval_mode

    with eval_mode(model):
        with torch.no_grad():
            output = model(x).float()
        verdicts = {
            "randomized": randomized(model, x, y),
            "probabilities": probabilities(output),
            "zero_gradients": zero_gradients(model, x, y),
            "dynamic": dynamic(model, x),
        }
    return verdicts, output.shape[1]


def measurement_checks(
    model_verdicts: dict[str, Verdict], report: dict[str, Any], measurement: str, classes: int
) -> dict[str, dict[str, Any]]:
    """Every check of one measurement as results.json records it."""
    settings = report["settings"][measurement]
    verdicts = dict(model_verdicts)
    if measurement == "expected_linf":
        verdicts["monotone_curve"] = monotone_curve(report.get("expected_robustness"), report["num_images"])
    else:
        verdicts["n_classes"] = n_classes(settings, classes)
        verdicts["square"] = square(report.get("broken_by", {}).get(measurement), report["num_images"])
    return {name: asdict(verdict) for name, verdict in verdicts.items()}


def warnings_of(checks: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One line per tripped check: `linf: square Square (black-box) broke ...`."""
    return [
        f"{measurement}: {name}: {verdict['why']}"
        for measurement, verdicts in checks.items()
        for name, verdict in verdicts.items()
        if verdict["status"] == "tripped"
    ]
