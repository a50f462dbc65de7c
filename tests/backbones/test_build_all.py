"""Every study backbone builds with pretrained=False at 224x224 with a new head, and normalizes
with its own pretrained config's statistics (CLIP ones with CLIP's). Large ones are marked slow."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from modules.model.backbone_zoo import BACKBONES
from modules.model.backbones import create_classifier

CASES = [
    pytest.param(name, marks=[pytest.mark.slow] if info.size == "large" else [], id=name)
    for name, info in BACKBONES.items()
]


@pytest.mark.parametrize("name", CASES)
def test_builds_at_224_with_its_normalization(name):
    info = BACKBONES[name]
    torch.manual_seed(0)
    model = create_classifier(name, num_classes=7, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 7) and torch.isfinite(out).all()
    assert model.net.get_classifier().out_features == 7
    if info.checkpoint_format:  # robust checkpoints: trained with ImageNet statistics
        mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    else:
        config = timm.models.get_pretrained_cfg(info.timm_name)
        mean, std = config.mean, config.std
        assert model.net.pretrained_cfg["tag"] == info.pretrained_tag
    assert tuple(model.mean.flatten().tolist()) == pytest.approx(mean)
    assert tuple(model.std.flatten().tolist()) == pytest.approx(std)
    if "clip" in info.timm_name:
        assert tuple(model.mean.flatten().tolist()) == pytest.approx(OPENAI_CLIP_MEAN)
        assert tuple(model.std.flatten().tolist()) == pytest.approx(OPENAI_CLIP_STD)


def test_clip_backbones_get_clip_statistics():
    clip = [name for name, info in BACKBONES.items() if "clip" in info.timm_name]
    assert len(clip) == 5
    for name in clip:
        config = timm.models.get_pretrained_cfg(BACKBONES[name].timm_name)
        assert tuple(config.mean) == pytest.approx((0.4815, 0.4578, 0.4082), abs=1e-4), name
