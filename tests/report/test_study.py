"""The user's own study: runs of any loss, protocol and dataset analysed beside the paper's, placed
where comparable (`--place-as` for other protocols), predicted from fewer datasets, and the planner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_helpers import write_run

from app.commands.report import main
from app.report.load import read_csv
from app.report.paper import PAPER_RESULTS
from app.report.prediction import PlacementModel, Published, column_ranks, rank_of

BACKBONES = ("convnext_tiny.fb_in1k", "resnet50.a1_in1k")
LOSSES = ("trades", "my_loss")  # my_loss: a loss registered outside the app (README, "Add a loss")


def _study(runs, datasets=("flowers-102", "image-folder")) -> None:
    """As the app writes results.json: FFT-50 and LP-FT-50 runs of two backbones and two losses."""
    for adaptation in ("full", "lp_ft"):
        for b, backbone in enumerate(BACKBONES):
            for n, loss in enumerate(LOSSES):
                for d, dataset in enumerate(datasets):
                    accuracy = 0.2 + 0.1 * b + 0.05 * n + 0.02 * d + (0.1 if adaptation == "full" else 0)
                    write_run(
                        runs / adaptation / backbone / loss / dataset,
                        backbone=backbone,
                        loss=loss,
                        dataset=dataset,
                        adaptation=adaptation,
                        epochs=50,
                        protocol="fft50" if adaptation == "full" else "lp_ft-50ep",
                        **{column: accuracy for column in ("clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc")},
                    )


def test_runs_of_any_loss_protocol_and_dataset_are_a_study_of_their_own(tmp_path, capsys):
    _study(tmp_path / "runs")
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert pd.read_csv(out / "skipped.csv").empty
    results = pd.read_csv(out / "study" / "results.csv", index_col=0)
    assert len(results) == 16 and set(results["dataset"]) == {"flowers-102", "image-folder"}
    assert set(results["loss_function"]) == {"TRADES", "my_loss"}
    ranked = pd.read_csv(out / "study" / "rankings.csv")
    assert ranked.groupby("protocol").size().to_dict() == {"FFT (50 epochs)": 4, "LP-FT (50 epochs)": 4}
    best = ranked[ranked["rank"] == 1]
    assert set(best["backbone"]) == {"resnet50.a1_in1k"} and set(best["loss"]) == {"my_loss"}
    losses = pd.read_csv(out / "study" / "losses.csv")
    every = losses[losses["size"] == "all"].set_index("protocol")
    assert every.loc["FFT (50 epochs)", ["loss_a", "loss_b", "a_wins", "b_wins"]].tolist() == [
        "TRADES",
        "my_loss",
        0,
        2 * 2 * 5,  # my_loss wins on both backbones, both datasets, all five measurements
    ]
    proxies = pd.read_csv(out / "study" / "proxies.csv")
    assert proxies[["proxy", "target"]].values.tolist()[0] == ["LP-FT (50 epochs)", "FFT (50 epochs)"]
    # placed where comparable: the FFT-50 runs on flowers-102, whatever their loss; not image-folder, not LP-FT
    placed = pd.read_csv(out / "placements.csv")
    assert len(placed) == 4 and set(placed["dataset"]) == {"flowers-102"} and (placed["out_of"] == 81).all()
    assert set(placed["protocol"]) == {"FFT (50 epochs)"} and "my_loss" in set(placed["loss"])
    predicted = pd.read_csv(out / "predicted_placements.csv")
    assert len(predicted) == 4 and set(predicted["basis"]) == {"predicted from 1 of 6 datasets"}
    assert (
        (predicted["low"] <= predicted["predicted_rank"]) & (predicted["predicted_rank"] <= predicted["high"])
    ).all()
    text = (out / "report.md").read_text()
    assert (
        text.index("## Your study")
        < text.index("## Your runs among the published")
        < text.index("## The published study")
    )
    assert "#### LP-FT (50 epochs): top 4 of 4" in text and "### Placement from fewer datasets" in text
    assert (out / "study" / "figures" / "rankings.png").stat().st_size > 10_000
    assert (out / "figures" / "predicted_placements.png").stat().st_size > 10_000


def test_place_as_labels_runs_of_another_protocol_everywhere(tmp_path):
    _study(tmp_path / "runs")
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out), "--place-as", "fft50"]) == 0
    label = "LP-FT (50 epochs) placed as FFT (50 epochs)"
    placed = pd.read_csv(out / "placements.csv")
    assert placed["protocol"].value_counts().to_dict() == {"FFT (50 epochs)": 4, label: 4}
    assert set(pd.read_csv(out / "predicted_placements.csv")["protocol"]) == {"FFT (50 epochs)", label}
    assert label in set(pd.read_csv(out / "figures" / "clean_vs_robust.csv")["protocol"])
    assert label in set(pd.read_csv(out / "figures" / "predicted_placements.csv")["protocol"])
    assert label in (out / "report.md").read_text()


@pytest.mark.parametrize("protocol", ["FFT (50 epochs)", "LP (50 epochs)"])
def test_a_published_configuration_predicted_from_two_datasets_falls_in_its_interval(protocol):
    """Held out with its backbone, each of the first 12 backbones' configurations is predicted from the
    planner's two datasets; its true rank (all six datasets) falls in the 80% interval for most of them."""
    published = Published.of(read_csv(PAPER_RESULTS), protocol)
    seen = ["caltech101", "fgvc-aircraft-2013b"]
    inside = []
    for backbone in sorted(set(published.backbones))[:12]:
        rest = published.without(backbone)
        model = PlacementModel(rest, seen)
        for i in np.flatnonzero(published.backbones == backbone):
            predicted = model.predict(published.accuracies[i][rest.indices(seen)])
            totals = column_ranks(np.concatenate([rest.accuracies, published.accuracies[i][None]])).sum((1, 2))
            true = rank_of(totals[-1], totals[:-1])
            assert predicted.low <= predicted.rank <= predicted.high and predicted.out_of == 79
            inside.append(predicted.low <= true <= predicted.high)
    assert np.mean(inside) >= 0.75, np.mean(inside)


