"""What an evaluation's report becomes: the best-checkpoint score, and the results.json fields under
the paper's column names."""

from __future__ import annotations

from typing import Any

from modules.vocabulary import PAPER_COLUMN_OF

# kept when measured; `checks` / `warnings`: the reference AutoAttack's checks (modules/evaluation/checks.py)
REPORT_EXTRAS = ("per_corruption", "broken_by", "fp32_recheck", "expected_robustness", "checks", "warnings")


def selection_score(accuracy: dict[str, float]) -> float:
    """What the best checkpoint maximizes: the sum of the accuracies measured at validation (the
    paper's `sum` aggregate over the measurements taken). Robust accuracy alone would hand a
    non-robust baseline's "best" checkpoint to whichever early epoch had a stray robust hit."""
    return float(sum(accuracy.values()))


def paper_figures(metrics: dict[str, Any], prefix: str = "test/") -> dict[str, float]:
    """The logged `<prefix><column>` metrics of the paper's five measurements, under the paper's names."""
    return {
        PAPER_COLUMN_OF[key.removeprefix(prefix)]: float(value)
        for key, value in metrics.items()
        if key.startswith(prefix) and key.removeprefix(prefix) in PAPER_COLUMN_OF
    }


def results_fields(report: dict[str, Any]) -> dict[str, Any]:
    """A test report as results.json fields: figures (paper columns; new measurements by their own
    name), attack settings (with the precision each ran in), number of test images, seconds per
    measurement, how many examples each attack broke, fp32 recheck counts and the
    expected-robustness curve (when measured)."""
    fields: dict[str, Any] = {
        "figures": {PAPER_COLUMN_OF.get(k, k): float(v) for k, v in report["accuracy"].items()},
        "attacks": report["settings"],
        "num_test_images": report["num_images"],
        "seconds": report["seconds"],
    }
    return fields | {key: report[key] for key in REPORT_EXTRAS if key in report}
