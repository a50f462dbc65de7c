"""TRADES versus classic adversarial training.

The two losses are compared on every (backbone, dataset, measurement) triple where a
protocol has both: the loss with the higher accuracy wins, equal accuracies are ties
and are left out of the test. Per protocol and size class (and "all"), Fisher's exact
test runs on the 2x2 table [[TRADES wins, TRADES losses], [AT wins, AT losses]]; with
ties left out, TRADES losses = AT wins, so the table is [[t, a], [a, t]] and the odds
ratio is (t / a)^2: above 1 TRADES wins more often, below 1 classic AT does.
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import fisher_exact

from .names import CLASSIC_AT, MEASUREMENTS, TRADES, protocol_order, size_order

ALL = "all"
_PAIR = ["ft_strategy", "model_size", "backbone", "dataset"]


def duels(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, size, backbone, dataset, measurement) with both losses:
    the two accuracies and `winner` (TRADES, Classic AT or tie)."""
    by_loss = {loss: rows[rows["loss_function"] == loss].set_index(_PAIR)[list(MEASUREMENTS)]
               for loss in (TRADES, CLASSIC_AT)}
    paired = by_loss[TRADES].join(by_loss[CLASSIC_AT], how="inner", lsuffix="|trades", rsuffix="|at")
    records = []
    for key, values in paired.iterrows():
        for measurement in MEASUREMENTS:
            trades, at = values[f"{measurement}|trades"], values[f"{measurement}|at"]
            winner = TRADES if trades > at else CLASSIC_AT if at > trades else "tie"
            records.append((*key, measurement, trades, at, winner))
    return pd.DataFrame(records, columns=["protocol", "size", "backbone", "dataset", "measurement",
                                          "trades_acc", "at_acc", "winner"])


def _counts(winners: pd.Series) -> dict[str, int]:
    return {"trades_wins": int((winners == TRADES).sum()), "at_wins": int((winners == CLASSIC_AT).sum()),
            "ties": int((winners == "tie").sum())}


def fisher(trades_wins: int, at_wins: int) -> tuple[float, float]:
    """Odds ratio and two-sided p-value on [[t, a], [a, t]] (see the module docstring)."""
    if trades_wins + at_wins == 0:
        return float("nan"), float("nan")
    result = fisher_exact([[trades_wins, at_wins], [at_wins, trades_wins]])
    return float(result.statistic), float(result.pvalue)


def win_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Win counts, odds ratio and p-value per protocol and size class (plus "all")."""
    records = []
    for protocol in protocol_order(list(table["protocol"].unique())):
        of_protocol = table[table["protocol"] == protocol]
        for size in [*size_order(list(of_protocol["size"].unique())), ALL]:
            subset = of_protocol if size == ALL else of_protocol[of_protocol["size"] == size]
            counts = _counts(subset["winner"])
            odds_ratio, p_value = fisher(counts["trades_wins"], counts["at_wins"])
            records.append({"protocol": protocol, "size": size, **counts,
                            "odds_ratio": odds_ratio, "p_value": p_value})
    return pd.DataFrame(records, columns=["protocol", "size", "trades_wins", "at_wins", "ties",
                                          "odds_ratio", "p_value"])


def per_backbone(table: pd.DataFrame) -> pd.DataFrame:
    """Per protocol and backbone: wins of each loss over datasets x measurements."""
    records = []
    for (protocol, size, backbone), group in table.groupby(["protocol", "size", "backbone"], sort=False):
        counts = _counts(group["winner"])
        better = (TRADES if counts["trades_wins"] > counts["at_wins"]
                  else CLASSIC_AT if counts["at_wins"] > counts["trades_wins"] else "tie")
        records.append({"protocol": protocol, "size": size, "backbone": backbone, **counts, "winner": better})
    return pd.DataFrame(records, columns=["protocol", "size", "backbone", "trades_wins", "at_wins", "ties",
                                          "winner"])
