"""Borda rankings on hand-made tables, totals computed by hand."""

from __future__ import annotations

import pandas as pd
from report_helpers import row, write_csv

from app.report import build_report
from app.report.borda import incomplete_configurations, rankings
from app.report.load import load_results

A, B, C = "convnext_tiny.fb_in1k", "convnext_tiny.fb_in1k", "resnet50.a1_in1k"
# (clean, Linf, L2, L1, common)
HAND = [
    row(A, "TRADES", "d1", (0.9, 0.5, 0.6, 0.4, 0.7)),
    row(B, "Classic AT", "d1", (0.8, 0.5, 0.7, 0.3, 0.6)),
    row(C, "TRADES", "d1", (0.7, 0.2, 0.6, 0.3, 0.8)),
    row(A, "TRADES", "d2", (0.5, 0.1, 0.1, 0.1, 0.1)),
    row(B, "Classic AT", "d2", (0.6, 0.2, 0.2, 0.2, 0.2)),
    row(C, "TRADES", "d2", (0.4, 0.3, 0.3, 0.3, 0.3)),
]
# d1 ranks   clean Linf  L2   L1  common  total
#   A          1   1.5  2.5   1    2       8
#   B          2   1.5  1    2.5   3      10
#   C          3   3    2.5  2.5   1      12
# d2: A 2+3+3+3+3 = 14, B 1+2+2+2+2 = 9, C 3+1+1+1+1 = 7
# totals: A 22, B 19, C 19 -> B and C share rank 1 (method="min"), A is 3rd.


def _load(tmp_path, rows) -> pd.DataFrame:
    return load_results([write_csv(tmp_path / "hand.csv", rows)]).tables


def test_borda_totals_and_ties(tmp_path):
    ranked = rankings(_load(tmp_path, HAND))
    assert list(ranked.columns) == ["protocol", "backbone", "loss", "borda", "rank"]
    got = {(r.backbone, r.loss): (r.borda, r.rank) for r in ranked.itertuples()}
    assert got == {(A, "TRADES"): (22.0, 3), (B, "Classic AT"): (19.0, 1), (C, "TRADES"): (19.0, 1)}
    assert set(ranked["protocol"]) == {"FFT (50 epochs)"}


def test_ranking_within_size_class(tmp_path):
    # convnext_tiny and resnet50 are both "medium": same totals as above, one class.
    by_size = rankings(_load(tmp_path, HAND), by_size=True)
    assert set(by_size["size"]) == {"medium"}
    assert sorted(by_size["borda"]) == [19.0, 19.0, 22.0]
    # With a small model added on d1 and d2, each class is ranked on its own.
    small = [row("mobilenetv3_large_100.ra_in1k", "TRADES", d, (0.1,) * 5) for d in ("d1", "d2")]
    by_size = rankings(_load(tmp_path, HAND + small), by_size=True)
    assert by_size[by_size["size"] == "small"][["borda", "rank"]].values.tolist() == [[10.0, 1]]
    assert sorted(by_size[by_size["size"] == "medium"]["borda"]) == [19.0, 19.0, 22.0]


def test_protocols_are_ranked_separately(tmp_path):
    fft5 = [{**r, "ft_strategy": "fft5"} for r in HAND[:3]]  # app name accepted in a CSV
    ranked = rankings(_load(tmp_path, HAND + fft5))
    five = ranked[ranked["protocol"] == "FFT (5 epochs)"]
    assert dict(zip(five["loss"] + five["backbone"], five["borda"])) == {
        "TRADES" + A: 8.0,
        "Classic AT" + B: 10.0,
        "TRADES" + C: 12.0,
    }


def test_incomplete_configuration_is_excluded_and_reported(tmp_path):
    partial = HAND[:-1]  # C lacks d2
    table = _load(tmp_path, partial)
    incomplete = incomplete_configurations(table)
    assert incomplete[["backbone", "loss", "missing_datasets"]].values.tolist() == [[C, "TRADES", "d2"]]
    ranked = rankings(table)
    # Only A and B are ranked. d1: A 1+1.5+2+1+1 = 6.5, B 2+1.5+1+2+2 = 8.5; d2: A 10, B 5.
    assert dict(zip(ranked["loss"], ranked["borda"])) == {"TRADES": 16.5, "Classic AT": 13.5}
    messages: list[str] = []
    report = build_report([tmp_path / "hand.csv"], tmp_path / "out", log=messages.append)
    assert any("excluded from the FFT (50 epochs) ranking" in m and C in m for m in messages)
    assert (tmp_path / "out" / "study" / "incomplete.csv").read_text().count(C) == 1
    assert "Incomplete configurations" in (tmp_path / "out" / "report.md").read_text()
    assert report.published is None and len(report.study.rankings) == 2
