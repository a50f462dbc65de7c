"""TRADES versus classic adversarial training.

The two losses are compared on every (backbone, dataset, measurement) triple where a
protocol has both: the loss with the higher accuracy wins, equal accuracies are ties and
are left out of the tests. Per protocol and size class (and "all"):

- `win_odds` = TRADES wins / AT wins, with the exact two-sided binomial (sign) test of
  "each loss wins half the duels" (`sign_p`): which loss wins more often;
- `odds_ratio` and `p_value`: Fisher's exact test on [[TRADES wins, AT wins] in this size
  class, [TRADES wins, AT wins] in the other size classes], the sample odds ratio (> 1:
  TRADES wins relatively more often in this size class than in the others). Undefined for
  "all". Each duel is counted once: a table [[t, a], [a, t]] would count it twice.
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import binomtest, fisher_exact

from modules.vocabulary import ACCURACY_COLUMNS, CLASSIC_AT, TRADES, protocol_order, size_order

ALL = "all"
_PAIR = ["ft_strategy", "model_size", "backbone", "dataset"]


def duels(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, size, backbone, dataset, measurement) with both losses:
    the two accuracies and `winner` (TRADES, Classic AT or tie)."""
    by_loss = {
        loss: rows[rows["loss_function"] == loss].set_index(_PAIR)[list(ACCURACY_COLUMNS)]
        for loss in (TRADES, CLASSIC_AT)
    }
    paired = by_loss[TRADES].join(by_loss[CLASSIC_AT], how="inner", lsuffix="|trades", rsuffix="|at")
    records = []
    for key, values in paired.iterrows():
        for measurement in ACCURACY_COLUMNS:
            trades, at = values[f"{measurement}|trades"], values[f"{measurement}|at"]
            winner = TRADES if trades > at else CLASSIC_AT if at > trades else "tie"
            records.append((*key, measurement, trades, at, winner))
    return pd.DataFrame(
        records, columns=["protocol", "size", "backbone", "dataset", "measurement", "trades_acc", "at_acc", "winner"]
    )


def _counts(winners: pd.Series) -> dict[str, int]:
    return {
        "trades_wins": int((winners == TRADES).sum()),
        "at_wins": int((winners == CLASSIC_AT).sum()),
        "ties": int((winners == "tie").sum()),
    }


def win_odds(trades_wins: int, at_wins: int) -> tuple[float, float]:
    """TRADES' odds of winning a duel and the two-sided sign-test p-value."""
    n = trades_wins + at_wins
    if n == 0:
        return float("nan"), float("nan")
    odds = trades_wins / at_wins if at_wins else float("inf")
    return odds, float(binomtest(trades_wins, n, 0.5).pvalue)


def fisher(inside: dict[str, int], outside: dict[str, int]) -> tuple[float, float]:
    """Odds ratio and two-sided p-value of a size class against the other size classes."""
    table = [[inside["trades_wins"], inside["at_wins"]], [outside["trades_wins"], outside["at_wins"]]]
    if min(sum(row) for row in table) == 0:
        return float("nan"), float("nan")
    result = fisher_exact(table)
    return float(result.statistic), float(result.pvalue)


def win_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Win counts, TRADES' win odds (sign test) and the size-class odds ratio (Fisher) per
    protocol and size class, plus "all"."""
    records = []
    for protocol in protocol_order(list(table["protocol"].unique())):
        of_protocol = table[table["protocol"] == protocol]
        for size in [*size_order(list(of_protocol["size"].unique())), ALL]:
            inside = of_protocol if size == ALL else of_protocol[of_protocol["size"] == size]
            counts = _counts(inside["winner"])
            odds, sign_p = win_odds(counts["trades_wins"], counts["at_wins"])
            odds_ratio, p_value = (
                (float("nan"), float("nan"))
                if size == ALL
                else fisher(counts, _counts(of_protocol[of_protocol["size"] != size]["winner"]))
            )
            records.append(
                {
                    "protocol": protocol,
                    "size": size,
                    **counts,
                    "win_odds": odds,
                    "sign_p": sign_p,
                    "odds_ratio": odds_ratio,
                    "p_value": p_value,
                }
            )
    return pd.DataFrame(
        records,
        columns=["protocol", "size", "trades_wins", "at_wins", "ties", "win_odds", "sign_p", "odds_ratio", "p_value"],
    )


def per_backbone(table: pd.DataFrame) -> pd.DataFrame:
    """Per protocol and backbone: wins of each loss over datasets x measurements."""
    records = []
    for (protocol, size, backbone), group in table.groupby(["protocol", "size", "backbone"], sort=False):
        counts = _counts(group["winner"])
        better = (
            TRADES
            if counts["trades_wins"] > counts["at_wins"]
            else CLASSIC_AT
            if counts["at_wins"] > counts["trades_wins"]
            else "tie"
        )
        records.append({"protocol": protocol, "size": size, "backbone": backbone, **counts, "winner": better})
    return pd.DataFrame(records, columns=["protocol", "size", "backbone", "trades_wins", "at_wins", "ties", "winner"])
