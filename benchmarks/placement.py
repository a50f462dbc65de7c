"""How well a configuration's protocol rank is predicted from k of its six datasets, on the paper's results.

    python benchmarks/placement.py [--paper FILE] [--out app/report/data/placement_validation.csv]

Leaves out one backbone at a time (both of its configurations, since a new backbone has no
published rows under either loss). Without it, the datasets are chosen (`choose`, as `python -m
app report --plan` does) and the model fitted (app/report/prediction.py); its configurations'
true ranks come from all six datasets, among the other backbones' configurations. Per protocol and
k = 1..5: the mean, median and 90th-percentile absolute rank error, the 80% interval's coverage, and the
same errors for the baseline (ranking on the observed datasets only, same folds, same datasets).
Writes the table the report quotes and prints it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from app.report.load import read_csv  # noqa: E402
from app.report.markdown import table  # noqa: E402
from app.report.paper import PAPER_RESULTS, PLACEMENT_VALIDATION  # noqa: E402
from app.report.prediction import PlacementModel, Published, choose, column_ranks, rank_of  # noqa: E402
from modules.vocabulary import protocol_order  # noqa: E402


def validate(published: Published, k: int) -> dict[str, object]:
    """The held-out errors of the model and the baseline for one protocol and k."""
    model_errors, baseline_errors, covered, chosen = [], [], [], Counter()
    backbones = published.backbones
    for backbone in dict.fromkeys(backbones):
        rest = published.without(backbone)
        seen = choose(rest, k)[0].seen
        chosen[tuple(seen)] += 1
        model = PlacementModel(rest, seen)
        index = rest.indices(seen)
        for i in np.flatnonzero(backbones == backbone):
            accuracies = published.accuracies[i]
            predicted = model.predict(accuracies[index])
            ranks = column_ranks(np.concatenate([rest.accuracies, accuracies[None]]))
            totals, observed = ranks.sum((1, 2)), ranks[:, index].sum((1, 2))
            true = rank_of(totals[-1], totals[:-1])
            model_errors.append(abs(predicted.rank - true))
            baseline_errors.append(abs(rank_of(observed[-1], observed[:-1]) - true))
            covered.append(predicted.low <= true <= predicted.high)
    (datasets, folds), *_ = chosen.most_common(1)
    return {
        "k": k,
        "datasets": "; ".join(datasets),
        "chosen_in": f"{folds} of {sum(chosen.values())} folds",
        "mean": float(np.mean(model_errors)),
        "median": float(np.median(model_errors)),
        "p90": float(np.quantile(model_errors, 0.9)),
        "coverage": float(np.mean(covered)),
        "baseline_mean": float(np.mean(baseline_errors)),
        "baseline_median": float(np.median(baseline_errors)),
        "baseline_p90": float(np.quantile(baseline_errors, 0.9)),
        "held_out": len(model_errors),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paper", type=Path, default=PAPER_RESULTS, help="the published results (paper's schema)")
    p.add_argument("--out", type=Path, default=PLACEMENT_VALIDATION, help="the CSV to write")
    args = p.parse_args(argv)
    rows = read_csv(args.paper)
    records = []
    for protocol in protocol_order(list(rows["ft_strategy"].unique())):
        published = Published.of(rows, protocol)
        for k in range(1, len(published.datasets)):
            records.append({"protocol": protocol} | validate(published, k))
            print(f"{protocol}, k={k}: {records[-1]}", file=sys.stderr, flush=True)
    result = pd.DataFrame(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out, index=False)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
