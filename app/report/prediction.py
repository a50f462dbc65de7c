"""Placement from fewer datasets: a configuration's protocol rank predicted from k of its datasets.

The protocol's Borda total of a configuration adds its ranks on every (dataset, measurement) pair.
The datasets a configuration has not run hold the unknown part of it. The model, fitted on the
protocol's published configurations (all complete):

- Each configuration's rank on each (dataset, measurement) among the published ones (1 = most
  accurate, ties averaged), and per dataset the sum of its five ranks (its dataset Borda sum).
- The unseen part of a configuration's total (the sum over the datasets not run) is a linear
  function of its dataset Borda sums on the datasets run: ordinary least squares over the
  published configurations.
- A new configuration's rank on a column it has is 0.5 + the number of published configurations
  above it (a tie counts half): its rank among them as if inserted, on their scale. Its predicted
  total is those ranks plus the predicted unseen part; its predicted rank is 1 + the number of
  published configurations with a lower total, of `out_of` = published + 1.
- The 80% interval adds the 10th and 90th percentiles of the model's errors on held-out backbones
  (leave one backbone out, both of its losses, over the published configurations) to the
  predicted total, as ranks.
- `choose` names the k datasets to run first: the subset with the smallest mean absolute rank
  error on held-out backbones (then the smallest median, then by name). The mean, not the
  median: over 80 held-out configurations the median of integer errors moves by whole places
  between near-equal subsets, and the choice it makes changes from fold to fold.

The baseline it is measured against (`benchmarks/placement.py`) ranks the configuration on its
observed datasets alone. Numpy only: the report and the planner need no torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from modules.vocabulary import ACCURACY_COLUMNS, CONFIG_KEY

from .borda import complete_rows

INTERVAL = (0.1, 0.9)  # the quantiles of the held-out errors that make the 80% interval


@dataclass(frozen=True)
class Published:
    """One protocol's complete published configurations: accuracies [configuration, dataset, measurement]."""

    configs: list[tuple[str, str]]  # (backbone, loss)
    datasets: list[str]
    accuracies: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame, protocol: str) -> Published:
        rows = complete_rows(rows[rows["ft_strategy"] == protocol])
        datasets = sorted(rows["dataset"].unique())
        table = rows.set_index([*CONFIG_KEY, "dataset"])[list(ACCURACY_COLUMNS)].astype(float)
        cube = table.unstack("dataset").sort_index()  # columns: (measurement, dataset)
        configs = [tuple(key) for key in cube.index]
        values = cube.to_numpy().reshape(len(configs), len(ACCURACY_COLUMNS), len(datasets)).transpose(0, 2, 1)
        return cls(configs, datasets, values)

    @property
    def backbones(self) -> np.ndarray:
        return np.array([backbone for backbone, _ in self.configs])

    def without(self, backbone: str) -> Published:
        keep = self.backbones != backbone
        return Published([c for c, k in zip(self.configs, keep) if k], self.datasets, self.accuracies[keep])

    def indices(self, datasets: list[str]) -> list[int]:
        return [self.datasets.index(d) for d in datasets]


def column_ranks(accuracies: np.ndarray) -> np.ndarray:
    """Ranks within each (dataset, measurement) column: 1 = most accurate, ties averaged."""
    return rankdata(-accuracies, axis=0, method="average")


def ranks_against(published: np.ndarray, accuracies: np.ndarray) -> np.ndarray:
    """A configuration's rank in each column as if inserted among `published` [n, ...], on their scale."""
    return 0.5 + (published > accuracies).sum(0) + 0.5 * (published == accuracies).sum(0)


def rank_of(total: float, totals: np.ndarray) -> int:
    """Position of a Borda total among others' (1 + those strictly lower: ties share the lowest)."""
    return 1 + int((totals < total).sum())


def _weights(ranks: np.ndarray, seen: list[int]) -> np.ndarray:
    sums = ranks[:, seen].sum(2)
    unseen = ranks.sum((1, 2)) - sums.sum(1)
    design = np.c_[np.ones(len(sums)), sums]
    return np.linalg.lstsq(design, unseen, rcond=None)[0]


def _predicted_total(weights: np.ndarray, seen_ranks: np.ndarray) -> float:
    """seen_ranks: [k, measurements] of one configuration."""
    return float(seen_ranks.sum() + weights @ np.r_[1.0, seen_ranks.sum(1)])


@dataclass(frozen=True)
class HeldOut:
    """The model's record on held-out backbones for one subset of datasets."""

    seen: list[str]
    errors: np.ndarray  # absolute rank errors, one per held-out configuration
    residuals: np.ndarray  # true total - predicted total

    @property
    def median(self) -> float:
        return float(np.median(self.errors))

    @property
    def mean(self) -> float:
        return float(self.errors.mean())

    @property
    def p90(self) -> float:
        return float(np.quantile(self.errors, 0.9))


def held_out(published: Published, seen: list[str]) -> HeldOut:
    """Leave one backbone out at a time: fit on the rest, predict its configurations' totals."""
    index = published.indices(seen)
    ranks = column_ranks(published.accuracies)
    totals = ranks.sum((1, 2))
    backbones = published.backbones
    errors, residuals = [], []
    for backbone in dict.fromkeys(backbones):
        out = backbones == backbone
        weights = _weights(ranks[~out], index)
        for i in np.flatnonzero(out):
            predicted = _predicted_total(weights, ranks[i, index])
            residuals.append(totals[i] - predicted)
            errors.append(abs(rank_of(predicted, totals[~out]) - rank_of(totals[i], totals[~out])))
    return HeldOut(seen, np.array(errors, dtype=float), np.array(residuals))


def choose(published: Published, k: int) -> list[HeldOut]:
    """Every subset of k datasets with its held-out record, best first."""
    records = [held_out(published, list(subset)) for subset in itertools.combinations(published.datasets, k)]
    return sorted(records, key=lambda r: (r.mean, r.median, r.seen))


@dataclass(frozen=True)
class Prediction:
    rank: int
    low: int  # the 80% interval, in ranks
    high: int
    out_of: int
    total: float  # the predicted Borda total
    record: HeldOut  # the model's errors on held-out backbones for the datasets seen


class PlacementModel:
    """The model for one protocol and one subset of its datasets, fitted on all published configurations."""

    def __init__(self, published: Published, seen: list[str]) -> None:
        self.published, self.seen = published, seen
        self.index = published.indices(seen)
        ranks = column_ranks(published.accuracies)
        self.totals = ranks.sum((1, 2))
        self.weights = _weights(ranks, self.index)
        self.record = held_out(published, seen)
        self.low, self.high = np.quantile(self.record.residuals, INTERVAL)

    def predict(self, accuracies: np.ndarray) -> Prediction:
        """accuracies: [len(seen), measurements] of the new configuration, in `seen`'s order."""
        ranks = ranks_against(self.published.accuracies[:, self.index], accuracies)
        total = _predicted_total(self.weights, ranks)
        return Prediction(
            rank=rank_of(total, self.totals),
            low=rank_of(total + self.low, self.totals),
            high=rank_of(total + self.high, self.totals),
            out_of=len(self.totals) + 1,
            total=total,
            record=self.record,
        )
