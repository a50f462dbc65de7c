"""Adaptation protocols: which backbone parameters train, epoch by epoch.

A protocol names the trainable parameters of the timm network; `apply_protocol` sets
`requires_grad` from that, and `freeze_modes` keeps every fully frozen sub-module in eval
mode so that its BatchNorm statistics never move (the module calls it after each `train()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from timm.models import group_parameters
from torch import nn

from modules.registry import ConfigError, Registry


@dataclass
class ProtocolOptions:
    partial_blocks: int = 1  # partial: how many of the last backbone blocks train
    partial_unit: Literal["block", "stage"] = "block"  # partial: timm's fine or coarse groups
    lp_epochs: int = 5  # lp_ft: epochs of linear probing before full fine-tuning


Protocol = Callable[[nn.Module, int], set[str]]  # (timm net, epoch) -> trainable parameter names
PROTOCOLS: Registry[Callable[[ProtocolOptions], Protocol]] = Registry("protocol")


def head_parameters(net: nn.Module) -> set[str]:
    head = net.get_classifier()
    return {name for name, param in net.named_parameters() if any(param is p for p in head.parameters())}


def block_groups(net: nn.Module, unit: str) -> list[set[str]]:
    """The network's parameter groups in forward order, from timm's `group_matcher`; the group
    holding the classifier (with, for some models, the final norm) comes last."""
    groups = group_parameters(net, net.group_matcher(coarse=unit == "stage"))
    return [set(names) for _, names in sorted(groups.items())]


@PROTOCOLS.register("full")
def full(options: ProtocolOptions) -> Protocol:
    return lambda net, epoch: {name for name, _ in net.named_parameters()}


@PROTOCOLS.register("linear_probe")
def linear_probe(options: ProtocolOptions) -> Protocol:
    return lambda net, epoch: head_parameters(net)


@PROTOCOLS.register("partial")
def partial(options: ProtocolOptions) -> Protocol:
    if options.partial_blocks < 0:
        raise ConfigError(f"partial_blocks must be >= 0, got {options.partial_blocks}")

    def trainable(net: nn.Module, epoch: int) -> set[str]:
        groups = block_groups(net, options.partial_unit)
        *blocks, last = groups
        if options.partial_blocks > len(blocks):
            raise ConfigError(
                f"partial_blocks={options.partial_blocks}, but the backbone has only "
                f"{len(blocks)} {options.partial_unit} groups"
            )
        chosen = blocks[len(blocks) - options.partial_blocks :] + [last]
        return set().union(*chosen) | head_parameters(net)

    return trainable


@PROTOCOLS.register("lp_ft")
def lp_ft(options: ProtocolOptions) -> Protocol:
    if options.lp_epochs < 0:
        raise ConfigError(f"lp_epochs must be >= 0, got {options.lp_epochs}")
    probe, fine_tune = linear_probe(options), full(options)
    return lambda net, epoch: probe(net, epoch) if epoch < options.lp_epochs else fine_tune(net, epoch)


def build_protocol(name: str, options: ProtocolOptions) -> Protocol:
    return PROTOCOLS.get(name)(options)


def apply_protocol(net: nn.Module, trainable: set[str]) -> None:
    for name, param in net.named_parameters():
        param.requires_grad_(name in trainable)


def freeze_modes(module: nn.Module) -> None:
    """Put every frozen part into eval mode: sub-modules whose parameters are all frozen, and,
    inside a partly frozen module, its parameter-free children (pooling, dropout) too, so
    a linear probe's backbone is entirely in eval while full fine-tuning keeps its dropout."""
    trainable = [p.requires_grad for p in module.parameters()]
    if trainable and not any(trainable):
        module.eval()
        return
    partly_frozen = trainable and not all(trainable)
    for child in module.children():
        if partly_frozen and next(child.parameters(), None) is None:
            child.eval()
        else:
            freeze_modes(child)


STUDY_PROTOCOLS = {("full", 50): "fft50", ("full", 5): "fft5", ("linear_probe", 50): "lp50"}


def study_protocol(protocol: str, epochs: int) -> str:
    """The study's protocol name (fft50 / fft5 / lp50) for a run, or `<protocol>-<epochs>ep` for others."""
    return STUDY_PROTOCOLS.get((protocol, epochs), f"{protocol}-{epochs}ep")
