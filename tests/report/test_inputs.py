"""Reading inputs through `python -m app report`: names mapped, bad input refused or
skipped with a stated reason, and no half-written output directory."""

from __future__ import annotations

import pandas as pd
import pytest
from report_helpers import row, write_csv, write_run

from app.commands.report import main
from app.report.load import load_results

GOOD = [
    row("convnext_tiny.fb_in1k", loss, d, (0.5, 0.2, 0.3, 0.1, 0.4))
    for loss in ("TRADES", "Classic AT")
    for d in ("flowers-102", "caltech101")
]


def _fails(capsys, tmp_path, *paths, expect: str) -> str:
    out = tmp_path / "report"
    assert main(["--results", *map(str, paths), "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message and expect in message, message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []  # temp dir removed
    return message


def test_missing_column(capsys, tmp_path):
    table = pd.DataFrame(GOOD).drop(columns="L1_acc")
    path = tmp_path / "no_l1.csv"
    table.to_csv(path)
    _fails(capsys, tmp_path, path, expect=f"{path}: missing column(s) L1_acc")


def test_unknown_protocol(capsys, tmp_path):
    path = write_csv(
        tmp_path / "bad.csv",
        GOOD[:1] + [row("resnet50.a1_in1k", "TRADES", "caltech101", (0.1,) * 5, protocol="FFT (10 epochs)")],
    )
    message = _fails(capsys, tmp_path, path, expect="column 'ft_strategy' has unknown value 'FFT (10 epochs)'")
    assert "'FFT (50 epochs)'" in message and "'fft5'" in message


def test_unknown_loss_and_bad_accuracy(capsys, tmp_path):
    _fails(
        capsys,
        tmp_path,
        write_csv(tmp_path / "ce.csv", [{**GOOD[0], "loss_function": "CE"}]),
        expect="column 'loss_function' has unknown value 'CE'",
    )
    _fails(
        capsys,
        tmp_path,
        write_csv(tmp_path / "pct.csv", [{**GOOD[0], "clean_acc": 91.0}]),
        expect="column 'clean_acc' row 0 is 91.0; expected an accuracy fraction in [0, 1]",
    )
    _fails(
        capsys,
        tmp_path,
        write_csv(tmp_path / "nan.csv", [{**GOOD[0], "L2_acc": None}]),
        expect="column 'L2_acc' row 0 is empty",
    )


def test_inconsistent_sum_and_duplicates(capsys, tmp_path):
    _fails(
        capsys,
        tmp_path,
        write_csv(tmp_path / "sum.csv", [{**GOOD[0], "sum": 3.0}]),
        expect="column 'sum' in row 0 is not the sum",
    )
    _fails(
        capsys,
        tmp_path,
        write_csv(tmp_path / "dup.csv", [GOOD[0], GOOD[0]]),
        expect="two table rows for the same configuration",
    )


def test_not_a_result_file(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    _fails(capsys, tmp_path, tmp_path / "notes.txt", expect="expected a .csv table, a results.json")
    _fails(capsys, tmp_path, tmp_path / "absent.csv", expect="no such file")


def test_runs_are_read_and_mapped(tmp_path):
    write_run(tmp_path / "runs" / "a", backbone="tf_efficientnet_b0.in1k", loss="classic_at", protocol="lp50")
    write_run(tmp_path / "runs" / "b", backbone="resnet18.a1_in1k")  # outside the study's zoo
    loaded = load_results([tmp_path / "runs"])
    assert loaded.skipped == []
    runs = loaded.runs.set_index("backbone")
    assert runs.loc["efficientnet-b0", ["loss_function", "ft_strategy", "model_size"]].tolist() == [
        "Classic AT",
        "LP (50 epochs)",
        "small",
    ]
    assert runs.loc["resnet18.a1_in1k", ["model_size", "model_type", "backbone_name"]].tolist() == ["unknown"] * 3
    assert runs.loc["resnet18.a1_in1k", "sum"] == pytest.approx(1.5)
    assert runs.loc["resnet18.a1_in1k", "geom"] == pytest.approx(0.5 * 0.2 * 0.3 * 0.1 * 0.4)


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"status": "running"}, "unfinished run: status is 'running', not 'complete'"),
        ({"status": None}, "unfinished run: status is None"),
        ({"L1_acc": None}, "partial run: L1_acc is missing"),
        ({"common_acc": 70}, "common_acc is 70; expected an accuracy fraction"),
    ],
)
def test_unusable_runs_are_skipped_with_a_reason(tmp_path, fields, reason):
    path = write_run(tmp_path / "run", **fields)
    loaded = load_results([path])
    assert loaded.runs.empty
    assert len(loaded.skipped) == 1
    assert str(loaded.skipped[0]).startswith(f"skipped {path}: {reason}")


