"""Fixtures shared by every test folder: a tiny BatchNorm classifier, a batch of images, the paper's CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modules.backbones import NormalizedClassifier, create_classifier

PAPER_CSV = Path(__file__).parents[2] / "shared/reference/paper_results.csv"


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    """The published results (../shared/reference/paper_results.csv beside the checkout)."""
    if not PAPER_CSV.exists():
        pytest.skip(f"the paper's results are not at {PAPER_CSV}")
    return PAPER_CSV


@pytest.fixture
def tiny_model() -> NormalizedClassifier:
    """timm's test ResNet (BatchNorm, 0.4M parameters), random weights, 10 classes."""
    torch.manual_seed(0)
    return create_classifier("test_resnet", num_classes=10, pretrained=False)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(8, 3, 16, 16, generator=generator), torch.randint(0, 10, (8,), generator=generator)
