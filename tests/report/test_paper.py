"""The report over the paper's full CSV, and the user's runs placed among it."""

from __future__ import annotations

import pandas as pd
import pytest
from report_helpers import write_run

from app.commands.report import main
from modules.vocabulary import ACCURACY_COLUMNS, PAPER_COLUMNS

PROTOCOL_NAMES = {"FFT (50 epochs)", "FFT (5 epochs)", "LP (50 epochs)"}


def test_structure_of_the_paper_report(paper_report, paper_csv):
    report, out = paper_report
    results = pd.read_csv(out / "results.csv", index_col=0)
    assert list(results.columns) == list(PAPER_COLUMNS)
    assert len(results) == 1440
    assert results["backbone"].nunique() == 40
    assert results["dataset"].nunique() == 6
    assert set(results["ft_strategy"]) == PROTOCOL_NAMES
    assert set(results["loss_function"]) == {"TRADES", "Classic AT"}
    assert not results.isna().any().any()
    assert not results.duplicated(["backbone", "dataset", "loss_function", "ft_strategy"]).any()
    published = pd.read_csv(paper_csv, index_col=0)
    pd.testing.assert_frame_equal(results, published, check_dtype=False)

    rankings = pd.read_csv(out / "rankings.csv")
    assert list(rankings.columns) == ["protocol", "backbone", "loss", "borda", "rank"]
    assert rankings.groupby("protocol").size().to_dict() == dict.fromkeys(PROTOCOL_NAMES, 80)
    # Every configuration gets 6 x 5 ranks between 1 and 80, so the totals add to 30 * (1 + ... + 80).
    assert rankings.groupby("protocol")["borda"].sum().tolist() == [30 * 80 * 81 / 2] * 3
    assert (rankings.groupby("protocol")["rank"].min() == 1).all()
    by_size = pd.read_csv(out / "rankings_by_size.csv")
    assert by_size.groupby(["protocol", "size"]).size().unstack().loc["FFT (50 epochs)"].to_dict() == {
        "small": 14,
        "medium": 30,
        "large": 36,
    }
    assert pd.read_csv(out / "incomplete.csv").empty

    mac = pd.read_csv(out / "agreement_mac.csv")
    assert set(mac["protocol"]) == PROTOCOL_NAMES and (mac["n"] == 480).all()
    assert mac["mac"].between(0, 1).all()
    wins = pd.read_csv(out / "losses.csv")
    assert set(zip(wins["loss_a"], wins["loss_b"])) == {("TRADES", "Classic AT")}
    assert (wins["a_wins"] + wins["b_wins"] + wins["ties"]).tolist() == [
        n * 6 * 5 for n in (7, 15, 18, 40)
    ] * 3  # backbones per size class x datasets x measurements
    proxies = pd.read_csv(out / "proxies.csv")
    assert proxies[proxies["size"] == "all"]["n"].tolist() == [80, 80]

    for name in ("clean_vs_robust", "agreement_heatmap", "rankings", "rank_comparison", "odds_ratios"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
        assert not pd.read_csv(out / "figures" / f"{name}.csv").empty
        assert f"figures/{name}.png" in (out / "report.md").read_text()


def test_report_output_is_valid_input(paper_report, tmp_path):
    _, out = paper_report
    assert main(["--results", str(out / "results.csv"), "--out", str(tmp_path / "again")]) == 0
    before, after = (pd.read_csv(d / "rankings.csv") for d in (out, tmp_path / "again"))
    pd.testing.assert_frame_equal(before, after)
    assert not (tmp_path / "again" / "study").exists()  # a copy of the published table is not a study of yours


def test_user_runs_are_placed_among_the_published(paper_csv, tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs / "best", **dict.fromkeys(ACCURACY_COLUMNS, 1.0))  # convnext_tiny.fb_in1k, app names
    write_run(
        runs / "worst",
        backbone="tf_efficientnet_b0.in1k",
        loss="classic_at",
        protocol="lp50",
        dataset="caltech101",
        **dict.fromkeys(ACCURACY_COLUMNS, 0.0),
    )
    write_run(runs / "new", backbone="resnet18.a1_in1k", dataset="my-dataset")
    write_run(runs / "broken", status="failed")
    out = tmp_path / "report"
    assert main(["--results", str(paper_csv), str(runs), "--out", str(out)]) == 0
    assert "status is 'failed'" in capsys.readouterr().err
    placed = pd.read_csv(out / "placements.csv").set_index("backbone")
    best = placed.loc["convnext_tiny.fb_in1k"]
    assert (best["protocol"], best["dataset"], best["loss"]) == ("FFT (50 epochs)", "flowers-102", "TRADES")
    assert (best["rank"], best["out_of"]) == (1, 81)
    worst = placed.loc["efficientnet-b0"]  # mapped to the paper's name
    assert (worst["protocol"], worst["loss"], worst["out_of"]) == ("LP (50 epochs)", "Classic AT", 81)
    assert worst["rank"] > 1 and worst["borda"] <= 5 * 81
    assert "resnet18.a1_in1k" not in placed.index  # no published results on my-dataset to place it among
    # The published analysis stays over the 1,440 published results; the runs are a study of their own.
    assert len(pd.read_csv(out / "results.csv")) == 1440
    assert len(pd.read_csv(out / "study" / "results.csv")) == 3
    scatter = pd.read_csv(out / "figures" / "clean_vs_robust.csv")
    assert scatter["user_run"].sum() == 3
    text = (out / "report.md").read_text()
    assert "Your runs among the published results" in text and "Skipped inputs" in text


@pytest.mark.parametrize("protocol", sorted(PROTOCOL_NAMES))
def test_top_configuration_has_the_lowest_total(paper_report, protocol):
    report, _ = paper_report
    ranked = report.published.rankings[report.published.rankings["protocol"] == protocol]
    assert ranked.iloc[0]["borda"] == ranked["borda"].min() and ranked.iloc[0]["rank"] == 1


def test_a_configuration_on_all_six_datasets_is_placed_in_its_protocols_ranking(paper_csv, tmp_path):
    datasets = [
        "caltech101",
        "fgvc-aircraft-2013b",
        "flowers-102",
        "oxford-iiit-pet",
        "stanford_cars",
        "uc-merced-land-use-dataset",
    ]
    runs = tmp_path / "sweep"
    for dataset in datasets:  # a paper configuration run again, perfect everywhere: first of 81
        write_run(runs / "fft50" / dataset, dataset=dataset, **dict.fromkeys(ACCURACY_COLUMNS, 1.0))
    for dataset in datasets[:5]:  # five datasets only: not placed in the ranking
        write_run(runs / "fft5" / dataset, dataset=dataset, protocol="fft5", **dict.fromkeys(ACCURACY_COLUMNS, 1.0))
    for dataset in datasets:  # the worst possible: last
        write_run(
            runs / "lp50" / dataset,
            dataset=dataset,
            protocol="lp50",
            loss="classic_at",
            **dict.fromkeys(ACCURACY_COLUMNS, 0.0),
        )
    out = tmp_path / "report"
    assert main(["--results", str(runs), "--out", str(out)]) == 0  # the shipped paper results by default
    placed = pd.read_csv(out / "protocol_placements.csv").set_index("protocol")
    assert list(placed.index) == ["FFT (50 epochs)", "LP (50 epochs)"]
    assert (placed.loc["FFT (50 epochs)", "rank"], placed.loc["FFT (50 epochs)", "out_of"]) == (1, 81)
    assert placed.loc["FFT (50 epochs)", "borda"] == pytest.approx(6 * 5 * 1.0)  # first on each of the 30 pairs
    assert placed.loc["LP (50 epochs)", "rank"] == 81
    bars = pd.read_csv(out / "figures" / "rankings.csv")
    assert bars["yours"].sum() == 2 and "convnext_tiny.fb_in1k (yours)" in set(bars["backbone"])
    assert "In the protocols' Borda rankings" in (out / "report.md").read_text()
