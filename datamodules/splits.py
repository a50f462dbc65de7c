"""The study's split rules (BENCHMARK.md, "Datasets"), in one place."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

SPLIT_SEED = 42  # every stratified train/val/test split
CUT_SEED = 0  # the stratified cut of large test sets
TEST_CAP = 1000


def stratified_split(indices: np.ndarray, labels: np.ndarray, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` (positions into `labels`) stratified by label, with the study's seed."""
    first, second = train_test_split(indices, test_size=test_size, stratify=labels[indices], random_state=SPLIT_SEED)
    return np.sort(first), np.sort(second)


def split_trainval(trainval: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """trainval -> train / val, 85 / 15 stratified."""
    return stratified_split(trainval, labels, test_size=0.15)


def split_all(labels: np.ndarray) -> dict[str, np.ndarray]:
    """A dataset without an official split: 80 / 20 trainval / test, then 85 / 15 train / val.

    Chained as `train_test_split` calls chain: the 85 / 15 split and the test cut see trainval and
    test in the order the first split returned them (sorting them first would pick other images).
    """
    trainval, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=SPLIT_SEED)
    train, val = split_trainval(trainval, labels)
    return {"train": train, "val": val, "test": test}


def cut_test(test: np.ndarray, labels: np.ndarray, cap: int = TEST_CAP) -> np.ndarray:
    """A test set larger than `cap` is cut to `cap` images by a stratified subsample."""
    if len(test) <= cap:
        return test
    kept, _ = train_test_split(test, train_size=cap, stratify=labels[test], random_state=CUT_SEED)
    return np.sort(kept)