def test_truncated_json_is_skipped(tmp_path):
    path = write_run(tmp_path / "run")
    path.write_text(path.read_text()[:20])
    assert "not readable JSON" in load_results([path]).skipped[0].reason


def test_only_skipped_runs_is_an_error(capsys, tmp_path):
    write_run(tmp_path / "runs" / "a", status="running")
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out), "--no-paper"]) == 2
    err = capsys.readouterr().err
    assert "skipped" in err and "status is 'running'" in err
    assert err.strip().splitlines()[-1].startswith("error: no results to analyse")
    assert not out.exists()


def test_report_over_runs_only(capsys, tmp_path):
    for index, (loss, dataset) in enumerate(
        [(lo, d) for lo in ("trades", "classic_at") for d in ("flowers-102", "caltech101")]
    ):
        write_run(tmp_path / "runs" / str(index), loss=loss, dataset=dataset, clean_acc=0.1 * (index + 1))
    write_run(tmp_path / "runs" / "ce", loss="ce", status="failed")
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out), "--no-paper"]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "status is 'failed'" in captured.err
    results = pd.read_csv(out / "study" / "results.csv", index_col=0)
    assert len(results) == 4 and set(results["ft_strategy"]) == {"FFT (50 epochs)"}
    assert pd.read_csv(out / "study" / "rankings.csv")["rank"].tolist() == [1, 2]
    assert "status is 'failed'" in pd.read_csv(out / "skipped.csv")["reason"][0]
    assert not (out / "placements.csv").exists() and not (out / "results.csv").exists()  # no published study
    assert "## The published study" not in (out / "report.md").read_text()
    # A second run replaces the earlier report in place.
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out), "--no-paper"]) == 0
    assert (out / "report.md").exists()


def test_runs_are_placed_among_the_shipped_paper_results_by_default(capsys, tmp_path):
    write_run(tmp_path / "runs" / "a")
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "results.csv", index_col=0)) == 1440
    placed = pd.read_csv(out / "placements.csv")
    assert len(placed) == 1 and placed["out_of"][0] == 81  # 40 backbones x 2 losses, plus the run
    assert main(["--out", str(tmp_path / "paper_only")]) == 0  # no runs: the paper's own report
    assert main(["--no-paper", "--out", str(tmp_path / "nothing")]) == 2
    assert "no results given" in capsys.readouterr().err


def test_refuses_to_overwrite_a_foreign_directory(capsys, tmp_path):
    path = write_csv(tmp_path / "ok.csv", GOOD)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("...")
    assert main(["--results", str(path), "--out", str(tmp_path / "mine")]) == 2
    assert "is not an earlier report" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_a_sweep_folder_is_read_as_its_cells_final_runs(tmp_path):
    sweep = tmp_path / "sweep"
    cell = sweep / "fft50" / "flowers-102" / "convnext_tiny.fb_in1k" / "trades"
    write_run(cell / "made", clean_acc=0.9).parent.rename(cell / "final")  # <cell>/final/results.json
    write_run(cell / "trials", clean_acc=0.1)  # a search trial's run: not a result of the sweep
    (sweep / "sweep.csv").write_text("protocol,dataset,backbone,loss\n")
    loaded = load_results([sweep])
    assert len(loaded.runs) == 1 and loaded.runs["clean_acc"].tolist() == [0.9]


def test_runs_that_recorded_their_cost_get_a_cost_table(tmp_path):
    cost = {
        "fit": {"device": "NVIDIA H100", "devices": 2, "fit_device_seconds": 5400.0},
        "test": {"measurement_device_seconds": {"clean": 0.0, "linf": 1800.0}},
    }
    write_run(tmp_path / "runs" / "a", cost=cost)  # 2 device-hours
    write_run(tmp_path / "runs" / "b", loss="classic_at")  # from before costs were recorded: no row
    out = tmp_path / "report"
    assert main(["--results", str(tmp_path / "runs"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "cost.csv")
    assert len(table) == 1 and table["device"][0] == "NVIDIA H100"
    assert table["device_hours"][0] == pytest.approx(2.0)
    assert table["Linf_acc_per_device_hour"][0] == pytest.approx(0.2 / 2.0)
    assert "## What the runs cost" in (out / "report.md").read_text()