def test_a_configuration_on_two_datasets_is_placed_by_prediction_against_another_reference(tmp_path):
    """`--paper`: the published table without convnext_tiny.fb_in1k; its FFT-50 TRADES rows on two
    datasets, as runs, get the rank that all six would give (15 of 79) inside their interval."""
    rows = pd.read_csv(PAPER_RESULTS, index_col=0)
    mine = (rows["backbone"] == "convnext_tiny.fb_in1k") & (rows["ft_strategy"] == "FFT (50 epochs)")
    reference = tmp_path / "without_convnext_tiny.csv"
    rows[rows["backbone"] != "convnext_tiny.fb_in1k"].to_csv(reference)
    for _, row in rows[mine & (rows["loss_function"] == "TRADES")].iterrows():
        if row["dataset"] in ("caltech101", "fgvc-aircraft-2013b"):
            accuracies = {c: row[c] for c in ("clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc")}
            write_run(tmp_path / "runs" / row["dataset"], dataset=row["dataset"], **accuracies)
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--paper", str(reference), "--out", str(out)]) == 0
    predicted = pd.read_csv(out / "predicted_placements.csv").iloc[0]
    assert predicted["basis"] == "predicted from 2 of 6 datasets" and predicted["out_of"] == 79
    assert (predicted["predicted_rank"], predicted["low"], predicted["high"]) == (15, 11, 25)
    assert predicted["low"] <= 15 <= predicted["high"]  # its rank among the other 78 from all six datasets


def test_the_planner_names_the_datasets_to_run_first_the_same_every_time(capsys):
    assert main(["--plan", "fft50", "--datasets", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["--plan", "FFT (50 epochs)", "--datasets", "2"]) == 0
    assert capsys.readouterr().out == first
    assert first.splitlines()[0] == "FFT (50 epochs): run caltech101, fgvc-aircraft-2013b first (2 of 6 datasets)."
    assert "ranking on these datasets alone: median" in first


def _one_line_error(capsys, argv: list[str], expect: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expect in err, err


def test_bad_place_as_plan_and_paper_are_one_line(capsys, tmp_path):
    write_run(tmp_path / "runs" / "a")
    out = str(tmp_path / "report")
    _one_line_error(
        capsys, ["--results", str(tmp_path / "runs"), "--out", out, "--place-as", "fft10"], "--place-as 'fft10'"
    )
    _one_line_error(
        capsys,
        ["--results", str(tmp_path / "runs"), "--out", out, "--place-as", "fft50", "--no-paper"],
        "the published results have no such protocol",
    )
    for k in ("0", "6"):
        _one_line_error(capsys, ["--plan", "lp50", "--datasets", k], f"--datasets {k}: expected 1..5")
    _one_line_error(capsys, ["--plan", "fft10"], "--plan 'fft10': unknown protocol")
    bad = tmp_path / "not_the_schema.csv"
    pd.read_csv(PAPER_RESULTS, index_col=0).drop(columns=["L1_acc", "ft_strategy"]).to_csv(bad)
    _one_line_error(
        capsys,
        ["--results", str(tmp_path / "runs"), "--paper", str(bad), "--out", out],
        "missing column(s) L1_acc, ft_strategy",
    )
    _one_line_error(capsys, ["--plan", "fft50", "--paper", str(bad)], "missing column(s) L1_acc, ft_strategy")
    assert not (tmp_path / "report").exists()


def test_a_run_whose_checks_tripped_is_never_ranked_silently(tmp_path):
    runs = tmp_path / "runs"
    tripped = {"status": "tripped", "figure": 0.05, "threshold": 0.002, "why": "Square broke 5 examples"}
    write_run(runs / "masked", backbone="resnet50.a1_in1k", checks={"linf": {"square": tripped}})
    write_run(runs / "clean", checks={"linf": {"square": {"status": "passed"}, "n_classes": {"status": "skipped"}}})
    out = tmp_path / "report"
    assert main(["--results", str(runs), "--out", str(out)]) == 0
    results = pd.read_csv(out / "study" / "results.csv", index_col=0).fillna("")
    assert dict(zip(results["backbone"], results["checks"])) == {
        "resnet50.a1_in1k": "linf: square",
        "convnext_tiny.fb_in1k": "",
    }
    placed = pd.read_csv(out / "placements.csv").fillna("")
    assert dict(zip(placed["backbone"], placed["checks"])) == {
        "resnet50.a1_in1k": "linf: square",
        "convnext_tiny.fb_in1k": "",
    }
    text = (out / "report.md").read_text()
    warning = text.index("**Warning: 1 run with figures that the reference AutoAttack's checks flag**")
    assert warning < text.index("## Your study") and "| linf: square |" in text[warning:]
