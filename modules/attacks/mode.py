"""The model state an attack must run in, and must leave behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the body with `model` in eval mode, then restore every module's own flag.

    Flags are restored per module (not with `model.train()`), so a frozen backbone that a
    protocol keeps in eval mode stays there.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (frozen BatchNorm statistics, no dropout) with input gradients available.

    Inference mode is switched off: Lightning validates and tests under
    `torch.inference_mode`, which would otherwise silently remove the gradients an attack needs.
    """
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        yield


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters that need no gradient for the body: for attacks that call `backward()` (torchattacks'
    FAB), which would otherwise leave gradients in the parameters' `.grad`."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def as_attack_input(x: torch.Tensor) -> torch.Tensor:
    """A plain (non-inference) detached copy of `x` that autograd can differentiate through."""
    with torch.inference_mode(False):
        return x.detach().clone()
