"""Spearman/MAC, TRADES-vs-AT counts with Fisher's test, and proxies, computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from app.report.agreement import agreement, mean_absolute_correlation, spearman_matrix
from app.report.losses import duels, loss_pairs, per_backbone, win_counts
from app.report.proxies import proxy_correlations, proxy_pairs
from modules.vocabulary import ACCURACY_COLUMNS


def _table(columns: dict[str, list[float]], **constant: object) -> pd.DataFrame:
    return pd.DataFrame(columns).assign(**constant)


def test_spearman_and_mac():
    # ranks: clean 1234, Linf 4321, L2 1324, L1 1234, common 4321
    rows = _table(
        {
            "clean_acc": [0.1, 0.2, 0.3, 0.4],
            "Linf_acc": [0.4, 0.3, 0.2, 0.1],
            "L2_acc": [0.1, 0.3, 0.2, 0.4],
            "L1_acc": [0.1, 0.2, 0.3, 0.4],
            "common_acc": [0.4, 0.3, 0.2, 0.1],
        },
        ft_strategy="FFT (50 epochs)",
    )
    matrix = spearman_matrix(rows)
    # clean vs L2: d = (0, 1, 1, 0), rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert matrix.loc["clean_acc", "L2_acc"] == pytest.approx(0.8)
    assert matrix.loc["Linf_acc", "L2_acc"] == pytest.approx(-0.8)
    assert matrix.loc["clean_acc", "Linf_acc"] == pytest.approx(-1.0)
    assert matrix.loc["L1_acc", "clean_acc"] == pytest.approx(1.0)
    # |rho| over the 10 pairs: six at 1 (c-Linf, c-L1, c-common, Linf-L1, Linf-common, L1-common), four at 0.8
    assert mean_absolute_correlation(matrix) == pytest.approx((6 * 1 + 4 * 0.8) / 10)
    correlations, mac = agreement(rows)
    assert mac.values.tolist() == [["FFT (50 epochs)", pytest.approx(0.92), 4]]
    assert list(correlations["measurement"]) == list(ACCURACY_COLUMNS)


def test_spearman_with_ties_uses_average_ranks():
    rows = _table({m: [0.1, 0.2, 0.3] for m in ACCURACY_COLUMNS}, ft_strategy="LP (50 epochs)")
    rows["Linf_acc"] = [0.5, 0.5, 0.1]  # ranks (2.5, 2.5, 1) vs clean (1, 2, 3)
    # Pearson on ranks: deviations (-1, 0, 1) and (.5, .5, -1): -1.5 / sqrt(2 * 1.5) = -sqrt(3) / 2
    assert spearman_matrix(rows).loc["clean_acc", "Linf_acc"] == pytest.approx(-math.sqrt(3) / 2)


def _duel_rows() -> pd.DataFrame:
    small, large = "mobilenetv3_large_100.ra_in1k", "convnext_base.fb_in1k"
    records = [
        (small, "small", "TRADES", [0.5, 0.5, 0.5, 0.5, 0.5]),
        (small, "small", "Classic AT", [0.4, 0.4, 0.4, 0.4, 0.4]),  # TRADES wins 5
        (large, "large", "TRADES", [0.9, 0.8, 0.1, 0.1, 0.5]),
        (large, "large", "Classic AT", [0.8, 0.7, 0.2, 0.2, 0.5]),  # 2 wins each, 1 tie
    ]
    return pd.DataFrame(
        [
            dict(zip(ACCURACY_COLUMNS, accs))
            | {"backbone": b, "model_size": s, "loss_function": loss, "dataset": "d", "ft_strategy": "FFT (50 epochs)"}
            for b, s, loss, accs in records
        ]
    )


def test_trades_vs_at_counts_and_fisher():
    table = duels(_duel_rows())
    assert len(table) == 10
    wins = win_counts(table).set_index("size")
    assert wins.loc["small", ["a_wins", "b_wins", "ties"]].tolist() == [5, 0, 0]
    assert wins.loc["large", ["a_wins", "b_wins", "ties"]].tolist() == [2, 2, 1]
    assert wins.loc["all", ["a_wins", "b_wins", "ties"]].tolist() == [7, 2, 1]
    # TRADES' win odds and the exact sign test: small 5-0 -> p = 2 / 2^5; large 2-2 -> p = 1;
    # all 7-2 -> p = 2 * (C(9,7) + C(9,8) + C(9,9)) / 2^9 = 92 / 512
    assert math.isinf(wins.loc["small", "win_odds"]) and wins.loc["small", "sign_p"] == pytest.approx(2 / 32)
    assert wins.loc["large", ["win_odds", "sign_p"]].tolist() == [pytest.approx(1.0), pytest.approx(1.0)]
    assert wins.loc["all", ["win_odds", "sign_p"]].tolist() == [pytest.approx(3.5), pytest.approx(92 / 512)]
    # Fisher, small against the other sizes: [[5, 0], [2, 2]], sample OR 5*2 / (0*2) = inf. Margins 5|4 and 7|2
    # (N = 9): P(k) = C(7, k) C(2, 5 - k) / C(9, 5) for k = 3, 4, 5 is 35, 70, 21 / 126; the two-sided p sums
    # the tables no more likely than the observed k = 5: 21 / 126. Large against small: [[2, 2], [5, 0]], OR 0.
    assert math.isinf(wins.loc["small", "odds_ratio"]) and wins.loc["small", "p_value"] == pytest.approx(21 / 126)
    assert wins.loc["large", ["odds_ratio", "p_value"]].tolist() == [0.0, pytest.approx(21 / 126)]
    assert math.isnan(wins.loc["all", "odds_ratio"]) and math.isnan(wins.loc["all", "p_value"])
    backbones = per_backbone(table).set_index("backbone")["winner"].to_dict()
    assert backbones == {"mobilenetv3_large_100.ra_in1k": "TRADES", "convnext_base.fb_in1k": "tie"}


def test_unpaired_results_are_not_compared():
    rows = _duel_rows().iloc[:3]  # the large backbone has no classic AT result
    assert win_counts(duels(rows))["a_wins"].tolist() == [5, 5]  # small and all


def test_every_pair_of_losses_duels_the_paper_losses_first():
    rows = _duel_rows()
    mart = rows[rows["loss_function"] == "TRADES"].assign(loss_function="mart", Linf_acc=0.99)
    both = pd.concat([rows, mart], ignore_index=True)
    assert loss_pairs(list(both["loss_function"].unique())) == [
        ("TRADES", "Classic AT"),
        ("TRADES", "mart"),
        ("Classic AT", "mart"),
    ]
    wins = win_counts(duels(both)).set_index(["loss_a", "loss_b", "size"])
    # mart copies TRADES but for a better Linf: it wins the Linf duels, the other four measurements tie
    assert wins.loc[("TRADES", "mart", "all"), ["a_wins", "b_wins", "ties"]].tolist() == [0, 2, 8]


def test_proxy_spearman():
    configs = [("a", "TRADES"), ("b", "TRADES"), ("c", "Classic AT"), ("d", "Classic AT")]
    totals = {
        "FFT (50 epochs)": [10, 20, 30, 40],
        "FFT (5 epochs)": [20, 10, 30, 40],
        "LP (50 epochs)": [40, 30, 20, 10],
    }
    rankings = pd.DataFrame(
        [
            {"protocol": p, "backbone": b, "loss": loss, "borda": t}
            for p, column in totals.items()
            for (b, loss), t in zip(configs, column)
        ]
    )
    proxies = proxy_correlations(rankings).set_index("proxy")
    # FFT-5 swaps the first two: rho = 1 - 6 * 2 / (4 * 15) = 0.8; LP-50 reverses: -1
    assert proxies.loc["FFT (5 epochs)", "spearman"] == pytest.approx(0.8)
    assert proxies.loc["LP (50 epochs)", "spearman"] == pytest.approx(-1.0)
    assert proxies["n"].tolist() == [4, 4]
    # Named pairs without the target's rankings: reported as n = 0, not a number.
    alone = proxy_correlations(
        rankings[rankings["protocol"] != "FFT (50 epochs)"],
        pairs=[("FFT (5 epochs)", "FFT (50 epochs)"), ("LP (50 epochs)", "FFT (50 epochs)")],
    )
    assert alone["n"].tolist() == [0, 0] and alone["spearman"].isna().all()


def test_the_proxy_target_is_the_most_expensive_protocol():
    assert proxy_pairs(["LP (50 epochs)", "FFT (5 epochs)", "FFT (50 epochs)"]) == [
        ("FFT (5 epochs)", "FFT (50 epochs)"),
        ("LP (50 epochs)", "FFT (50 epochs)"),
    ]
    # a study of its own: the most epochs, then what trains the most of the network
    assert proxy_pairs(["LP (2 epochs)", "LP-FT (2 epochs)", "Partial FT (1 epoch)"]) == [
        ("LP (2 epochs)", "LP-FT (2 epochs)"),
        ("Partial FT (1 epoch)", "LP-FT (2 epochs)"),
    ]
    assert proxy_pairs(["FFT (2 epochs)"]) == []
