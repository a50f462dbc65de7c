"""Fixtures for the backbone tests: the paper's CSV, a bit-for-bit state dict comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PAPER_CSV = Path(__file__).parents[3] / "shared/reference/paper_results.csv"


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    if not PAPER_CSV.exists():
        pytest.skip(f"the paper's results are not at {PAPER_CSV}")
    return PAPER_CSV


@pytest.fixture
def same_tensors():
    """A function: the keys whose tensors differ (bit for bit), or that one side lacks."""

    def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
        return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not torch.equal(a[k], b[k]))

    return differing


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, two OpenMP threads waiting on each other
    make small convolutions ~100x slower. Restored after each module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
