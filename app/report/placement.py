"""Placing the user's runs in the published ranking.

A run is ranked together with the published configurations of its protocol and
dataset (a pool of, in the paper, 80 = 40 backbones x 2 losses, plus the run): per
measurement (ties averaged), then by the sum of its five ranks, the dataset-level
Borda total, with ties at the lowest position. `rank` is its position among
`out_of` = published configurations + 1.

A configuration of the user's (backbone, loss, protocol) with runs on every dataset of its
protocol is also placed in that protocol's Borda ranking (`protocol_placements`): ranked
with the published configurations over all its datasets and measurements, as they are.
"""

from __future__ import annotations

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS, CONFIG_KEY

from .borda import borda, complete_rows, measurement_ranks
from .load import SOURCE

RANK_COLUMNS = [f"rank_{m}" for m in ACCURACY_COLUMNS]
PLACEMENT_COLUMNS = ["protocol", "dataset", "backbone", "loss", *RANK_COLUMNS, "borda", "rank", "out_of", SOURCE]


def place_run(run: pd.Series, published: pd.DataFrame) -> dict[str, object]:
    """The run's ranks among `published` rows of its protocol and dataset."""
    pool = published[(published["ft_strategy"] == run["ft_strategy"]) & (published["dataset"] == run["dataset"])]
    record: dict[str, object] = {
        "protocol": run["ft_strategy"],
        "dataset": run["dataset"],
        "backbone": run["backbone"],
        "loss": run["loss_function"],
        SOURCE: run[SOURCE],
    }
    if pool.empty:
        return record | {"out_of": 1}
    candidates = pd.concat([pool, run.to_frame().T], ignore_index=True)
    candidates[list(ACCURACY_COLUMNS)] = candidates[list(ACCURACY_COLUMNS)].astype(float)
    ranks = measurement_ranks(candidates)
    totals = ranks.sum(axis=1)
    mine = len(candidates) - 1
    record |= {f"rank_{m}": float(ranks.iloc[mine][m]) for m in ACCURACY_COLUMNS}
    return record | {
        "borda": float(totals.iloc[mine]),
        "rank": int(totals.rank(method="min").iloc[mine]),
        "out_of": len(candidates),
    }


def placements(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per run; ranks are empty where no published result shares its protocol and dataset."""
    records = [place_run(run, published) for _, run in runs.iterrows()]
    return pd.DataFrame(records, columns=PLACEMENT_COLUMNS)


PROTOCOL_PLACEMENT_COLUMNS = ["protocol", "backbone", "loss", "borda", "rank", "out_of"]
YOURS = " (yours)"  # marks a user's configuration beside a published one of the same name


def protocol_placements(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """The user's configurations that cover every dataset of their protocol, each ranked among the
    protocol's published (complete) configurations: its Borda total, rank and `out_of`."""
    records = []
    published = complete_rows(published)
    for (protocol, backbone, loss), config in runs.groupby(["ft_strategy", *CONFIG_KEY], sort=False):
        pool = published[published["ft_strategy"] == protocol]
        if pool.empty or not set(pool["dataset"]) <= set(config["dataset"]):
            continue
        mine = config[config["dataset"].isin(set(pool["dataset"]))].assign(backbone=backbone + YOURS)
        ranked = borda(pd.concat([pool, mine], ignore_index=True))
        row = ranked[ranked["backbone"] == backbone + YOURS].iloc[0]
        records.append(
            {
                "protocol": protocol,
                "backbone": backbone,
                "loss": loss,
                "borda": float(row["borda"]),
                "rank": int(row["rank"]),
                "out_of": len(ranked),
            }
        )
    return pd.DataFrame(records, columns=PROTOCOL_PLACEMENT_COLUMNS)
