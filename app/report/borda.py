"""Borda ranking of (backbone, loss) configurations within a protocol (BENCHMARK.md).

Every configuration is ranked within each (dataset, measurement) pair, higher accuracy
first, ties sharing the average rank; a configuration's Borda total is the sum of its
ranks, the smallest total is the best, and `rank` orders the totals with ties sharing
the lowest position (pandas' method="min").

A configuration missing a dataset that others in its protocol have would collect fewer
ranks and look better than it is, so it is excluded from that protocol's ranking and
listed by `incomplete_configurations` instead.
"""

from __future__ import annotations

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS, CONFIG_KEY, protocol_order, size_order

RANKING_COLUMNS = ["protocol", "backbone", "loss", "borda", "rank"]


def measurement_ranks(rows: pd.DataFrame) -> pd.DataFrame:
    """Each row's rank (1 = most accurate, ties averaged) per measurement within its dataset."""
    return rows.groupby("dataset")[list(ACCURACY_COLUMNS)].rank(ascending=False, method="average")


def _dataset_coverage(rows: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of each protocol: the datasets it lacks among those the protocol has."""
    records = []
    for protocol, group in rows.groupby("ft_strategy", sort=False):
        datasets = set(group["dataset"])
        for (backbone, loss), config in group.groupby(CONFIG_KEY, sort=False):
            missing = sorted(datasets - set(config["dataset"]))
            records.append(
                {"protocol": protocol, "backbone": backbone, "loss": loss, "missing_datasets": "; ".join(missing)}
            )
    return pd.DataFrame(records, columns=["protocol", "backbone", "loss", "missing_datasets"])


def incomplete_configurations(rows: pd.DataFrame) -> pd.DataFrame:
    """Configurations lacking a dataset that other configurations of their protocol have."""
    coverage = _dataset_coverage(rows)
    return coverage[coverage["missing_datasets"] != ""].reset_index(drop=True)


def complete_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configurations that cover every dataset of their protocol."""
    incomplete = incomplete_configurations(rows)
    keys = pd.MultiIndex.from_frame(rows[["ft_strategy", *CONFIG_KEY]])
    excluded = pd.MultiIndex.from_frame(incomplete[["protocol", "backbone", "loss"]])
    return rows[~keys.isin(excluded)]


def borda(rows: pd.DataFrame) -> pd.DataFrame:
    """Borda totals and ranks of the configurations in `rows` (one protocol, complete)."""
    ranks = measurement_ranks(rows)
    totals = ranks.sum(axis=1).groupby([rows["backbone"], rows["loss_function"]]).sum()
    result = totals.rename("borda").reset_index().rename(columns={"loss_function": "loss"})
    result["rank"] = result["borda"].rank(method="min").astype(int)
    return result.sort_values(["rank", "backbone", "loss"], kind="stable").reset_index(drop=True)


def rankings(rows: pd.DataFrame, by_size: bool = False) -> pd.DataFrame:
    """Borda ranking per protocol over the complete configurations in `rows`; with
    `by_size`, recomputed within each size class (column `size` after `protocol`)."""
    rows = complete_rows(rows)
    columns = ["protocol", "size", *RANKING_COLUMNS[1:]] if by_size else RANKING_COLUMNS
    parts = []
    for protocol in protocol_order(list(rows["ft_strategy"].unique())):
        of_protocol = rows[rows["ft_strategy"] == protocol]
        sizes = size_order(list(of_protocol["model_size"].unique())) if by_size else [None]
        for size in sizes:
            subset = of_protocol if size is None else of_protocol[of_protocol["model_size"] == size]
            ranked = borda(subset).assign(protocol=protocol, size=size)
            parts.append(ranked[columns])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
