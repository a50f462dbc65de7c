"""Loss against loss: TRADES versus classic AT in the paper, every pair of losses in a study of one's own.

Two losses are compared on every (backbone, dataset, measurement) triple where a protocol has
both: the loss with the higher accuracy wins, equal accuracies are ties and are left out of the
tests. Per pair of losses (`loss_a`, `loss_b`), protocol and size class (and "all"):

- `win_odds` = a's wins / b's wins, with the exact two-sided binomial (sign) test of
  "each loss wins half the duels" (`sign_p`): which loss wins more often;
- `odds_ratio` and `p_value`: Fisher's exact test on [[a wins, b wins] in this size class,
  [a wins, b wins] in the other size classes], the sample odds ratio (> 1: a wins relatively
  more often in this size class than in the others). Undefined for "all". Each duel is counted
  once: a table [[t, a], [a, t]] would count it twice.
"""

from __future__ import annotations

import itertools

import pandas as pd
from scipy.stats import binomtest, fisher_exact

from modules.vocabulary import ACCURACY_COLUMNS, LOSS_NAMES, protocol_order, size_order

ALL = "all"
_PAIR = ["ft_strategy", "model_size", "backbone", "dataset"]
DUEL_COLUMNS = [
    "protocol",
    "size",
    "backbone",
    "dataset",
    "measurement",
    "loss_a",
    "loss_b",
    "a_acc",
    "b_acc",
    "winner",
]


def loss_pairs(losses: list[str]) -> list[tuple[str, str]]:
    """Every pair of the given losses, the paper's first (TRADES before classic AT), then by name."""
    known = [loss for loss in LOSS_NAMES.values() if loss in losses]
    ordered = known + sorted(loss for loss in set(losses) if loss not in known)
    return list(itertools.combinations(ordered, 2))


def duels(rows: pd.DataFrame, pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per (protocol, size, backbone, dataset, measurement, pair of losses) where both
    losses have a result: the two accuracies and `winner` (a loss or "tie")."""
    pairs = loss_pairs(list(rows["loss_function"].unique())) if pairs is None else pairs
    records = []
    for a, b in pairs:
        by_loss = {
            loss: rows[rows["loss_function"] == loss].set_index(_PAIR)[list(ACCURACY_COLUMNS)] for loss in (a, b)
        }
        paired = by_loss[a].join(by_loss[b], how="inner", lsuffix="|a", rsuffix="|b")
        for key, values in paired.iterrows():
            for measurement in ACCURACY_COLUMNS:
                acc_a, acc_b = values[f"{measurement}|a"], values[f"{measurement}|b"]
                winner = a if acc_a > acc_b else b if acc_b > acc_a else "tie"
                records.append((*key, measurement, a, b, acc_a, acc_b, winner))
    return pd.DataFrame(records, columns=DUEL_COLUMNS)


def _counts(duel: pd.DataFrame) -> dict[str, int]:
    return {
        "a_wins": int((duel["winner"] == duel["loss_a"]).sum()),
        "b_wins": int((duel["winner"] == duel["loss_b"]).sum()),
        "ties": int((duel["winner"] == "tie").sum()),
    }


def win_odds(a_wins: int, b_wins: int) -> tuple[float, float]:
    """The first loss's odds of winning a duel and the two-sided sign-test p-value."""
    n = a_wins + b_wins
    if n == 0:
        return float("nan"), float("nan")
    odds = a_wins / b_wins if b_wins else float("inf")
    return odds, float(binomtest(a_wins, n, 0.5).pvalue)


def fisher(inside: dict[str, int], outside: dict[str, int]) -> tuple[float, float]:
    """Odds ratio and two-sided p-value of a size class against the other size classes."""
    table = [[inside["a_wins"], inside["b_wins"]], [outside["a_wins"], outside["b_wins"]]]
    if min(sum(row) for row in table) == 0:
        return float("nan"), float("nan")
    result = fisher_exact(table)
    return float(result.statistic), float(result.pvalue)


WIN_COLUMNS = ["protocol", "loss_a", "loss_b", "size", "a_wins", "b_wins", "ties", "win_odds", "sign_p"]


def win_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Win counts, the first loss's win odds (sign test) and the size-class odds ratio (Fisher) per
    pair of losses, protocol and size class, plus "all"."""
    records = []
    for (a, b), of_pair in table.groupby(["loss_a", "loss_b"], sort=False):
        for protocol in protocol_order(list(of_pair["protocol"].unique())):
            of_protocol = of_pair[of_pair["protocol"] == protocol]
            for size in [*size_order(list(of_protocol["size"].unique())), ALL]:
                inside = of_protocol if size == ALL else of_protocol[of_protocol["size"] == size]
                counts = _counts(inside)
                odds, sign_p = win_odds(counts["a_wins"], counts["b_wins"])
                odds_ratio, p_value = (
                    (float("nan"), float("nan"))
                    if size == ALL
                    else fisher(counts, _counts(of_protocol[of_protocol["size"] != size]))
                )
                records.append(
                    {"protocol": protocol, "loss_a": a, "loss_b": b, "size": size, **counts}
                    | {"win_odds": odds, "sign_p": sign_p, "odds_ratio": odds_ratio, "p_value": p_value}
                )
    return pd.DataFrame(records, columns=[*WIN_COLUMNS, "odds_ratio", "p_value"])


def per_backbone(table: pd.DataFrame) -> pd.DataFrame:
    """Per pair of losses, protocol and backbone: each loss's wins over datasets x measurements."""
    records = []
    keys = ["loss_a", "loss_b", "protocol", "size", "backbone"]
    for (a, b, protocol, size, backbone), group in table.groupby(keys, sort=False):
        counts = _counts(group)
        better = a if counts["a_wins"] > counts["b_wins"] else b if counts["b_wins"] > counts["a_wins"] else "tie"
        records.append(
            {"protocol": protocol, "loss_a": a, "loss_b": b, "size": size, "backbone": backbone, **counts}
            | {"winner": better}
        )
    return pd.DataFrame(
        records, columns=["protocol", "loss_a", "loss_b", "size", "backbone", "a_wins", "b_wins", "ties", "winner"]
    )
