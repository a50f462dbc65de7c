"""Fixtures shared by every test folder: a tiny BatchNorm classifier, a batch of images, the paper's CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.report.paper import PAPER_RESULTS
from modules.model.backbones import NormalizedClassifier, create_classifier


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    """The published results, as shipped with the app."""
    return PAPER_RESULTS


@pytest.fixture
def tiny_model() -> NormalizedClassifier:
    """timm's test ResNet (BatchNorm, 0.4M parameters), random weights, 10 classes."""
    torch.manual_seed(0)
    return create_classifier("test_resnet", num_classes=10, pretrained=False)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(8, 3, 16, 16, generator=generator), torch.randint(0, 10, (8,), generator=generator)
