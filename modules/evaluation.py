"""Accuracy under perturbations over a loader: the shared loop of every robustness measurement."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from modules.attacks.mode import eval_mode

Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def count_correct(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    perturbations: dict[str, Perturbation | None],
    device: torch.device,
    precision: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[dict[str, int], int]:
    """Correct predictions per perturbation (None = clean) and the number of examples.

    The model is evaluated in eval mode; attacks restore every module's mode themselves.
    `precision` gives the autocast context of the run (mixed precision attacks the same
    model that trains).
    """
    correct = dict.fromkeys(perturbations, 0)
    total = 0
    with eval_mode(model):
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            total += len(y)
            for name, perturb in perturbations.items():
                with precision():
                    inputs = x if perturb is None else perturb(x, y)
                    with torch.no_grad():
                        correct[name] += int((model(inputs).argmax(1) == y).sum())
    return correct, total
