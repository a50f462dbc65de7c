"""The reference AutoAttack's checks (randomness, probabilities, zero gradients, a dynamic defense,
target classes, Square breaking what the white-box attacks could not) and the robustness curve's:
each trips on a model built to trip it, stays quiet on a trained model, and agrees with the
reference's own checks (pyautoattack) on the same model and images."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from modules.evaluation import EvaluationSettings, evaluate
from modules.evaluation.checks import monotone_curve, square

EPS = 6 / 255  # where the trained model of conftest.py is partly robust
BUDGET = {"steps": 10, "square_queries": 300}


class ZeroGradient(torch.autograd.Function):
    """The identity whose gradient is zero: masked gradients, the model's outputs unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(gradient)


class Wrapped(nn.Module):
    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "masked":
            return self.model(ZeroGradient.apply(x))
        logits = self.model(x)
        if self.kind == "randomized":  # small noise: the predictions stay, the outputs differ
            return logits + 1e-3 * torch.randn_like(logits)
        if self.kind == "softmax":
            return logits.softmax(1)
        if self.kind == "dynamic":  # a defense that takes an input gradient inside its forward pass
            with torch.enable_grad():
                inputs = x.detach().requires_grad_(True)
                (gradient,) = torch.autograd.grad(self.model(inputs).sum(), [inputs])
            return self.model((x - 1e-6 * gradient.sign()).clamp(0, 1))
        if self.kind == "five_classes":
            return logits[:, :5]
        if self.kind == "three_classes":
            return logits[:, :3]
        return logits


TRIPS = {
    "trained": set(),
    "randomized": {"randomized"},
    "softmax": {"probabilities"},
    "masked": {"zero_gradients", "square"},
    "dynamic": {"dynamic"},
    "five_classes": {"n_classes"},
}


def tripped(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[set[str], dict]:
    settings = EvaluationSettings(eps={"linf": EPS, "l2": 0.5, "l1": 4.0}, num_examples=len(x), **BUDGET)
    report = evaluate(model, list(zip(x, y)), list(range(len(x))), ["linf"], settings, "cpu", 32, checks=True)
    verdicts = report["checks"]["linf"]
    return {name for name, verdict in verdicts.items() if verdict["status"] == "tripped"}, report


@pytest.mark.parametrize("kind", list(TRIPS))
def test_each_check_trips_on_the_model_built_to_trip_it(model, data, kind):
    x, y = data
    if kind == "five_classes":
        y = y % 5
    names, report = tripped(Wrapped(model, kind).eval(), x, y)
    assert names == TRIPS[kind]
    assert len(report["warnings"]) == len(names) and all(line.startswith("linf: ") for line in report["warnings"])
    verdicts = report["checks"]["linf"]
    assert all(verdicts[name]["why"] for name in names)  # a tripped check says what it saw
    assert {verdict["status"] for verdict in verdicts.values()} <= {"passed", "tripped", "skipped"}


def test_the_checks_run_under_lightnings_inference_mode(model, data):
    x, y = data
    with torch.inference_mode():  # how Lightning runs a test: the gradient check still gets its gradients
        names, report = tripped(model, x.clone(), y.clone())
    assert names == set() and report["checks"]["linf"]["zero_gradients"]["status"] == "passed"


def test_a_check_that_cannot_run_is_skipped_with_why(model, data):
    x, y = data
    _, report = tripped(Wrapped(model, "three_classes").eval(), x, y % 3)
    verdict = report["checks"]["linf"]["n_classes"]
    assert verdict["status"] == "skipped" and "3 classes" in verdict["why"]
    assert square(None, 10).status == "skipped"


def test_a_robustness_curve_that_rises_with_eps_is_flagged():
    assert monotone_curve({"eps": [0, 1, 2], "accuracy": [0.9, 0.5, 0.6]}, 100).status == "tripped"
    assert monotone_curve({"eps": [0, 1, 2], "accuracy": [0.9, 0.5, 0.5]}, 100).status == "passed"
    assert monotone_curve(None, 100).status == "skipped"


REFERENCE_MESSAGES = {
    "randomized": "randomized defense",
    "probabilities": "probability distribution",
    "zero_gradients": "zero gradient",
    "dynamic": "dynamic defense",
    "n_classes": "target classes",
    "square": "Square Attack has decreased",
}


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.reference
@pytest.mark.parametrize("kind", list(TRIPS))
def test_the_verdicts_are_the_references_on_the_same_model_and_images(model, data, kind):
    pytest.importorskip("pyautoattack")
    from app.bench.measurements import reference_autoattack

    x, y = data
    if kind == "five_classes":
        y = y % 5
    wrapped = Wrapped(model, kind).eval()
    ours, _ = tripped(wrapped, x, y)
    from pyautoattack import checks

    checks.funcs.update(dict.fromkeys(checks.funcs, 0))  # the reference never resets its autograd call counts
    caught, logger = Warnings(), logging.getLogger("auto-attack")
    logger.addHandler(caught)
    try:
        torch.manual_seed(0)
        reference_autoattack(wrapped, x, y, "Linf", EPS, BUDGET["steps"], BUDGET["square_queries"])
    except IndexError:  # the reference's APGD-T cannot run with 9 targets on 5 classes: its checks warned first
        assert kind == "five_classes"
    finally:
        logger.removeHandler(caught)
    theirs = {name for name, text in REFERENCE_MESSAGES.items() if any(text in m for m in caught.messages)}
    assert ours == theirs, caught.messages
