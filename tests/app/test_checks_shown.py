"""A tripped robustness check, as a user meets it: a warning line under the test's summary table, the
`checks` block of results.json, TensorBoard's text, and the report's warning and `checks` column."""

from __future__ import annotations

import pandas as pd
from app_runs import image_folder, results, run_app, short_fit, the_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

WARNING = "linf: n_classes: the targeted attacks use 9 target classes but the model has 4 other classes"


def test_the_standard_autoattack_on_five_classes_warns_everywhere(tmp_path):
    images = image_folder(tmp_path / "images", classes=5, per_split=4, size=16)
    data = ["--data", "image-folder", "--data.root", str(images), "--data.image_size", "16", "--data.batch_size", "8"]
    attack = ["--robustness.test_attack", "autoattack", "--robustness.test_steps", "2"]
    done = run_app(
        [
            *short_fit(tmp_path / "runs", "--trainer.max_epochs", "1", *data, *attack),
            *("--robustness.square_queries", "10"),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout[done.stdout.index("Robustness on the test set") :]
    assert f"warning: {WARNING}" in " ".join(summary.split())  # under the table, however the terminal wraps it
    run = the_run(tmp_path / "runs")
    record = results(run)
    assert WARNING in record["warnings"]
    assert {norm: record["checks"][norm]["n_classes"]["status"] for norm in ("linf", "l2", "l1")} == dict.fromkeys(
        ("linf", "l2", "l1"), "tripped"
    )
    verdict = record["checks"]["linf"]["n_classes"]
    assert (verdict["status"], verdict["figure"], verdict["threshold"]) == ("tripped", 4, 9)
    assert {name: v["status"] for name, v in record["checks"]["linf"].items() if name != "n_classes"} == dict.fromkeys(
        ("randomized", "probabilities", "zero_gradients", "dynamic", "square"), "passed"
    ) | ({"square": "tripped"} if record["broken_by"]["linf"]["square"] > 0 else {})

    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    (text,) = events.Tensors("test/checks/text_summary")
    assert WARNING in text.tensor_proto.string_val[0].decode()

    report = tmp_path / "report"
    assert run_app(["report", "--results", str(tmp_path / "runs"), "--out", str(report), "--no-paper"]).returncode == 0
    (row,) = pd.read_csv(report / "study" / "results.csv", index_col=0).itertuples()
    assert row.checks == "l1: n_classes; l2: n_classes; linf: n_classes"
    assert (
        "**Warning: 1 run with figures that the reference AutoAttack's checks flag**"
        in (report / "report.md").read_text()
    )
