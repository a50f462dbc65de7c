"""Fixtures shared by every test folder: a tiny BatchNorm classifier and a batch of images."""

from __future__ import annotations

import pytest
import torch

from modules.backbones import NormalizedClassifier, create_classifier


@pytest.fixture
def tiny_model() -> NormalizedClassifier:
    """timm's test ResNet (BatchNorm, 0.4M parameters), random weights, 10 classes."""
    torch.manual_seed(0)
    return create_classifier("test_resnet", num_classes=10, pretrained=False)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(8, 3, 16, 16, generator=generator), torch.randint(0, 10, (8,), generator=generator)
