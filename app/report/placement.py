"""Placing the user's runs in the published ranking.

Only a run of a published protocol on a published dataset can be placed; its loss and backbone
may be anything (a new loss is what a user most wants placed). With `--place-as`, the runs of
every other protocol are placed among that published protocol's configurations, and their
`protocol` reads "<their protocol> placed as <published protocol>" in every table and figure.

A run is ranked together with the published configurations of its protocol and dataset (a pool
of, in the paper, 80 = 40 backbones x 2 losses, plus the run): per measurement (ties averaged),
then by the sum of its five ranks, the dataset-level Borda total, with ties at the lowest
position. `rank` is its position among `out_of` = published configurations + 1.

A configuration of the user's (backbone, loss, protocol) with runs on every dataset of its
protocol is also placed in that protocol's Borda ranking (`protocol_placements`): ranked with
the published configurations over all of them, as they are. One with runs on only some of them
gets a predicted rank with an 80% interval (`predicted_placements`, app/report/prediction.py).
"""

from __future__ import annotations

import pandas as pd

from modules.vocabulary import ACCURACY_COLUMNS, CONFIG_KEY

from .borda import borda, complete_rows, measurement_ranks
from .load import CHECKS, SOURCE
from .prediction import PlacementModel, Published

LABEL = "protocol_label"  # extra column of placeable rows: the protocol as shown
RANK_COLUMNS = [f"rank_{m}" for m in ACCURACY_COLUMNS]
PLACEMENT_COLUMNS = [
    "protocol",
    "dataset",
    "backbone",
    "loss",
    *RANK_COLUMNS,
    "borda",
    "rank",
    "out_of",
    CHECKS,
    SOURCE,
]


def placeable(rows: pd.DataFrame, published: pd.DataFrame, place_as: str | None = None) -> pd.DataFrame:
    """The user's rows of the published protocols, and with `place_as` those of every other protocol
    relabelled as placed among `place_as`; `ft_strategy` is the published protocol they are placed
    among, `protocol_label` the protocol shown."""
    of_published = rows["ft_strategy"].isin(set(published["ft_strategy"]))
    parts = [rows[of_published].assign(**{LABEL: rows.loc[of_published, "ft_strategy"]})]
    if place_as is not None:
        others = rows[~of_published]
        parts.append(
            others.assign(**{LABEL: others["ft_strategy"] + f" placed as {place_as}", "ft_strategy": place_as})
        )
    return pd.concat(parts, ignore_index=True)


def place_run(run: pd.Series, pool: pd.DataFrame) -> dict[str, object]:
    """The run's ranks among `pool`, the published rows of its protocol and dataset."""
    candidates = pd.concat([pool, run.to_frame().T], ignore_index=True)
    candidates[list(ACCURACY_COLUMNS)] = candidates[list(ACCURACY_COLUMNS)].astype(float)
    ranks = measurement_ranks(candidates)
    totals = ranks.sum(axis=1)
    mine = len(candidates) - 1
    return {
        "protocol": run[LABEL],
        "dataset": run["dataset"],
        "backbone": run["backbone"],
        "loss": run["loss_function"],
        **{f"rank_{m}": float(ranks.iloc[mine][m]) for m in ACCURACY_COLUMNS},
        "borda": float(totals.iloc[mine]),
        "rank": int(totals.rank(method="min").iloc[mine]),
        "out_of": len(candidates),
        CHECKS: run.get(CHECKS) if isinstance(run.get(CHECKS), str) else "",
        SOURCE: run[SOURCE],
    }


def placements(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per placeable run on a dataset with published results of its protocol."""
    records = []
    for _, run in runs.iterrows():
        pool = published[(published["ft_strategy"] == run["ft_strategy"]) & (published["dataset"] == run["dataset"])]
        if len(pool):
            records.append(place_run(run, pool))
    return pd.DataFrame(records, columns=PLACEMENT_COLUMNS)


PROTOCOL_PLACEMENT_COLUMNS = ["protocol", "backbone", "loss", "borda", "rank", "out_of"]
YOURS = " (yours)"  # marks a user's configuration beside a published one of the same name


def _configurations(runs: pd.DataFrame, published: pd.DataFrame):
    """(label, backbone, loss, the protocol's complete published rows, the configuration's rows on its datasets)."""
    published = complete_rows(published)
    for (protocol, label, backbone, loss), config in runs.groupby(["ft_strategy", LABEL, *CONFIG_KEY], sort=False):
        pool = published[published["ft_strategy"] == protocol]
        mine = config[config["dataset"].isin(set(pool["dataset"]))]
        if len(mine):
            yield label, backbone, loss, pool, mine


def protocol_placements(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """The user's configurations that cover every dataset of their protocol, each ranked among the
    protocol's published (complete) configurations: its Borda total, rank and `out_of`."""
    records = []
    for label, backbone, loss, pool, mine in _configurations(runs, published):
        if set(mine["dataset"]) != set(pool["dataset"]):
            continue
        ranked = borda(pd.concat([pool, mine.assign(backbone=backbone + YOURS)], ignore_index=True))
        row = ranked[ranked["backbone"] == backbone + YOURS].iloc[0]
        records.append(
            {"protocol": label, "backbone": backbone, "loss": loss, "borda": float(row["borda"])}
            | {"rank": int(row["rank"]), "out_of": len(ranked)}
        )
    return pd.DataFrame(records, columns=PROTOCOL_PLACEMENT_COLUMNS)


PREDICTED_COLUMNS = [
    "protocol",
    "backbone",
    "loss",
    "datasets",
    "k",
    "basis",
    "predicted_rank",
    "low",
    "high",
    "out_of",
    "held_out_median_error",
    "held_out_p90_error",
]


def predicted_placements(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """The user's configurations that cover some but not all datasets of their protocol: the
    protocol rank predicted from the datasets they cover, with an 80% interval, and the model's
    errors on held-out published backbones for those datasets (app/report/prediction.py)."""
    records, models = [], {}
    for label, backbone, loss, pool, mine in _configurations(runs, published):
        datasets = sorted(set(pool["dataset"]))
        seen = sorted(set(mine["dataset"]))
        if len(seen) == len(datasets):
            continue
        protocol = mine["ft_strategy"].iloc[0]
        key = (protocol, tuple(seen))
        if key not in models:
            models[key] = PlacementModel(Published.of(pool, protocol), seen)
        model = models[key]
        accuracies = mine.set_index("dataset").loc[seen, list(ACCURACY_COLUMNS)].to_numpy(float)
        predicted = model.predict(accuracies)
        records.append(
            {
                "protocol": label,
                "backbone": backbone,
                "loss": loss,
                "datasets": "; ".join(seen),
                "k": len(seen),
                "basis": f"predicted from {len(seen)} of {len(datasets)} datasets",
                "predicted_rank": predicted.rank,
                "low": predicted.low,
                "high": predicted.high,
                "out_of": predicted.out_of,
                "held_out_median_error": predicted.record.median,
                "held_out_p90_error": predicted.record.p90,
            }
        )
    return pd.DataFrame(records, columns=PREDICTED_COLUMNS)
