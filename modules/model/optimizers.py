"""AdamW with backbone / head parameter groups, no weight decay on biases and norms."""

from __future__ import annotations

import torch
from torch import nn


def no_decay(name: str, param: torch.Tensor, skip: set[str]) -> bool:
    """Biases and normalization parameters (1-d), plus the model's own no-decay list (pos_embed, ...)."""
    return param.ndim <= 1 or name.endswith(".bias") or name in skip


def parameter_groups(
    net: nn.Module, head: set[str], lr_backbone: float, lr_head: float, wd_backbone: float, wd_head: float
) -> list[dict]:
    skip = set(net.no_weight_decay()) if hasattr(net, "no_weight_decay") else set()
    groups: dict[tuple[str, bool], list[torch.Tensor]] = {}
    for name, param in net.named_parameters():
        part = "head" if name in head else "backbone"
        groups.setdefault((part, no_decay(name, param, skip)), []).append(param)
    settings = {"backbone": (lr_backbone, wd_backbone), "head": (lr_head, wd_head)}
    return [
        {
            "params": params,
            "lr": settings[part][0],
            "weight_decay": 0.0 if exempt else settings[part][1],
            "name": f"{part}{'_no_decay' if exempt else ''}",
        }
        for (part, exempt), params in sorted(groups.items())
    ]
