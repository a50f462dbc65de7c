"""Fixtures for the backbone tests: a bit-for-bit state dict comparison, one thread; helpers: hub_server.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch


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


# test files import `hub_server` from this folder; pytest's importlib mode does not add it
sys.path.insert(0, str(Path(__file__).parent))
