"""Build a classifier from a timm backbone: normalization inside, a fresh linear head."""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from modules.model.backbone_zoo import BACKBONES, backbone_info
from modules.model.checkpoints import load_weights_file
from modules.model.pretrained import pretrained_file
from modules.model.shared import head_classes, local_folder, read_config, shared_model
from modules.model.shared import timm_name as shared_timm_name
from modules.registry import ConfigError, UnknownNameError


class NormalizedClassifier(nn.Module):
    """Takes [0, 1] images; applies the backbone's own mean/std before the timm model.

    Keeping normalization inside the model means attacks and corruptions work in pixel space.
    """

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @property
    def head(self) -> nn.Module:
        return self.net.get_classifier()


def resolve_timm_name(name: str) -> str:
    """The timm name for a study backbone, any timm model or a shared model folder (`hf-hub:ORG/NAME`,
    `local-dir:DIR`, checked without network: see `modules.model.shared`); a clear error for anything else."""
    info = backbone_info(name)
    if info:
        return info.timm_name
    shared = shared_model(name)
    if shared is not None:
        if shared.source == "local-dir":
            local_folder(shared)
        return name
    if timm.is_model(name.split(".", 1)[0]):
        return name
    close = difflib.get_close_matches(name, [*BACKBONES, *timm.list_models()], n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}" if close else ""
    raise UnknownNameError(
        f"unknown backbone {name!r}; valid choices: the study's {len(BACKBONES)} backbones "
        f"(`python -m app backbones`), any timm model name, hf-hub:ORG/NAME or local-dir:DIR{hint}"
    )


def saved_head_classes(name: str) -> int | None:
    """How many classes the head of `name`'s pretrained weights has (None when not known)."""
    shared = shared_model(name)
    if shared is not None:
        return head_classes(read_config(shared))
    config = timm.models.get_pretrained_cfg(resolve_timm_name(name))
    return getattr(config, "num_classes", None)


def check_kept_head(name: str, num_classes: int, weights: str | None) -> None:
    """`keep_head`: the pretrained head is kept, so it must come with the pretrained weights and fit the dataset."""
    if weights is not None:
        raise ConfigError(
            "model.keep_head keeps the head of the backbone's own pretrained weights: not with model.weights"
        )
    saved = saved_head_classes(name)
    if saved != num_classes:
        raise ConfigError(
            f"model.keep_head: the head of backbone {name!r} has {saved} classes but the dataset has {num_classes}: "
            f"measure it on a dataset of its {saved} classes, or set keep_head false to train a new head"
        )


def create_classifier(
    name: str, num_classes: int, pretrained: bool = True, weights: str | None = None, keep_head: bool = False
) -> NormalizedClassifier:
    """`name`: a study backbone (app or paper name), a timm model (`arch` or `arch.tag`) or a shared
    model folder (`hf-hub:ORG/NAME`, `local-dir:DIR`, which bring their own mean and std).

    `pretrained`: the pretrained weights, read from the local Hugging Face cache, else fetched
    (`modules.model.pretrained`: one clear error when the hub cannot be reached).

    `weights`: a local file to load the backbone from instead of the timm hub; for the robust
    backbones it is read in the entry's `checkpoint_format` (`madry`, `revisiting`), for any other
    backbone as a timm state dict (see `modules.model.checkpoints.CHECKPOINT_FORMATS`).

    `keep_head`: the pretrained weights with their own head (it must have `num_classes` classes), whatever
    `pretrained` says: a model fine-tuned elsewhere, measured or trained further on its own dataset.
    """
    timm_name = resolve_timm_name(name)
    info = backbone_info(name)
    shared = shared_model(name)
    if weights is not None and not Path(weights).is_file():
        raise ConfigError(f"weights file not found: {weights}")
    if shared is not None and weights is not None:
        raise ConfigError(f"backbone {name!r} brings its own weights: give model.weights only with a timm backbone")
    if info and info.checkpoint_format and pretrained and weights is None:
        raise ConfigError(
            f"backbone {name!r} is not on the timm hub: give its checkpoint with --model.weights PATH "
            f"(format {info.checkpoint_format!r}), or set --model.pretrained false"
        )
    if keep_head:
        check_kept_head(name, num_classes, weights)
        pretrained = True
    overlay = {}
    if shared is not None:
        timm_name = shared_timm_name(shared, weights=pretrained)
    elif pretrained and weights is None and (hub_file := pretrained_file(name, timm_name)):
        overlay = {"pretrained_cfg_overlay": {"file": str(hub_file)}}
    try:
        net = timm.create_model(
            timm_name, pretrained=pretrained and weights is None, num_classes=num_classes, **overlay
        )
    except RuntimeError as error:  # e.g. an unknown pretrained tag
        raise ConfigError(f"timm cannot build backbone {timm_name!r}: {error}") from error
    if weights is not None:
        load_weights_file(net, weights, (info.checkpoint_format if info else None) or "timm")
    return NormalizedClassifier(net, *normalization(net, info))


def normalization(net: nn.Module, info=None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The backbone's own mean/std: timm's pretrained config (ImageNet, CLIP, 0.5 ...).

    The robust checkpoints (Madry lab, Revisiting-AT) were trained with ImageNet statistics
    behind their architecture's default timm tag (e.g. `vit_base_patch16_224` defaults to 0.5/0.5),
    so those use ImageNet's.
    """
    if info is not None and info.checkpoint_format:
        return tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)
    config = net.pretrained_cfg
    return tuple(config["mean"]), tuple(config["std"])
