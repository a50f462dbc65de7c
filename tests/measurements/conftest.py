"""A tiny trained CNN on a 10-class synthetic task (16x16), fast enough for attack tests on 2 cores."""

import pytest
import torch
from torch import nn


def make_data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    prototypes = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(123))
    x = (0.6 * prototypes[y] + 0.4 * torch.rand(n, 3, 16, 16, generator=g)).clamp(0, 1)
    return x, y


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 10),
    )
    x, y = make_data(200, seed=1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def model() -> nn.Module:
    return make_model()


@pytest.fixture(scope="session")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_data(32)
